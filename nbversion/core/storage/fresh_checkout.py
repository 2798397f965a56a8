"""The checkout half of `pull` for outputs the working tree does not have at all (a fresh clone, a
dataset new to this clone): their files are written from the cache here, in parallel, without
opening DVC (whose import, repo and index cost more than the copies of a small dataset, and whose
checkout places 10,000 files one by one).

Each such output is built under a temporary name beside it and renamed into place whole, so an
interrupted pull leaves either the whole output or none of it (the next pull then builds it).
Outputs already there, and anything unusual, stay DVC's: `checkout` returns their `.dvc` files.
"""
from __future__ import annotations

import json
import logging
import os
import secrets
import shutil
import threading
import time
from pathlib import Path

from ...errors import NbversionError
from ...events import Event
from ..backends import dvc_cache, object_copy, pointers, statcache
from . import linking

logger = logging.getLogger(__name__)

FILE_MODE = 0o666     # less the umask: what a copy gets from DVC's checkout too


def checkout(root, emit) -> list:
    """Write the outputs that are absent from the working tree; returns the `.dvc` files DVC must
    still check out (outputs present but not known to be as committed, or not plain)."""
    root = Path(root)
    cache, mode = dvc_cache.cache_root(root), linking.workspace_mode(root)
    wanted = {path: p for path, p in pointers.in_worktree(root).items() if p.md5}
    absent = {path: p for path, p in wanted.items() if not os.path.lexists(root / path)}
    present = {path: p for path, p in wanted.items() if path not in absent}
    for_dvc = set(statcache.stale_outputs(root, present)[0]) if present else set()
    for path, pointer in absent.items():
        if not _build(root, cache, pointer, mode, emit):
            for_dvc.add(path)
    logger.debug("checkout: %d output(s) written here, %d left to DVC, %d as committed already",
                 len(absent) - len(for_dvc & set(absent)), len(for_dvc), len(present) - len(for_dvc & set(present)))
    return sorted({wanted[path].dvc_file for path in for_dvc})


def _listing(cache: Path, pointer) -> list | None:
    """[(relpath, md5)] of the output's files, or None when one is not in the cache (DVC says so)."""
    try:
        entries = [(e["relpath"], e["md5"]) for e in json.loads(object_copy.object_path(cache, pointer.md5).read_bytes())] \
            if pointer.is_dir else [("", pointer.md5)]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if any(rel.startswith("/") or ".." in rel.split("/") for rel, _ in entries):
        return None   # a listing that would write outside its folder: DVC's checkout refuses it
    md5s = {m for _, m in entries}
    return entries if object_copy.present(cache, md5s) == md5s else None


def _build(root: Path, cache: Path, pointer, mode: str, emit) -> bool:
    entries = _listing(cache, pointer)
    if entries is None:
        return False
    target = root / pointer.path
    target.parent.mkdir(parents=True, exist_ok=True)
    scratch = target.parent / f".{target.name}.{secrets.token_urlsafe(8)}.nbv-tmp"
    cloner, lock, done, started = object_copy.Cloner(), threading.Lock(), [0], time.monotonic()

    def place(entry):
        rel, md5 = entry
        obj, out = object_copy.object_path(cache, md5), scratch / rel if rel else scratch
        if mode == "hardlink":
            try:
                os.link(obj, out)
            except OSError:   # another filesystem: a copy
                object_copy.clone_or_copy(obj, out, cloner, FILE_MODE)
        else:
            object_copy.clone_or_copy(obj, out, cloner, FILE_MODE)
        with lock:
            done[0] += 1

    def tick():
        emit(Event("checkout", done[0], len(entries), pointer.path))

    try:
        if pointer.is_dir:
            scratch.mkdir()
            for folder in sorted({str(Path(rel).parent) for rel, _ in entries}):
                (scratch / folder).mkdir(parents=True, exist_ok=True)
        object_copy.in_parallel([entries], place, tick=tick)
        os.rename(scratch, target)
    except BaseException as exc:
        if scratch.is_dir():
            shutil.rmtree(scratch, ignore_errors=True)
        else:
            scratch.unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise NbversionError(f"could not write {pointer.path} from the cache: {exc.strerror or exc}",
                                 hint="check the disk has room and the folder is writable, then run `nbversion pull` "
                                      "again") from exc
        raise
    tick()
    logger.debug("checked out %s: %d file(s) in %.2f s (%s)", pointer.path, len(entries), time.monotonic() - started, mode)
    return True
