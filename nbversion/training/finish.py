"""The end of a run: final record, weights into DVC, an audit line, one commit.

The final record is written under the workspace lock: until then run.json says "running", so a
user's `commit` meanwhile leaves the run folder alone (`runs.live_run_folders`) and the run's
own commit never finds its files taken by someone else's.
"""
from __future__ import annotations

import contextlib
import logging
import os
import shutil
from pathlib import Path

from ..core.backends import _dvc, _git
from ..core.layout import tmp_dir
from ..errors import NotFound
from . import runs

logger = logging.getLogger(__name__)


def final_record(root, run_id: str, status: str, error, observer) -> dict:
    """results.csv is authoritative for the epochs (it also covers DDP, where callbacks are silent)."""
    folder = runs.run_dir(root, run_id)
    record = runs.read(root, run_id)
    epochs = runs.read_results_csv(folder / "results.csv") or record.get("epochs") or []
    best_epoch, best = runs.best_of(epochs)
    weights = folder / "weights"
    if status == "done":
        (weights / "resume.pt").unlink(missing_ok=True)   # nothing left to resume
    (folder / runs.STOP_FILE).unlink(missing_ok=True)
    changes = {"status": status, "error": error, "epochs": epochs, "best_epoch": best_epoch,
               "metrics": best, "ended_at": runs.now(), "outcome": None, "commit_error": None}
    if observer is not None and observer.errors:
        changes["callback_errors"] = observer.errors[-20:]
    sampler = getattr(observer, "sampler", None)
    if sampler is not None and sampler.enabled:
        sampler.stop()   # already stopped by the runner; a no-op then
        changes.update(system=sampler.series(), system_cost=sampler.cost())
    return runs.update(root, run_id, **changes)


def commit_run(ws, run_id: str, status: str, error, observer) -> str:
    rel = f"{runs.RUNS_DIR}/{run_id}"
    with ws.transaction("train", role="contributor") as tx:
        record = final_record(ws.root, run_id, status, error, observer)
        weights, in_git = ws.root / rel / "weights", False
        if weights.is_dir() and any(weights.iterdir()):
            in_git = _untrack_from_git(ws.root, f"{rel}/weights")
            _dvc.add(ws.root, [f"{rel}/weights"])
        tx.audit("train", run_id, {"status": status, "dataset": record.get("dataset"),
                                   "model": record.get("model"), "device": record.get("device"),
                                   "epochs": len(record.get("epochs") or []), "metrics": record.get("metrics"),
                                   "error": error})
        metric = (record.get("metrics") or {}).get("mAP50-95")
        summary = f", mAP50-95 {metric:.3f}" if isinstance(metric, float) else ""
        with _aside(ws.root, weights) if in_git else contextlib.nullcontext():
            sha = tx.commit(f"train {run_id}: {status}{summary}", [rel])
        logger.debug("run %s %s: committed as %s (weights in DVC: %s)", run_id, status, sha, weights.is_dir())
        return sha


def record_commit_failure(root, run_id: str, status: str, error, observer, exc: BaseException) -> None:
    """The run trained but could not be committed: say so in its record, keep its outcome."""
    try:
        if runs.read(root, run_id).get("status") in runs.LIVE:   # failed before the final record
            final_record(root, run_id, status, error, observer)
    finally:
        runs.update(root, run_id, status="commit failed", outcome=status,
                    commit_error=f"{type(exc).__name__}: {getattr(exc, 'message', None) or exc}")


def _untrack_from_git(root, rel: str) -> bool:
    """Weights someone `git add`-ed by hand would make DVC refuse the folder: DVC owns them."""
    if not _git.listed_files(root, [rel]):
        return False
    _git.untrack(root, rel)
    return True


@contextlib.contextmanager
def _aside(root, folder: Path):
    """`git commit -- PATH` re-reads files HEAD knows from the working tree: move the weights
    out of its sight while committing, so the commit records them as gone from git."""
    parked = tmp_dir(root) / f"commit-aside-{folder.parent.name}"
    parked.parent.mkdir(parents=True, exist_ok=True)
    os.replace(folder, parked)
    try:
        yield
    finally:
        os.replace(parked, folder)


def resumable_checkpoint(root, run_id: str) -> Path:
    """weights/resume.pt (kept at a stop) or last.pt (a crash), made writable: DVC links them read-only."""
    weights = runs.run_dir(root, run_id) / "weights"
    for candidate in (weights / "resume.pt", weights / "last.pt"):
        if candidate.exists():
            for path in weights.iterdir():
                _break_link(path)
            return candidate
    raise NotFound(f"run {run_id} has no checkpoint to resume from (no {weights.relative_to(root)}/last.pt)",
                   hint="it ended before its first epoch was saved: start a new run with `nbversion train`")


def _break_link(path: Path) -> None:
    """Replace a (read-only) link into the DVC cache by a private, writable copy."""
    if not path.is_file():
        return
    tmp = path.with_name(f".{path.name}.tmp")
    shutil.copyfile(path, tmp)
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)
