"""`export MODEL_REF --format onnx|torchscript|...`: an Ultralytics export as a new version.

The source is resolved as `predict` and `register` resolve it (a run, NAME@champion / NAME@vX.Y.Z,
a `model add`-ed NAME[@REV], a .pt file). The exporter runs on a copy of the weights in a temp
folder under `.nbversion/tmp` (it writes beside the file it reads: a registered version's folder
must never get a new file); the result becomes a `model add` version (NAME-FORMAT) or, with
`register`, a registry version. An existing version is never changed.
"""
from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Optional

from ..core.result import Result
from ..errors import MissingExtra, NbversionError, NotFound, UsageError
from ..events import Event, emitter
from ..extras import missing, require
from . import export_check

if TYPE_CHECKING:   # annotations only: core.workspace imports this module into Workspace
    from ..core.workspace import Workspace
    from ..events import EventCallback

logger = logging.getLogger(__name__)

# format -> (module, pip package) each needs beyond the yolo extra; onnx: the export extra
FORMATS = {
    "torchscript": (),
    "onnx": (("onnx", "nbversion[export]"), ("onnxslim", "nbversion[export]"), ("onnxruntime", "nbversion[export]")),
    "openvino": (("openvino", "openvino"),),
    "engine": (("tensorrt", "tensorrt"),),
    "coreml": (("coremltools", "coremltools"),),
    "saved_model": (("tensorflow", "tensorflow"), ("onnx2tf", "onnx2tf")),
    "pb": (("tensorflow", "tensorflow"), ("onnx2tf", "onnx2tf")),
    "litert": (("tensorflow", "tensorflow"), ("onnx2tf", "onnx2tf")),
    "edgetpu": (("tensorflow", "tensorflow"), ("onnx2tf", "onnx2tf")),
    "paddle": (("paddle", "paddlepaddle"), ("x2paddle", "x2paddle")),
    "mnn": (("MNN", "MNN"),),
    "ncnn": (("ncnn", "ncnn"), ("pnnx", "pnnx")),
    "executorch": (("executorch", "executorch"),),
}


@dataclass
class ExportResult(Result):
    source: str                 # the MODEL_REF as given
    format: str
    name: str                   # the new model (or registry) name
    version: str                # the model version's commit, or the registry version vX.Y.Z
    file: str
    registered: bool = False
    export: dict = field(default_factory=dict)
    export_check: dict = field(default_factory=dict)
    parent: dict = field(default_factory=dict)
    changed: bool = True

    def table(self):
        rows = [["source", self.source], ["format", self.format], ["file", self.file],
                ["version", f"{self.name}@{self.version if self.registered else self.version[:8]}"]]
        rows += [[f"check {k}", v] for k, v in self.export_check.items() if k != "images"]
        return ["", "value"], rows

    def summary(self):
        kind = "registry version" if self.registered else "model version"
        head = f"exported {self.source} to {self.format}: {kind} {self.name}@" \
               f"{self.version if self.registered else self.version[:8]}"
        if not self.changed:
            head += " (the same file was already the latest version)"
        return head + "\n" + export_check.describe(self.export_check)


def check_format(fmt: str) -> None:
    """Refuse an unknown format, or one whose converter is not installed, before anything is written."""
    if fmt not in FORMATS:
        raise UsageError(f"--format {fmt!r} is not an export format",
                         hint=f"formats: {', '.join(FORMATS)}")
    require("yolo", f"export --format {fmt}")
    if fmt == "onnx":
        require("export", "export --format onnx")
        return
    absent = [(module, pip) for module, pip in FORMATS[fmt] if missing("export", [module])]
    if absent:
        raise MissingExtra(f"export --format {fmt} needs {', '.join(m for m, _ in absent)} (not installed)",
                           hint=f"pip install {' '.join(dict.fromkeys(p for _, p in absent))}")


def resolve_source(ws: Workspace, ref: str) -> dict:
    """The weights, lineage, metrics and identity of MODEL_REF: register's reading of a run, a model or
    a file; a registry ref through `resolve` (what `predict` does)."""
    from ..core.backends.hashing import file_md5
    from ..core.registry import versions
    from ..core.repo import refs

    from . import runs

    ref = _run_of_weights(ws.root, ref)
    name, _, selector = ref.partition("@")
    is_run = runs.is_run_id(ref) and (runs.run_dir(ws.root, ref) / "run.json").exists()
    is_model = bool(name) and "/" not in name and (ws.root / "models" / f"{name}.meta.json").exists()
    resolved = None
    if not (is_run or Path(ref).is_file()) and ("@" in ref or not is_model) and _is_registered(ws.root, name):
        # NAME@REV: the registry first, as `train --model` and `predict` read it; a `model add`-ed model
        # of the same name answers what the registry does not know (NAME@~1, a commit). A bare NAME
        # that is both is the model, as `model show NAME` reads it.
        try:
            resolved = ws.resolve(ref)   # a bare NAME honours $MODEL_VERSION, as serving does
        except NotFound:
            if not is_model:
                raise
    if resolved is not None:
        manifest = versions.read_manifest(ws.root, resolved.name, resolved.version, resolved.commit)
        weights = Path(resolved.path)
        return {"weights": weights, "kind": "registry", "name": resolved.name, "metrics": manifest.get("metrics") or {},
                "lineage": manifest.get("lineage") or {},
                "parent": {"ref": ref, "kind": "registry", "version": resolved.version, "commit": resolved.commit,
                           "md5": file_md5(weights)}}
    try:
        origin = versions._source(ws, ref)   # the one reading of RUN | MODEL[@REV] | FILE
    except NotFound as exc:
        if not str(exc).startswith("--from"):
            raise
        raise NotFound(f"{ref!r} is not a run, a model, a registry ref or a weights file",
                       hint="see `nbversion runs list`, `nbversion model list` and `nbversion registry`") from None
    weights = Path(origin["files"][origin["model_file"]])
    kind = origin["source"].partition(":")[0]
    parent = {"ref": ref, "kind": kind, "md5": file_md5(weights)}
    lineage = dict(origin.get("lineage") or {})
    if kind == "run":
        from ..core.backends import _git
        record = runs.read(ws.root, origin["lineage"]["run"])   # the commit that recorded the finished run:
        parent.update(version=record.get("id"), commit=_git.last_commit_touching(ws.root, f"runs/{ref}/run.json"))
        base = Path(str(record.get("model") or "model")).stem.partition("@")[0]
    elif kind == "model":
        parent.update(version=selector or "latest", commit=refs.resolve(ws.root, "models", name, selector or None))
        base = name
    else:
        from ..core.artifacts.models import dataset_lineage
        lineage["dataset"] = lineage.get("dataset") or dataset_lineage(ws.root, None, origin["params"].get("data"))
        base = weights.stem
    return {"weights": weights, "kind": kind, "name": base, "metrics": origin.get("metrics") or {},
            "lineage": lineage, "parent": parent}


def _run_of_weights(root: Path, ref: str) -> str:
    """`runs/<id>/weights/best.pt` given as a path is that run: its lineage, not a bare file's."""
    from . import runs

    path = Path(ref).expanduser()
    if not path.is_file() or path.suffix != ".pt":
        return ref
    try:
        run_id, weights = path.resolve().relative_to(root.resolve() / "runs").parts[0], path.resolve()
    except (ValueError, IndexError):
        return ref
    record = runs.run_dir(root, run_id) / "run.json"
    best = (runs.read(root, run_id).get("weights") or {}).get("best") if record.exists() else None
    return run_id if best and (root / best).resolve() == weights else ref


def _is_registered(root: Path, name: str) -> bool:
    from ..core.registry import tags, versions

    try:
        tags.check_name(name)
    except NbversionError:   # not a name a model can have: a path, a typo
        return False
    return bool(versions.artifact_tags(root, name).get(name))


def export(ws: Workspace, model: str, format: str = "onnx", imgsz: Optional[int] = None, half: bool = False,
           dynamic: bool = False, register: Optional[str] = None, bump: Optional[str] = None,
           version: Optional[str] = None, name: Optional[str] = None, check: bool = True,
           on_event: Optional[EventCallback] = None) -> ExportResult:
    """Export a YOLO model with Ultralytics' exporter into a new model or registry version (`nbversion export`).

    Args:
        model: a run id, NAME@champion / NAME@vX.Y.Z, a `model add`-ed NAME[@REV], or a .pt file.
        format: onnx, torchscript, openvino, engine, coreml, saved_model, ... (Ultralytics' names).
        imgsz: input size of the export (default: the model's training size).
        half: FP16 weights.
        dynamic: dynamic input size (ONNX, TorchScript, OpenVINO, TensorRT).
        register: register the export as a version of this registry model (with `bump` or `version`)
            instead of adding it as a model version.
        bump: "major", "minor" or "patch" (with `register`).
        version: an explicit version "X.Y.Z" (with `register`).
        name: the model version's name (default: NAME-FORMAT, NAME being the source's model name).
        check: compare the exported model's boxes with the .pt's on images of its training dataset.
        on_event: called with progress `Event`s (export, check, add / register).

    Returns:
        ExportResult: the new version, the export arguments and the check's figures.

    Example:
        >>> ws = nbv.open(".")
        >>> ws.export("det@champion", format="onnx", register="det-onnx", bump="patch")
    """
    from ..core.backends.faults import checkpoint
    from ..core.layout import tmp_dir
    from ..core.repo import leftovers
    from . import _yolo

    emit = emitter(on_event)
    format = format.strip().lower()   # ONNX, TorchScript: the names as people write them
    check_format(format)
    if register and name:
        raise UsageError("give --register NAME (a registry version) or --name NAME (a model version), not both")
    if not register and (bump or version):
        raise UsageError("--bump and --version go with --register NAME", hint="e.g. --register det-onnx --bump patch")
    if register and bool(bump) == bool(version):
        raise UsageError("--register needs exactly one of --bump major|minor|patch or --version X.Y.Z")
    if half and format == "torchscript":
        raise UsageError("--half with --format torchscript needs a GPU export; nbversion exports on the CPU",
                         hint="export without --half, or use --format onnx --half")
    source = resolve_source(ws, model)
    if source["weights"].suffix != ".pt":
        from ..core.artifacts.frameworks import detect
        from ..errors import InvalidInput

        try:
            found = detect(source["weights"])
            what = f"{found.framework} ({found.format})"
        except NbversionError:
            found, what = None, "no format nbversion knows"
        if found is not None and found.framework == "ultralytics":   # an export: its .pt can be exported
            raise InvalidInput(f"{model} is {source['weights'].name}, an export: only a .pt checkpoint can be exported",
                               hint="export the run or the version the export came from (its `parent`)")
        raise InvalidInput(f"{model} is {source['weights'].name}, {what}: export converts Ultralytics YOLO "
                           ".pt checkpoints only",
                           hint="serve other models as they are registered (`nbv.load_model`), see docs/serving.md")
    target = register or name or f"{source['name']}-{format}"
    tmp_dir(ws.root).mkdir(parents=True, exist_ok=True)
    leftovers.remove(ws.root)   # what killed exports, imports and model adds left (never a live one's)
    with leftovers.owned_folder(ws.root, leftovers.EXPORT_PREFIX, target) as folder:
        copy = folder / "export" / source["weights"].name
        copy.parent.mkdir(parents=True)
        shutil.copyfile(source["weights"], copy)   # Ultralytics writes beside the file it exports
        emit(Event("export", 0, 1, f"{model} to {format}"))
        written, arguments = _yolo.export(copy, format, imgsz, half, dynamic)
        arguments = _size_written(written, arguments)
        checkpoint("export-written")   # the crash tests kill us here: a temp folder, nothing versioned
        emit(Event("export", 1, 1, written.name))
        outcome = _check(ws.root, source, copy, written, arguments, folder / "images", emit) if check \
            else {"skipped": "not asked for (--no-check)"}
        # the source's whole lineage: dataset, run, cell and the base weights it was trained from
        provenance = {"framework": "ultralytics", "parent": source["parent"], "export": arguments,
                      "export_check": outcome, "metrics": source["metrics"], "source": f"export:{model}",
                      "lineage": dict(source["lineage"] or {})}
        if register:
            emit(Event("register", 0, 1, register))
            made = ws.register(register, version=version, bump=bump, source=str(written),
                               message=f"export of {model} to {format}", on_event=on_event, provenance=provenance)
            return ExportResult(model, format, register, made.version, written.name, True, arguments, outcome,
                                source["parent"])
        emit(Event("add", 0, 1, target))
        made = ws.model_add(target, written, message=f"model {target}: export of {model} to {format}",
                            on_event=on_event, provenance=provenance)
        emit(Event("add", 1, 1, target))
        return ExportResult(model, format, target, made.commit or "", written.name, False, arguments,
                            made.meta.get("export_check", outcome), source["parent"], made.changed)


def _size_written(written: Path, arguments: dict) -> dict:
    """Ultralytics rounds `imgsz` up to a multiple of the model's stride: record the size the file has
    (and the one asked for, when it differs)."""
    from ..core.artifacts.frameworks import detect

    try:
        actual = detect(written).params.get("imgsz") if written.is_file() else None
    except NbversionError:
        actual = None
    if actual is None or actual == arguments.get("imgsz"):
        return arguments
    return {**arguments, "imgsz": actual, "imgsz_asked": arguments.get("imgsz")}


def _check(root: Path, source: dict, weights: Path, written: Path, arguments: dict, scratch: Path, emit) -> dict:
    images, reason = export_check.pick_images(root, (source["lineage"] or {}).get("dataset"), scratch)
    if not images:
        logger.debug("export check skipped: %s", reason)
        return {"skipped": reason}
    if written.is_dir():
        return {"skipped": f"{written.name} is a folder; the check runs single-file exports"}
    emit(Event("check", 0, len(images), f"{written.name} against {weights.name}"))
    outcome = export_check.compare(weights, written, images, int(_first(arguments["imgsz"])))
    emit(Event("check", len(images), len(images), export_check.describe(outcome)))
    return outcome


def _first(imgsz):
    return imgsz[0] if isinstance(imgsz, (list, tuple)) else imgsz

