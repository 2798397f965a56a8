"""Starting queued runs: whichever nbversion process is alive starts the oldest entry of a free device.

Three kinds of process serve the queue of a workspace:
- a kernel (or any Python process) that queued a run: a daemon thread here, started by
  `submit`, that ends when the queue is empty; its run handle gets the training thread, so the
  widget and `wait()` follow the run live;
- the Jupyter server extension: one thread for the workspace it serves, for as long as it runs;
- `nbversion runs worker`, in the foreground (queue_verbs.py).

The identity that queued a run is the one that commits it: the entry keeps the user, and the
training runs under `identity.acting_as(user)` (roles, audit line, git author), whoever starts it.
"""
from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from pathlib import Path
from typing import Optional

from ..core.repo import identity
from ..core.security import signing
from ..events import Event
from . import queue, runs
from .device_guard import DeviceGuard
from .handle import Run

logger = logging.getLogger(__name__)

POLL_S = 1.0                  # how often a worker looks at the queue: a directory listing
AUTOSTART = True              # the CLI turns it off when it exits right after queueing
HANDLES: dict[str, tuple[Run, Optional[dict]]] = {}   # run id -> (its handle, raw callbacks), queued here
OWNED: dict[str, int] = {}    # run id -> fd of its owner lock (queue.owner_path), queued and served here
_THREADS: dict[str, threading.Thread] = {}
_THREADS_LOCK = threading.Lock()


def submit(ws, run_id: str, entry: dict, wait: bool, on_event, callbacks) -> Run:
    """Put a written run (run.json says queued) in the queue; returns its handle."""
    run = Run(ws.root, run_id)
    if on_event is not None:
        run.listeners.append(on_event)
    HANDLES[run_id] = (run, callbacks)
    serve_here = AUTOSTART or wait
    if serve_here:   # before the entry exists: no other process may start it in between
        queue.queue_dir(ws.root).mkdir(parents=True, exist_ok=True)
        OWNED[run_id] = queue.hold_ownership(ws.root, run_id)
    queue.enqueue(ws.root, run_id, entry)
    where = queue.place(ws.root, run_id)
    run.emit(Event("train", 0, 0, queue.describe(ws.root, run_id),
                   {"status": "queued", "position": where.position if where else None}))
    if serve_here:
        serve_in_background(ws.root)
    if wait:
        run.wait()
    return run


def serve_in_background(root, forever: bool = False) -> None:
    """A daemon thread that starts this workspace's queued runs (one per workspace and process).
    Not `forever`: it ends once the queue is empty (a new entry starts it again)."""
    key = str(Path(root).resolve())
    with _THREADS_LOCK:
        if key in _THREADS and _THREADS[key].is_alive():
            return
        thread = threading.Thread(target=_serve, args=(Path(key), forever), daemon=True,
                                  name=f"nbversion-queue-{Path(key).name}")
        _THREADS[key] = thread
        thread.start()


def _serve(root: Path, forever: bool) -> None:
    key = str(root)
    while root.is_dir():   # a workspace deleted meanwhile (a test's) ends its worker
        try:
            start_ready(root)
        except Exception:   # a broken entry must not end the worker of every other one
            logger.debug("queue worker of %s: starting queued runs failed", root, exc_info=True)
        with _THREADS_LOCK:   # `serve_in_background` sees this thread alive, or none
            if not forever and not queue.entries(root):
                _THREADS.pop(key, None)
                return
        time.sleep(POLL_S)
    with _THREADS_LOCK:
        _THREADS.pop(key, None)


def start_ready(root) -> list[Run]:
    """Start the oldest entry of every free device, in this process; returns the runs started."""
    started = []
    for device in dict.fromkeys(e.get("device") or "cpu" for e in queue.entries(root)):
        line = queue.entries(root, device)
        if line and line[0]["run"] not in OWNED and queue.owned_elsewhere(root, line[0]["run"]):
            continue   # the live process that queued it starts it (first come, first served)
        guard = DeviceGuard(root, device)
        if not line or not guard.try_acquire(line[0]["run"]):
            continue
        claim = next(filter(None, (queue.claim(root, e["run"]) for e in line)), None)
        if claim is None:   # cancelled or claimed meanwhile
            guard.release()
            continue
        guard.hold_for(claim.run_id)
        started.append(_start_claimed(root, claim, guard))
    return started


def disown(run_id: str) -> None:
    fd = OWNED.pop(run_id, None)
    if fd is not None:
        os.close(fd)


def _start_claimed(root, claim: queue.Claim, guard: DeviceGuard) -> Run:
    from ..core.workspace import Workspace
    from . import _yolo
    from .runner import TRAIN_LOG, _start

    entry = claim.take()
    run_id = claim.run_id
    disown(run_id)
    run, callbacks = HANDLES.pop(run_id, (None, None))
    folder = runs.run_dir(root, run_id)
    weights, args = entry["weights"], entry["args"]
    logger.debug("queue: starting run %s on device %s for %s", run_id, entry.get("device"), entry.get("user"))
    queued_by = entry.get("user") or identity.current_user(root)
    # in signed mode the identity is the signing key of the process that commits: nothing to act as
    acting = identity.acting_as(queued_by, "the user who queued the run") \
        if queued_by != identity.current_user(root) and not signing.required(root) else contextlib.nullcontext()
    try:
        from .inputs import pin_for_start

        record = runs.read(root, run_id)
        pin_for_start(root, folder, record.get("dataset") or {})   # the version it was queued with
        runs.update(root, run_id, queued_at=record.get("started_at"), started_at=runs.now())
        with acting:   # the training thread inherits it: its commit and audit line are the queuer's
            run = _start(Workspace(root), run_id, guard,
                         lambda cbs: _yolo.train(weights, args, cbs, log_file=folder / TRAIN_LOG),
                         False, None, callbacks, ddp_epochs=entry.get("ddp_epochs") or 0, run=run)
    except BaseException as exc:   # it never trained: say so rather than leave it "queued" forever
        guard.release()
        runs.update(root, run_id, status="failed", error=f"{type(exc).__name__}: {exc}", ended_at=runs.now())
        raise
    run.emit(Event("train", 0, 0, f"run {run_id} started", {"status": "running"}))
    return run
