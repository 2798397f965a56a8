"""Prediction records: one JSON per `predict` call, and `predict history`.

A record is written by default to `.nbversion/predictions/local/`, a folder whose own
`.gitignore` ignores everything in it: no later `commit` picks it up unasked and `status`
stays clean. `predict --record` writes it to `.nbversion/predictions/` instead and commits it
with an audit line, so it becomes part of the workspace's history.
"""
from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from ..core.layout import META_DIR
from ..render import Result

from typing import TYPE_CHECKING

logger = logging.getLogger(__name__)

if TYPE_CHECKING:
    from ..core.workspace import Workspace

PREDICTIONS_DIR = f"{META_DIR}/predictions"     # records committed by `predict --record`
LOCAL_DIR = f"{PREDICTIONS_DIR}/local"          # records kept out of git (the default)


def stamp() -> tuple[str, str]:
    """(id, when): both sort by time to the microsecond (two calls in one second keep their order);
    the id ends in random hex so two kernels never write the same file."""
    now = time.time()
    micro = f"{int(now * 1e6) % 1_000_000:06d}"
    when = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{micro}Z"
    return time.strftime("%Y%m%d-%H%M%S", time.gmtime(now)) + f"-{micro}-{os.urandom(2).hex()}", when


def _local_folder(root: Path) -> Path:
    folder = Path(root) / LOCAL_DIR
    folder.mkdir(parents=True, exist_ok=True)
    ignore = folder / ".gitignore"
    if not ignore.exists():   # "*" ignores the .gitignore itself too: the folder never shows in git
        ignore.write_text("# predict's records, kept out of git (`predict --record` commits one)\n*\n")
    return folder


def save(ws: Workspace, record: dict, commit: bool) -> Path:
    """Write `record`; with `commit`, commit it with an audit line (the `predict --record` case)."""
    from ..core.backends import atomic

    text = json.dumps(record, indent=1)
    if not commit:
        path = _local_folder(ws.root) / f"{record['id']}.json"
        atomic.write_text(path, text)
        return path
    rel = f"{PREDICTIONS_DIR}/{record['id']}.json"
    with ws.transaction("predict --record") as tx:
        path = ws.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic.write_text(path, text)
        try:
            tx.audit("predict", rel, {"model": record["model"]["ref"], "version": record["model"].get("version"),
                                      "weights_md5": record["model"].get("md5"), "images": len(record["images"])})
            tx.commit(f"predict {record['model']['ref']}: {len(record['images'])} image(s) recorded", [rel])
        except BaseException:
            path.unlink(missing_ok=True)   # no commit: no record half-kept in the working tree
            raise
    return path


def _read_all(root: Path) -> list[dict]:
    records = []
    for folder, recorded in ((Path(root) / PREDICTIONS_DIR, True), (Path(root) / LOCAL_DIR, False)):
        for path in folder.glob("*.json") if folder.is_dir() else []:
            try:
                record = json.loads(path.read_text())
            except (OSError, ValueError):
                logger.warning("prediction record %s is unreadable: skipped", path)
                continue
            record["recorded"] = recorded
            records.append(record)
    return sorted(records, key=lambda r: (r.get("when", ""), r.get("id", "")), reverse=True)


def totals(record: dict) -> tuple[int, int, float]:
    """(images, detections, milliseconds) of one record."""
    images = record.get("images", [])
    return (len(images), sum(len(i.get("detections", [])) for i in images),
            round(sum(i.get("ms", 0.0) for i in images), 2))


@dataclass
class PredictionHistory(Result):
    records: list = field(default_factory=list)

    def table(self):
        rows = []
        for r in self.records:
            images, detections, ms = totals(r)
            model = r["model"]
            version = model.get("version") or (model.get("run") or "")
            rows.append((r["id"], r["when"][:19].replace("T", " "), model["ref"], version, images, detections, ms,
                         "committed" if r["recorded"] else "local"))
        return ["id", "when (UTC)", "model", "version / run", "images", "detections", "ms", "kept"], rows

    def summary(self) -> str:
        if not self.records:
            return "no predictions recorded yet (`predict MODEL_REF IMAGE...` records each call)"
        return f"{len(self.records)} prediction record(s), newest first"

    def to_dict(self) -> dict:
        return {"records": self.records}


def history(ws: Workspace, n: Optional[int] = None, model: Optional[str] = None) -> PredictionHistory:
    """The `predict` calls recorded in this workspace, newest first (`nbversion predict history`).

    Args:
        n: only the newest N records.
        model: only records of this model ref (as given to predict), or of this registry
            model NAME (any of its versions).

    Returns:
        PredictionHistory: one record per call: when, model, version, weights md5, conf,
        iou, imgsz, and per image its name, md5, size, time and detections.

    Example:
        >>> ws = nbv.open(".")
        >>> ws.predict_history(n=5, model="det")
    """
    records = _read_all(ws.root)
    if model:
        records = [r for r in records if model in (r["model"]["ref"], r["model"]["ref"].partition("@")[0])]
    return PredictionHistory(records[:n] if n is not None else records)
