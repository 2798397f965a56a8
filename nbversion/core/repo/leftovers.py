"""Temp folders of `dataset add` (`.nbversion/tmp/import-<name>-<id>/`), `model add`
(`.nbversion/tmp/model-<name>-<id>/`) and `export` (`.nbversion/tmp/export-<name>-<id>/`),
and their clean-up.

An import validates and copies outside the workspace lock, so a `kill -9` can leave a full
copy of a dataset behind (914 MB seen); a killed `model add` leaves a copy of its weights.
Each operation holds an `flock` on `<folder>/.owner` for as long as it runs; the kernel drops
it when the process dies, so a folder whose owner lock can be taken belongs to a dead
operation and is removed by the next import or model add, `gc` and `verify --repair`. A live
operation's folder is never touched, wherever it runs from.
"""
from __future__ import annotations

import fcntl
import json
import logging
import os
import shutil
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from ..backends.files import tree_size
from ..layout import TMP_DIR, tmp_dir

logger = logging.getLogger(__name__)

PREFIX = "import-"
MODEL_PREFIX = "model-"
EXPORT_PREFIX = "export-"
# folder prefix -> the operation that made it, as `verify` and `gc` name it
KINDS = {PREFIX: "dataset add", MODEL_PREFIX: "model add", EXPORT_PREFIX: "export"}
OWNER = ".owner"
# a folder without an owner file is older than this code, or was made a moment ago and is
# about to get one: only the first kind is older than this many seconds
GRACE_SECONDS = 60


@dataclass
class Leftover:
    path: Path
    bytes: int

    @property
    def operation(self) -> str:
        return next(op for prefix, op in KINDS.items() if self.path.name.startswith(prefix))


def import_folder(root, name: str):
    """A fresh import folder, owned (locked) by this process until the block ends, then removed."""
    return owned_folder(root, PREFIX, name)


@contextmanager
def owned_folder(root, prefix: str, name: str):
    """A fresh temp folder `<prefix><name>-<id>`, owned by this process until the block ends, then removed."""
    folder = tmp_dir(root) / f"{prefix}{name}-{os.urandom(4).hex()}"
    folder.mkdir(parents=True)
    fd = os.open(folder / OWNER, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        os.write(fd, json.dumps({"pid": os.getpid(), "host": os.uname().nodename, "name": name,
                                 "since": time.time()}).encode())
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)
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


def find(root) -> list[Leftover]:
    """Temp folders left by imports and model adds that are no longer running."""
    base, now = tmp_dir(root), time.time()
    if not base.is_dir():
        return []
    return [Leftover(p, tree_size(p)) for p in sorted(base.iterdir())
            if p.name.startswith(tuple(KINDS)) and p.is_dir() and _is_dead(p, now)]


def remove(root) -> list[Leftover]:
    """Remove what `find` finds; returns it."""
    found = find(root)
    for leftover in found:
        logger.debug("removing %s, left by a process that died", leftover.path)
        shutil.rmtree(leftover.path, ignore_errors=True)
    return found


def gc_rows(root, dry_run: bool) -> list[dict]:
    """`gc`'s report rows for leftover temp folders (removed unless `dry_run`), one per operation."""
    found = find(root) if dry_run else remove(root)
    rows = []
    for operation, label in (("dataset add", "interrupted dataset imports"),
                             ("model add", "interrupted model adds"), ("export", "interrupted exports")):
        mine = [f for f in found if f.operation == operation]
        if mine:
            rows.append({"version": label, "objects": len(mine),
                         "bytes": sum(f.bytes for f in mine), "where": TMP_DIR})
    return rows


def verify_problems(root) -> list:
    """`verify`'s problems: one per leftover folder (kind "leftover", repaired by removing it)."""
    from ..storage.problem import Problem

    return [Problem("leftover", f.path.relative_to(root).as_posix(), [f"interrupted {f.operation}"],
                    f"{f.bytes / 1e6:.1f} MB left by a {f.operation} that was killed") for f in find(root)]


def repair(root, problems: list) -> set:
    """Remove the leftover folders `problems` names; returns the (kind, what) acted on."""
    wanted = {p.what for p in problems if p.kind == "leftover"}
    for leftover in find(root):
        if leftover.path.relative_to(root).as_posix() in wanted:
            shutil.rmtree(leftover.path, ignore_errors=True)
    return {("leftover", what) for what in wanted}
