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


def image_state(image: dict) -> str:
    """`here`: the file recorded is still at its path with the same md5, so its boxes can be drawn
    again (the record keeps no pixels); `changed`: a different file is there now; `moved`: none is."""
    from ..core.backends.hashing import file_md5

    path = Path(image.get("path") or "")
    if not image.get("path") or not path.is_file():
        return "moved"
    try:
        return "here" if file_md5(path) == image.get("md5") else "changed"
    except OSError:
        return "moved"


@dataclass
class PredictionShow(Result):
    record: dict
    states: list = field(default_factory=list)   # image_state() of each image, in the record's order

    def table(self):
        rows = []
        for image in self.record.get("images", []):
            for box in image.get("detections") or [{}]:   # an image without detections still gets a row
                rows.append((image.get("name"), box.get("class", "(none)"), box.get("confidence"),
                             box.get("box"), box.get("centre"), box.get("area")))
        return ["image", "class", "confidence", "box (x1, y1, x2, y2)", "centre", "area (px)"], rows

    def summary(self) -> str:
        r, model = self.record, self.record.get("model", {})
        images, detections, ms = totals(r)
        version = model.get("version") or (f"run {model['run']}" if model.get("run") else "")
        lines = [f"prediction {r.get('id')} at {r.get('when', '')[:19].replace('T', ' ')} UTC"
                 f" ({'committed' if r.get('recorded') else 'local'}): model {model.get('ref')}"
                 + (f" ({version})" if version and model.get("run") != model.get("ref") else "")
                 + f", weights md5 {model.get('md5') or 'unknown'}, commit {(model.get('commit') or '')[:8]}",
                 f"conf {r.get('conf')}, iou {r.get('iou')}, imgsz {r.get('imgsz') or 'the model default'}: "
                 f"{images} image(s), {detections} detection(s) in {ms} ms"]
        for image, state in zip(r.get("images", []), self.states):
            if state != "here":
                lines.append(f"{image.get('name')}: {'moved' if state == 'moved' else 'changed'} since "
                             f"(recorded at {image.get('path')}, md5 {image.get('md5')}): its boxes are not drawn")
        return "\n".join(lines)

    def to_dict(self) -> dict:
        images = [{**image, "state": state} for image, state in zip(self.record.get("images", []), self.states)]
        return {**self.record, "images": images}


def show(ws: Workspace, record_id: str) -> PredictionShow:
    """One recorded prediction in full (`nbversion predict show ID`).

    Args:
        record_id: a record's id as `predict history` lists it, or the start of one that
            names a single record.

    Returns:
        PredictionShow: the record (model version, settings, each image with its detections)
        and, per image, whether its file is still there unchanged (`here`), replaced
        (`changed`) or gone (`moved`). In a notebook the images still here are drawn with the
        recorded boxes.

    Example:
        >>> ws = nbv.open(".")
        >>> ws.predict_show(ws.predict_history(n=1).records[0]["id"])
    """
    from ..errors import NotFound, UsageError

    records = _read_all(ws.root)
    exact = [r for r in records if r.get("id") == record_id]
    found = exact or ([r for r in records if str(r.get("id", "")).startswith(record_id)] if record_id else [])
    if not found:
        raise NotFound(f"{record_id}: no such prediction record in {PREDICTIONS_DIR}",
                       hint="`nbversion predict history` lists the record ids")
    if len(found) > 1:
        raise UsageError(f"{record_id}: the start of {len(found)} prediction records "
                         f"({', '.join(r['id'] for r in found[:3])}{', ...' if len(found) > 3 else ''})",
                         hint="give more of the id (`nbversion predict history` lists them)")
    record = found[0]
    return PredictionShow(record, [image_state(image) for image in record.get("images", [])])
