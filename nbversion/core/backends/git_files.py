"""Where git keeps the files whose state a cache may key on: the index, the refs.

No git process and no git library: a cache check must cost a few `stat` calls. A linked
worktree's `.git` is a file naming its own git folder; refs live in the common folder.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Optional


def git_dir(root) -> Path:
    """This worktree's git folder (holds `index` and `HEAD`)."""
    dot_git = Path(root) / ".git"
    if dot_git.is_file():
        pointed = dot_git.read_text().strip().partition("gitdir:")[2].strip()
        return (Path(root) / pointed).resolve()
    return dot_git


def common_dir(root) -> Path:
    """The folder shared by every worktree of the repository (holds the refs)."""
    here = git_dir(root)
    try:
        pointed = (here / "commondir").read_text().strip()
    except OSError:
        return here
    return (here / pointed).resolve()


def stamp(path) -> Optional[list]:
    """(mtime_ns, size, inode, links) of `path`, None when it does not exist."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return [st.st_mtime_ns, st.st_size, st.st_ino, st.st_nlink]


def tag_refs_stamp(root) -> list:
    """Changes whenever a tag is created, moved or deleted, in git's files or reftable backend:
    a loose tag is written as `refs/tags/<name>.lock` then renamed (the folder's mtime moves),
    a packed one rewrites `packed-refs`, reftable rewrites `tables.list`."""
    common = common_dir(root)
    return [stamp(common / "packed-refs"), stamp(common / "refs" / "tags"),
            stamp(common / "reftable" / "tables.list")]


def is_recent(stamps: list, seconds: float) -> bool:
    """Did any of `stamps` change within the last `seconds`? A change within the filesystem's
    clock tick can leave the same mtime, so a cache keyed on such a stamp is not trusted."""
    import time

    now = time.time_ns()
    return any(s is not None and now - s[0] < seconds * 1e9 for s in stamps)
