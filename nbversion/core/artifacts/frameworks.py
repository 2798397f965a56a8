"""Which framework wrote a weights file: by magic bytes and structure, never by name alone.

Nothing heavy is imported and no code in the file runs: PyTorch / Ultralytics checkpoints
are read with a pickle reader that turns every class into an inert placeholder, so their
train args, class names and metrics come out without torch or ultralytics. An Ultralytics
export (ONNX, TorchScript) is framework "ultralytics" by the metadata written into it
(`export_metadata.py`), so loaders and `predict` treat it as the YOLO model it is.
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from ...errors import DamagedFile, InvalidInput
from . import export_metadata

if TYPE_CHECKING:   # annotations only; zipfile is imported where an archive is opened
    import zipfile

logger = logging.getLogger(__name__)

HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
COMPRESSED_MAGICS = (b"\x1f\x8b", b"BZh", b"\xfd7zXZ", b"\x78\x01", b"\x78\x9c", b"\x78\xda", b"\x04\x22\x4d\x18")
# Ultralytics train_args worth keeping as params (the rest are paths and switches)
ULTRALYTICS_PARAMS = ("model", "data", "epochs", "imgsz", "batch", "optimizer", "lr0", "lrf", "momentum",
                      "weight_decay", "seed", "device", "patience", "mosaic", "close_mosaic", "fliplr")


@dataclass
class Detected:
    framework: str              # "pytorch", "ultralytics", "onnx", "keras", "tensorflow", ...
    format: str                 # "checkpoint", "state_dict", "torchscript", "hdf5", "saved-model"...
    class_names: list = field(default_factory=list)
    metrics: dict = field(default_factory=dict)
    params: dict = field(default_factory=dict)


class _Inert:
    """Stands in for any class a pickle names; keeps the state it is given."""

    def __init__(self, *args, **kwargs):
        self._args = args

    def __setstate__(self, state):
        if isinstance(state, tuple) and len(state) == 2 and isinstance(state[1], dict):
            state = {**(state[0] or {}), **state[1]}  # (dict, slots) form
        self.__dict__["_state"] = state if isinstance(state, dict) else {"_": state}

    def __call__(self, *args, **kwargs):
        return _Inert(*args)


_SAFE = {("collections", "OrderedDict"), ("builtins", "set"), ("builtins", "frozenset"),
         ("builtins", "slice"), ("builtins", "complex"), ("copyreg", "_reconstructor"), ("builtins", "object")}


def _inert_unpickler(fh):
    """An Unpickler that builds no real object: a class made here so `pickle` loads on first use."""
    import pickle

    class InertUnpickler(pickle.Unpickler):
        def find_class(self, module, name):
            if (module, name) in _SAFE:
                return super().find_class(module, name)
            return _Inert

        def persistent_load(self, pid):   # tensor storages: not needed for metadata
            return None

    return InertUnpickler(fh)


def _read_torch_pickle(archive: zipfile.ZipFile):
    data_pkl = next(n for n in archive.namelist() if n.endswith("/data.pkl") or n == "data.pkl")
    with archive.open(data_pkl) as fh:
        return _inert_unpickler(fh).load()


def _state(obj) -> dict:
    return obj.__dict__.get("_state", {}) if isinstance(obj, _Inert) else {}


def normalise_metric(name: str) -> str:
    """'metrics/mAP50-95(B)' -> 'mAP50-95'; 'val/box_loss' stays as it is."""
    if name.startswith("metrics/"):
        name = name[len("metrics/"):]
    return name[:-3] if name.endswith(("(B)", "(M)", "(P)")) else name


def _ultralytics(checkpoint: dict) -> Detected:
    model = checkpoint.get("model") or checkpoint.get("ema")
    names = _state(model).get("names") or {}
    class_names = [str(names[k]) for k in sorted(names)] if isinstance(names, dict) else [str(n) for n in names]
    metrics = {normalise_metric(k): float(v) for k, v in (checkpoint.get("train_metrics") or {}).items()
               if isinstance(v, (int, float))}
    args = checkpoint.get("train_args") or {}
    params = {k: args[k] for k in ULTRALYTICS_PARAMS if isinstance(args.get(k), (int, float, str))}
    if checkpoint.get("version"):
        params["ultralytics_version"] = str(checkpoint["version"])
    return Detected("ultralytics", "checkpoint", class_names, metrics, params)


def _zip(path: Path, label: str) -> zipfile.ZipFile:
    """The file's ZIP archive; a truncated or damaged one is bad input, not a BadZipFile traceback."""
    import zipfile

    try:
        return zipfile.ZipFile(path)
    except (zipfile.BadZipFile, EOFError, ValueError, NotImplementedError) as exc:
        raise DamagedFile(f"{path.name} is a damaged or truncated {label} file ({exc})",
                           hint="copy or save the file again; an interrupted download or save cuts off "
                                "the end of the archive") from None


def _pytorch_zip(path: Path) -> Detected:
    with _zip(path, "PyTorch") as archive:
        names = archive.namelist()
        if any(n.endswith("/constants.pkl") for n in names) or any("/code/" in n for n in names):
            return _ultralytics_export(export_metadata.torchscript_metadata(archive), "torchscript") \
                or Detected("pytorch", "torchscript")
        if not any(n.endswith("data.pkl") for n in names):
            raise _mismatch(path, "PyTorch", "a ZIP archive without a PyTorch data.pkl")
        try:
            obj = _read_torch_pickle(archive)
        except Exception:  # an exotic pickle: still a PyTorch file, just no metadata
            logger.debug("no metadata read from the pickle of %s", path, exc_info=True)
            return Detected("pytorch", "checkpoint")
    if isinstance(obj, dict) and ("train_args" in obj or "train_metrics" in obj):
        return _ultralytics(obj)
    if isinstance(obj, dict) and obj and all(isinstance(v, (type(None), _Inert)) for v in obj.values()):
        return Detected("pytorch", "state_dict")
    return Detected("pytorch", "checkpoint" if isinstance(obj, dict) else "module")


def _ultralytics_export(metadata: dict, fmt: str) -> Detected | None:
    """An Ultralytics export (its metadata's author says so): a YOLO model in another format."""
    if not export_metadata.is_ultralytics(metadata):
        return None
    return Detected("ultralytics", fmt, export_metadata.class_names(metadata), {},
                    export_metadata.export_params(metadata))


def _pickled_modules(head: bytes) -> list:
    """Top-level modules a pickle refers to, in the order it names them (nothing is executed).

    The object pickled is named first: an LGBMClassifier's pickle names lightgbm before the
    scikit-learn base classes it also refers to, a scikit-learn Pipeline names sklearn first.
    """
    import pickletools

    modules = []
    try:
        strings = []
        for opcode, arg, _pos in pickletools.genops(head):
            found = None
            if opcode.name in ("GLOBAL",) and isinstance(arg, str):
                found = arg.split()[0].split(".")[0]
            elif isinstance(arg, str):
                strings.append(arg)
            if opcode.name == "STACK_GLOBAL" and len(strings) >= 2:
                found = strings[-2].split(".")[0]
            if found and found not in modules:
                modules.append(found)
    except Exception:  # truncated or unusual: what we saw so far is enough
        logger.debug("pickle opcodes read up to an error", exc_info=True)
    return modules


PICKLED_FRAMEWORKS = {"sklearn": "scikit-learn", "xgboost": "xgboost", "lightgbm": "lightgbm", "torch": "pytorch"}


def _pickle_file(path: Path, head: bytes, label: str) -> Detected:
    if head[:1] != b"\x80" and not head.startswith(COMPRESSED_MAGICS):
        raise _mismatch(path, label, _looks_like(head))
    if head[:1] != b"\x80":
        return Detected("pickle", "joblib-compressed")
    with open(path, "rb") as fh:   # the class names come first; big arrays follow
        modules = _pickled_modules(fh.read(4 << 20))
    framework = next((PICKLED_FRAMEWORKS[m] for m in modules if m in PICKLED_FRAMEWORKS), "pickle")
    return Detected(framework, "pickle")


def _looks_like(head: bytes) -> str:
    if head.startswith(b"PK\x03\x04"):
        return "a ZIP archive (a PyTorch checkpoint or a Keras 3 file?)"
    if head.startswith(HDF5_MAGIC):
        return "an HDF5 file (Keras .h5?)"
    if head[:1] == b"\x80":
        return "a Python pickle"
    if head[4:8] == b"TFL3":
        return "a TensorFlow Lite model"
    if head.lstrip()[:1] in (b"{", b"["):
        return "JSON"
    if head.startswith(b"tree"):
        return "a LightGBM text model"
    return f"something else (it starts with {head[:8]!r})"


def _mismatch(path: Path, expected: str, found: str) -> InvalidInput:
    return InvalidInput(f"{path.name} is not a valid {expected} file: it looks like {found}",
                        hint="check the export, or give the file the extension of what it is")


def _protobuf_like(head: bytes) -> bool:
    return bool(head) and head[0] in (0x08, 0x0A, 0x12, 0x1A, 0x22, 0x3A)


def detect(path) -> Detected:
    path = Path(path)
    suffix = path.suffix.lower()
    with open(path, "rb") as fh:
        head = fh.read(4096)
    if suffix in (".pt", ".pth", ".torchscript", ".ckpt"):
        if head.startswith(b"PK\x03\x04"):
            return _pytorch_zip(path)
        if head[:1] == b"\x80":
            return Detected("pytorch", "legacy-pickle")
        raise _mismatch(path, "PyTorch", _looks_like(head))
    if suffix == ".onnx":
        # a ModelProto starts with field 1 (ir_version, a varint): tag byte 0x08
        if head[:1] == b"\x08" and len(head) > 2:
            return _ultralytics_export(export_metadata.onnx_metadata(path), "onnx") or Detected("onnx", "onnx")
        raise _mismatch(path, "ONNX", _looks_like(head))
    if suffix in (".h5", ".hdf5"):
        if head.startswith(HDF5_MAGIC):
            return Detected("keras", "hdf5")
        raise _mismatch(path, "Keras HDF5", _looks_like(head))
    if suffix == ".keras":
        return _keras_v3(path, head)
    if suffix == ".pb":
        if _protobuf_like(head):
            return Detected("tensorflow", "protobuf")
        raise _mismatch(path, "TensorFlow protobuf", _looks_like(head))
    if suffix == ".tflite":
        if head[4:8] == b"TFL3":
            return Detected("tensorflow", "tflite")
        raise _mismatch(path, "TensorFlow Lite", _looks_like(head))
    if suffix in (".pkl", ".pickle", ".joblib"):
        return _pickle_file(path, head, "pickle / joblib")
    if suffix == ".json":
        return _xgboost_json(path, head)
    if suffix == ".ubj":
        if head[:1] == b"{" and b"learner" in head:
            return Detected("xgboost", "ubjson")
        raise _mismatch(path, "XGBoost UBJSON", _looks_like(head))
    if suffix == ".txt":
        if head.startswith(b"tree") and b"version=" in head:
            return Detected("lightgbm", "text")
        raise _mismatch(path, "LightGBM text model", _looks_like(head))
    return Detected("unknown", suffix.lstrip(".") or "file")


def _keras_v3(path: Path, head: bytes) -> Detected:
    if head.startswith(HDF5_MAGIC):
        return Detected("keras", "hdf5")
    if head.startswith(b"PK\x03\x04"):
        with _zip(path, "Keras") as archive:
            if "config.json" in archive.namelist():
                return Detected("keras", "keras-v3")
    raise _mismatch(path, "Keras", _looks_like(head))


def _xgboost_json(path: Path, head: bytes) -> Detected:
    try:
        data = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError):
        raise _mismatch(path, "XGBoost JSON", _looks_like(head)) from None
    if isinstance(data, dict) and "learner" in data:
        return Detected("xgboost", "json", params={"xgboost_version": ".".join(map(str, data.get("version", [])))})
    raise InvalidInput(f"{path.name} is JSON but not an XGBoost model (no `learner` key)",
                       hint="save the booster with `model.save_model('x.json')`")
