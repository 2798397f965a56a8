"""One loader per model format `frameworks.detect` recognises: what `nbv.load_model` hands back.

Each loader imports its library when it runs (importing nbversion stays cheap, and a library
that is not installed only matters to whoever loads that format); a missing one is a
`MissingExtra` naming the pip package. Pickles run code when loaded, so they are loaded only
when the caller says it trusts the file.
"""
from __future__ import annotations

import importlib
import importlib.util
import logging
import os
import warnings
from pathlib import Path
from typing import Any, Callable

from ...errors import DamagedFile, MissingExtra, NbversionError, UsageError
from ...extras import missing, require
from ..artifacts import export_metadata
from ..artifacts.frameworks import Detected, detect

logger = logging.getLogger(__name__)

PICKLE_FORMATS = ("pickle", "joblib-compressed")
# framework -> (module, pip package) a pickle of it imports when loaded
PICKLED_LIBRARIES = {"scikit-learn": ("sklearn", "scikit-learn"), "xgboost": ("xgboost", "xgboost"),
                     "lightgbm": ("lightgbm", "lightgbm"), "pytorch": ("torch", "torch")}


def load(weights: Path, what: str, trust: bool = False) -> Any:
    """The ready object for `weights` (see `nbv.load_model` for the table); `what` names it in errors."""
    weights = Path(weights)
    if weights.is_dir():
        return _folder_export(weights, what) or weights
    try:
        found = detect(weights)   # the file's content decides, whatever the manifest recorded then
    except DamagedFile:
        raise   # a cut-off file: say so now, not as a library's traceback later
    except NbversionError:   # not what its suffix says: hand over the file, as for any unknown format
        logger.debug("%s: format not recognised; handing over the path", weights, exc_info=True)
        return weights
    loader = _loader(found, weights)
    if loader is None:   # maybe one file of a folder export (OpenVINO's .xml): Ultralytics loads the folder
        return _folder_export(weights, what) or weights
    logger.debug("%s: %s (%s) loaded by %s", what, found.framework, found.format, loader.__name__)
    return loader(weights, found, what, trust)


def _loader(found: Detected, weights: Path) -> Callable | None:
    if found.framework == "ultralytics":
        return _ultralytics
    if found.framework == "pytorch" and found.format == "torchscript":
        return _torchscript
    if found.framework == "pytorch" and found.format == "checkpoint" and weights.suffix == ".pt":
        return _maybe_yolo
    if found.format in PICKLE_FORMATS:
        return _unpickled
    return {"onnx": _onnx, "xgboost": _xgboost, "lightgbm": _lightgbm, "keras": _keras}.get(found.framework)


def _folder_export(path: Path, what: str):
    """A YOLO for an Ultralytics folder export (OpenVINO, NCNN...: a `metadata.yaml` by Ultralytics), else None."""
    folder = export_metadata.ultralytics_folder(path)
    if folder is None:
        return None
    return _yolo_model(folder, export_metadata.folder_metadata(folder).get("task"), what)


def _library(module: str, package: str, what: str, found: Detected, extra: str | None = None):
    """Import `module` or raise MissingExtra naming the pip package that brings it."""
    try:
        return importlib.import_module(module)
    except ImportError:   # also a module set to None in sys.modules
        logger.debug("%s: cannot import %s", what, module, exc_info=True)
        hint = f"pip install {package}" + (f" (or pip install 'nbversion[{extra}]')" if extra else "")
        raise MissingExtra(f"loading {what} ({found.framework}, {found.format}) needs {package}, "
                           f"which is not installed", hint=hint, extra=extra) from None


def _yolo_model(weights: Path, task: str | None, what: str):
    require("yolo", f"loading the YOLO weights of {what}")
    from ...training import _yolo
    return _yolo.load_yolo(weights, task=task)


def _ultralytics(weights: Path, found: Detected, what: str, trust: bool):
    if found.format == "onnx":   # Ultralytics would try to pip-install it; we say what to install
        _library("onnxruntime", "onnxruntime", what, found, extra="export")
    return _yolo_model(weights, found.params.get("task"), what)


def _maybe_yolo(weights: Path, found: Detected, what: str, trust: bool):
    """A .pt without train args: a YOLO saved before training, or plain PyTorch serving code loads itself."""
    if missing("yolo"):
        return weights
    try:
        return _yolo_model(weights, None, what)
    except NbversionError:
        logger.debug("Ultralytics could not load %s; handing over the file", weights, exc_info=True)
        return weights


def _torchscript(weights: Path, found: Detected, what: str, trust: bool):
    torch = _library("torch", "torch", what, found)
    with warnings.catch_warnings():   # torch 2.9+ calls torch.jit.load deprecated; it is what loads the file
        warnings.filterwarnings("ignore", message=r"`torch\.jit\.load` is deprecated", category=FutureWarning)
        return torch.jit.load(str(weights), map_location="cpu")


def _onnx(weights: Path, found: Detected, what: str, trust: bool):
    ort = _library("onnxruntime", "onnxruntime", what, found, extra="export")
    try:
        return ort.InferenceSession(str(weights), providers=["CPUExecutionProvider"])
    except Exception as exc:   # onnxruntime raises its own Fail / InvalidGraph / InvalidProtobuf types
        logger.debug("onnxruntime refused %s", weights, exc_info=True)
        raise DamagedFile(f"{weights.name} of {what} is not an ONNX model onnxruntime can run: "
                          f"{_first_line(exc)}",
                          hint="check the export (onnx.checker.check_model), or register the file again") from None


def _unpickled(weights: Path, found: Detected, what: str, trust: bool):
    if not trust:
        kind = "a joblib file" if found.format == "joblib-compressed" or weights.suffix == ".joblib" else "a pickle"
        raise UsageError(f"{weights.name} of {what} is {kind} ({found.framework}): loading it would run "
                         f"the code inside it, so it is not loaded unless you trust it",
                         hint=f"if you trust whoever registered it: nbv.load_model({what!r}, trust=True) "
                              "(the CLI has no such switch); or register a format that holds no code "
                              "(XGBoost .json/.ubj, LightGBM .txt, ONNX)")
    if found.framework in PICKLED_LIBRARIES:   # unpickling imports the estimator's module: name its package
        _library(*PICKLED_LIBRARIES[found.framework], what, found)
    try:
        joblib = importlib.import_module("joblib")
    except ImportError:   # a plain pickle needs no joblib; a compressed joblib file does
        if found.format == "joblib-compressed":
            _library("joblib", "joblib", what, found)
        import pickle
        with open(weights, "rb") as fh:
            return pickle.load(fh)   # noqa: S301 - the caller said trust=True
    return joblib.load(weights)      # reads plain pickles too


def _xgboost(weights: Path, found: Detected, what: str, trust: bool):
    xgboost = _library("xgboost", "xgboost", what, found)
    return xgboost.Booster(model_file=str(weights))


def _lightgbm(weights: Path, found: Detected, what: str, trust: bool):
    lightgbm = _library("lightgbm", "lightgbm", what, found)
    return lightgbm.Booster(model_file=str(weights))


def _keras(weights: Path, found: Detected, what: str, trust: bool):
    _choose_keras_backend()
    try:
        keras = importlib.import_module("keras")
    except ImportError:   # keras missing, or keras 3 without any backend it can import
        logger.debug("%s: cannot import keras", what, exc_info=True)
        raise MissingExtra(f"loading {what} ({found.framework}, {found.format}) needs keras and a backend "
                           "for it (torch, tensorflow or jax), which are not installed",
                           hint="pip install keras torch (then KERAS_BACKEND=torch), or pip install tensorflow") from None
    # compile=False: ready to predict; a saved loss/metric of an older Keras need not deserialise for that.
    # safe_mode stays on unless trusted: a Lambda layer's code would otherwise run on load.
    return keras.models.load_model(str(weights), compile=False, safe_mode=not trust)


def _choose_keras_backend() -> None:
    """Keras 3 imports TensorFlow unless told otherwise, and fails without it; torch (or jax) serves as well.

    Only when the user chose nothing and TensorFlow is absent: an explicit KERAS_BACKEND wins.
    """
    if os.environ.get("KERAS_BACKEND") or _importable("tensorflow"):
        return
    backend = next((b for b in ("torch", "jax") if _importable(b)), None)
    if backend:
        os.environ["KERAS_BACKEND"] = backend


def _importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None   # looks, imports nothing
    except (ImportError, ValueError):   # a module set to None in sys.modules
        return False


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return (text.splitlines()[0] if text else type(exc).__name__)[:300]
