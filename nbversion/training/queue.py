"""The training queue: runs waiting for a busy device, one file each, started FIFO per device.

`train` on a device another run holds writes the run as usual (run folder, run.json with
status "queued") plus an entry `.nbversion/tmp/queue/<run_id>.json` (git-ignored, like all of
tmp/) holding what another process needs to start it: weights, Ultralytics arguments, device,
the queuing user. Any nbversion process (the kernel that queued it, the Jupyter server, `nbversion
runs worker`) starts the oldest entry of a free device (queue_worker.py).

Claiming is atomic across processes: the claimer holds the device's flock, then an exclusive
flock on the entry file, re-reads it, records its own pid in run.json and only then deletes the
entry. A claimer killed before that delete leaves the entry claimable again (its flocks die with
it); killed after it, the run says "queued" with a dead pid, which `runs list` shows as failed.
"""
from __future__ import annotations

import fcntl
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from ..core.backends import atomic, faults
from ..core.layout import tmp_dir
from ..errors import NotFound, UsageError
from . import runs

logger = logging.getLogger(__name__)


def queue_dir(root) -> Path:
    return tmp_dir(root) / "queue"


def entry_path(root, run_id: str) -> Path:
    return queue_dir(root) / f"{runs.check_id(run_id)}.json"


def owner_path(root, run_id: str) -> Path:
    """Flocked by the process that queued the run while it serves the queue itself (a kernel):
    other processes leave that run (and the runs behind it) to it, so its widget follows it live."""
    return queue_dir(root) / f"{runs.check_id(run_id)}.owner"


def hold_ownership(root, run_id: str) -> int:
    """Lock `run_id`'s owner file for this process (released by the OS when it dies); the fd."""
    fd = os.open(owner_path(root, run_id), os.O_RDWR | os.O_CREAT, 0o644)
    fcntl.flock(fd, fcntl.LOCK_EX)
    return fd


def owned_elsewhere(root, run_id: str) -> bool:
    """Whether a live process that queued `run_id` will start it itself."""
    try:
        fd = os.open(owner_path(root, run_id), os.O_RDWR)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return False
    except BlockingIOError:
        return True
    finally:
        os.close(fd)


def is_waiting(root, run_id: str) -> bool:
    """Whether `run_id` has an entry in the queue (not yet started by any process)."""
    return entry_path(root, run_id).exists()


def enqueue(root, run_id: str, entry: dict) -> dict:
    """Write the entry that lets any process start `run_id` later; returns it."""
    entry = {"run": run_id, "queued_at": runs.now(), "seq": _next_seq(root), **entry}
    atomic.write_json(entry_path(root, run_id), entry)
    runs.update(root, run_id, waiting=True, queued_by=entry.get("user"))
    logger.debug("queued run %s on device %s", run_id, entry.get("device"))
    return entry


def _next_seq(root) -> int:
    """Ordering by a counter, not the clock: two runs queued within one second stay FIFO."""
    return max((e.get("seq", 0) for e in entries(root)), default=0) + 1


def entries(root, device: Optional[str] = None) -> list[dict]:
    """The waiting entries, oldest first (of one device, if given)."""
    folder = queue_dir(root)
    found = []
    for path in folder.glob("*.json") if folder.is_dir() else []:
        try:
            entry = json.loads(path.read_text())
        except (OSError, ValueError):   # being written or just claimed
            continue
        if device is None or entry.get("device") == device:
            found.append(entry)
    return sorted(found, key=lambda e: (e.get("seq", 0), e.get("queued_at", ""), e.get("run", "")))


@dataclass
class Place:
    position: int            # 1: the next run to start on its device
    behind: Optional[str]    # the run it waits for: the one training, or the entry before it
    device: str


def place(root, run_id: str) -> Optional[Place]:
    """Where `run_id` waits, or None when it is not in the queue."""
    from .device_guard import DeviceGuard

    mine = next((e for e in entries(root) if e.get("run") == run_id), None)
    if mine is None:
        return None
    line = [e["run"] for e in entries(root, mine.get("device"))]
    index = line.index(run_id)
    behind = line[index - 1] if index else DeviceGuard(root, mine.get("device") or "cpu").holder().get("run")
    return Place(index + 1, behind, mine.get("device") or "cpu")


def describe(root, run_id: str) -> str:
    where = place(root, run_id)
    if where is None:
        return f"queued: {run_id}"
    behind = f", behind {where.behind}" if where.behind else \
        ", device free: it starts when a kernel, the Jupyter server or `nbversion runs worker` takes it" \
        if where.position == 1 else ""
    return f"queued: {run_id} (position {where.position}{behind})"


class Claim:
    """An entry locked by this process: `take()` makes the run ours, `release()` gives it back."""

    def __init__(self, root, entry: dict, fd: int):
        self.root, self.entry, self.fd = Path(root), entry, fd
        self.run_id = entry["run"]

    def take(self) -> dict:
        """Record this process as the run's owner, then delete the entry: from now on a death of
        this process shows as a failed run, never as a run started twice."""
        faults.checkpoint("queue-claimed")   # the tests kill a worker here: the entry must stay claimable
        runs.update(self.root, self.run_id, pid=os.getpid(), host=os.uname().nodename, waiting=False,
                    dequeued_at=runs.now())
        entry_path(self.root, self.run_id).unlink(missing_ok=True)
        owner_path(self.root, self.run_id).unlink(missing_ok=True)
        self.release()
        return self.entry

    def release(self) -> None:
        if self.fd is not None:
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = None


def claim(root, run_id: str) -> Optional[Claim]:
    """Lock `run_id`'s entry for this process; None if it is gone, locked by another process, or
    its run is no longer queued (a stale entry, removed here)."""
    path = entry_path(root, run_id)
    try:
        fd = os.open(path, os.O_RDWR)
    except FileNotFoundError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    try:
        if os.stat(path).st_ino != os.fstat(fd).st_ino:   # taken and deleted between our open and flock
            raise FileNotFoundError(path)
        entry = json.loads(path.read_text())
        status = runs.read(root, run_id).get("status")
    except (OSError, ValueError, NotFound):
        os.close(fd)
        return None
    if status != "queued":
        logger.debug("queue entry of run %s is stale (run is %s): removed", run_id, status)
        path.unlink(missing_ok=True)
        os.close(fd)
        return None
    return Claim(root, entry, fd)


def claim_for_cancel(root, run_id: str) -> Claim:
    """The entry of a run to cancel; refused when it is not queued (or is starting right now)."""
    found = claim(root, run_id)
    if found is None:
        status = runs.effective_status(runs.read(root, run_id))
        if status in ("queued", "running"):
            raise UsageError(f"run {run_id} has already started (it is {status})",
                             hint=f"use `nbversion runs stop {run_id}`: it stops after the current batch")
        raise UsageError(f"run {run_id} is not queued (it is {status})", hint="see `nbversion runs list --status queued`")
    return found
