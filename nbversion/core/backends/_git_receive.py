"""The git side of a guarded push: the bare repo's refs and a throwaway checkout of pushed tips.

In a `pre-receive` hook the pushed objects are not in the bare repo yet: git keeps them in a
quarantine folder until every hook has said yes. A scratch repository whose `alternates` lists
both folders sees them without copying a byte, so a push is checked as cheaply as one checkout.
Runs git through `_git`'s runner and imports no GitPython itself.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Iterable

from ...errors import NbversionError
from ._git import _run

logger = logging.getLogger(__name__)

ZERO = "0" * 40     # git's "no object": the old value of a created ref, the new one of a deleted ref


def ref_values(repo) -> dict[str, str]:
    """refname -> object id of every branch and tag of `repo` (a bare repo too)."""
    out = _run(repo, "for-each-ref", "--format=%(objectname) %(refname)", "refs/heads", "refs/tags")
    return {ref: sha for sha, ref in (line.split(" ", 1) for line in out.splitlines() if line)}


def head_branch(repo) -> str | None:
    """The branch HEAD names (`refs/heads/main`), whether or not it exists yet."""
    try:
        return _run(repo, "symbolic-ref", "-q", "HEAD").strip() or None
    except NbversionError:   # a detached HEAD in a bare repo: no default branch
        logger.debug("HEAD of %s is not a branch", repo, exc_info=True)
        return None


def scratch_repo(folder: Path, object_dirs: Iterable[Path], refs: dict[str, str]) -> Path:
    """A non-bare repo in `folder` that borrows every object of `object_dirs` and holds `refs`."""
    folder = Path(folder)
    _run(folder, "init", "-q", str(folder))
    info = folder / ".git" / "objects" / "info"
    info.mkdir(parents=True, exist_ok=True)
    (info / "alternates").write_text("".join(f"{Path(d).resolve()}\n" for d in object_dirs))
    # one packed-refs file instead of a loose file per ref: a registry has thousands of tags.
    # No "sorted"/"peeled" header: git then sorts and peels on its own
    (folder / ".git" / "packed-refs").write_text("".join(f"{sha} {ref}\n" for ref, sha in sorted(refs.items())))
    return folder


def check_out(folder: Path, ref: str) -> None:
    """Check `ref` out in the scratch repo: a branch as that branch, anything else detached."""
    if ref.startswith("refs/heads/"):
        _run(folder, "checkout", "-q", "-f", ref[len("refs/heads/"):])
    else:
        _run(folder, "-c", "advice.detachedHead=false", "checkout", "-q", "-f", "--detach", ref)
