"""`train`, `runs stop`, `runs resume`: one background thread per run, one training per device.

The workspace lock is never held while training (other cells and the CLI keep working); it is
taken once at the end to DVC-add the weights, audit and commit the run. A device guard
(device_guard.py) keeps two trainings from fighting over one GPU, across kernels and the CLI; a
run for a busy device waits in the queue (queue.py) until some process starts it (queue_worker.py).
"""
from __future__ import annotations

import contextvars
import json
import logging
import os
import shutil
import threading
from datetime import datetime
from pathlib import Path
from typing import Callable, Optional

from ..core.repo import identity
from ..core.repo.cell import current_cell
from ..errors import UsageError
from ..events import Event, emitter
from ..extras import require
from . import presets, runs
from .device_guard import DeviceGuard
from .handle import Run

from typing import TYPE_CHECKING

logger = logging.getLogger(__name__)

if TYPE_CHECKING:   # annotations only: core.workspace imports this module into Workspace
    from ..core.workspace import Workspace
    from ..events import EventCallback

ACTIVE: dict[str, Run] = {}      # run id -> Run, in this process
# arguments we set ourselves: passing them as key=value would silently fight with ours
OWN_KEYS = {"data", "model", "project", "name", "exist_ok", "resume", "mode"}
RESUMABLE = ("stopped", "failed")
TRAIN_LOG = "train.log"          # Ultralytics' console output of the run, committed with it


def pick_device(device: str, emit) -> str:
    """`auto` -> "0" when CUDA is there, else "cpu" (and says so); others are checked."""
    from . import _yolo

    gpus = _yolo.cuda_devices()
    if device in (None, "", "auto"):
        chosen = "0" if gpus else "cpu"
        logger.debug("--device auto: %d CUDA GPU(s) seen, training on %s", gpus, chosen)
        emit(Event("device", 0, 0, "training on GPU 0" if gpus else "no CUDA GPU found: training on the CPU"))
        return chosen
    if device != "cpu":
        wanted = [d.strip() for d in device.split(",")]
        if not all(d.isdigit() and int(d) < gpus for d in wanted):
            raise UsageError(f"--device {device}: this machine has {gpus} CUDA GPU(s)",
                             hint="use --device cpu, or --device auto to take a GPU when there is one")
    return device


def check_extra(extra: dict) -> dict:
    from . import _yolo

    clashing = sorted(set(extra) & OWN_KEYS)
    if clashing:
        raise UsageError(f"{', '.join(clashing)}: set by nbversion", hint="use --data, --model and --name")
    valid = _yolo.train_keys() - OWN_KEYS
    unknown = sorted(set(extra) - valid)
    if unknown:
        raise UsageError(f"unknown training argument(s): {', '.join(unknown)}",
                         hint="valid keys: " + ", ".join(sorted(valid)))
    _yolo.check_train_args(extra)   # a wrong type or range: refused here, no failed run on record
    return extra


def new_run_id(name: Optional[str], model: str) -> str:
    stem = name or Path(model.split("@")[0]).stem
    safe = "".join(c if c.isalnum() or c in "-_." else "-" for c in stem)[:60] or "run"
    return f"{datetime.now().strftime('%Y%m%d-%H%M%S')}-{safe}"


def train(ws: Workspace, data: str, model: str = "yolov8n.yaml", epochs: Optional[int] = None,
          imgsz: Optional[int] = None, batch: Optional[int] = None, device: str = "auto", name: Optional[str] = None,
          extra: Optional[dict] = None, wait: bool = False, on_event: Optional[EventCallback] = None,
          callbacks: Optional[dict] = None, preset: Optional[str] = None, queue: bool = True,
          on: Optional[str] = None) -> Run:
    """Train a YOLO model on a dataset version, in a background thread (`nbversion train`).

    Args:
        data: NAME[@REV], a dataset (version) of this workspace.
        model: yolov8n.yaml (from scratch), yolov8n.pt (pretrained weights Ultralytics publishes,
            downloaded once into the weights cache), a FILE.pt, a registry ref NAME@champion /
            NAME@vX.Y.Z, or NAME@REV of a `model add`-ed model (NAME@latest, NAME@~1).
        epochs: training epochs (default: the preset's, else 100).
        imgsz: training image size (default: the preset's, else 640).
        batch: images per batch; -1: AutoBatch (default: the preset's, else 16).
        device: "auto" (a GPU if there is one), "cpu", "0" or "0,1".
        name: part of the run id (default: the model).
        extra: more Ultralytics training arguments, e.g. {"lr0": 0.003}.
        wait: block until the run ends.
        on_event: called with progress `Event`s (epochs, metrics).
        callbacks: extra raw Ultralytics callbacks {event: fn(trainer)}; unlike ours, an
            exception in them stops the training (the tests inject failures this way).
        preset: a preset name (see `presets_list`): its values first, then `epochs`, `imgsz`,
            `batch` and `extra` given here override them.
        queue: when another run holds the device, queue this one (status "queued"): it starts
            when the device is free, in this process or any other nbversion process (the
            Jupyter server, `nbversion runs worker`). False: refuse instead.
        on: a target's name (see `target_list`): train there, commit here.

    Returns:
        Run: a live handle (status, metrics, `wait()`, `stop()`); a widget in a notebook.

    Example:
        >>> ws = nbv.open(".")
        >>> run = ws.train("traffic", epochs=10, wait=True)
    """
    from . import _yolo
    from .base_weights import resolve_base

    if on is not None:   # a training target (nbversion/targets): trained there, committed here
        from ..targets.launch import train_on
        return train_on(ws, on, data, model, epochs, imgsz, batch, device, name, extra, wait, on_event, callbacks, preset)
    require("yolo", "train")
    user = identity.require(ws.root, "contributor", "train")
    named, extra, chosen = presets.apply(ws.root, preset, {"epochs": epochs, "imgsz": imgsz, "batch": batch},
                                         dict(extra or {}))
    epochs, imgsz, batch = named["epochs"], named["imgsz"], named["batch"]
    extra = check_extra(extra)
    weights, base_model = resolve_base(ws, model, on_event)   # every check (and a download) before anything is written
    device = pick_device(device, emitter(on_event))
    folder = _new_run_folder(ws.root, name, model)
    guard, waiting = _take_device(ws.root, device, folder.name, queue)
    logger.debug("run %s: device %s, model %s, data %s, extra %s", folder.name, device, model, data, extra)
    try:
        folder.mkdir(parents=True)
        (folder / ".gitignore").write_text("/data\n")   # an exported dataset stays out of git
        data_yaml = _write_initial_record(ws, folder, data, model, base_model, device,
                                          {"epochs": epochs, "imgsz": imgsz, "batch": batch, **extra},
                                          preset=chosen.lineage() if chosen else None)
    except BaseException:
        if guard is not None:
            guard.release()
        shutil.rmtree(folder, ignore_errors=True)
        raise
    args = {"data": str(data_yaml), "epochs": epochs, "imgsz": imgsz, "batch": batch, "device": device,
            "project": str(folder.parent), "name": folder.name, "exist_ok": True,
            **({"amp": False, "workers": 0} if device == "cpu" else {}), **extra}
    ddp_epochs = epochs if "," in device else 0
    if waiting:
        from .queue_worker import submit
        return submit(ws, folder.name, {"weights": weights, "args": args, "device": device, "ddp_epochs": ddp_epochs,
                                        "user": user, "queued_pid": os.getpid(), "host": os.uname().nodename},
                      wait, on_event, callbacks)
    return _start(ws, folder.name, guard, lambda cbs: _yolo.train(weights, args, cbs, log_file=folder / TRAIN_LOG),
                  wait, on_event, callbacks, ddp_epochs=ddp_epochs)


def _take_device(root, device: str, run_id: str, queue: bool) -> tuple[Optional[DeviceGuard], bool]:
    """(the device's guard, held) or (None, True): the run waits in the queue. A free device
    with runs already waiting for it is not taken either: the queue is first come, first served."""
    from .queue import entries

    guard = DeviceGuard(root, device)
    if not queue:
        guard.acquire(run_id)   # refuses, naming the run that holds it
        return guard, False
    if not entries(root, device) and guard.try_acquire(run_id):
        return guard, False
    return None, True


def _new_run_folder(root, name: Optional[str], model: str) -> Path:
    run_id = new_run_id(name, model)
    folder = runs.run_dir(root, run_id)
    for n in range(2, 100):   # two runs started within the same second
        if not folder.exists():
            break
        folder = runs.run_dir(root, f"{run_id}-{n}")
    return folder


def _write_initial_record(ws, folder: Path, data: str, model: str, base_model: dict, device: str,
                          params: dict, preset: Optional[dict] = None) -> Path:
    """Resolve the dataset (exporting an older version), write run.json as queued; returns data.yaml."""
    from . import _yolo
    from .inputs import resolve_data, run_commit

    data_yaml, data_lineage = resolve_data(ws.root, data, folder)
    cell = current_cell.get()
    run_id = folder.name
    runs.write(ws.root, {
        "id": run_id, "status": "queued", "device": device, "preset": preset,
        "params": {"data": data, "model": model, **({"preset": preset["name"]} if preset else {}), **params},
        "ultralytics_version": _yolo.version(), "model": model, "base_model": base_model,
        "epochs": [], "best_epoch": None, "metrics": {}, "dataset": data_lineage,
        "commit": run_commit(ws.root), "cell": cell.to_dict() if cell else None, "started_at": runs.now(),
        "ended_at": None, "error": None, "pid": os.getpid(), "host": os.uname().nodename,
        "weights": {"best": f"runs/{run_id}/weights/best.pt", "last": f"runs/{run_id}/weights/last.pt"}})
    return data_yaml


def _start(ws, run_id: str, guard: DeviceGuard, launch: Callable, wait: bool, on_event, extra_callbacks,
           ddp_epochs: int = 0, run: Optional[Run] = None) -> Run:
    """Train in a new thread of this process; `run`: the handle a queued run was given."""
    from .progress import ResultsCsvFollower, RunObserver
    from .system_sampler import SystemSampler

    run = run or Run(ws.root, run_id)
    if on_event is not None:
        run.listeners.append(on_event)
    run.observer = RunObserver(ws.root, run_id, run.emit)
    ACTIVE[run_id] = run
    context = contextvars.copy_context()   # the cell lineage survives into the thread

    follower = None
    if ddp_epochs:   # multi-GPU: Ultralytics' DDP workers never call our callbacks
        follower = ResultsCsvFollower(run.observer, runs.run_dir(ws.root, run_id) / "results.csv", ddp_epochs)

    record = runs.read(ws.root, run_id)
    sampler = SystemSampler(ws.root, record.get("device") or "cpu", run_id=run_id, prior=record.get("system"))
    run.observer.sampler = sampler   # the observer writes its samples with each epoch record

    def body():
        status, error = "failed", None
        sampler.start()
        if follower is not None:
            runs.update(ws.root, run_id, status="running")
            threading.Thread(target=follower.follow, daemon=True).start()
        try:
            callbacks = run.observer.callbacks()
            launch({**callbacks, **_merge(callbacks, extra_callbacks or {})})
            status = "stopped" if run.observer.stop_requested.is_set() else "done"
        except KeyboardInterrupt:   # a Ctrl-C that reached this thread (seen once in CI): the user's stop
            logger.debug("run %s: KeyboardInterrupt in the training thread, recorded as stopped", run_id, exc_info=True)
            status = "stopped"     # last.pt of the last whole epoch (optimizer kept) is resumed from
        except BaseException as exc:   # a crash, CUDA OOM: the run is failed
            logger.debug("training of run %s raised", run_id, exc_info=True)   # the record keeps one line
            error = f"{type(exc).__name__}: {exc}".strip()
        finally:
            sampler.stop()   # ended, failed or stopped: the sampler thread ends with the training
            if follower is not None:
                follower.done.set()
            guard.release()
            run.emit(Event("train", 0, 0, f"training {status}; committing the run", {"status": "finishing"}))
            _finish(ws, run, status, error)

    run.thread = threading.Thread(target=context.run, args=(body,), name=f"nbversion-train-{run_id}", daemon=True)
    run.thread.start()
    if wait:
        run.wait()
    return run


def _merge(ours: dict, extra: dict) -> dict:
    """The caller's raw callback first, then ours: a stop it asks for takes effect at once."""
    merged = {}
    for event, function in extra.items():
        mine = ours.get(event)

        def both(trainer, mine=mine, function=function):
            function(trainer)
            if mine:
                mine(trainer)
        merged[event] = both
    return merged


def _finish(ws, run: Run, status: str, error: Optional[str]) -> None:
    """Record the outcome, then DVC-add the weights, audit and commit under the workspace lock."""
    from .finish import commit_run, record_commit_failure

    try:
        commit_run(ws, run.run_id, status, error, run.observer)
    except Exception as exc:   # a failed commit must not hide the training's own outcome
        logger.debug("committing run %s failed", run.run_id, exc_info=True)
        record_commit_failure(ws.root, run.run_id, status, error, run.observer, exc)
    finally:
        ACTIVE.pop(run.run_id, None)
        record = runs.read(ws.root, run.run_id)
        outcome = {k: record.get(k) for k in ("status", "error", "commit_error")}
        run.emit(Event("train", len(record.get("epochs") or []), (record.get("params") or {}).get("epochs", 0),
                       f"run {run.run_id} {record['status']}", outcome))
        run.finished.set()


def stop(ws: Workspace, run_id: str, wait: bool = False) -> Run:
    """Ask a running training to stop after the current batch; weights are kept for resume (`nbversion runs stop`).

    Args:
        run_id: the run id (see `runs_list`).
        wait: block until the run has stopped (only for a run training in this process).

    Returns:
        Run: the run's handle.

    Example:
        >>> ws = nbv.open(".")
        >>> ws.runs_stop("yolov8n-20260131-140000")
    """
    runs.check_id(run_id)
    identity.require(ws.root, "contributor", "runs stop")   # a viewer cannot end someone's training
    run = ACTIVE.get(run_id)
    if run is None:
        record = runs.read(ws.root, run_id)
        if record.get("target") and record.get("status") in ("queued", "running"):   # the STOP file goes there
            from ..targets.follow import stop_remote
            return stop_remote(ws, run_id, record)
        if runs.effective_status(record) == "queued" and record.get("waiting"):   # not started: leaves the queue
            from .queue_verbs import cancel
            return cancel(ws, run_id)
        if record.get("status") in ("queued", "running") and runs.is_alive(record):
            return _stop_elsewhere(ws, run_id, record)
        raise UsageError(f"run {run_id} is not running (it is {runs.effective_status(record)})",
                         hint=f"`nbversion runs resume {run_id}` continues a stopped or failed run")
    run.stop()
    run.emit(Event("train", 0, 0, f"stopping {run_id} after the current batch", {"status": "stopping"}))
    if wait:
        run.wait()
    return run


def _stop_elsewhere(ws, run_id: str, record: dict) -> Run:
    """The run trains in another process (a kernel, the CLI): leave it a stop file it polls."""
    (runs.run_dir(ws.root, run_id) / runs.STOP_FILE).write_text(json.dumps({"by": ws.user, "at": runs.now()}))
    run = Run(ws.root, run_id)
    run.note = f"stop requested: process {record.get('pid')} ends it after the current batch"
    return run


def resume(ws: Workspace, run_id: str, wait: bool = False, on_event: Optional[EventCallback] = None,
           callbacks: Optional[dict] = None) -> Run:
    """Continue a stopped or failed run from its last checkpoint, in the same run folder (`nbversion runs resume`).

    Args:
        run_id: the run id (see `runs_list`).
        wait: block until the run ends.
        on_event: called with progress `Event`s.
        callbacks: extra raw Ultralytics callbacks, as for `train`.

    Returns:
        Run: a live handle on the resumed run.

    Example:
        >>> ws = nbv.open(".")
        >>> ws.runs_resume("yolov8n-20260131-140000", wait=True)
    """
    from . import _yolo

    runs.check_id(run_id)
    require("yolo", "runs resume")
    identity.require(ws.root, "contributor", "train")
    record = runs.read(ws.root, run_id)
    if record.get("target"):   # trained on a target: resumed there (nbversion/targets)
        from ..targets.launch import resume_on
        return resume_on(ws, run_id, record, wait, on_event)
    status = runs.effective_status(record)
    if status == "commit failed":
        return _commit_again(ws, run_id, record, on_event)
    if status not in RESUMABLE:
        raise UsageError(f"run {run_id} is {status}; only a stopped or failed run can be resumed",
                         hint="start a new run with `nbversion train`" if status == "done" else
                              f"stop it first: `nbversion runs stop {run_id}`")
    from .finish import resumable_checkpoint

    checkpoint = resumable_checkpoint(ws.root, run_id)
    guard = DeviceGuard(ws.root, record.get("device") or "cpu")
    guard.acquire(run_id, queueable=False)
    (runs.run_dir(ws.root, run_id) / runs.STOP_FILE).unlink(missing_ok=True)
    runs.update(ws.root, run_id, status="queued", error=None, ended_at=None, pid=os.getpid(),
                host=os.uname().nodename, resumed_at=runs.now())
    keep = {"device": record.get("device") or "cpu", **({"workers": 0, "amp": False} if record.get("device") == "cpu" else {})}
    return _start(ws, run_id, guard, lambda cbs: _yolo.train(record["model"], keep, cbs, resume_from=str(checkpoint),
                                                         log_file=runs.run_dir(ws.root, run_id) / TRAIN_LOG),
                  wait, on_event, callbacks)


def _commit_again(ws, run_id: str, record: dict, on_event) -> Run:
    """The training ended but its commit failed (the lock timed out...): retry only the commit."""
    run = Run(ws.root, run_id)
    if on_event is not None:
        run.listeners.append(on_event)
    _finish(ws, run, record.get("outcome") or "failed", record.get("error"))
    return run
