"""Every policy edit, checked against the roles before it.

A policy edit is a commit that changes `users.toml`, `rules.toml`, `allowed_signers`, or the
`security`, `notify` or `targets` sections of `config.toml` (settings that end up deciding who
acts, or in commands nbversion runs). In signed mode the acting identity of a commit is the
principal of its signature; in advisory mode (no keys), the user of the audit entries it added,
else its git author. Whatever audit lines it carries, a commit that changes who has which
role, or what a promotion requires or runs, must come from an admin under the roles in force at
its (first) parent. Every branch merged in is walked, not only the first parents, so an edit made
on a colleague's clone is checked where it was made; a merge itself is an edit only when a policy
file ends up unlike every parent's ("an evil merge"). The commit that creates users.toml (init)
bootstraps: its actor must be an admin in the file it creates.
"""
from __future__ import annotations

import logging
from pathlib import Path

from ..backends import _git, _git_history
from ..registry import rules
from ..repo import identity
from ..repo.config import META_DIR, tomllib
from ..security import signing
from . import chain as audit

logger = logging.getLogger(__name__)

USERS_FILE = f"{META_DIR}/users.toml"
CONFIG_FILE = f"{META_DIR}/config.toml"
POLICY_FILES = (USERS_FILE, rules.RULES_FILE, signing.ALLOWED_SIGNERS, CONFIG_FILE)
POLICY_SECTIONS = ("security", "notify", "targets")   # of config.toml; the rest is anyone's to tune


def _policy_sections(root, rev: str | None) -> dict:
    text = _git.show(root, rev, CONFIG_FILE) if rev else None
    try:
        data = tomllib.loads(text.decode()) if text else {}
    except (ValueError, UnicodeDecodeError):
        return {"unreadable": True}   # a broken config differs from any readable one
    return {section: data[section] for section in POLICY_SECTIONS if data.get(section) is not None}


def _drop_harmless_config(root, sha: str, parents: list[str], files: list[str]) -> list[str]:
    """`files` without config.toml when no policy section of it changed."""
    if CONFIG_FILE in files:
        mine = _policy_sections(root, sha)
        if any(mine == _policy_sections(root, p) for p in (parents or [None])):
            files = [f for f in files if f != CONFIG_FILE]
    return files


def _actors(root, parent: str | None, sha: str, author: str) -> set[str]:
    """Users of the audit entries `sha` added, else its git author."""
    lines = _git_history.added_lines(root, parent or _git.EMPTY_TREE, sha, str(audit.AUDIT_FILE))
    from ..security.signed_checks import entry_users
    return entry_users(lines) or {author}


def _changed_policy_files(root, sha: str, parents: list[str]) -> list[str]:
    ids = _git_history.object_ids(root, [f"{rev}:{path}" for rev in (sha, *parents) for path in POLICY_FILES])
    return [path for path in POLICY_FILES
            if all(ids[f"{sha}:{path}"] != ids[f"{p}:{path}"] for p in parents)]


def _non_admins(root, sha: str, parents: list[str], author: str, signed: dict | None = None) -> list[tuple[str, str]]:
    """(actor, role) of each actor of `sha` who was not an admin at its first parent; `signed`:
    sha -> the principal of its signature, which is then the one actor."""
    parent = parents[0] if parents else None
    before = identity.users_at(root, parent) if parent else None
    table = before if before is not None else (identity.users_at(root, sha) or {})   # bootstrap: its own file
    actors = {signed[sha]} if signed and sha in signed else _actors(root, parent, sha, author)
    roles = [(actor, identity.role_of(root, actor, table)) for actor in sorted(actors)]
    return [(actor, role) for actor, role in roles if not identity.allows(role, "admin")]


def deploy_command_refusal(root) -> str | None:
    """Why a deploy command from rules.toml must not run (None: it may): the rules in force must
    be committed, by an admin under the roles before that commit."""
    if _git.status(root, [rules.RULES_FILE], untracked="all"):
        return f"{rules.RULES_FILE} has changes that are not committed"
    sha = _git.last_commit_touching(root, rules.RULES_FILE)
    if sha is None:
        return f"{rules.RULES_FILE} is not committed"
    author, parents = _git.log(root, n=1, rev=sha)[0].email, _git.parents(root, sha)
    parent = parents[0] if parents else None
    if parent and signing.required_in(_git.show(root, parent, CONFIG_FILE)):   # signed then: its signature says who
        from ..security.signed_checks import signer_of
        signer = signer_of(root, sha, parent)
        if signer is None:
            return f"{rules.RULES_FILE} was last changed in commit {sha[:8]}, which no listed key signed"
        refused = _non_admins(root, sha, parents, author, {sha: signer})
    else:
        refused = _non_admins(root, sha, parents, author)
    if refused:
        actor, role = refused[0]
        return f"{rules.RULES_FILE} was last changed in commit {sha[:8]} by {actor} ({role}), not by an admin"
    return None


def check(root: Path, problems: list, signed: dict | None = None) -> int:
    """Append a problem for each policy edit by a non-admin; returns how many edits were checked.
    `signed`: sha -> the principal of its good signature (signed mode)."""
    edits = [(sha, parents, email, None) for sha, parents, email in _git_history.commits_touching(root, POLICY_FILES)]
    for sha, parents, email in _git_history.commits_touching(root, POLICY_FILES, merges=True):
        files = _changed_policy_files(root, sha, parents)
        if files:   # a merge that wrote policy content none of its parents had
            edits.append((sha, parents, email, files))
    counted = 0
    for sha, parents, author, files in edits:
        files = files or [p for p in POLICY_FILES if p in {f for _, f in _git.diff_name_status(
            root, parents[0] if parents else _git.EMPTY_TREE, sha)}]
        files = _drop_harmless_config(root, sha, parents, files)
        if not files:
            continue
        counted += 1
        for actor, role in _non_admins(root, sha, parents, author, signed):
            problems.append({"line": None, "check": "roles",
                             "message": f"commit {sha[:8]} by {actor} ({role}) changed {', '.join(files)}; "
                                        "roles, keys, rules and security settings may only be changed by an admin"})
    return counted
