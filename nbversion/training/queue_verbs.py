"""`runs cancel` (a queued run leaves the queue, its record is committed as cancelled) and
`runs worker` (start queued runs in the foreground)."""
from __future__ import annotations

import logging
import shutil
import time
from dataclasses import dataclass, field
from typing import Optional

from ..core.repo import identity
from ..core.result import Result
from ..events import Event
from . import queue, runs
from .handle import Run

from typing import TYPE_CHECKING

logger = logging.getLogger(__name__)

if TYPE_CHECKING:   # annotations only: core.workspace imports this module into Workspace
    from ..core.workspace import Workspace
    from ..events import EventCallback


def cancel(ws: Workspace, run_id: str) -> Run:
    """Take a queued run out of the queue; its record is committed as cancelled (`nbversion runs cancel`).

    A run that has started is refused: stop it with `runs_stop`. `runs_stop` of a queued run
    cancels it.

    Args:
        run_id: the run id (see `runs_list(status="queued")`).

    Returns:
        Run: the run, status "cancelled" (it has no weights).

    Example:
        >>> ws = nbv.open(".")
        >>> ws.runs_cancel("20260131-140000-yolov8n")
    """
    from .queue_worker import HANDLES, disown

    runs.check_id(run_id)
    rel = f"{runs.RUNS_DIR}/{run_id}"
    with ws.transaction("runs cancel", role="contributor") as tx:
        claim = queue.claim_for_cancel(ws.root, run_id)
        try:
            record = runs.update(ws.root, run_id, status="cancelled", waiting=False, ended_at=runs.now(),
                                 cancelled_by=tx.user, weights=None)
            queue.entry_path(ws.root, run_id).unlink(missing_ok=True)
            queue.owner_path(ws.root, run_id).unlink(missing_ok=True)
        finally:
            claim.release()
        shutil.rmtree(runs.run_dir(ws.root, run_id) / "data", ignore_errors=True)   # an exported dataset copy
        tx.audit("runs cancel", run_id, {"device": record.get("device"), "queued_by": record.get("queued_by"),
                                         "dataset": record.get("dataset"), "model": record.get("model")})
        tx.commit(f"runs cancel {run_id}: cancelled before it started", [rel])
    disown(run_id)
    run, _ = HANDLES.pop(run_id, (None, None))
    run = run or Run(ws.root, run_id)
    run.emit(Event("train", 0, 0, f"run {run_id} cancelled", {"status": "cancelled"}))
    run.finished.set()
    return run


@dataclass
class WorkerReport(Result):
    started: list = field(default_factory=list)   # [{"run", "status", "device"}]
    waiting: int = 0                              # entries still queued when it ended

    def table(self):
        return ["run", "status", "device"], [(r["run"], r["status"], r["device"]) for r in self.started]

    def summary(self) -> str:
        text = f"started {len(self.started)} queued run(s)" if self.started else \
            "no queued run could start (their devices are busy)" if self.waiting else "nothing is queued"
        return text + (f"; {self.waiting} still queued" if self.waiting else "")

    def to_dict(self) -> dict:
        return {"started": self.started, "waiting": self.waiting}


def worker(ws: Workspace, once: bool = False, idle_exit: Optional[float] = None,
           on_event: Optional[EventCallback] = None) -> WorkerReport:
    """Start queued runs as their devices become free, in this process (`nbversion runs worker`).

    Each run is committed by the user who queued it. Ctrl-C ends the worker cleanly: the runs it
    started stop after the current batch (resumable with `runs_resume`) and are committed.

    Args:
        once: start what can start now, wait for those runs to end, and return.
        idle_exit: return after this many seconds with nothing queued and nothing training here
            (default: run until interrupted).
        on_event: called with the progress `Event`s of the runs it starts.

    Returns:
        WorkerReport: `started`, the runs it started and how they ended, and `waiting`.

    Example:
        >>> ws = nbv.open(".")
        >>> ws.runs_worker(once=True)
    """
    from .queue_worker import POLL_S, start_ready

    identity.require(ws.root, "contributor", "runs worker")
    started: list[Run] = []
    idle_since = time.monotonic()
    try:
        while True:
            fresh = start_ready(ws.root)
            for run in fresh:
                if on_event is not None:
                    run.listeners.append(on_event)
            started += fresh
            if once:
                for run in fresh:
                    run.wait()
                break
            if fresh or any(r.running for r in started) or queue.entries(ws.root):
                idle_since = time.monotonic()
            elif idle_exit is not None and time.monotonic() - idle_since >= idle_exit:
                break
            time.sleep(POLL_S)
    except KeyboardInterrupt:
        logger.debug("runs worker interrupted: stopping the %d run(s) it started", len(started))
        for run in started:
            run.stop()
        for run in started:
            run.wait()
    return WorkerReport([{"run": r.run_id, "status": r.status, "device": r.record.get("device")} for r in started],
                        len(queue.entries(ws.root)))
