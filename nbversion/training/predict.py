"""`predict MODEL_REF IMAGE...`: boxes, labels and timing per image, drawn in the notebook."""
from __future__ import annotations

import base64
import io
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from ..errors import InvalidInput, NotFound, UsageError
from ..events import Event, emitter
from ..extras import require
from ..render import Result
from . import runs

from typing import TYPE_CHECKING

logger = logging.getLogger(__name__)

if TYPE_CHECKING:   # annotations only: core.workspace imports this module into Workspace
    import os
    from typing import Iterable
    from ..core.workspace import Workspace
    from ..events import EventCallback


@dataclass
class Detections(Result):
    model: str
    weights: str
    images: list = field(default_factory=list)   # [{"image", "ms", "boxes": [{"class", "confidence", "box"}]}]
    saved: list = field(default_factory=list)
    record: str = ""        # the id of its record in `predict history` ("" when not kept)
    committed: bool = False  # the record was committed (`--record`)
    _pictures: list = field(default_factory=list, repr=False)

    def table(self):
        shown = image_labels([i["image"] for i in self.images])
        rows = [(label, b["class"], round(b["confidence"], 3), [round(v, 1) for v in b["box"]])
                for label, i in zip(shown, self.images) for b in i["boxes"]]
        return ["image", "class", "confidence", "box (x1, y1, x2, y2)"], rows

    def summary(self) -> str:
        shown = image_labels([i["image"] for i in self.images])
        times = ", ".join(f"{label} {len(i['boxes'])} box(es) in {i['ms']:.1f} ms" for label, i in zip(shown, self.images))
        text = f"{self.model}: {times}"
        if self.saved:
            text += f"; annotated images in {Path(self.saved[0]).parent}"
        if self.record:
            text += f"; recorded as {self.record}" + (" (committed)" if self.committed else "")
        return text

    def extra_html(self) -> str:
        import html

        parts = []
        for picture, label in zip(self._pictures, image_labels([i["image"] for i in self.images])):
            parts.append(f"<figure style='display:inline-block;margin:4px'><img style='max-width:320px' "
                         f"src='data:image/png;base64,{picture}'/><figcaption class='nbv-note'>"
                         f"{html.escape(label)}</figcaption></figure>")
        return "".join(parts)

    def to_dict(self) -> dict:
        return {"model": self.model, "weights": self.weights, "images": self.images, "saved": self.saved,
                "record": self.record or None, "committed": self.committed}


def _known_name(root: Path, ref: str) -> bool:
    """A bare NAME of the registry or of a `model add`-ed model (not a typo of a run id or a path)."""
    from ..core.registry import versions

    if "/" in ref or "." in ref or not ref:
        return False
    return (root / "models" / f"{ref}.meta.json").exists() or bool(versions.artifact_tags(root, ref).get(ref))


def model_weights(ws, ref: str) -> str:
    """A run id (its best.pt), a weights file, a registry ref NAME@champion / NAME@vX.Y.Z / a bare
    NAME (its $MODEL_VERSION, default champion), or a `model add`-ed model NAME[@REV] (the same refs
    `train --model` and `export` take)."""
    return resolve_model(ws, ref)[0]


def resolve_model(ws, ref: str) -> tuple[str, dict]:
    """(weights path, what they are: kind, ref, version, run, commit) of a MODEL_REF, as `model_weights`."""
    if runs.is_run_id(ref) and (runs.run_dir(ws.root, ref) / "run.json").exists():
        record = runs.read(ws.root, ref)
        for key in ("best", "last"):
            path = ws.root / (record.get("weights") or {}).get(key, "")
            if path.is_file():
                return str(path), {"kind": "run", "ref": ref, "run": ref, "weights": key}
        status = runs.effective_status(record)
        if status in ("running", "queued"):
            raise NotFound(f"run {ref} has no weights yet", hint="wait until its first epoch has been saved")
        raise NotFound(f"run {ref} ended ({status}) without saving weights",
                       hint="use a run that saved weights (`nbversion runs list`), or train a new one")
    if Path(ref).expanduser().is_file():
        return str(Path(ref).expanduser().resolve()), {"kind": "file", "ref": ref}
    if "@" in ref or _known_name(ws.root, ref):   # a bare NAME honours $MODEL_VERSION, as serving does
        from .base_weights import versioned_weights
        path, info = versioned_weights(ws, ref)   # a registry ref, else a `model add`-ed NAME@REV
        return path, {k: v for k, v in info.items() if k in ("kind", "ref", "version", "commit", "name")}
    raise NotFound(f"{ref!r} is not a run, a weights file or a registry ref",
                   hint="see `nbversion runs list` and `nbversion registry`; e.g. NAME@champion")


# formats that are certainly no YOLO model (an Ultralytics export is detected as "ultralytics")
NOT_YOLO = {"onnx": "an ONNX model without Ultralytics metadata", "scikit-learn": "a scikit-learn model",
            "xgboost": "an XGBoost model", "lightgbm": "a LightGBM model", "keras": "a Keras model",
            "pickle": "a Python pickle"}


def _yolo_weights(weights: str) -> tuple[str, Optional[str]]:
    """(what Ultralytics loads, its task): a checkpoint, an ONNX / TorchScript export, an export folder.

    Anything else is refused here, naming the file and its framework, before Ultralytics fails
    deep inside with a TypeError.
    """
    from ..core.artifacts.frameworks import detect

    if Path(weights).is_dir():
        return _folder_export(Path(weights))
    found = detect(weights)   # a truncated file is refused here too
    if found.framework == "ultralytics":
        if found.format == "onnx":   # Ultralytics would try to pip-install it: say what to install instead
            require("export", f"predict with the ONNX model {Path(weights).name}", ("onnxruntime",))
        return weights, found.params.get("task")
    if found.framework == "unknown":   # maybe one file of a folder export (OpenVINO's .xml), else let Ultralytics try
        return _folder_export(Path(weights).parent) if _is_folder_export(Path(weights)) else (weights, None)
    what = "a TorchScript export" if found.format == "torchscript" else NOT_YOLO.get(found.framework)
    if what:
        raise InvalidInput(f"{Path(weights).name} is {what}, not an Ultralytics checkpoint or export "
                           f"(framework {found.framework}, format {found.format}): predict runs YOLO models only",
                           hint="predict with a run id, NAME@champion, a YOLO .pt or its ONNX / TorchScript "
                                "export (`nbversion export`); load other models in Python with "
                                "nbv.load_model(ref)")
    return weights, None


def _is_folder_export(path: Path) -> bool:
    from ..core.artifacts import export_metadata
    return export_metadata.ultralytics_folder(path) is not None


def _folder_export(folder: Path) -> tuple[str, Optional[str]]:
    """An Ultralytics folder export (OpenVINO, NCNN...): the folder and the task its metadata.yaml names."""
    from ..core.artifacts import export_metadata

    if not _is_folder_export(folder):
        raise InvalidInput(f"{folder.name} is a folder without the metadata.yaml of an Ultralytics export",
                           hint="give the folder Ultralytics exported, or a model file")
    return str(folder), export_metadata.folder_metadata(folder).get("task")


def image_labels(paths: list) -> list[str]:
    """How each image is named in tables and saved files: its file name, or as many trailing
    folders as tell two images of the same name apart (a/img.png, b/img.png)."""
    parts = [Path(p).parts for p in paths]
    labels = [Path(p).name for p in paths]
    for depth in range(2, max((len(p) for p in parts), default=1) + 1):
        clashing = {label for label in labels if labels.count(label) > 1}
        if not clashing:
            break
        labels = ["/".join(p[-depth:]) if label in clashing else label for p, label in zip(parts, labels)]
    return labels


def _check_images(images) -> list[Path]:
    from PIL import Image, UnidentifiedImageError

    paths = []
    for image in images:
        path = Path(image).expanduser()
        if not path.is_file():
            raise NotFound(f"{image}: no such image", hint="give paths to .jpg / .png files")
        try:
            with Image.open(path) as picture:
                picture.verify()
        except Exception as exc:   # Ultralytics patches Image.open; its HEIF fallback raises ImportError
            logger.debug("Pillow cannot verify %s", path, exc_info=True)
            unreadable = isinstance(exc, OSError) and not isinstance(exc, UnidentifiedImageError)
            reason = exc if unreadable else "unknown image format"
            raise InvalidInput(f"{image}: not a readable image ({reason})", hint="give .jpg / .png files") from None
        paths.append(path.resolve())
    return paths


def load(ws: Workspace, model: str, imgsz: Optional[int] = None) -> tuple[str, Optional[str], dict]:
    """(what Ultralytics loads, its task, what the MODEL_REF resolved to) — refused early if no YOLO,
    or if `imgsz` is not the size a fixed-size export was made for."""
    require("yolo", "predict")
    path, source = resolve_model(ws, model)
    weights, task = _yolo_weights(path)
    if imgsz:
        _check_fixed_size(model, weights, imgsz)
    return weights, task, source


def _check_fixed_size(model: str, weights: str, imgsz: int) -> None:
    """An export made without --dynamic takes one input size: Ultralytics would run it at that
    size whatever --imgsz says (and a comparison would pit two sizes against each other)."""
    from ..core.artifacts.frameworks import detect

    if Path(weights).is_dir() or not weights.endswith((".onnx", ".torchscript")):
        return
    params = detect(weights).params
    fixed = params.get("imgsz")
    if isinstance(fixed, int) and not params.get("dynamic") and fixed != imgsz:
        raise UsageError(f"{model} is an export fixed at {fixed} px ({Path(weights).name}); --imgsz {imgsz} "
                         f"cannot be used with it",
                         hint=f"leave --imgsz out (or give {fixed}), or export with --dynamic for any size")


def detections_of(boxes) -> list[dict]:
    """Ultralytics' (class, confidence, xyxy) boxes as recorded: with centre and area (pixels)."""
    found = []
    for name, score, box in boxes:
        x1, y1, x2, y2 = (round(v, 2) for v in box)
        found.append({"class": name, "confidence": round(score, 4), "box": [x1, y1, x2, y2],
                      "centre": [round((x1 + x2) / 2, 2), round((y1 + y2) / 2, 2)],
                      "area": round(max(0.0, x2 - x1) * max(0.0, y2 - y1), 1)})
    return found


def image_facts(path: Path) -> dict:
    from PIL import Image

    from ..core.backends.hashing import file_md5

    with Image.open(path) as picture:
        width, height = picture.size
    return {"name": path.name, "path": str(path), "md5": file_md5(path), "width": width, "height": height,
            "bytes": path.stat().st_size}


def build_record(ws: Workspace, source: dict, weights: str, paths: list, found: list, conf: float, iou: float,
                 imgsz: Optional[int]) -> dict:
    """What `predict history` keeps of one call: the model as resolved, the settings, per image its
    identity (md5, size), time and detections."""
    from ..core.backends import _git
    from ..core.backends.hashing import file_md5
    from .prediction_log import stamp

    model = {**source, "weights": _relative(ws.root, weights),
             "md5": file_md5(Path(weights)) if Path(weights).is_file() else None}
    model.setdefault("commit", _git.head(ws.root))   # the workspace's version when not a registry one
    record_id, when = stamp()
    return {"id": record_id, "when": when, "model": model,
            "conf": conf, "iou": iou, "imgsz": imgsz,
            "images": [{**image_facts(path), "ms": round(item["ms"], 2), "detections": detections_of(item["boxes"])}
                       for path, item in zip(paths, found)]}


def _relative(root: Path, path: str) -> str:
    try:
        return Path(path).resolve().relative_to(Path(root).resolve()).as_posix()
    except ValueError:
        return str(path)


def predict(ws: Workspace, model: str, images: Iterable[str | os.PathLike], conf: float = 0.25, iou: float = 0.7,
            imgsz: Optional[int] = None, save: Optional[str] = None, history: bool = True, record: bool = False,
            on_event: Optional[EventCallback] = None) -> Detections:
    """Detect objects in images with a run, a weights file or a registered model (`nbversion predict`).

    The model is an Ultralytics YOLO: a .pt checkpoint, or its ONNX (needs onnxruntime) or
    TorchScript export; other formats (scikit-learn, Keras, a non-YOLO ONNX...) are refused
    with an error naming the file and its framework.

    Args:
        model: a run id, a weights file, NAME@champion or NAME@vX.Y.Z.
        images: paths of the images.
        conf: confidence threshold.
        iou: IoU threshold of non-maximum suppression.
        imgsz: inference size (default: the model's).
        save: write annotated images to this folder.
        history: keep a record of this call (model version, images, detections) for
            `predict history`, in a git-ignored folder; False keeps nothing.
        record: commit that record (with an audit line), so it is part of the history of
            the workspace.
        on_event: called with progress `Event`s.

    Returns:
        Detections: the boxes found in each image, the annotated images saved, and the
        record's id.

    Example:
        >>> ws = nbv.open(".")
        >>> ws.predict("det@champion", ["street.jpg"], conf=0.4)
    """
    from PIL import Image

    from . import _yolo

    emit = emitter(on_event)
    weights, task, source = load(ws, model, imgsz)
    paths = _check_images(images)
    emit(Event("predict", 0, len(paths), model))
    found = _yolo.predict(weights, paths, conf, iou, imgsz, task)
    result = Detections(model, weights)
    saved_as = image_labels([str(p) for p in paths])
    for path, item, label in zip(paths, found, saved_as):
        result.images.append({"image": str(path), "ms": round(item["ms"], 2), "boxes": detections_of(item["boxes"])})
        picture = Image.fromarray(item["annotated"])
        buffer = io.BytesIO()
        picture.save(buffer, format="PNG")
        result._pictures.append(base64.b64encode(buffer.getvalue()).decode())
        if save:
            # two images both named img.png (a/img.png, b/img.png) must not overwrite each other
            target = Path(save).expanduser() / f"{Path(label).with_suffix('').as_posix().replace('/', '_')}.png"
            target.parent.mkdir(parents=True, exist_ok=True)
            picture.save(target)
            result.saved.append(str(target))
    if history or record:
        from . import prediction_log

        kept = build_record(ws, source, weights, paths, found, conf, iou, imgsz)
        try:
            prediction_log.save(ws, kept, commit=record)
            result.record, result.committed = kept["id"], record
        except OSError as exc:   # a read-only workspace: the boxes found are still the answer
            if record:
                raise
            logger.warning("predict: no record kept in %s (%s)", prediction_log.LOCAL_DIR, exc)
    emit(Event("predict", len(paths), len(paths), model))
    return result
