"""Experiments as branches: `exp new|list|compare|best|merge`.

An experiment is the git branch `exp/<name>`, started from the current commit; its base
branch is remembered in `branch.exp/<name>.nbversionBase` (local git config). Runs
(`runs/<id>/run.json`) and registered versions (`registry/<name>/v*/manifest.json`) are read
from each branch tip without checking it out. `exp merge` merges code, data pointers and
metadata; `.meta.json` and the audit log are resolved by rule (see merge_rules), a `.dvc`
pointer changed on both sides takes the experiment's data, any other conflict aborts the merge
and leaves the workspace as it was.
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import Optional

from ...errors import AlreadyExists, Interrupted, NbversionError, NotFound, UncommittedChanges, UsageError
from ...events import Event, emitter
from ..result import Result
from ..backends import _git, _git_history, _git_sync
from ..backends.faults import checkpoint
from ..audit import chain as audit
from . import merge_rules, names
from .cell import with_trailers

logger = logging.getLogger(__name__)

from typing import TYPE_CHECKING

if TYPE_CHECKING:   # annotations only: core.workspace imports this module into Workspace
    from ...events import EventCallback
    from ..workspace import Workspace

PREFIX = "exp/"
LOWER_IS_BETTER = ("loss", "error", "time", "latency")


@dataclass
class ExperimentsResult(Result):
    rows: list = field(default_factory=list)
    headers: list = field(default_factory=list)
    message: str = ""
    best: Optional[dict] = None

    def table(self):
        return self.headers, self.rows

    def highlight(self, row) -> bool:
        return bool(self.best) and row[0] == self.best.get("branch") and row[2] == self.best.get("id")

    def summary(self):
        return self.message


def _branch(name: str) -> str:
    return name if name.startswith(PREFIX) else PREFIX + name


def new(ws: Workspace, name: str, on_event: Optional[EventCallback] = None) -> ExperimentsResult:
    """Start experiment branch exp/NAME from here and switch to it (`nbversion exp new`).

    Args:
        name: the experiment's name (the branch is exp/NAME).
        on_event: unused; kept so every verb takes it.

    Returns:
        ExperimentsResult: a `message` saying where you are and how to merge back.

    Example:
        >>> ws = nbv.open(".")
        >>> ws.exp_new("mosaic-off")
    """
    names.check_name(name.removeprefix(PREFIX), "experiment")
    branch = _branch(name)
    if branch in _git.branches(ws.root, "**"):
        raise AlreadyExists(f"experiment {branch} already exists", hint=f"switch to it with `nbversion checkout {branch}`")
    base = _git.current_branch(ws.root) or _git.head(ws.root)
    with ws.transaction("exp new") as tx:
        _git.create_branch(ws.root, branch, switch=True)
        _git.config_set(ws.root, f"branch.{branch}.nbversionBase", base)
        tx.audit("exp new", branch, {"from": base, "commit": _git.head(ws.root)})
        tx.commit(f"nbversion: start experiment {branch} from {base}")
    return ExperimentsResult(message=f"on {branch} (from {base}); commit, train and register here, "
                                     f"then `nbversion exp merge {name}` from {base}")


def _base_of(root, branch: str) -> str:
    recorded = _git.config_get(root, f"branch.{branch}.nbversionBase")
    return recorded or ("main" if "main" in _git.branches(root, "**") else "master")


def list_experiments(ws: Workspace) -> ExperimentsResult:
    """Experiment branches with their base, ahead/behind counts, runs and versions (`nbversion exp list`).

    Returns:
        ExperimentsResult: one row per experiment branch.

    Example:
        >>> ws = nbv.open(".")
        >>> ws.exp_list()
    """
    current, rows = _git.current_branch(ws.root), []
    for branch, sha in sorted(_git.branches(ws.root, f"{PREFIX}*").items()):
        base = _base_of(ws.root, branch)
        only_base, only_branch = _git_sync.ahead_behind(ws.root, base, branch)
        items = _branch_items(ws.root, branch)
        rows.append([("* " if branch == current else "") + branch, sha[:8], base,
                     f"+{only_branch} -{only_base}",
                     sum(1 for i in items if i["kind"] == "run"), sum(1 for i in items if i["kind"] == "version")])
    return ExperimentsResult(rows, ["experiment", "tip", "base", "ahead/behind", "runs", "versions"],
                             f"{len(rows)} experiment(s)" if rows else "no experiments: start one with `nbversion exp new NAME`")


def _branch_items(root, branch: str) -> list:
    """Runs and registered versions committed at the tip of `branch`."""
    paths = [p for p in _git_history.tree_paths(root, branch, ["runs", "registry"])
             if (p.startswith("runs/") and p.endswith("/run.json"))
             or (p.startswith("registry/") and p.endswith("/manifest.json"))]
    blobs = _git_history.cat_files(root, [f"{branch}:{p}" for p in paths])
    items = []
    for path in paths:
        try:
            data = json.loads(blobs.get(f"{branch}:{path}") or b"{}")
        except ValueError:
            logger.debug("%s on %s is not valid JSON: left out of the comparison", path, branch, exc_info=True)
            continue
        if path.startswith("runs/"):
            items.append({"kind": "run", "id": path.split("/")[1], "metrics": _run_metrics(data),
                          "status": data.get("status", "")})
        else:
            version = str(data.get("version") or "").removeprefix("v")   # manifests record "v1.2.3"
            items.append({"kind": "version", "id": f"{data.get('name')}@v{version}",
                          "metrics": data.get("metrics") or {}, "status": "registered"})
    return items


def _run_metrics(run: dict) -> dict:
    if isinstance(run.get("metrics"), dict) and run["metrics"]:
        return run["metrics"]
    epochs = run.get("epochs") or []
    return epochs[-1] if epochs and isinstance(epochs[-1], dict) else {}


def _all_items(root) -> list:
    branches = _git.branches(root, "**")
    names = [b for b in branches if not b.startswith(PREFIX)] + sorted(b for b in branches if b.startswith(PREFIX))
    return [{"branch": b, **item} for b in names for item in _branch_items(root, b)]


def _metric_key(items: list, metric: str) -> str:
    """The name as recorded: runs store Ultralytics' `metrics/mAP50-95(B)` as `mAP50-95` and
    `val/box_loss` as `val_box_loss`; a name some item records as given is kept as given."""
    if any(metric in i["metrics"] for i in items):
        return metric
    from ...training.compare import metric_name

    return metric_name(metric)


def compare(ws: Workspace, metric: Optional[str] = None) -> ExperimentsResult:
    """Runs and registered versions of each branch side by side (`nbversion exp compare`).

    Args:
        metric: only this metric, and the best row marked (default: up to six metrics), as
            stored ("mAP50-95", "val_box_loss"); Ultralytics' "metrics/mAP50-95(B)" works too.

    Returns:
        ExperimentsResult: one row per run or version, and `best` with `metric`.

    Example:
        >>> ws = nbv.open(".")
        >>> ws.exp_compare(metric="mAP50-95")
    """
    items = _all_items(ws.root)
    metric = _metric_key(items, metric) if metric else None
    metrics = [metric] if metric else sorted({k for i in items for k in i["metrics"]})[:6]
    rows = [[i["branch"], i["kind"], i["id"], i["status"], *[i["metrics"].get(m) for m in metrics]] for i in items]
    best = _best_item(items, metric) if metric else None
    return ExperimentsResult(rows, ["branch", "kind", "id", "status", *metrics],
                             f"{len(items)} run(s) and version(s) on {len({i['branch'] for i in items})} branch(es)",
                             best)


def _lower_is_better(metric: str) -> bool:
    return any(word in metric.lower() for word in LOWER_IS_BETTER)


def _best_item(items: list, metric: str, lower: Optional[bool] = None) -> Optional[dict]:
    scored = [i for i in items if isinstance(i["metrics"].get(metric), (int, float))]
    if not scored:
        return None
    lower = _lower_is_better(metric) if lower is None else lower
    pick = min if lower else max
    return pick(scored, key=lambda i: i["metrics"][metric])


def best(ws: Workspace, metric: str, lower_is_better: Optional[bool] = None) -> ExperimentsResult:
    """The run or registered version with the best metric, on any branch (`nbversion exp best`).

    Args:
        metric: the metric as stored, e.g. "mAP50-95" or "val_box_loss" (Ultralytics' names such
            as "metrics/mAP50-95(B)" work too).
        lower_is_better: the direction (default: guessed, lower for *loss*).

    Returns:
        ExperimentsResult: one row, and `best`, the winning run or version.

    Example:
        >>> ws = nbv.open(".")
        >>> ws.exp_best("mAP50-95").best["branch"]
    """
    items = _all_items(ws.root)
    metric = _metric_key(items, metric)
    winner = _best_item(items, metric, lower_is_better)
    if winner is None:
        raise NotFound(f"no run or registered version on any branch records the metric {metric!r}",
                       hint="see the available metrics with `nbversion exp compare`")
    row = [winner["branch"], winner["kind"], winner["id"], winner["status"], winner["metrics"][metric]]
    direction = "lowest" if (_lower_is_better(metric) if lower_is_better is None else lower_is_better) else "highest"
    return ExperimentsResult([row], ["branch", "kind", "id", "status", metric],
                             f"{direction} {metric}: {winner['id']} on {winner['branch']}", winner)


# --- merge ------------------------------------------------------------------------------------

def merge(ws: Workspace, name: str, on_event: Optional[EventCallback] = None) -> ExperimentsResult:
    """Merge experiment exp/NAME into the current branch; metadata and audit log by rule (`nbversion exp merge`).

    Args:
        name: the experiment's name (or its branch exp/NAME).
        on_event: called with progress `Event`s.

    Returns:
        ExperimentsResult: the paths both sides changed and how they were resolved.

    Example:
        >>> ws = nbv.open(".")
        >>> ws.exp_merge("mosaic-off")
    """
    emit = emitter(on_event)
    branch = _branch(name)
    if branch not in _git.branches(ws.root, "**"):
        raise NotFound(f"no experiment {branch}", hint="see `nbversion exp list`")
    if branch == _git.current_branch(ws.root):
        raise UsageError(f"you are on {branch}", hint=f"switch to the branch to merge into, e.g. `nbversion checkout {_base_of(ws.root, branch)}`")
    if _git.status(ws.root, untracked="no"):
        raise UncommittedChanges("uncommitted changes in tracked files", hint="commit them first (`nbversion commit -m ...`)")
    with ws.transaction("exp merge") as tx:
        base = _git_sync.merge_base(ws.root, "HEAD", branch)
        both = merge_rules.changed_paths(ws.root, base, "HEAD") & merge_rules.changed_paths(ws.root, base, branch)
        emit(Event("merge", message=f"{branch} into {_git.current_branch(ws.root)}"))
        before = _git.head(ws.root)
        try:   # a Ctrl-C before the merge commit: no merge left half done
            try:
                _git_sync.merge(ws.root, branch, no_commit=True)
            except NbversionError:   # conflicts: resolved by rule below, or the merge is aborted
                logger.debug("git merge of %s stopped on conflicts", branch, exc_info=True)
            conflicts = _git_sync.conflicted_paths(ws.root)
            unresolved = [p for p in sorted(both | conflicts) if not merge_rules.resolve_by_rule(ws.root, p, base, branch, pointers="theirs")
                          and p in conflicts]
            if unresolved:
                _git_sync.merge_abort(ws.root)
                raise NbversionError(f"cannot merge {branch}: conflicting changes in {', '.join(unresolved)}",
                                     hint="these are code or data files without a merge rule: resolve them on the "
                                          "experiment branch (merge the base into it), then merge again")
            changed_pointers = sorted(p for p in merge_rules.changed_paths(ws.root, "HEAD", branch) | both if p.endswith(".dvc"))
            tx.audit("exp merge", branch, {"base": base, "resolved_by_rule": sorted(both)})
            _git.add(ws.root, [str(audit.AUDIT_FILE)])
            checkpoint("exp-merge-staged")   # the interrupt tests stop us here: merged, not committed
            # a merge commit cannot be a partial commit, so commit everything staged by the merge
            sha = _git.commit(ws.root, with_trailers(f"nbversion: merge experiment {branch}"), tx.user, sign=tx.sign)
        except KeyboardInterrupt:
            if _git.head(ws.root) != before:   # just after git made the commit: it stands
                tx.committed = _git.head(ws.root)
            elif _git_sync.merge_in_progress(ws.root):
                _git_sync.merge_abort(ws.root)   # puts the log back as HEAD has it, entry included
                tx.audit_size = None             # so the transaction has nothing left to cut
            raise
        tx.committed = sha
    try:
        checked_out = _checkout_data(ws.root, changed_pointers)
    except KeyboardInterrupt as exc:   # merged and committed; its data only partly here
        raise Interrupted("exp merge", sha, "its data is only partly checked out: "
                                            "run `nbversion checkout --force HEAD`") from exc
    return ExperimentsResult([[p] for p in sorted(both)], ["resolved by rule"],
                             f"merged {branch} as {sha[:8]}" + ("" if checked_out else
                                                               "; some data is not in the cache: run `nbversion pull`"))


def _checkout_data(root, dvc_files: list) -> bool:
    from ..backends import _dvc

    existing = [p for p in dvc_files if (root / p).exists()]
    if not existing:
        return True
    try:
        _dvc.checkout(root, existing)
        return True
    except NbversionError:   # data not in the cache: the result tells the user to pull
        logger.debug("checking out the data of %s failed", ", ".join(existing), exc_info=True)
        return False
