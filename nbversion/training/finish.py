"""The end of a run: final record, weights into DVC, an audit line, one commit."""
from __future__ import annotations

from ..core import _dvc
from . import runs


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
               "metrics": best, "ended_at": runs.now()}
    if observer is not None and observer.errors:
        changes["callback_errors"] = observer.errors[-20:]
    return runs.update(root, run_id, **changes)


def commit_run(ws, run_id: str, status: str, error, observer) -> str:
    record = final_record(ws.root, run_id, status, error, observer)
    rel = f"{runs.RUNS_DIR}/{run_id}"
    with ws.transaction("train", role="contributor") as tx:
        if (ws.root / rel / "weights").is_dir() and any((ws.root / rel / "weights").iterdir()):
            _dvc.add(ws.root, [f"{rel}/weights"])
        tx.audit("train", run_id, {"status": status, "dataset": record.get("dataset"),
                                   "model": record.get("model"), "device": record.get("device"),
                                   "epochs": len(record.get("epochs") or []), "metrics": record.get("metrics"),
                                   "error": error})
        metric = (record.get("metrics") or {}).get("mAP50-95")
        summary = f", mAP50-95 {metric:.3f}" if isinstance(metric, float) else ""
        return tx.commit(f"train {run_id}: {status}{summary}", [rel])
