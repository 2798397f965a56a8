"""`nbv.load_model(ref)` for serving code: the registered model, loaded by its own library.

    MODEL_VERSION=champion python serve.py      # or v1.2.0, or latest
    model = nbv.load_model("detector")           # the bare name honours MODEL_VERSION

Which object comes back for which format: `nbv.load_model`'s docstring and `loaders.py`.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any


def resolve_ref(ref: str, path=None):
    """The ResolveResult of `ref`; a bare name takes MODEL_VERSION (default champion)."""
    from ..workspace import open_workspace

    ws = open_workspace(path)
    if "@" not in ref:
        ref = f"{ref}@{os.environ.get('MODEL_VERSION') or 'champion'}"
    return ws, ws.resolve(ref)


def load_model(ref: str, path=None, trust: bool = False) -> Any:
    from . import loaders

    _ws, resolved = resolve_ref(ref, path)
    return loaders.load(Path(resolved.path), f"{resolved.name}@{resolved.version}", trust)
