"""nbversion: git for datasets and models, inside the Jupyter notebook.

Importing this package is cheap: git, DVC and torch are imported only when a verb runs.

    import nbversion as nbv
    ws = nbv.open(".")            # or nbv.init("project")
    ws.commit("add dataset")

In IPython / Jupyter: ``%load_ext nbversion`` then ``%mv_status``, ``%mv_commit -m "..."``.
"""
from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["open", "init", "load_model", "NbversionError", "load_ipython_extension", "__version__"]

from .errors import NbversionError  # noqa: E402  (light: no third-party imports)


def open(path=None):  # noqa: A001 - the verb users expect: nbv.open(path)
    """The workspace containing `path` (default: the current folder)."""
    from .core.workspace import open_workspace
    return open_workspace(path)


def init(path=None, on_event=None):
    """Initialise a workspace at `path` and return it."""
    from .core.repo.init import init as _init
    from .core.workspace import Workspace
    result = _init(path, on_event=on_event)
    return Workspace(result.root)


def load_model(ref: str, path=None):
    """`name@champion`, `name@vX.Y.Z`, `name@latest` or `name` (MODEL_VERSION decides)."""
    from .core.registry.serving import load_model as _load
    return _load(ref, path)


def load_ipython_extension(ipython) -> None:
    from .magics import register
    register(ipython)


def unload_ipython_extension(ipython) -> None:  # pragma: no cover - nothing to undo
    pass
