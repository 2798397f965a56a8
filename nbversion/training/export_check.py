"""The check of `nbversion export`: the exported model and its .pt on a few images of the model's
own training dataset version, their boxes compared.

A tiny or young model finds nothing on unrelated photos, so the images come from the dataset
version in the source's lineage, at a low confidence: the boxes compared are the ones the model
really produces. Boxes are paired by class and IoU; `max_iou_diff` is 1 - IoU of the worst pair.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Optional

from ..core.artifacts.dataset_meta import DATASETS_DIR, pointer_at
from ..core.backends import dvc_cache
from ..core.backends.hashing import file_md5
from ..errors import NbversionError

logger = logging.getLogger(__name__)

IMAGES = 4
CONFIDENCE = 0.001   # what Ultralytics validates at: a young model scores its boxes low
PAIR_IOU = 0.5   # boxes that overlap less are different detections, not one box moved
AGREE_IOU_DIFF = 0.01   # every box paired and none moved by more than this: the export agrees
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")


def pick_images(root: Path, lineage: Optional[dict], dest: Path, count: int = IMAGES) -> tuple[list[Path], str]:
    """(up to `count` images of the dataset version in `lineage`, "" or why there are none).

    Validation images first (the model did not learn them). An image of the working copy is read
    when it still has the version's bytes; otherwise it is copied out of the DVC cache into `dest`.
    """
    if not lineage or not lineage.get("name") or not lineage.get("commit"):
        return [], "the source has no dataset lineage (not trained on a dataset version of this workspace)"
    name, commit = lineage["name"], lineage["commit"]
    try:
        pointer = pointer_at(root, DATASETS_DIR, name, commit)
        listing = dvc_cache.read_dir_manifest(root, pointer.md5.removesuffix(".dir") + ".dir")
    except (NbversionError, OSError, ValueError) as exc:
        logger.debug("export check: dataset %s at %s unreadable", name, commit, exc_info=True)
        return [], f"dataset {name} at {commit[:8]} is not available here ({exc})"
    entries = sorted((e for e in listing if e["relpath"].lower().endswith(IMAGE_SUFFIXES)),
                     key=lambda e: ("val" not in e["relpath"], e["relpath"]))[:count]
    if not entries:
        return [], f"dataset {name} at {commit[:8]} has no images"
    working = root / DATASETS_DIR / name
    images = []
    for entry in entries:
        # the working copy only where it still holds that version's bytes (an image edited or
        # deleted since would be checked under the version's name): else the DVC cache's copy
        here = working / entry["relpath"]
        if here.is_file() and file_md5(here) == entry["md5"]:
            images.append(here)
            continue
        source = dvc_cache.object_path(root, entry["md5"])
        if not source.exists():
            return [], f"the images of dataset {name} at {commit[:8]} are not in the DVC cache (`nbversion pull`)"
        target = dest / entry["relpath"]
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(source.read_bytes())
        images.append(target)
    return images, ""


def iou(a, b) -> float:
    width = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    height = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = width * height
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def pair_boxes(left: list, right: list) -> list[float]:
    """IoUs of the pairs of same-class boxes, best overlaps first, each box in one pair at most."""
    candidates = sorted(((iou(a[2], b[2]), i, j) for i, a in enumerate(left) for j, b in enumerate(right)
                         if a[0] == b[0]), reverse=True)
    used_left, used_right, pairs = set(), set(), []
    for overlap, i, j in candidates:
        if overlap < PAIR_IOU:
            break
        if i not in used_left and j not in used_right:
            used_left.add(i)
            used_right.add(j)
            pairs.append(overlap)
    return pairs


def compare(weights: Path, exported: Path, images: list[Path], imgsz: int) -> dict:
    """Both models on `images`: box counts, pairs, worst IoU difference and ms per image."""
    from . import _yolo

    original = _yolo.detect_boxes(weights, images, CONFIDENCE, imgsz)
    converted = _yolo.detect_boxes(exported, images, CONFIDENCE, imgsz)
    overlaps = [o for a, b in zip(original, converted) for o in pair_boxes(a["boxes"], b["boxes"])]
    boxes_pt = sum(len(r["boxes"]) for r in original)
    boxes_export = sum(len(r["boxes"]) for r in converted)
    worst = round(1 - min(overlaps), 6) if overlaps else None
    # the worst pair says nothing of the boxes left without a pair: both are part of the verdict
    unmatched = boxes_pt - len(overlaps), boxes_export - len(overlaps)
    return {"images": [p.name for p in images], "conf": CONFIDENCE, "imgsz": imgsz,
            "boxes_pt": boxes_pt, "boxes_export": boxes_export, "matched": len(overlaps),
            "unmatched_pt": unmatched[0], "unmatched_export": unmatched[1], "max_iou_diff": worst,
            "agrees": unmatched == (0, 0) and (worst or 0.0) <= AGREE_IOU_DIFF,
            "ms_pt": round(sum(r["ms"] for r in original) / len(images), 2),
            "ms_export": round(sum(r["ms"] for r in converted) / len(images), 2)}


def describe(check: dict) -> str:
    """One line for the result's summary."""
    if check.get("skipped"):
        return f"check skipped: {check['skipped']}"
    worst = "no boxes to pair" if check["max_iou_diff"] is None else f"max IoU difference {check['max_iou_diff']:.4f}"
    line = (f"check on {len(check['images'])} training images at conf {check['conf']}: {worst}; "
            f"boxes .pt {check['boxes_pt']} / export {check['boxes_export']} ({check['matched']} paired); "
            f"{check['ms_pt']:.1f} ms/image .pt, {check['ms_export']:.1f} ms/image export")
    if check.get("agrees") is False:
        line += (f"\nwarning: the export does not reproduce the .pt's boxes: {check.get('unmatched_pt')} .pt "
                 f"box(es) and {check.get('unmatched_export')} export box(es) without a pair")
    return line
