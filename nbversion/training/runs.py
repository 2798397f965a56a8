"""Run records: `runs/<run-id>/run.json` (+ Ultralytics' `results.csv`), read and listed.

run.json is the contract with the registry (`register --from RUN`) and the sidebar:
{"id", "status": queued|running|stopped|failed|done|commit failed|cancelled, "params", "device",
 "ultralytics_version", "model", "base_model" (what it started from: base_weights.py), "epochs": [{"epoch", "box_loss", ..., "mAP50", "mAP50-95", "lr"}],
 "best_epoch", "metrics" (best epoch), "dataset": {"name", "rev", "md5", "commit"}, "cell",
 "started_at", "ended_at", "error", "callback_errors", "weights": {"best", "last"},
 "outcome" + "commit_error" (only with "commit failed": how the training itself ended, and why
 its commit did not happen), "system" (samples [{"t", "cpu", "ram_mb", "disk_free_gb", "gpu_util"...}]:
 system_sampler.py) and "system_cost" (the sampler's own CPU time), "waiting" (true while its
 entry is in the queue, queue.py: no process owns it then) and "queued_by" (the user who queued it)}.
"""
from __future__ import annotations

import json
import logging
import re
import threading
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Optional

from ..core import paging
from ..core.backends import atomic
from ..errors import NotFound, UsageError
from ..core.result import Result
from . import run_index

from typing import TYPE_CHECKING

logger = logging.getLogger(__name__)

if TYPE_CHECKING:   # annotations only: core.workspace imports this module into Workspace
    from ..core.workspace import Workspace

RUNS_DIR = "runs"
STATUSES = ("queued", "running", "stopped", "failed", "done", "commit failed", "cancelled")
LIVE = ("queued", "running")     # its process may still write into the run folder
METRIC_KEYS = ("precision", "recall", "mAP50", "mAP50-95")
# Ultralytics' results.csv columns -> our short names
COLUMN_NAMES = {"train/box_loss": "box_loss", "train/cls_loss": "cls_loss", "train/dfl_loss": "dfl_loss",
                "metrics/precision(B)": "precision", "metrics/recall(B)": "recall",
                "metrics/mAP50(B)": "mAP50", "metrics/mAP50-95(B)": "mAP50-95",
                "val/box_loss": "val_box_loss", "val/cls_loss": "val_cls_loss", "val/dfl_loss": "val_dfl_loss",
                "lr/pg0": "lr"}

STOP_FILE = "STOP"               # written by `runs stop` from another process, polled by the trainer
_write_lock = threading.Lock()   # the training thread and a Stop click may write at once


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


# What `new_run_id` makes: one path component, so no id can reach outside runs/ ("..", "a/b").
RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


def is_run_id(text) -> bool:
    return isinstance(text, str) and RUN_ID.fullmatch(text) is not None


def check_id(run_id) -> str:
    """`run_id` if it is a run id; anything else (a path, "..", empty) is the caller's error."""
    if not is_run_id(run_id):
        raise UsageError(f"{run_id!r} is not a run id: a run id is one name of letters, digits, '-', '_' "
                         f"and '.' (a folder under {RUNS_DIR}/), not a path",
                         hint="see `nbversion runs list` for the run ids")
    return run_id


def run_dir(root, run_id: str) -> Path:
    return Path(root) / RUNS_DIR / check_id(run_id)


def read(root, run_id: str) -> dict:
    path = run_dir(root, run_id) / "run.json"
    if not path.exists():
        raise NotFound(f"no run {run_id!r} (no {RUNS_DIR}/{run_id}/run.json)",
                       hint="see `nbversion runs list`")
    return json.loads(path.read_text())


def write(root, record: dict) -> None:
    with _write_lock:
        atomic.write_json(run_dir(root, record["id"]) / "run.json", record)
        run_index.note_written(root, record["id"])


def update(root, run_id: str, **changes) -> dict:
    with _write_lock:
        record = read(root, run_id)
        record.update(changes)
        atomic.write_json(run_dir(root, run_id) / "run.json", record)
        run_index.note_written(root, run_id)
    return record


def is_alive(record: dict) -> bool:
    """Is the process that trains this run still there? (Unknowable for another host: assume so.)"""
    import os

    if record.get("target"):   # trains on a target, detached there: `runs attach` finds out how it ended
        return True
    if record.get("host") not in (None, os.uname().nodename):
        return True
    try:
        os.kill(int(record.get("pid") or 0), 0)
        return bool(record.get("pid"))
    except (OSError, ValueError):
        return False


def effective_status(record: dict) -> str:
    """A run left "running" by a dead process (kernel restart, kill -9) is failed."""
    status = record.get("status", "unknown")
    if status == "queued" and record.get("waiting"):   # in the queue: no process owns it yet
        return status
    if status in LIVE and not is_alive(record):
        logger.debug("run %s says %s but pid %s on %s is gone: failed", record.get("id"), status, record.get("pid"),
                     record.get("host"))
        return "failed"
    return status


def with_effective_status(record: dict) -> dict:
    """The record as users see it: `status` says failed for a run whose process died."""
    status = effective_status(record)
    if status == record.get("status"):
        return record
    return {**record, "status": status, "recorded_status": record.get("status")}


def live_run_folders(root) -> list[str]:
    """`runs/<id>` of every run whose process is still training (or committing) it: half-written
    files a commit must leave alone; the run commits its own folder when it ends."""
    base = Path(root) / RUNS_DIR
    live = []
    for path in sorted(base.glob("*/run.json")) if base.is_dir() else []:
        try:
            record = json.loads(path.read_text())
        except (OSError, ValueError):   # being rewritten right now: only a live run does that
            live.append(f"{RUNS_DIR}/{path.parent.name}")
            continue
        if effective_status(record) in LIVE:   # queued runs too: their folder is committed when they end
            live.append(f"{RUNS_DIR}/{path.parent.name}")
    return live


def epoch_row(raw: dict) -> dict:
    """One results.csv / callback metrics dict -> our row with short names."""
    row = {}
    for key, value in raw.items():
        name = COLUMN_NAMES.get(key.strip(), key.strip())
        try:
            row[name] = int(value) if name == "epoch" else round(float(value), 6)
        except (TypeError, ValueError):
            continue
    return row


def read_results_csv(path: Path) -> list[dict]:
    """Per-epoch rows of Ultralytics' results.csv; the live view in DDP runs reads this."""
    import csv

    if not path.exists():
        return []
    with open(path, newline="") as fh:
        rows = [epoch_row(row) for row in csv.DictReader(fh)]
    # A run killed after writing an epoch's row but before saving that epoch's checkpoint trains the
    # epoch again when resumed, and Ultralytics appends a second row: the later one is the real one.
    by_epoch = {row.get("epoch", index): row for index, row in enumerate(rows)}
    return sorted(by_epoch.values(), key=lambda row: row.get("epoch", 0))


def best_of(epochs: list[dict]) -> tuple[Optional[int], dict]:
    """Best epoch by Ultralytics' fitness (0.1 mAP50 + 0.9 mAP50-95) and its metrics."""
    scored = [e for e in epochs if "mAP50-95" in e]
    if not scored:
        return None, {}
    best = max(scored, key=lambda e: 0.1 * e.get("mAP50", 0) + 0.9 * e["mAP50-95"])
    return best["epoch"], {k: best[k] for k in METRIC_KEYS if k in best}


def _status_cell(record: dict) -> str:
    position = record.get("queue_position")
    status = effective_status(record)
    if status == "queued" and record.get("target_reason"):   # a target's scheduler says why (Slurm's reason)
        return f"queued ({record['target_reason']})"
    return f"{status} (position {position})" if position and status == "queued" else status


def _model_cell(record: dict) -> Optional[str]:
    """`det@champion (v1.0.0)`: the version a registry ref named when the run started; the stage
    may have moved to another version since."""
    model, version = record.get("model"), (record.get("base_model") or {}).get("version")
    return f"{model} ({version})" if model and version and not model.endswith(f"@{version}") else model


@dataclass
class RunList(Result):
    runs: list = field(default_factory=list)
    page: Optional[paging.Page] = None
    filters: dict = field(default_factory=dict)   # the --status/--dataset/--model asked for

    def table(self):
        rows = [(r["id"], _status_cell(r), (r.get("dataset") or {}).get("name"), _model_cell(r),
                 f"{len(r.get('epochs') or [])}/{(r.get('params') or {}).get('epochs', '?')}",
                 (r.get("metrics") or {}).get("mAP50-95"),
                 f"{r.get('device')} on {r['target']}" if r.get("target") else r.get("device"), r.get("started_at"))
                for r in self.runs]
        return ["run", "status", "dataset", "model", "epochs", "mAP50-95", "device", "started"], rows

    def highlight(self, row) -> bool:
        return row[1] == "running"

    def summary(self) -> str:
        if self.page is not None and self.page.describe(len(self.runs), "runs"):
            return self.page.describe(len(self.runs), "runs")
        if self.runs:
            return f"{len(self.runs)} run(s)"
        if self.filters:   # runs exist, none matches: "no runs yet" would mislead
            return "no run matches " + ", ".join(f"--{k} {v}" for k, v in self.filters.items())
        return "no runs yet: `nbversion train --data NAME --model yolov8n.yaml`"

    def to_dict(self) -> dict:
        return {"runs": [with_effective_status(r) for r in self.runs],
                **(self.page.to_dict() if self.page else {})}


def list_runs(ws: Workspace, status: Optional[str] = None, dataset: Optional[str] = None,
              model: Optional[str] = None, limit: Optional[int] = None, offset: int = 0) -> RunList:
    """Training runs with their status, dataset and best mAP (`nbversion runs list`).

    Args:
        status: only runs with this status (queued, running, stopped, failed, done, commit failed;
            a run whose process died counts as failed).
        dataset: only runs trained on this dataset.
        model: only runs of this model (as given to `train --model`).
        limit: at most this many runs (default: all), the newest ones (in run id order).
        offset: skip this many of the newest matching runs first (the next page).

    Returns:
        RunList: `runs`, the run.json record of each run on the page, and `page` (total, offset,
        limit, next_offset).

    Example:
        >>> ws = nbv.open(".")
        >>> ws.runs_list(status="done", limit=20)
    """
    paging.check(limit, offset)
    if status and status not in STATUSES:
        raise UsageError(f"status {status!r} is not a run status",
                         hint=f"one of: {', '.join(STATUSES)}")
    index = run_index.RunIndex(ws.root).refresh()
    chosen = index.select(status, dataset, model)
    start, stop = paging.bounds(len(chosen), limit, offset, from_end=True)
    records = []
    for run_id in chosen[start:stop]:
        record = index.live.get(run_id) or run_index.read_record(index.base, run_id)
        if record is not None:   # a record being rewritten right now: skip it this time
            records.append(_with_position(ws.root, record))
    asked = {k: v for k, v in (("status", status), ("dataset", dataset), ("model", model)) if v}
    return RunList(records, paging.Page(len(chosen), offset, limit), asked)


def _with_position(root, record: dict) -> dict:
    """A queued run's place in its device's queue, as `queue_position` (1: next to start)."""
    if effective_status(record) != "queued" or not record.get("waiting"):
        return record
    from .queue import place

    where = place(root, record["id"])
    return {**record, "queue_position": where.position} if where else record


@dataclass
class RunShow(Result):
    record: dict
    files: list = field(default_factory=list)
    waits_for: str = ""     # a queued run: its place in the queue

    def table(self):
        keys = ["epoch", "box_loss", "cls_loss", "dfl_loss", "val_box_loss", "precision", "recall",
                "mAP50", "mAP50-95", "lr"]
        return keys, [tuple(e.get(k) for k in keys) for e in self.record.get("epochs") or []]

    def highlight(self, row) -> bool:
        return row[0] == self.record.get("best_epoch")

    def summary(self) -> str:
        from .base_weights import describe

        r = self.record
        where = f" of target {r['target']}" if r.get("target") else ""   # a remote run says where it trains
        lines = [f"run {r['id']}: {effective_status(r)} on {r.get('device')}{where}, model {r.get('model')}, "
                 f"dataset {(r.get('dataset') or {}).get('name')}@{((r.get('dataset') or {}).get('commit') or '')[:8]}",
                 f"base model: {describe(r.get('base_model'))}",
                 f"params: {json.dumps(r.get('params') or {}, sort_keys=True)}",
                 f"best epoch {r.get('best_epoch')}: {json.dumps(r.get('metrics') or {})}"
                 if r.get("best_epoch") is not None else "best epoch: none yet (no epoch finished)",
                 f"files: {', '.join(self.files)}"]
        if self.waits_for:
            lines.insert(1, self.waits_for)
        lines += system_lines(r)
        if r.get("error"):
            lines.append(f"error: {r['error']}")
        if r.get("commit_error"):
            lines.append(f"commit failed: {r['commit_error']}")
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return {**with_effective_status(self.record), "files": self.files,
                **({"waits_for": self.waits_for} if self.waits_for else {})}


def system_lines(record: dict) -> list[str]:
    """`runs show`: min / avg / max of each system metric over the run, and the sampler's own cost."""
    from .system_sampler import FIELDS, field_name, summary

    series = record.get("system") or []
    if not series:
        return []
    lines = [f"system ({len(series)} sample{'' if len(series) == 1 else 's'}, min / avg / max):"]
    for key, stats in summary(series).items():
        if field_name(key) in FIELDS:
            words, unit = FIELDS[field_name(key)]
            which = key.split("_")[0].upper() if key != field_name(key) else ""   # GPU0, GPU1
            words = f"{words} ({which})" if which else words
            lines.append(f"  {words}: {stats['min']:g} / {stats['avg']:g} / {stats['max']:g} {unit}")
    cost = record.get("system_cost") or {}
    if isinstance(cost.get("share"), (int, float)):
        lines.append(f"  sampler's own CPU: {cost.get('cpu_s')} s over {cost.get('wall_s')} s "
                     f"({cost['share'] * 100:.3f} % of one core)"
                     + (f", {cost['setup_s']} s once to start it" if cost.get("setup_s") else ""))
    return lines


def show(ws: Workspace, run_id: str) -> RunShow:
    """One run: parameters, device, per-epoch metrics, best epoch and files (`nbversion runs show`).

    Args:
        run_id: the run id (see `runs_list`).

    Returns:
        RunShow: the run's `record` and its `files`.

    Example:
        >>> ws = nbv.open(".")
        >>> ws.runs_show("yolov8n-20260131-140000").record["status"]
    """
    record = read(ws.root, run_id)
    folder = run_dir(ws.root, run_id)
    files = sorted(p.relative_to(ws.root).as_posix() for p in folder.rglob("*")
                   if p.is_file() and not p.name.startswith("."))
    return RunShow(record, files, waits_for=_waits_for(ws.root, record))


def _waits_for(root, record: dict) -> str:
    from .queue import place

    where = place(root, record["id"]) if effective_status(record) == "queued" else None
    if where is None:
        return ""
    return (f"waits in the queue for device {where.device}: position {where.position}"
            + (f", behind run {where.behind}" if where.behind else "")
            + " (started by the next free nbversion process: a kernel, the Jupyter server or `nbversion runs worker`)")
