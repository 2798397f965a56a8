"""`runs compare RUN RUN...`: the per-epoch curves, differing parameters, dataset versions and
best epochs of 2 to 10 runs, from this working tree or from any branch (`exp/...`).

A run trained on an experiment branch is not in the working tree of another branch; its record
is read from the branch tip (`BRANCH:runs/<id>/run.json`), one `git cat-file` for all of them.
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import Optional

from ..core.result import Result
from ..errors import NotFound, UsageError
from . import runs as run_store

from typing import TYPE_CHECKING

logger = logging.getLogger(__name__)

if TYPE_CHECKING:   # annotations only: core.workspace imports this module into Workspace
    from ..core.workspace import Workspace

MIN_RUNS, MAX_RUNS = 2, 10
DEFAULT_METRIC = "mAP50-95"
# the curves a comparison draws, in this order (series keep every column the run records)
CHART_METRICS = ("box_loss", "cls_loss", "dfl_loss", "val_box_loss", "val_cls_loss", "val_dfl_loss",
                 "precision", "recall", "mAP50", "mAP50-95", "lr")
LOWER_IS_BETTER = ("loss",)
WORKING_TREE = "working tree"


def metric_name(name: str) -> str:
    """The name run.json stores: Ultralytics' long names ('metrics/mAP50-95(B)', 'val/box_loss',
    'lr/pg0') are accepted too, as users copy them from Ultralytics' output."""
    from ..core.artifacts.frameworks import normalise_metric

    name = name.strip()
    return run_store.COLUMN_NAMES.get(name) or normalise_metric(name)


def lower_is_better(metric: str) -> bool:
    return any(word in metric.lower() for word in LOWER_IS_BETTER)


@dataclass
class RunsCompare(Result):
    """Result of `runs compare`: one entry per run, in the order given."""
    metric: str
    runs: list = field(default_factory=list)           # [{"id", "where", "status", "dataset", "best_epoch", "best"}]
    series: dict = field(default_factory=dict)         # run id -> metric -> [values per epoch]
    params: dict = field(default_factory=dict)         # differing param -> {run id: value}

    def table(self):
        headers = ["run", "where", "status", "dataset", "content", f"best epoch ({self.metric})", self.metric,
                   *sorted(self.params)]
        rows = [(r["id"], r["where"], r["status"], r["dataset"], r.get("data"), r["best_epoch"], r["best"],
                 *(self.params[p].get(r["id"]) for p in sorted(self.params)))
                for r in self.runs]
        return headers, rows

    def highlight(self, row) -> bool:
        winner = self.winner()
        return winner is not None and row[0] == winner["id"]

    def winner(self) -> Optional[dict]:
        scored = [r for r in self.runs if isinstance(r["best"], (int, float))]
        if not scored:
            return None
        return (min if lower_is_better(self.metric) else max)(scored, key=lambda r: r["best"])

    def summary(self) -> str:
        winner = self.winner()
        same = "no parameter differs" if not self.params else f"{len(self.params)} parameter(s) differ"
        best = f"best {self.metric}: {winner['id']} ({winner['best']:.4g}, epoch {winner['best_epoch']})" \
            if winner else f"no run records {self.metric}"
        return f"{len(self.runs)} runs compared; {same}; {best}"

    def to_dict(self) -> dict:
        return {"metric": self.metric, "runs": self.runs, "series": self.series, "params": self.params}


def _records(root, run_ids: list[str]) -> dict[str, tuple[str, dict]]:
    """run id -> (where it was found, its record): the working tree first, then every branch tip
    (the current one, other non-experiment branches, then exp/... in name order)."""
    from ..core.backends import _git, _git_history

    found, missing = {}, []
    for run_id in run_ids:
        try:
            record = run_store.read(root, run_id)
        except NotFound:
            missing.append(run_id)
            continue
        args = run_store.run_dir(root, run_id) / ARGS
        record[EFFECTIVE] = _parse_args(args.read_text(errors="replace") if args.is_file() else None)
        found[run_id] = (WORKING_TREE, record)
    if not missing:
        return found
    branches = list(_git.branches(root, "**"))
    current = _git.current_branch(root)
    branches.sort(key=lambda b: (b != current, b.startswith("exp/"), b))
    specs = [f"{b}:{run_store.RUNS_DIR}/{r}/{f}" for r in missing for b in branches for f in ("run.json", ARGS)]
    blobs = _git_history.cat_files(root, specs)
    for run_id in missing:
        for branch in branches:
            blob = blobs.get(f"{branch}:{run_store.RUNS_DIR}/{run_id}/run.json")
            if blob is None:
                continue
            try:
                record = json.loads(blob)
            except ValueError:
                logger.debug("run %s on %s is not valid JSON", run_id, branch, exc_info=True)
                continue
            record[EFFECTIVE] = _parse_args(blobs.get(f"{branch}:{run_store.RUNS_DIR}/{run_id}/{ARGS}"))
            found[run_id] = (branch, record)
            break
    return found


ARGS = "args.yaml"          # Ultralytics writes every argument it trained with, defaults included
EFFECTIVE = "_effective"    # a compare-only key of the record read: args.yaml's values


def _parse_args(text) -> dict:
    import yaml

    try:
        values = yaml.safe_load(text) if text else None
    except yaml.YAMLError:
        return {}
    return values if isinstance(values, dict) else {}


def _series(record: dict) -> dict:
    epochs = [e for e in record.get("epochs") or [] if isinstance(e, dict)]
    names = list(dict.fromkeys(k for e in epochs for k in e))
    return {name: [e.get(name) for e in epochs] for name in names}


def _best(record: dict, metric: str) -> tuple[Optional[int], Optional[float]]:
    scored = [e for e in record.get("epochs") or [] if isinstance(e, dict) and isinstance(e.get(metric), (int, float))]
    if not scored:
        return None, None
    best = (min if lower_is_better(metric) else max)(scored, key=lambda e: e[metric])
    return best.get("epoch"), best[metric]


def _differing_params(records: dict) -> dict:
    """The parameters any run set whose values differ, compared as trained: a key one run left to
    its default shows the default Ultralytics used (its args.yaml), and 0 equals 0.0."""
    keys = sorted({k for r in records.values() for k in (r.get("params") or {})})
    differing = {}
    for key in keys:
        values = {run_id: _value(r, key) for run_id, r in records.items()}
        if len({json.dumps(_comparable(v), sort_keys=True, default=str) for v in values.values()}) > 1:
            differing[key] = values
    return differing


def _value(record: dict, key: str):
    params = record.get("params") or {}
    return params[key] if key in params else (record.get(EFFECTIVE) or {}).get(key)


def _comparable(value):
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else value


def _dataset_version(record: dict) -> Optional[str]:
    """NAME@<commit>, the ref `dataset show` takes (its content hash is shown beside it: a dataset
    rolled back to earlier content is another commit holding the same data)."""
    dataset = record.get("dataset") if isinstance(record.get("dataset"), dict) else {}
    if not dataset.get("name"):
        return None
    return f"{dataset['name']}@{(dataset.get('commit') or '?')[:8]}"


def _dataset_content(record: dict) -> Optional[str]:
    dataset = record.get("dataset") if isinstance(record.get("dataset"), dict) else {}
    return (dataset.get("md5") or "").removesuffix(".dir")[:8] or None


def compare(ws: Workspace, runs: list, metric: Optional[str] = None) -> RunsCompare:
    """Per-epoch curves, differing parameters, dataset versions and best epochs of 2-10 runs
    (`nbversion runs compare`).

    Runs trained on another branch (an `exp/...` experiment) are read from that branch, so they
    compare without checking it out.

    Args:
        runs: 2 to 10 run ids (see `runs_list`, `exp list`).
        metric: the metric that picks each run's best epoch, as stored in run.json: mAP50-95
            (default), mAP50, precision, recall, box_loss, val_box_loss... (lower is better for
            losses). Ultralytics' names such as "metrics/mAP50-95(B)" are accepted too.

    Returns:
        RunsCompare: `runs` (id, where it was found, status, dataset version, best epoch and value),
        `series` (run id -> metric -> one value per epoch) and `params` (only the parameters that
        differ: name -> {run id: value}).

    Example:
        >>> ws = nbv.open(".")
        >>> ws.runs_compare(["yolov8n-20260131-140000", "yolov8n-20260131-150000"]).params
    """
    run_ids = list(dict.fromkeys(runs or []))
    if not MIN_RUNS <= len(run_ids) <= MAX_RUNS:
        raise UsageError(f"runs compare takes {MIN_RUNS} to {MAX_RUNS} different runs, got {len(run_ids)}",
                         hint="e.g. `nbversion runs compare RUN1 RUN2`; see `nbversion runs list` for run ids")
    for run_id in run_ids:
        run_store.check_id(run_id)
    metric = metric_name(metric or DEFAULT_METRIC)
    found = _records(ws.root, run_ids)
    unknown = [r for r in run_ids if r not in found]
    if unknown:
        raise NotFound(f"no run {', '.join(map(repr, unknown))} in {run_store.RUNS_DIR}/ nor on any branch "
                       f"(no {run_store.RUNS_DIR}/{unknown[0]}/run.json)",
                       hint="see `nbversion runs list` here and `nbversion exp list` for other branches")
    records = {run_id: found[run_id][1] for run_id in run_ids}
    series = {run_id: _series(record) for run_id, record in records.items()}
    if not any(metric in s for s in series.values()):
        recorded = sorted({k for s in series.values() for k in s} - {"epoch"})
        raise UsageError(f"none of these runs records the metric {metric!r}",
                         hint=f"one of: {', '.join(recorded) or 'none yet (no epoch finished)'}")
    rows = []
    for run_id, record in records.items():
        best_epoch, best_value = _best(record, metric)
        rows.append({"id": run_id, "where": found[run_id][0], "status": run_store.effective_status(record)
                     if found[run_id][0] == WORKING_TREE else record.get("status", "unknown"),
                     "dataset": _dataset_version(record), "data": _dataset_content(record), "epochs": len(record.get("epochs") or []),
                     "best_epoch": best_epoch, "best": best_value})
    return RunsCompare(metric, rows, series, _differing_params(records))
