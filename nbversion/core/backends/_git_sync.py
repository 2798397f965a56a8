"""Exchanging history: git remotes, push, fetch, clone, bundles and merges.

The git half of `_git`, split off to keep each module short. It runs git through `_git`'s
runner (errors become NbversionError with git's message).
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Optional

from ...errors import NbversionError
from ._git import _run   # the adapter's one runner; callers outside backends use these functions

logger = logging.getLogger(__name__)


def remotes(root) -> dict:
    """git remote name -> fetch URL."""
    found = {}
    for line in _run(root, "remote", "-v").splitlines():
        parts = line.split()
        if len(parts) >= 3 and parts[2] == "(fetch)":
            found[parts[0]] = parts[1]
    return found


def set_remote(root, name: str, url: str) -> None:
    """Point remote `name` at `url`, adding it when it does not exist."""
    if name in remotes(root):
        _run(root, "remote", "set-url", name, url)
    else:
        _run(root, "remote", "add", name, url)


def remove_remote(root, name: str) -> None:
    _run(root, "remote", "remove", name)


def rename_remote(root, old: str, new: str) -> None:
    _run(root, "remote", "rename", old, new)


def init_bare(path: Path) -> None:
    """A bare repository at `path` (the history half of a folder remote)."""
    _run(Path(path).parent, "init", "-q", "--bare", str(path))


def clone(url: str, target: Path, ssh_command: Optional[str] = None) -> None:
    """`git clone url target`; `ssh_command` is git's `core.sshCommand` for the clone itself."""
    config = ["-c", f"core.sshCommand={ssh_command}"] if ssh_command else []
    _run(Path(target).parent, *config, "clone", "-q", str(url), str(target))


def push_all(root, remote: str) -> None:
    """Every branch and every tag (git refuses --all together with --tags: two pushes)."""
    _run(root, "push", "-q", "--all", remote)
    _run(root, "push", "-q", "--tags", remote)


def push_branch(root, remote: str, branch: Optional[str]) -> None:
    """The checked-out `branch` (tracking it upstream) and every tag in one connection; tags only
    on a detached HEAD (`branch` None)."""
    refspec = ["-u", remote, f"HEAD:refs/heads/{branch}"] if branch else [remote]
    _run(root, "push", "-q", "--tags", *refspec)


def fetch_tags(root, remote: str) -> None:
    """Branches (as remote-tracking refs) and every tag of `remote`."""
    _run(root, "fetch", "-q", "--tags", remote)


def remote_branch_exists(root, remote: str, branch: str) -> bool:
    return bool(_run(root, "branch", "-r", "--list", f"{remote}/{branch}").strip())


def remote_branches(root, remote: str) -> list[str]:
    """Branch names `remote` has, as this repository last fetched them (HEAD included)."""
    out = _run(root, "for-each-ref", "--format=%(refname:strip=3)", f"refs/remotes/{remote}")
    return [line for line in out.splitlines() if line]


def merge_base(root, a: str, b: str) -> str:
    return _run(root, "merge-base", a, b).strip()


def ahead_behind(root, base: str, branch: str) -> tuple[int, int]:
    """(commits only on `base`, commits only on `branch`)."""
    left, right = _run(root, "rev-list", "--left-right", "--count", f"{base}...{branch}").split()
    logger.debug("%s has %s commit(s) not on %s, which has %s not on it", base, left, branch, right)
    return int(left), int(right)


def merge(root, rev: str, ff_only: bool = False, no_commit: bool = False) -> None:
    """Merge `rev` into HEAD: fast-forward only, or a merge commit left uncommitted (`no_commit`)
    for rules to resolve. Raises NbversionError when git stops (diverged, conflicts)."""
    mode = ["--ff-only"] if ff_only else ["--no-ff", "--no-commit"] if no_commit else []
    _run(root, "merge", "-q", *mode, rev)


def merge_abort(root) -> None:
    _run(root, "merge", "--abort")


def merge_in_progress(root) -> bool:
    """Whether a merge was started and not finished (git keeps MERGE_HEAD until then)."""
    try:
        _run(root, "rev-parse", "-q", "--verify", "MERGE_HEAD")
    except NbversionError:
        return False
    return True


def conflicted_paths(root) -> set[str]:
    """Paths an unfinished merge left in conflict."""
    return {p for p in _run(root, "diff", "--name-only", "--diff-filter=U").splitlines() if p}


def bundle_create(root, path: Path) -> list[str]:
    """Write every ref into one bundle file; returns the refs it holds."""
    _run(root, "bundle", "create", "-q", str(path), "--all")
    out = _run(root, "bundle", "list-heads", str(path))
    return [line.split()[1] for line in out.splitlines() if len(line.split()) == 2]


def remote_tag_ids(root, remote: str) -> dict[str, tuple[str, str]]:
    """tag name -> (tag object id, commit it points at) on `remote`, asked over the wire
    (`git ls-remote --tags`): cheap, and nothing is fetched."""
    found: dict[str, list] = {}
    for line in _run(root, "ls-remote", "--tags", remote).splitlines():
        sha, _, ref = line.partition("\t")
        name = ref.removeprefix("refs/tags/")
        peeled = name.endswith("^{}")
        entry = found.setdefault(name.removesuffix("^{}"), [None, None])
        entry[1 if peeled else 0] = sha
    return {name: (obj, commit or obj) for name, (obj, commit) in found.items()}


def fetch_tags_aside(root, remote: str, namespace: str) -> None:
    """Every tag of `remote` into `namespace/*` (stale ones pruned), local tags untouched: a
    remote tag that has the same name as a local one on other content can then be read."""
    _run(root, "fetch", "-q", "--no-tags", "--prune", remote, f"+refs/tags/*:{namespace.rstrip('/')}/*")


def reachable_from_remote(root, remote: str, commit: str) -> bool:
    """Whether `commit` is on a branch of `remote` as last fetched (then it was pushed)."""
    return bool(_run(root, "for-each-ref", "--contains", commit, "--format=%(refname)", f"refs/remotes/{remote}").strip())


def drop_refs(root, namespace: str) -> None:
    """Delete every ref under `namespace` in one `update-ref` (tags fetched aside, once read:
    left there, `git log --all` would count the remote's unmerged commits as ours)."""
    import tempfile

    refs = _run(root, "for-each-ref", "--format=%(refname)", namespace.rstrip("/")).splitlines()
    if not refs:
        return
    with tempfile.TemporaryFile("w+") as commands:
        commands.write("".join(f"delete {ref}\n" for ref in refs))
        commands.seek(0)
        _run(root, "update-ref", "--stdin", istream=commands)
