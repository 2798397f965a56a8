"""Temp folders of `dataset add` (`.nbversion/tmp/import-<name>-<id>/`) and their clean-up.

An import validates and copies outside the workspace lock, so a `kill -9` can leave a full
copy of a dataset behind (914 MB seen). Each import holds an `flock` on `<folder>/.owner` for
as long as it runs; the kernel drops it when the process dies, so a folder whose owner lock
can be taken belongs to a dead import and is removed by the next import, `gc` and
`verify --repair`. A live import's folder is never touched, wherever it runs from.
"""
from __future__ import annotations

import fcntl
import json
import os
import socket
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from . import zipsafe

PREFIX = "import-"
OWNER = ".owner"
# a folder without an owner file is older than this code, or was made a moment ago and is
# about to get one: only the first kind is older than this many seconds
GRACE_SECONDS = 60


@dataclass
class Leftover:
    path: Path
    bytes: int


def tmp_dir(root) -> Path:
    return Path(root) / ".nbversion" / "tmp"


@contextmanager
def import_folder(root, name: str):
    """A fresh import folder, owned (locked) by this process until the block ends, then removed."""
    folder = tmp_dir(root) / f"{PREFIX}{name}-{uuid.uuid4().hex[:8]}"
    folder.mkdir(parents=True)
    fd = os.open(folder / OWNER, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        os.write(fd, json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "name": name,
                                 "since": time.time()}).encode())
        yield folder
    finally:
        zipsafe.remove_tree(folder)
        os.close(fd)


def _is_dead(folder: Path, now: float) -> bool:
    try:
        fd = os.open(folder / OWNER, os.O_RDWR)
    except FileNotFoundError:
        try:
            return now - folder.stat().st_mtime > GRACE_SECONDS
        except FileNotFoundError:
            return False   # its import just finished and removed it
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False       # a live import holds it
    finally:
        os.close(fd)
    return True


def _size(folder: Path) -> int:
    total = 0
    for dirpath, _dirs, files in os.walk(folder):
        for fname in files:
            try:
                total += os.lstat(os.path.join(dirpath, fname)).st_size
            except OSError:
                pass
    return total


def find(root) -> list[Leftover]:
    """Import folders left by imports that are no longer running."""
    base, now = tmp_dir(root), time.time()
    if not base.is_dir():
        return []
    return [Leftover(p, _size(p)) for p in sorted(base.iterdir())
            if p.name.startswith(PREFIX) and p.is_dir() and _is_dead(p, now)]


def remove(root) -> list[Leftover]:
    """Remove what `find` finds; returns it."""
    found = find(root)
    for leftover in found:
        zipsafe.remove_tree(leftover.path)
    return found


def gc_rows(root, dry_run: bool) -> list[dict]:
    """`gc`'s report rows for leftover import folders (removed unless `dry_run`)."""
    found = find(root) if dry_run else remove(root)
    if not found:
        return []
    return [{"version": "interrupted dataset imports", "objects": len(found),
             "bytes": sum(f.bytes for f in found), "where": ".nbversion/tmp"}]


def verify_problems(root) -> list:
    """`verify`'s problems: one per leftover folder (kind "leftover", repaired by removing it)."""
    from .verify import Problem

    return [Problem("leftover", f.path.relative_to(root).as_posix(), ["interrupted dataset add"],
                    f"{f.bytes / 1e6:.1f} MB left by an import that was killed") for f in find(root)]


def repair(root, problems: list) -> set:
    """Remove the leftover folders `problems` names; returns the (kind, what) acted on."""
    wanted = {p.what for p in problems if p.kind == "leftover"}
    for leftover in find(root):
        if leftover.path.relative_to(root).as_posix() in wanted:
            zipsafe.remove_tree(leftover.path)
    return {("leftover", what) for what in wanted}
