"""Training verbs: `train`, `runs list|show|compare|stop|resume|cancel|worker`, `predict`, `export`."""
from __future__ import annotations

from . import Verb, add_json_flag, batch_size, count, fraction, positive, typed_value


def _key_values(pairs) -> dict:
    """Ultralytics `key=value` pass-through; values typed like Ultralytics' own CLI does."""
    from ..errors import UsageError

    values = {}
    for pair in pairs or []:
        key, sep, raw = pair.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"{pair!r}: extra training arguments are key=value",
                             hint="e.g. `lr0=0.003 mosaic=0 optimizer=AdamW`")
        values[key.strip()] = typed_value(raw.strip())
    return values


def _train_args(p):
    p.add_argument("--data", required=True, metavar="NAME[@REV]", help="a dataset (version) of this workspace")
    p.add_argument("--model", default="yolov8n.yaml",
                   help="yolov8n.yaml (from scratch) | yolov8n.pt (pretrained, downloaded once) | FILE.pt | "
                        "NAME@champion | NAME@vX.Y.Z | NAME@latest (registry, else a `model add`-ed model)")
    p.add_argument("--preset", default=None, metavar="NAME",
                   help="hyperparameters of `presets list` (fast, balanced, accurate...); flags and key=value override")
    # None: not given, so a preset's value (else 100, 640, 16) applies
    p.add_argument("--epochs", type=positive, default=None, help="default: the preset's, else 100")
    p.add_argument("--imgsz", type=positive, default=None, help="default: the preset's, else 640")
    p.add_argument("--batch", type=batch_size, default=None, help="images per batch; -1: AutoBatch "
                   "(default: the preset's, else 16)")
    p.add_argument("--device", default="auto", help="auto (GPU if there is one) | cpu | 0 | 0,1")
    p.add_argument("--name", default=None, metavar="RUN", help="part of the run id (default: the model)")
    p.add_argument("--wait", action="store_true", help="block until the run ends (always so from the CLI, "
                   "unless the run is queued: then only with --wait)")
    p.add_argument("--no-queue", dest="queue", action="store_false",
                   help="refuse when another run holds the device, instead of queueing this one")
    p.add_argument("--on", default=None, metavar="TARGET", help="train on a target (`target list`), commit here")
    p.add_argument("extra", nargs="*", metavar="key=value", help="more Ultralytics training arguments")


def _in_notebook() -> bool:
    # the magics set the current cell; the CLI does not, and there training always waits
    from ..core.repo.cell import current_cell
    return current_cell.get() is not None


def _run_train(ws, a, ev):
    from ..training import queue_worker

    wait = a.wait or not _in_notebook()
    if a.on:   # a training target: the follower in this process commits the run when it ends
        return _ended_well(ws.train(a.data, a.model, epochs=a.epochs, imgsz=a.imgsz, batch=a.batch, device=a.device,
                                    name=a.name, extra=_key_values(a.extra), wait=wait, on_event=ev,
                                    preset=a.preset, on=a.on), wait)
    # a CLI process that queued a run exits at once: it must not start the run itself and die
    autostart, queue_worker.AUTOSTART = queue_worker.AUTOSTART, bool(a.wait or _in_notebook())
    try:
        run = ws.train(a.data, a.model, epochs=a.epochs, imgsz=a.imgsz, batch=a.batch, device=a.device,
                       name=a.name, extra=_key_values(a.extra), wait=a.wait, on_event=ev,
                       preset=a.preset, queue=a.queue)
    finally:
        queue_worker.AUTOSTART = autostart
    if run.record.get("waiting"):   # queued (and not --wait): the queue starts it, the CLI is done
        return run
    return _ended_well(run.wait() if wait and not a.wait else run, wait)


def _run_resume(ws, a, ev):
    wait = a.wait or not _in_notebook()
    return _ended_well(ws.runs_resume(a.run_id, wait=wait, on_event=ev), wait)


def _ended_well(run, waited: bool):
    """A run we waited for that failed (or whose commit failed) is an error: exit 1, `error:` line,
    and a notebook's "Run All" stops there. A stopped run is what the user asked for: no error."""
    from ..errors import NbversionError
    from ..training import runs

    if not waited:
        return run
    record = run.record
    status = runs.effective_status(record)
    if status == "failed":
        raise NbversionError(f"training failed: {record.get('error') or 'the training process ended unexpectedly'}",
                             hint=f"`nbversion runs show {run.run_id}` has the details; fix the cause and train "
                                  f"again (`nbversion runs resume {run.run_id}` continues from its last checkpoint)")
    if status == "commit failed":
        raise NbversionError(f"run {run.run_id} ended ({record.get('outcome')}) but its commit failed: "
                             f"{record.get('commit_error')}",
                             hint=f"its files are kept in runs/{run.run_id}; `nbversion runs resume {run.run_id}` "
                                  "retries the commit")
    return run


def _run_arg(p):
    add_json_flag(p)
    p.add_argument("run_id", metavar="RUN", help="a run id (see `runs list`)")


def _stop_args(p):
    _run_arg(p)
    p.add_argument("--wait", action="store_true", help="block until the run has stopped")


def _resume_args(p):
    _run_arg(p)
    p.add_argument("--wait", action="store_true", help="block until the run ends (always so from the CLI)")


def _list_args(p):
    p.add_argument("--status", default=None, help="only runs with this status (done, failed, running...)")
    p.add_argument("--dataset", default=None, metavar="NAME", help="only runs trained on this dataset")
    p.add_argument("--model", default=None, metavar="MODEL", help="only runs of this model")
    p.add_argument("-n", "--limit", dest="n", type=count, default=None, metavar="N", help="only the newest N matching runs")
    add_json_flag(p)


def _worker_args(p):
    p.add_argument("--once", action="store_true", help="start what can start now, wait for it, and exit")
    p.add_argument("--idle-exit", type=float, default=None, metavar="SECONDS",
                   help="exit after SECONDS with nothing queued and nothing training here")
    add_json_flag(p)


def _compare_args(p):
    p.add_argument("run_ids", nargs="*", metavar="RUN", help="2 to 10 run ids, from this branch or any exp/... branch")
    p.add_argument("--metric", default=None, metavar="M",
                   help="picks each run's best epoch: mAP50-95 (default), mAP50, precision, recall, box_loss, "
                        "val_box_loss... (the names `runs show` prints)")
    add_json_flag(p)


def _predict_args(p):
    p.add_argument("model", metavar="MODEL_REF", help="a run id, a weights file, NAME@champion or NAME@vX.Y.Z; "
                   "or `history` / `show` / `compare` (a model named so: history@champion)")
    p.add_argument("images", nargs="*", metavar="IMAGE")
    p.add_argument("--conf", type=fraction, default=0.25, help="confidence threshold")
    p.add_argument("--iou", type=fraction, default=0.7, help="IoU threshold of non-maximum suppression")
    p.add_argument("--imgsz", type=positive, default=None, help="inference size (default: the model's)")
    p.add_argument("--save", default=None, metavar="DIR", help="write annotated images to DIR")
    p.add_argument("--record", action="store_true", help="commit this call's record (audited) into history")
    p.add_argument("--no-history", dest="history", action="store_false",
                   help="keep no record of this call (by default one is kept, git-ignored)")
    p.add_argument("-n", dest="n", type=count, default=None, metavar="N", help="history: only the newest N records")
    p.add_argument("--model", dest="only_model", default=None, metavar="REF", help="history: only this model")
    p.epilog = ("predict history [-n N] [--model REF]: the calls recorded, newest first. "
                "predict show ID: one recorded call in full, its images drawn again in a notebook. "
                "predict compare V1 V2 IMAGE... [--conf C]: two model versions on the same images, boxes paired.")


def _run_predict(ws, a, ev):
    """`predict` takes positional arguments, so `history`, `show` and `compare` are words reserved
    as the first one (a registered model named so is reached as history@champion)."""
    from ..errors import UsageError

    if a.model in ("history", "show", "compare") and (a.record or not a.history or a.save):
        raise UsageError(f"--record, --no-history and --save are options of `predict MODEL_REF IMAGE...`, "
                         f"not of `predict {a.model}`", hint="predict MODEL_REF IMAGE... --record")
    if a.model == "history":
        if a.images:
            raise UsageError("predict history takes no images",
                             hint="with a model named history: predict history@champion IMAGE...")
        return ws.predict_history(n=a.n, model=a.only_model)
    if a.n is not None or a.only_model:
        raise UsageError("-n and --model are options of `predict history`", hint="predict history -n 5 --model det")
    if a.model == "show":
        if len(a.images) != 1:
            raise UsageError("predict show takes one record id",
                             hint="predict show ID (`predict history` lists them; a model named show: show@champion)")
        return ws.predict_show(a.images[0])
    if a.model == "compare":
        if len(a.images) < 3:
            raise UsageError("predict compare needs two models and at least one image",
                             hint="predict compare det@v1.0.0 det@v1.1.0 bus.jpg")
        return ws.predict_compare(a.images[0], a.images[1], a.images[2:], conf=a.conf, iou=a.iou, imgsz=a.imgsz,
                                  on_event=ev)
    if not a.images:
        raise UsageError("predict needs at least one image", hint="predict MODEL_REF IMAGE [IMAGE...]")
    return ws.predict(a.model, a.images, conf=a.conf, iou=a.iou, imgsz=a.imgsz, save=a.save, history=a.history,
                      record=a.record, on_event=ev)


def _export_args(p):
    p.add_argument("model", metavar="MODEL_REF",
                   help="a run id, NAME@champion | NAME@vX.Y.Z, a model NAME[@REV], or a .pt file")
    p.add_argument("--format", default="onnx",
                   help="onnx | torchscript | openvino | engine | coreml | saved_model | ... (Ultralytics' names)")
    p.add_argument("--imgsz", type=positive, default=None, help="input size (default: the model's training size)")
    p.add_argument("--half", action="store_true", help="FP16 weights")
    p.add_argument("--dynamic", action="store_true", help="dynamic input size")
    p.add_argument("--register", default=None, metavar="NAME", help="make it a registry version of NAME")
    p.add_argument("--bump", choices=("major", "minor", "patch"), default=None, help="with --register")
    p.add_argument("--version", dest="set_version", default=None, metavar="X.Y.Z", help="with --register")
    p.add_argument("--name", default=None, metavar="NAME",
                   help="the model version's name (default: NAME-FORMAT, NAME the source's model)")
    p.add_argument("--no-check", dest="check", action="store_false",
                   help="skip comparing the export's boxes with the .pt's on training images")


def _run_export(ws, a, ev):
    return ws.export(a.model, format=a.format, imgsz=a.imgsz, half=a.half, dynamic=a.dynamic, register=a.register,
                     bump=a.bump, version=a.set_version, name=a.name, check=a.check, on_event=ev)


VERBS = [
    Verb("train", "train a YOLO model on a dataset version (in the background in a notebook)",
         _train_args, _run_train),
    Verb("runs", "training runs: list, show, compare, stop, resume, cancel, worker", lambda p: None, None, subverbs=[
        Verb("list", "runs with status, dataset and best mAP", _list_args, lambda ws, a, ev: ws.runs_list(status=a.status, dataset=a.dataset, model=a.model, limit=a.n)),
        Verb("show", "params, device, per-epoch metrics and chart, best epoch, files", _run_arg,
             lambda ws, a, ev: ws.runs_show(a.run_id)),
        Verb("compare", "per-epoch curves, differing params, dataset versions and best epochs of 2-10 runs",
             _compare_args, lambda ws, a, ev: ws.runs_compare(a.run_ids, metric=a.metric)),
        Verb("stop", "stop a running training after the current batch (weights kept)", _stop_args,
             lambda ws, a, ev: ws.runs_stop(a.run_id, wait=a.wait)),
        Verb("resume", "continue a stopped or failed run from its last checkpoint", _resume_args,
             _run_resume),
        Verb("cancel", "take a queued run out of the queue (committed as cancelled)", _run_arg,
             lambda ws, a, ev: ws.runs_cancel(a.run_id)),
        Verb("worker", "start queued runs as their devices become free, in the foreground (Ctrl-C ends it)",
             _worker_args, lambda ws, a, ev: ws.runs_worker(once=a.once, idle_exit=a.idle_exit, on_event=ev)),
        Verb("attach", "follow a run training on a target again; commit it once it has ended", _resume_args,
             lambda ws, a, ev: _ended_well(ws.runs_attach(a.run_id, wait=a.wait or not _in_notebook(), on_event=ev),
                                           a.wait or not _in_notebook())),
    ]),
    Verb("predict", "detect objects in images with a model; `predict history`, `predict show ID`, "
                    "`predict compare V1 V2 IMAGE...`",
         _predict_args, _run_predict),
    Verb("export", "export a YOLO model (onnx, torchscript, ...) into a new model or registry version",
         _export_args, _run_export),
]
