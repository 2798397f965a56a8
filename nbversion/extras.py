"""Optional parts of nbversion and the one check every verb that needs one makes first.

    from nbversion.extras import require
    require("yolo", "train")      # MissingExtra: train needs the yolo extra / pip install 'nbversion[yolo]'

The check only looks for the modules (`importlib.util.find_spec`), it imports nothing: a
workspace verb stays fast, and the error comes before anything is written.
"""
from __future__ import annotations

import importlib.util
import logging
from urllib.parse import urlparse

from .errors import MissingExtra

logger = logging.getLogger(__name__)

# extra -> the modules it brings that nbversion imports (keep in step with pyproject.toml)
MODULES = {
    "yolo": ("ultralytics", "torch", "torchvision", "matplotlib"),
    "lab": ("jupyter_server", "jupyterlab"),
    "remotes": ("dvc_s3", "dvc_ssh", "cryptography"),
    "export": ("onnx", "onnxslim", "onnxruntime"),
}
# what each remote URL scheme needs (a folder needs nothing)
URL_MODULES = {"s3": ("dvc_s3",), "ssh": ("dvc_ssh",)}


def _present(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):   # a broken parent package, or a module set to None
        return False


def missing(extra: str, modules=None) -> list:
    """The modules of `extra` (or just `modules`) that cannot be imported."""
    return [m for m in (modules or MODULES[extra]) if not _present(m)]


def require(extra: str, what: str, modules=None) -> None:
    """Raise MissingExtra naming the verb and the pip line when `extra` is not installed."""
    absent = missing(extra, modules)
    if absent:
        logger.debug("%s: the %s extra is missing %s", what, extra, absent)
        raise MissingExtra(f"{what} needs the {extra} extra (not installed: {', '.join(absent)})",
                           hint=f"pip install 'nbversion[{extra}]'", extra=extra)


def require_for_url(url: str, what: str) -> None:
    """A remote on ssh:// or s3:// needs DVC's plug-in for it (the remotes extra)."""
    modules = URL_MODULES.get(urlparse(str(url)).scheme)
    if modules:
        require("remotes", what, modules)
