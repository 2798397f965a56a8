"""`nbv.load_model(ref)` for serving code: a YOLO model for YOLO weights, else the path.

    MODEL_VERSION=champion python serve.py      # or v1.2.0, or latest
    model = nbv.load_model("detector")           # the bare name honours MODEL_VERSION
"""
from __future__ import annotations

import logging
import os
from pathlib import Path

from ...extras import missing, require

logger = logging.getLogger(__name__)

YOLO_FRAMEWORKS = (None, "ultralytics", "yolo", "yolov8", "yolo11")
# a YOLO checkpoint saved before training has no train args: it reads as plain PyTorch
MAYBE_YOLO = ("pytorch",)


def resolve_ref(ref: str, path=None):
    """The ResolveResult of `ref`; a bare name takes MODEL_VERSION (default champion)."""
    from ..workspace import open_workspace

    ws = open_workspace(path)
    if "@" not in ref:
        ref = f"{ref}@{os.environ.get('MODEL_VERSION') or 'champion'}"
    return ws, ws.resolve(ref)


def load_model(ref: str, path=None):
    from .versions import read_manifest

    ws, resolved = resolve_ref(ref, path)
    weights = Path(resolved.path)
    framework = read_manifest(ws.root, resolved.name, resolved.version, resolved.commit).get("framework")
    if weights.suffix != ".pt" or framework not in YOLO_FRAMEWORKS + MAYBE_YOLO:
        return weights
    if framework in MAYBE_YOLO and missing("yolo"):
        return weights   # maybe plain PyTorch: without Ultralytics the serving code loads it itself
    require("yolo", f"loading the YOLO weights of {ref}")
    from ...training import _yolo
    if framework in MAYBE_YOLO:
        try:
            return _yolo.load_yolo(weights)
        except Exception:  # a plain PyTorch checkpoint: serving code loads it itself
            logger.debug("Ultralytics could not load %s; handing over the file", weights, exc_info=True)
            return weights
    return _yolo.load_yolo(weights)
