"""The notebook side of a target run: a thread that polls the host and commits the outcome here.

Every few seconds (one SSH connection, kept open by ControlMaster) it copies the host's
`results.csv` into the local run folder and feeds it to the same observer a local run has (epoch
events, metrics, ETA: the DDP path's `ResultsCsvFollower`), forwards a `runs stop` (a STOP file
here) to the host, and notices the end: `target.json` there. Then it copies back run.json's
outcome, results.csv and train.log, fetches the weights' objects from the DVC remote, checks
their md5s, and commits the run through the runner's own `_finish` (DVC add, audit, commit). The
training itself runs detached on the host: a closed notebook leaves it running, and
`runs attach RUN` (or `runs resume RUN`) starts this thread again.
"""
from __future__ import annotations

import contextvars
import json
import logging
import shlex
import threading
from typing import Optional

from ..events import Event
from ..training import runs
from ..training.handle import Run
from . import objects, settings
from .host import ENDED_FILE
from .ssh import Host

logger = logging.getLogger(__name__)

POLL_SECONDS = 2.0
OUTCOME_KEYS = ("status", "error", "ended_at", "callback_errors", "device", "ultralytics_version")


class TargetRun(Run):
    """A run training on a target: Stop leaves the host a STOP file (its trainer polls it)."""

    def __init__(self, root, run_id: str, host: Host, workdir: str):
        super().__init__(root, run_id)
        self.host, self.workdir, self.target = host, workdir, host.target
        self.stop_sent = False

    def remote(self, name: str) -> str:
        return f"{self.workdir}/runs/{self.run_id}/{name}"

    def stop(self) -> "Run":
        stamp = json.dumps({"by": "nbversion", "at": runs.now()})
        folder = shlex.quote(self.remote(""))   # made here when the host has not made it yet
        self.host.run(f"mkdir -p {folder} && printf %s {shlex.quote(stamp)} > {shlex.quote(self.remote(runs.STOP_FILE))}",
                      what="asking the run to stop")
        self.stop_sent = True
        self.note = f"stop requested on target {self.host.target.name}: it ends after the current batch"
        if self.host.url.kind == "slurm":   # a job still queued is cancelled: it has nothing to stop
            from .slurm import cancel_pending
            cancel_pending(self)
        return self


def _handle(ws, run_id: str, record: dict) -> TargetRun:
    target = settings.load(ws.root, record["target"])
    if target.url.kind == "ray":   # followed through the Ray Jobs API (ray_follow.py)
        from .ray_follow import RayRun
        return RayRun(ws.root, run_id, target, record["target_jobs"][-1])
    return TargetRun(ws.root, run_id, Host(target), record["target_host"]["workdir"])


def stop_remote(ws, run_id: str, record: dict) -> Run:
    """`runs stop RUN` of a target run no thread here follows: the STOP file is written on the host."""
    run = _handle(ws, run_id, record).stop()
    run.note += f"; `nbversion runs attach {run_id}` commits it once it has stopped"
    return run


def start(ws, run_id: str, wait: bool, on_event) -> Run:
    """Follow run `run_id` (on its target) in a thread here; a run already followed here is returned."""
    from ..training.progress import ResultsCsvFollower, RunObserver
    from ..training.runner import ACTIVE

    if run_id in ACTIVE:
        run = ACTIVE[run_id]
        if on_event is not None:
            run.listeners.append(on_event)
        return run.wait() if wait else run
    record = runs.read(ws.root, run_id)
    run = _handle(ws, run_id, record)
    target = run.target
    if on_event is not None:
        run.listeners.append(on_event)
    run.observer = RunObserver(ws.root, run_id, run.emit, first_epoch=len(record.get("epochs") or []) + 1)
    total = (record.get("params") or {}).get("epochs") or 0
    follower = ResultsCsvFollower(run.observer, runs.run_dir(ws.root, run_id) / "results.csv", total)
    follower.seen = len(record.get("epochs") or [])
    ACTIVE[run_id] = run
    run.emit(Event("train", follower.seen, total, f"training on target {target.name}", {"status": "running"}))
    context = contextvars.copy_context()   # the cell lineage survives into the thread, as for a local run
    run.thread = threading.Thread(target=context.run, args=(_follow, ws, run, follower),
                                  name=f"nbversion-target-{run_id}", daemon=True)
    run.thread.start()
    if wait:
        run.wait()
    return run


def _follow(ws, run: TargetRun, follower) -> None:
    from ..training.runner import _finish

    status, error = "failed", None
    try:
        if isinstance(run, TargetRun):
            ended = _poll_until_ended(ws, run, follower)
            status, error = _bring_back(ws, run, ended)
        else:   # a RayRun: its job's log and the DVC remote instead of SSH
            status, error = run.bring_back(ws, run.poll_until_ended(follower))
    except Exception as exc:   # the host unreachable for good, weights damaged: the commit is not made
        logger.debug("following run %s failed", run.run_id, exc_info=True)
        error = f"{type(exc).__name__}: {getattr(exc, 'message', None) or exc}"
        status = "commit failed"
    if status == "commit failed":   # keep it resumable by `runs attach` / `runs resume`: nothing committed
        from ..training.runner import ACTIVE
        runs.update(ws.root, run.run_id, status="commit failed", outcome="unknown", commit_error=error)
        ACTIVE.pop(run.run_id, None)
        run.emit(Event("train", 0, 0, f"run {run.run_id} commit failed: {error}",
                       {"status": "commit failed", "error": None, "commit_error": error}))
        run.finished.set()
        return
    run.emit(Event("train", 0, 0, f"training {status} on target; committing the run", {"status": "finishing"}))
    _finish(ws, run, status, error)


def _poll_until_ended(ws, run: TargetRun, follower) -> dict:
    local = runs.run_dir(ws.root, run.run_id)
    failures = 0
    while True:
        try:
            csv, ended = run.host.read_files([run.remote("results.csv"), run.remote(ENDED_FILE)])
            failures = 0
        except Exception:   # a dropped connection: the run goes on there; try again
            failures += 1
            logger.debug("polling run %s failed (%d in a row)", run.run_id, failures, exc_info=True)
            if failures >= 30:
                raise
            run.finished.wait(POLL_SECONDS * 2)
            continue
        if csv:
            (local / "results.csv").write_text(csv)
            follower.poll()
        if ended:
            return json.loads(ended)
        if (local / runs.STOP_FILE).exists() and not run.stop_sent:   # `runs stop` from another process
            run.stop()
        if not _alive(run):
            raise_ended = run.host.read_files([run.remote(ENDED_FILE)])[0]
            if raise_ended:
                return json.loads(raise_ended)
            if getattr(run, "ended_without_word", None):   # the engine said how it ended (Slurm's job state)
                return run.ended_without_word
            return {"status": "failed", "weights": {}, "pushed": True,
                    "error": f"the training process on {run.host.url.login} ended without a word (see "
                             f"{run.workdir}/.nbversion/tmp/target-{run.run_id}.log there)"}
        run.finished.wait(POLL_SECONDS)


def _alive(run: TargetRun) -> bool:
    if run.host.url.kind == "slurm":   # the job's state, not a pid
        from .slurm import alive
        return alive(run)
    pid = runs.read(run.root, run.run_id).get("target_pid")
    if not pid:
        return True
    return run.host.run(f"kill -0 {int(pid)}", check=False).returncode == 0


def _bring_back(ws, run: TargetRun, ended: dict) -> tuple[str, Optional[str]]:
    """The host's outcome into the local run folder; returns (status, error) to commit."""
    local = runs.run_dir(ws.root, run.run_id)
    remote_json, csv, log = run.host.read_files([run.remote("run.json"), run.remote("results.csv"),
                                                 run.remote("train.log")])
    if csv is not None:
        (local / "results.csv").write_text(csv)
    if log is not None:
        (local / "train.log").write_text(log)
    there = json.loads(remote_json) if remote_json else {}
    runs.update(ws.root, run.run_id, **{k: there[k] for k in OUTCOME_KEYS if k in there},
                target_ended=ended.get("at"))
    if not ended.get("pushed"):
        raise RuntimeError(f"the target could not push the weights: {ended.get('push_error')}")
    manifest = ended.get("weights") or {}
    if manifest:
        remote = _data_remote(ws.root)
        objects.fetch(ws.root, remote, set(manifest.values()))
        objects.place_files(ws.root, manifest, local / "weights")
    return ended.get("status") or "failed", ended.get("error")


def _data_remote(root) -> str:
    from .launch import team_remote
    return team_remote(root)[0]


def attach(ws, run_id: str, wait: bool = False, on_event=None) -> Run:
    """Follow again a run training on a target, and commit it when it has ended (`nbversion runs attach`).

    Args:
        run_id: the run id (see `runs_list`).
        wait: block until the run ends and is committed.
        on_event: called with progress `Event`s.

    Returns:
        Run: the live handle.

    Example:
        >>> ws = nbv.open(".")
        >>> ws.runs_attach("20260131-140000-yolov8n", wait=True)
    """
    from ..errors import UsageError

    runs.check_id(run_id)
    record = runs.read(ws.root, run_id)
    status = runs.effective_status(record)
    if not record.get("target"):
        raise UsageError(f"run {run_id} is a run of this machine ({status}), not of a target: nothing to attach to",
                         hint=f"`nbversion runs show {run_id}`")
    if record.get("status") not in (*runs.LIVE, "commit failed"):
        resumable = status in ("stopped", "failed")
        raise UsageError(f"run {run_id} on target {record['target']} is {status} and committed: nothing to attach to",
                         hint=f"`nbversion runs resume {run_id}` continues it there" if resumable
                         else f"`nbversion runs show {run_id}` shows how it ended")
    return start(ws, run_id, wait, on_event)
