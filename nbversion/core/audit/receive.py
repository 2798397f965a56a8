"""`nbversion guard pre-receive`: what a guarded remote checks before it accepts a push.

git runs the hook with one `OLD NEW REF` line per updated ref on stdin and the pushed objects
still in quarantine; a non-zero exit refuses the whole push. For each updated branch the pushed
tip is checked out in one throwaway repository (the bare repo's refs, the push applied) and
`audit verify` runs there: what a CI job would say, before anything is accepted. Registered
versions are immutable, so deleting or moving an existing version or stage tag is refused
outright; deleting a branch is not (the registry lives in tags).
"""
from __future__ import annotations

import logging
import os
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Mapping, Optional

from ...errors import PushRefused, UsageError
from ..backends import _git_receive
from ..backends._git_receive import ZERO
from ..registry import tags
from ..result import Result

logger = logging.getLogger(__name__)

SIGNATURE_CACHE_ENV = "NBVERSION_SIGNATURE_CACHE"      # read by audit verify's signed mode
SIGNATURE_CACHE_FILE = "nbversion-signatures.json"     # kept in the bare repo, next to `hooks/`
# What git sets for a hook. The verification's own git commands must see the scratch repo, not
# the bare one, so these are kept out of their environment (their object folders are read first).
HOOK_GIT_ENV = ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_COMMON_DIR", "GIT_PREFIX", "GIT_NAMESPACE",
                "GIT_OBJECT_DIRECTORY", "GIT_ALTERNATE_OBJECT_DIRECTORIES", "GIT_QUARANTINE_PATH")


@dataclass
class RefUpdate:
    old: str
    new: str
    ref: str

    @property
    def short(self) -> str:
        return self.ref.removeprefix("refs/heads/").removeprefix("refs/tags/")


@dataclass
class ReceiveResult(Result):
    checked: list = field(default_factory=list)     # "main at 1a2b3c4d": the tips verified
    warnings: list = field(default_factory=list)

    def table(self):
        return ["warning"], [[w] for w in self.warnings]

    def summary(self):
        what = ", ".join(self.checked) or "no branch to verify"
        return f"nbversion guard: push accepted ({what})"


def parse_updates(text: str) -> list[RefUpdate]:
    """git's `OLD NEW REF` lines (the hook's stdin)."""
    updates = []
    for number, line in enumerate(text.splitlines(), 1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != 3:
            raise UsageError(f"stdin line {number}: expected `OLD NEW REF`, got {line!r}",
                             hint="`nbversion guard pre-receive` is run by git's pre-receive hook, not by hand")
        updates.append(RefUpdate(*parts))
    return updates


def refused_tag_changes(updates: list[RefUpdate]) -> list[str]:
    """An existing version or stage tag deleted or moved: registered versions are immutable."""
    refused = []
    for update in updates:
        if update.ref.startswith("refs/tags/") and update.old != ZERO and tags.parse(update.short):
            what = "deletes" if update.new == ZERO else "moves"
            refused.append(f"{update.ref}: the push {what} registry tag {update.short}; registered versions "
                           "and stage assignments are immutable (promote or demote instead)")
    return refused


def object_dirs(bare: Path, environ: Mapping[str, str]) -> list[Path]:
    """The bare repo's objects, and the quarantine git keeps the pushed ones in until the hook says yes."""
    found = [bare / "objects"]
    for name in ("GIT_QUARANTINE_PATH", "GIT_OBJECT_DIRECTORY"):
        if environ.get(name):
            found.append(bare / environ[name])      # absolute stays absolute
    for extra in (environ.get("GIT_ALTERNATE_OBJECT_DIRECTORIES") or "").split(os.pathsep):
        if extra:
            found.append(bare / extra)
    unique = []
    for folder in found:
        if folder.resolve() not in unique and folder.is_dir():
            unique.append(folder.resolve())
    return unique


def tips_to_check(updates: list[RefUpdate], after: dict[str, str], default_branch: Optional[str]) -> list[str]:
    """Refs whose checkout is verified: every updated branch; for a push of tags alone, the default
    branch (whose audit log accounts for stage tags), else the only branch, else the first new tag."""
    branches = [u.ref for u in updates if u.ref.startswith("refs/heads/") and u.new != ZERO]
    if branches:
        return branches
    new_tags = [u.ref for u in updates if u.ref.startswith("refs/tags/") and u.new != ZERO]
    if not new_tags:
        return []
    if default_branch in after:
        return [default_branch]
    existing = [ref for ref in after if ref.startswith("refs/heads/")]
    return existing if len(existing) == 1 else new_tags[:1]


@contextmanager
def verification_environment(bare: Path) -> Iterator[None]:
    """os.environ without git's hook variables, with the signature cache of this remote."""
    saved = {name: os.environ.get(name) for name in (*HOOK_GIT_ENV, SIGNATURE_CACHE_ENV)}
    try:
        for name in HOOK_GIT_ENV:
            os.environ.pop(name, None)
        os.environ[SIGNATURE_CACHE_ENV] = str(bare / SIGNATURE_CACHE_FILE)
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _verify_tips(bare: Path, dirs: list[Path], updates: list[RefUpdate]) -> tuple[list, list, list]:
    """(tips checked, problems, warnings): every tip checked out in turn in one scratch repo."""
    from ..workspace import Workspace

    after = _git_receive.ref_values(bare)
    for update in updates:
        if update.new == ZERO:
            after.pop(update.ref, None)
        elif update.ref.startswith(("refs/heads/", "refs/tags/")):
            after[update.ref] = update.new
    tips = tips_to_check(updates, after, _git_receive.head_branch(bare))
    checked, problems, warnings = [], [], []
    if not tips:
        return checked, problems, warnings
    with tempfile.TemporaryDirectory(prefix="nbversion-guard-") as folder:
        scratch = _git_receive.scratch_repo(Path(folder), dirs, after)
        for ref in tips:
            where = f"{ref.removeprefix('refs/heads/').removeprefix('refs/tags/')} at {after[ref][:8]}"
            _git_receive.check_out(scratch, ref)
            result = Workspace(scratch).audit_verify()
            checked.append(where)
            for problem in result.problems:
                line = f"line {problem['line']}: " if problem.get("line") else ""
                problems.append(f"{where}: {problem['check']}: {line}{problem['message']}")
            warnings += [f"{where}: {w['check']}: {w['message']}" for w in result.warnings]
    return checked, problems, warnings


def pre_receive(bare: Path, stdin_text: str, environ: Optional[Mapping[str, str]] = None) -> ReceiveResult:
    """Verify a push to the bare repo `bare`; raise PushRefused naming each commit and rule broken.

    Args:
        bare: the bare repository being pushed to (git runs the hook in it).
        stdin_text: git's `OLD NEW REF` lines.
        environ: the hook's environment (default: os.environ), for git's quarantine folders.

    Returns:
        ReceiveResult: the tips verified and the warnings of `audit verify`.
    """
    environ = dict(os.environ if environ is None else environ)
    bare = Path(bare).resolve()
    updates = parse_updates(stdin_text)
    problems = refused_tag_changes(updates)
    dirs = object_dirs(bare, environ)
    logger.debug("pre-receive in %s: %d update(s), objects in %s", bare, len(updates), dirs)
    with verification_environment(bare):
        checked, found, warnings = _verify_tips(bare, dirs, updates)
    problems += found
    if problems:
        raise PushRefused("push refused by the nbversion guard:\n" + "\n".join(f"  {p}" for p in problems),
                          hint="nothing was accepted; fix the commits named (`nbversion audit verify` shows the "
                               "same locally), then push again")
    return ReceiveResult(checked, warnings)
