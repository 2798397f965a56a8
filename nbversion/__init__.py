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

from typing import TYPE_CHECKING, Any, Optional

from .errors import NbversionError  # noqa: E402  (light: no third-party imports)

if TYPE_CHECKING:   # annotations only: importing core.workspace here would slow `import nbversion`
    import os

    from .core.workspace import Workspace
    from .events import EventCallback


def open(path: str | os.PathLike | None = None) -> Workspace:  # noqa: A001 - the verb users expect: nbv.open(path)
    """The workspace that contains `path`.

    Args:
        path: a folder inside the workspace (default: the current folder).

    Returns:
        Workspace: the handle whose methods are the verbs (`ws.commit`, `ws.register`...).

    Raises:
        NotAWorkspace: no folder from `path` upwards is an nbversion workspace.

    Example:
        >>> import nbversion as nbv
        >>> ws = nbv.open(".")
    """
    from .core.workspace import open_workspace
    return open_workspace(path)


def init(path: str | os.PathLike | None = None, on_event: Optional[EventCallback] = None) -> Workspace:
    """Make a folder (or an existing git repository) an nbversion workspace, and open it.

    Initialising a workspace that already exists changes nothing.

    Args:
        path: the folder (default: the current folder); created if missing.
        on_event: called with progress `Event`s.

    Returns:
        Workspace: the new (or existing) workspace.

    Example:
        >>> import nbversion as nbv
        >>> ws = nbv.init("project")
    """
    from .core.repo.init import init as _init
    from .core.workspace import Workspace
    result = _init(path, on_event=on_event)
    return Workspace(result.root)


def load_model(ref: str, path: str | os.PathLike | None = None, trust: bool = False) -> Any:
    """A registered model, loaded by its own library and ready to predict.

    The format is read from the file itself (not its name); each library is imported only
    when its format is loaded:

        YOLO .pt, or an Ultralytics export      ultralytics.YOLO (serving code is the same for
          (.onnx, .torchscript, OpenVINO folder)  every format; ONNX needs onnxruntime)
        other ONNX (.onnx)                      onnxruntime.InferenceSession (CPU provider)
        other TorchScript (.pt, .torchscript)   torch.jit.load(..., map_location="cpu")
        scikit-learn / XGBoost / LightGBM       the estimator, with trust=True only: a pickle
          pickle or joblib (.pkl, .joblib)        runs code when loaded
        XGBoost .json / .ubj                    xgboost.Booster (no code inside: no trust needed)
        LightGBM text model (.txt)              lightgbm.Booster(model_file=...)
        Keras .keras / .h5                      keras.models.load_model(..., compile=False);
                                                  KERAS_BACKEND=torch when unset and TensorFlow
                                                  is absent; safe_mode unless trust=True
        anything else (PyTorch state_dict...)   the pathlib.Path of the file

    Args:
        ref: NAME@champion (or another stage), NAME@vX.Y.Z, NAME@latest, or a bare NAME,
            which honours $MODEL_VERSION (default champion).
        path: a folder inside the workspace (default: the current folder).
        trust: load pickles / joblib files (and Keras files outside safe mode): only for
            files from someone you trust, since loading them runs the code they hold.

    Returns:
        The loaded model (table above), or the `pathlib.Path` of a format nbversion does not load.

    Raises:
        UsageError: a pickle or joblib file and `trust` is False (the message names the file).
        MissingExtra: the library of that format is not installed (the hint names the pip package).

    Example:
        >>> import nbversion as nbv
        >>> model = nbv.load_model("det@champion")          # a YOLO: model.predict("bus.jpg")
        >>> risk = nbv.load_model("risk@v1.2.0", trust=True)  # a joblib'ed scikit-learn pipeline
    """
    from .core.registry.serving import load_model as _load
    return _load(ref, path, trust)


def load_ipython_extension(ipython) -> None:
    from .magics import register
    register(ipython)


def unload_ipython_extension(ipython) -> None:  # pragma: no cover - nothing to undo
    pass
