"""A stat fingerprint per DVC output, so `status` of unchanged data needs no hashing and no DVC.

Like DVC's own state database, it trusts (path, size, mtime, inode): a fingerprint equal to
the one recorded when the output was last known clean means the output is unchanged.
Files DVC ignores (`.dvcignore`: Ultralytics' `labels/*.cache`, notebook checkpoints) are left
out of the fingerprint: they are never versioned, so writing them changes nothing.
"""
from __future__ import annotations

import fnmatch
import hashlib
import json
import logging
import os
from pathlib import Path

from . import atomic
from .pointers import Pointer
from ..layout import TMP_DIR

logger = logging.getLogger(__name__)

CACHE_FILE = Path(TMP_DIR) / "statcache.json"


DEFAULT_IGNORED = ("*.cache", ".ipynb_checkpoints/", "__pycache__/")   # what `init` writes


def ignored_names(root: Path) -> tuple[list, list]:
    """(file patterns, folder patterns) of `.dvcignore` that match a bare name anywhere.

    Anchored or negated patterns are not understood here: their files stay in the fingerprint,
    which costs a hash at worst, never a missed change."""
    try:
        lines = (Path(root) / ".dvcignore").read_text().splitlines()
    except OSError:
        lines = list(DEFAULT_IGNORED)
    files, folders = [], []
    for line in (raw.strip() for raw in lines):
        if not line or line.startswith(("#", "!")) or "/" in line.rstrip("/"):
            continue
        (folders if line.endswith("/") else files).append(line.rstrip("/"))
    return files, files + folders


def _skipped(name: str, patterns: list) -> bool:
    return any(fnmatch.fnmatchcase(name, pattern) for pattern in patterns)


def fingerprint(root: Path, pointer: Pointer, ignored: tuple | None = None) -> str | None:
    file_patterns, folder_patterns = ignored if ignored is not None else ignored_names(root)
    target = Path(root) / pointer.path
    digest = hashlib.sha1(pointer.md5.encode())
    if target.is_file():
        st = target.stat()
        digest.update(f"{st.st_size}:{st.st_mtime_ns}:{st.st_ino}".encode())
        return digest.hexdigest()
    if not target.is_dir():
        return None
    stack = [str(target)]
    entries = []
    while stack:
        with os.scandir(stack.pop()) as it:
            for entry in it:
                if entry.is_dir(follow_symlinks=False):
                    if not _skipped(entry.name, folder_patterns):
                        stack.append(entry.path)
                elif not _skipped(entry.name, file_patterns):
                    st = entry.stat(follow_symlinks=False)
                    entries.append(f"{entry.path}:{st.st_size}:{st.st_mtime_ns}:{st.st_ino}")
    entries.sort()
    digest.update("\n".join(entries).encode())
    return digest.hexdigest()


def load(root: Path) -> dict:
    try:
        return json.loads((Path(root) / CACHE_FILE).read_text())
    except FileNotFoundError:   # no status run yet
        return {}
    except (OSError, ValueError):   # a cache: unreadable means everything is hashed again
        logger.debug("the stat cache is unreadable; starting afresh", exc_info=True)
        return {}


def save(root: Path, data: dict) -> None:
    try:
        atomic.write_json(Path(root) / CACHE_FILE, data)
    except OSError:  # a cache: losing it only costs speed
        logger.debug("could not save the stat cache", exc_info=True)


def stale_outputs(root: Path, pointers: dict[str, Pointer]) -> tuple[list[str], dict]:
    """Outputs whose fingerprint differs from the recorded clean one, and the fresh prints."""
    recorded = load(root)
    ignored = ignored_names(root)
    fresh = {path: fingerprint(root, p, ignored) for path, p in pointers.items()}
    stale = [path for path, fp in fresh.items() if fp is None or recorded.get(path) != fp]
    return stale, fresh


def mark_clean(root: Path, paths, fresh: dict) -> None:
    data = load(root)
    for path in paths:
        if fresh.get(path):
            data[path] = fresh[path]
    save(root, data)
