"""One training per device: an exclusive `flock` on `.nbversion/tmp/train-<device>.lock`.

The OS releases the lock when the holding process dies, so a killed kernel never leaves a
device "busy"; the file's content says which run holds it (for the refusal and the queue's
"behind RUN").
"""
from __future__ import annotations

import fcntl
import json
import os
from pathlib import Path
from typing import Optional

from ..core.layout import tmp_dir
from ..errors import NbversionError


class DeviceBusy(NbversionError):
    """Another run holds the device (only with `queue=False`; otherwise the run is queued)."""


class DeviceGuard:
    """An exclusive `flock` per device; the lock file says which run holds it."""

    def __init__(self, root: Path, device: str):
        self.device = device
        self.path = tmp_dir(root) / f"train-{device.replace(',', '_')}.lock"
        self.fd: Optional[int] = None

    def try_acquire(self, run_id: str) -> bool:
        """Take the device for `run_id`; False (nothing held) when another run has it."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        os.ftruncate(fd, 0)
        os.write(fd, json.dumps({"run": run_id, "pid": os.getpid(), "host": os.uname().nodename,
                                 "device": self.device}).encode())
        self.fd = fd
        return True

    def acquire(self, run_id: str, queueable: bool = True) -> None:
        """Take the device or refuse, naming the run that holds it (`queueable`: a `train`, which
        the queue would have taken: the hint says so)."""
        if not self.try_acquire(run_id):
            holder = self.holder()
            queue = "queue it instead (train without --no-queue), " if queueable else ""
            raise DeviceBusy(
                f"run {holder.get('run', '?')} is already training on device {holder.get('device', '?')} "
                f"(pid {holder.get('pid', '?')} on {holder.get('host', '?')})",
                hint=f"{queue}wait for it, stop it with `nbversion runs stop {holder.get('run', 'RUN')}`, "
                     "or train on another device with --device")

    def holder(self) -> dict:
        """The run holding the device now ({} when none: the file outlives the lock it names)."""
        if not self.path.exists():
            return {}
        fd = os.open(self.path, os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            fcntl.flock(fd, fcntl.LOCK_UN)
            return {}   # nobody holds it
        except BlockingIOError:
            pass
        finally:
            os.close(fd)
        try:
            return json.loads(self.path.read_text() or "{}")
        except (OSError, ValueError):
            return {}

    def release(self) -> None:
        if self.fd is not None:
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = None

    def hold_for(self, run_id: str) -> None:
        """Say that the device (held) trains `run_id` now."""
        if self.fd is not None:
            os.ftruncate(self.fd, 0)
            os.pwrite(self.fd, json.dumps({"run": run_id, "pid": os.getpid(), "host": os.uname().nodename,
                                           "device": self.device}).encode(), 0)
