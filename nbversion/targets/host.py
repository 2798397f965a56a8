"""What runs on the target host: `nbversion target exec RUN SPEC` in the host's clone of the workspace.

It fetches only the dataset version the run needs, trains with the same observer as a local run
(run.json and results.csv kept current, the STOP file polled), then stores the weights as DVC
objects and pushes them to the team's DVC remote. It never commits or pushes history: the
notebook's workspace makes the commit. `target.json` in the run folder, written last, says the
run has ended and its weights are on the remote.
"""
from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path

from ..core.backends import atomic
from ..training import runs
from . import objects, ray_host

logger = logging.getLogger(__name__)

ENDED_FILE = "target.json"     # {"status", "error", "weights": {relpath: md5}, "pushed": true}


def execute(root, run_id: str, spec: dict) -> dict:
    """Train run `run_id` as `spec` says (written by the notebook side: launch.py); returns target.json."""
    from ..training import _yolo
    from ..training.finish import final_record
    from ..training.inputs import _absolute_yaml, export_version
    from ..training.progress import RunObserver
    from ..training.device_guard import DeviceGuard
    from ..training.finish import resumable_checkpoint
    from ..training.runner import TRAIN_LOG, pick_device

    root = Path(root)
    folder = runs.run_dir(root, run_id)
    remote = spec["remote"]
    resume = bool(spec.get("resume"))
    # an earlier attempt's target.json and STOP were removed before this process started (launch.py):
    # a stop asked for meanwhile is kept
    if not resume:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / ".gitignore").write_text("/data\n")
        runs.write(root, {**spec["record"], "status": "queued", "pid": os.getpid(), "host": os.uname().nodename})
    else:
        runs.update(root, run_id, status="queued", error=None, ended_at=None, pid=os.getpid(),
                    host=os.uname().nodename)
    status, error, guard = "failed", None, None
    report = ray_host.reports(spec)   # a Ray job: no SSH reaches this host, the job's log does
    observer = RunObserver(root, run_id, ray_host.progress_printer(folder) if report else (lambda event: None))
    if report:
        ray_host.stop_on_sigterm(observer)
    try:
        device = spec["args"].get("device") or "cpu"
        if not resume:   # "auto": this host's GPU; a GPU it lacks fails the run with the reason
            device = pick_device(device, lambda event: None)
            spec["args"] = {**spec["args"], "device": device,
                            **({"amp": False, "workers": 0} if device == "cpu" else {})}
            runs.update(root, run_id, device=device)
        guard = DeviceGuard(root, device)   # one training per device on the host too
        guard.acquire(run_id)
        md5 = spec["dataset_md5"]   # exported again on resume: it is removed when a run ends
        objects.fetch(root, remote, {md5})
        data = export_version(root, md5, folder / "data")
        data_yaml = _absolute_yaml(data / "data.yaml", data, folder / "data.yaml")
        if resume:
            checkpoint = resumable_checkpoint(root, run_id)
            launch = lambda cbs: _yolo.train(spec["model"], spec["args"], cbs, resume_from=str(checkpoint),
                                             log_file=folder / TRAIN_LOG)
        else:
            args = {**spec["args"], "data": str(data_yaml), "project": str(folder.parent), "name": run_id,
                    "exist_ok": True}
            launch = lambda cbs: _yolo.train(spec["weights"], args, cbs, log_file=folder / TRAIN_LOG)
        launch(observer.callbacks())
        status = "stopped" if observer.stop_requested.is_set() else "done"
    except KeyboardInterrupt:
        status = "stopped"
    except BaseException as exc:   # a crash, an OOM, data missing on the remote: the run failed
        logger.debug("run %s on this target raised", run_id, exc_info=True)
        error = f"{type(exc).__name__}: {getattr(exc, 'message', None) or exc}".strip()
    finally:
        if guard is not None:
            guard.release()
    final_record(root, run_id, status, error, observer)
    return _hand_back(root, run_id, remote, status, error, report)


def _hand_back(root: Path, run_id: str, remote: str, status: str, error, report: bool = False) -> dict:
    """Weights to the DVC remote as objects, then target.json: the notebook side waits for it."""
    folder = runs.run_dir(root, run_id)
    weights = folder / "weights"
    ended = {"status": status, "error": error, "weights": {}, "pushed": False, "at": runs.now()}
    try:
        if weights.is_dir():
            ended["weights"] = objects.store_files(root, weights)
            objects.push(root, remote, set(ended["weights"].values()))
        if report:   # the run's own files travel as objects too: nothing else comes back from a Ray job
            ended["files"] = ray_host.hand_back_files(root, folder, remote)
        ended["pushed"] = True
    except Exception as exc:
        logger.debug("pushing the weights of run %s failed", run_id, exc_info=True)
        ended["push_error"] = f"{type(exc).__name__}: {getattr(exc, 'message', None) or exc}"
    shutil.rmtree(folder / "data", ignore_errors=True)   # the exported dataset: the cache keeps it
    atomic.write_json(folder / ENDED_FILE, ended)
    if report:
        ray_host.say_end(ended)
    return ended


REQUIRED = ("remote", "dataset_md5", "model", "args")


def run_exec(ws, run_id: str, encoded: str) -> dict:
    """The hidden verb's body: the spec is base64 JSON written by the notebook side (launch.py)."""
    import base64
    import binascii

    from ..errors import UsageError

    runs.check_id(run_id)
    try:
        spec = json.loads(base64.b64decode(encoded, validate=True).decode())
    except (binascii.Error, ValueError):
        spec = None
    needed = REQUIRED if (isinstance(spec, dict) and spec.get("resume")) else (*REQUIRED, "record", "weights")
    if not isinstance(spec, dict) or not all(key in spec for key in needed):
        raise UsageError("target exec: SPEC is not what `train --on` writes",
                         hint="`target exec` is run on a target host by `nbversion train --on TARGET`, not by hand")
    return execute(ws.root, run_id, spec)
