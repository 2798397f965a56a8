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
import re
import os
import time
import logging
from pathlib import Path

from . import atomic, file_prints
from .pointers import Pointer
from ..layout import TMP_DIR

logger = logging.getLogger(__name__)

CACHE_FILE = Path(TMP_DIR) / "statcache.json"


DEFAULT_IGNORED = ("*.cache", ".ipynb_checkpoints/", "__pycache__/")   # what `init` writes


def ignored_names(root: Path) -> tuple[list, list]:
    """(file patterns, folder patterns) of `.dvcignore` that match a bare name anywhere.

    Anchored or negated patterns are not understood here: their files stay in the fingerprint,
    which costs a hash at worst, never a missed change (`exact_ignores` says whether any exist)."""
    files, folders = [], []
    for line in _ignore_lines(root):
        if not line or line.startswith(("#", "!")) or "/" in line.rstrip("/"):
            continue
        (folders if line.endswith("/") else files).append(line.rstrip("/"))
    return files, files + folders


def _ignore_lines(root: Path) -> list:
    try:
        return [raw.strip() for raw in (Path(root) / ".dvcignore").read_text().splitlines()]
    except OSError:
        return list(DEFAULT_IGNORED)


def exact_ignores(root: Path) -> bool:
    """Whether `ignored_names` covers every rule of `.dvcignore` (then a walk lists exactly the
    files DVC tracks, and a folder's changes can be told without DVC)."""
    return all(not line or line.startswith("#") or ("/" not in line.rstrip("/") and not line.startswith("!"))
               for line in _ignore_lines(root))


def walk(target: Path, ignored: tuple) -> dict:
    """`file_prints.walk` of a folder with the bare-name ignore patterns `ignored_names` gave:
    each set of patterns becomes one regular expression (one match a name, not one per pattern)."""
    file_patterns, folder_patterns = ignored

    def matcher(patterns):
        if not patterns:
            return lambda name: False
        return re.compile("|".join(f"(?:{fnmatch.translate(p)})" for p in patterns)).match
    return file_prints.walk(target, matcher(file_patterns), matcher(folder_patterns))


def fingerprint(root: Path, pointer: Pointer, ignored: tuple | None = None, walked: dict | None = None) -> str | None:
    """One digest of the output's files' (path, size, mtime, inode); `walked` gets the folder's
    per-file stats (out -> relpath -> stat), so a caller that needs them walks once."""
    file_patterns, folder_patterns = ignored if ignored is not None else ignored_names(root)
    target = Path(root) / pointer.path
    digest = hashlib.sha1(pointer.md5.encode())
    if target.is_file():
        st = target.stat()
        digest.update(f"{st.st_size}:{st.st_mtime_ns}:{st.st_ino}".encode())
        return _unless_racy(digest.hexdigest(), st.st_mtime_ns)
    if not target.is_dir():
        return None
    stats = walk(target, (file_patterns, folder_patterns))
    if walked is not None:
        walked[pointer.path] = stats
    return fingerprint_of(pointer, stats)


def fingerprint_of(pointer: Pointer, stats: dict) -> str:
    """The fingerprint of a folder output from its walked per-file stats."""
    digest = hashlib.sha1(pointer.md5.encode())
    digest.update("\n".join(f"{rel}:{s}:{m}:{i}" for rel, (s, m, i) in sorted(stats.items())).encode())
    return _unless_racy(digest.hexdigest(), max((st[1] for st in stats.values()), default=0))


def _unless_racy(digest: str, newest_mtime_ns: int) -> str:
    """A file written within `file_prints.RACY_NS` of now (or dated in the future) could change
    again without its stat changing: such a fingerprint gets a one-off suffix, so it never
    matches a recorded one and the output is looked at file by file until the moment passes."""
    if newest_mtime_ns >= time.time_ns() - file_prints.RACY_NS:
        return f"{digest}-racy-{os.urandom(4).hex()}"
    return digest


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


def stale_outputs(root: Path, pointers: dict[str, Pointer], walked: dict | None = None) -> tuple[list[str], dict]:
    """Outputs whose fingerprint differs from the recorded clean one, and the fresh prints;
    `walked`, when given, gets each folder's per-file stats (see `fingerprint`)."""
    recorded = load(root)
    ignored = ignored_names(root)
    fresh = {path: fingerprint(root, p, ignored, walked) for path, p in pointers.items()}
    stale = [path for path, fp in fresh.items() if fp is None or recorded.get(path) != fp]
    return stale, fresh


def mark_clean(root: Path, paths, fresh: dict) -> None:
    data = load(root)
    for path in paths:
        if fresh.get(path):
            data[path] = fresh[path]
    save(root, data)
