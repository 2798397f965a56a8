"""The workspace lock: one mutating operation at a time across kernels, the server and the CLI.

A `flock` on `.nbversion/tmp/lock` is released by the kernel when its process dies, so a
lock left by a killed process is simply taken over, never reported as "locked" forever.
The file also records pid, host and operation so a waiting user learns who holds it.
Re-entrant within a thread, so an operation may call another one.
"""
from __future__ import annotations

import fcntl
import json
import logging
import os
import threading
import time
from contextlib import contextmanager
from pathlib import Path

from ...errors import WorkspaceLocked
from ..layout import tmp_dir

logger = logging.getLogger(__name__)

LOCK_NAME = "lock"
_held = threading.local()


def lock_path(root: Path) -> Path:
    return tmp_dir(root) / LOCK_NAME


def holder(root: Path) -> dict | None:
    """Who holds (or last held) the lock, as recorded in the lock file."""
    try:
        return json.loads(lock_path(root).read_text() or "null")
    except (OSError, ValueError):
        return None


def _depths() -> dict:
    if not hasattr(_held, "depth"):
        _held.depth = {}
    return _held.depth


@contextmanager
def workspace_lock(root: Path, operation: str, timeout: float = 120.0):
    key = str(Path(root).resolve())
    depths = _depths()
    if depths.get(key):
        depths[key] += 1
        try:
            yield
        finally:
            depths[key] -= 1
        return
    path = lock_path(root)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        _acquire(fd, root, timeout)
        left = holder(root)   # a record still there after flock succeeded: its process died holding it
        if left:
            logger.debug("took over the workspace lock left by pid %s (%s), which is gone", left.get("pid"), left.get("operation"))
        logger.debug("workspace lock acquired for %s (pid %d)", operation, os.getpid())
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps({"pid": os.getpid(), "host": os.uname().nodename,
                                  "operation": operation, "since": time.time()}).encode(), 0)
        depths[key] = 1
        try:
            yield
        finally:
            depths[key] = 0
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _acquire(fd: int, root: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    delay = 0.01
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if delay == 0.01:
                logger.debug("the workspace lock is held (%s): waiting up to %s s", holder(root), timeout)
            if time.monotonic() >= deadline:
                who = holder(root) or {}
                raise WorkspaceLocked(
                    f"the workspace is busy: {who.get('operation', 'an operation')} by pid "
                    f"{who.get('pid', '?')} on {who.get('host', '?')}",
                    hint="wait for it to finish; a lock left by a process that died is taken over automatically",
                ) from None
            time.sleep(delay)
            delay = min(delay * 2, 0.2)


def is_locked(root: Path) -> bool:
    path = lock_path(root)
    if not path.exists():
        return False
    fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
