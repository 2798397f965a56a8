"""`model add|list|show|compare`: weights files as versions, with metrics, params and lineage.

Weights live in `models/<name>/` (DVC), the metadata in `models/<name>.meta.json` (git).
Rolling back is the workspace's `checkout REV models/<name> models/<name>.meta.json`.
"""
from __future__ import annotations

import logging
import math
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from ...errors import NbversionError, NotFound, UsageError
from ...events import Event, emitter
from .. import paging
from ..result import Result
from ..units import human_bytes
from ..backends.hashing import file_md5
from ..audit.chain import now_iso
from ..backends import _dvc, statcache
from . import dataset_meta
from ..repo import leftovers, names, refs
from ..backends.faults import checkpoint
from .frameworks import detect, normalise_metric

from typing import TYPE_CHECKING, Optional

if TYPE_CHECKING:   # annotations only: core.workspace imports this module into Workspace
    from typing import Iterable
    from ...events import EventCallback
    from ..workspace import Workspace

from .dataset_meta import MODELS_DIR as KIND_DIR

logger = logging.getLogger(__name__)


@dataclass
class ModelResult(Result):
    """One model version: what `model add` made and what `model show` reads."""

    name: str
    commit: str | None
    meta: dict
    changed: bool = True
    rev: str = "latest"

    def table(self):
        rows = [["metric", k, v] for k, v in self.meta.get("metrics", {}).items()]
        rows += [["param", k, v] for k, v in self.meta.get("params", {}).items()]
        return ["kind", "name", "value"], rows

    def summary(self):
        m = self.meta
        lineage = (m.get("lineage") or {}).get("dataset")
        lines = [f"{self.name}@{self.rev} = {(self.commit or '')[:8]}  {m.get('framework')} ({m.get('format')}), "
                 f"{m.get('file')}, {human_bytes(m.get('size'))}, md5 {m.get('md5')}"]
        if len(m.get("files") or []) > 1:
            lines.append(f"{len(m['files'])} files: {', '.join(f['path'] for f in m['files'])}")
        if m.get("class_names"):
            lines.append(f"classes: {', '.join(m['class_names'])}")
        if lineage:
            lines.append(f"trained on dataset {lineage['name']} at {lineage['commit'][:8]} ({lineage.get('md5')})")
        if m.get("parent"):   # made by `export`: where from, how, and whether its boxes agree
            parent, args = m["parent"], m.get("export") or {}
            lines.append(f"exported from {parent.get('ref')} ({parent.get('kind')} {parent.get('version') or ''}, "
                         f"md5 {parent.get('md5')}) to {args.get('format')} at imgsz {args.get('imgsz')}")
            check = m.get("export_check") or {}
            if check:
                lines.append(f"export check: {check['skipped']}" if check.get("skipped") else
                             f"export check: max IoU difference {check.get('max_iou_diff')}, boxes .pt "
                             f"{check.get('boxes_pt')} / export {check.get('boxes_export')} ({check.get('matched')} paired)")
        lines.append(f"added by {m.get('added_by')} at {m.get('added_at')}")
        if not self.changed:
            lines.append("no change: the same weights, metrics and params are already the latest version")
        return "\n".join(lines)


@dataclass
class ModelListResult(Result):
    models: list
    page: Optional[paging.Page] = None

    def to_dict(self) -> dict:
        return {"models": self.models, **(self.page.to_dict() if self.page else {})}

    def table(self):
        rows = [[m["name"], m["version"][:8], m["versions"], m["framework"], human_bytes(m["size"]),
                 ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in
                           list(m["metrics"].items())[:4]), m["added_by"], m["added_at"]] for m in self.models]
        return ["name", "version", "versions", "framework", "size", "metrics", "by", "when"], rows

    def summary(self):
        return "" if self.models else "no models yet: `nbversion model add NAME FILE`"


@dataclass
class ModelCompareResult(Result):
    refs: list                                  # the refs as given
    commits: list
    rows: list = field(default_factory=list)    # [{"kind", "key", "values", "best"}]

    def table(self):
        body = []
        for row in self.rows:
            cells = [("" if v is None else f"{v:.4g}" if isinstance(v, float) else str(v))
                     + (" *" if i == row["best"] else "") for i, v in enumerate(row["values"])]
            body.append([row["kind"], row["key"], *cells])
        return ["kind", "name", *self.refs], body

    def summary(self):
        return "* = best value of the row (lowest for losses, highest otherwise)"


def dataset_lineage(root: Path, ref: str | None, train_data: str | None = None) -> dict | None:
    """{"name", "commit", "md5"} of the dataset version a model was trained on."""
    if not ref and train_data:
        return _lineage_from_train_args(root, Path(train_data))
    if not ref:
        return None
    name, rev = refs.split_ref(ref)
    commit = refs.resolve(root, "datasets", name, rev)
    meta = dataset_meta.read_at(root, "datasets", name, commit)
    return {"name": name, "commit": commit, "md5": meta.get("content_hash")}


def _lineage_from_train_args(root: Path, data: Path) -> dict | None:
    """A checkpoint trained on <workspace>/datasets/NAME/data.yaml: NAME's latest version, if any."""
    if not data.is_absolute() or data.parent.parent != root / "datasets":
        return None
    try:
        return dataset_lineage(root, data.parent.name)
    except NbversionError:   # not a versioned dataset: no lineage rather than no model
        return None


def check_metrics(metrics) -> None:
    """A metric is a finite number: `inf`, `nan` or text would win or break every comparison and gate."""
    for key, value in (metrics or {}).items():
        is_number = isinstance(value, (int, float)) and not isinstance(value, bool)
        if not is_number or not math.isfinite(value):
            raise UsageError(f"--metric {key}={value}: a metric must be a finite number",
                             hint=f"e.g. --metric {key}=0.71 (text belongs in --param)")


def add(ws: Workspace, name: str, file, metrics: Optional[dict] = None,
        params: Optional[dict] = None, dataset: str | None = None, message: str | None = None,
        on_event: Optional[EventCallback] = None, rename: bool = False,
        model_file: Optional[str] = None, provenance: Optional[dict] = None) -> ModelResult:
    """Version a weights file (or a folder, or several files) with its metrics, parameters and
    dataset lineage (`nbversion model add`).

    Args:
        name: model name, the folder under models/.
        file: the weights (.pt .pth .onnx .h5 .keras .pb .tflite .pkl .joblib .json .ubj .txt),
            a folder (every file in it, sub-paths kept), or a list of files and folders.
            `metrics.json` / `metrics_*.json` among them are read into the metrics.
        metrics: metric name to number, e.g. {"mAP50": 0.71}; wins over metrics.json.
        params: parameter name to value.
        dataset: NAME[@REV] of the dataset version it was trained on.
        message: commit message (default: one naming the model).
        on_event: called with progress `Event`s (detect, copy, commit).
        rename: store the model file as `model<suffix>` (`best.pt` -> `model.pt`).
        model_file: which file is the model when several are (its name or path in the folder).
        provenance: metadata keys set by the operation that made the file (`export`: parent,
            export arguments, its check, lineage), over what is read from the file.

    Returns:
        ModelResult: the name, commit and metadata of the new version.

    Example:
        >>> ws = nbv.open(".")
        >>> ws.model_add("det", "best.pt", metrics={"mAP50": 0.71}, dataset="traffic")
    """
    from .metrics_files import read_metrics
    from .model_files import VersionFiles, refuse_metadata_only, renamed, version_files

    emit = emitter(on_event)
    root = ws.root
    refs.check_new_name(root, KIND_DIR, name)
    sources = [file] if isinstance(file, (str, os.PathLike)) else list(file)
    paths = [Path(os.path.expanduser(str(s))).resolve() for s in sources]
    for path in paths:
        if not path.exists():
            raise NotFound(f"{path}: no such weights file or folder", hint="give the path of a .pt / .onnx / ... file")
        if root / KIND_DIR / name in [path, *path.parents]:
            raise UsageError(f"{path} is already inside models/{name}/", hint="add weights from outside models/")
        if path.is_dir() and root.resolve().is_relative_to(path):
            raise UsageError(f"{path} holds the whole workspace", hint="give the folder with the model and its files")
    check_metrics(metrics)
    leftovers.remove(root)   # what killed imports and model adds left behind (never a live one's)
    emit(Event("detect", 0, 1, paths[0].name))
    if len(paths) == 1 and paths[0].is_file() and not model_file:
        refuse_metadata_only(paths[0])   # a lone signature or metrics.json: no model to version
        found = detect(paths[0])   # one file: any format nbversion reads, checked as it always was
        picked = VersionFiles({paths[0].name: paths[0]}, paths[0].name, found)
        if rename:
            picked.files, picked.model_file = renamed(picked.files, picked.model_file)
    else:
        picked = version_files(paths, model_file, rename)
        found = picked.detected
    model_path = picked.files[picked.model_file]
    listed = [{"path": rel, "md5": file_md5(path), "size": path.stat().st_size} for rel, path in picked.files.items()]
    model_entry = next(entry for entry in listed if entry["path"] == picked.model_file)
    meta = {"name": name, "framework": found.framework, "format": found.format, "file": picked.model_file,
            "size": model_entry["size"], "md5": model_entry["md5"], "files": listed,
            "metrics": {**found.metrics, **read_metrics(picked.files),
                        **{normalise_metric(k): v for k, v in (metrics or {}).items()}},
            "params": {**found.params, **(params or {})}, "class_names": found.class_names,
            "lineage": {"dataset": dataset_lineage(root, dataset, found.params.get("data")), "run": None}}
    meta.update(provenance or {})
    with ws.transaction("model add") as tx:
        current = dataset_meta.read_current(root, KIND_DIR, name)
        if current and all(current.get(k) == meta[k] for k in ("md5", "metrics", "params", "lineage", "file")) \
                and _listed(current) == listed:
            return ModelResult(name, refs.versions(root, KIND_DIR, name)[0].sha, current, changed=False)
        _store_weights(root, name, picked.files, emit)
        meta.update(added_by=tx.user, added_at=now_iso("seconds"))
        meta_file = dataset_meta.write(root, KIND_DIR, name, meta)
        tx.audit("model add", name, {"md5": meta["md5"], "framework": meta["framework"],
                                     "metrics": meta["metrics"], "dataset": meta["lineage"]["dataset"],
                                     **({"files": len(listed)} if len(listed) > 1 else {})})
        more = f" and {len(listed) - 1} more file(s)" if len(listed) > 1 else ""
        sha = tx.commit(message or f"model {name}: add {model_path.name}{more}",
                        [f"{KIND_DIR}/{name}.dvc", f"{KIND_DIR}/.gitignore", meta_file])
    return ModelResult(name, sha, meta)


def _listed(meta: dict) -> list:
    """The files of a version; metadata from before versions had several files names one."""
    return meta.get("files") or [{"path": meta.get("file"), "md5": meta.get("md5"), "size": meta.get("size")}]


def _store_weights(root: Path, name: str, files: dict, emit) -> None:
    """Replace models/<name>/ with just these files (stored path -> source) and track it with DVC."""
    out = f"{KIND_DIR}/{name}"
    # owned while we run: a killed model add's folder is swept by the next add, gc, verify --repair
    with leftovers.owned_folder(root, leftovers.MODEL_PREFIX, name) as tmp:
        (tmp / "new").mkdir(parents=True)
        for rel, path in files.items():
            (tmp / "new" / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, tmp / "new" / rel)
        checkpoint("model-copied")
        target = root / out
        logger.debug("model %s: %s replaces %s", name, ", ".join(files),
                     "the previous file(s)" if target.exists() else "nothing")
        if target.exists():
            os.replace(target, tmp / "previous")
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(tmp / "new", target)
        emit(Event("dvc add", 0, 1, out))
        try:
            _dvc.add(root, [out])   # `core.link` decides: copy (default) or read-only hard link
        except BaseException:
            shutil.rmtree(target, ignore_errors=True)
            if (tmp / "previous").exists():
                os.replace(tmp / "previous", target)
            raise
    pointer = dataset_meta.pointer_at(root, KIND_DIR, name, None)
    fresh = {out: statcache.fingerprint(root, pointer)}
    statcache.mark_clean(root, fresh, fresh)


def list_models(ws: Workspace, limit: Optional[int] = None, offset: int = 0) -> ModelListResult:
    """Models with their latest version (`nbversion model list`).

    Args:
        limit: at most this many models (default: all), by name.
        offset: skip this many first (the next page).

    Returns:
        ModelListResult: `models`, one dict per model (name, version, versions, framework, size,
        metrics, added_by, added_at).

    Example:
        >>> ws = nbv.open(".")
        >>> ws.model_list()
    """
    found = []
    for name, history, meta in dataset_meta.catalogue(ws.root, KIND_DIR):
        found.append({"name": name, "version": history[0].sha, "versions": len(history),
                      "framework": meta.get("framework"), "size": meta.get("size", 0),
                      "metrics": meta.get("metrics", {}), "added_by": meta.get("added_by", ""),
                      "added_at": meta.get("added_at", "")})
    page, whole = paging.window(found, limit, offset)
    return ModelListResult(page, whole)


def _resolve(ws, ref: str) -> tuple[str, str, dict]:
    name, rev = refs.split_ref(ref)
    names.check_readable_name(name, "model")
    commit = refs.resolve(ws.root, KIND_DIR, name, rev)
    return name, commit, dataset_meta.read_at(ws.root, KIND_DIR, name, commit)


def show(ws: Workspace, ref: str) -> ModelResult:
    """Metadata of a model version (`nbversion model show`).

    Args:
        ref: NAME or NAME@REV; REV is a commit, a tag, or ~N (N versions back).

    Returns:
        ModelResult: the name, commit and metadata (framework, metrics, params, lineage).

    Example:
        >>> ws = nbv.open(".")
        >>> ws.model_show("det@~1").meta["metrics"]
    """
    name, commit, meta = _resolve(ws, ref)
    return ModelResult(name, commit, meta, rev=refs.split_ref(ref)[1] or "latest")


def _best(key: str, values: list) -> int | None:
    numbers = [(v, i) for i, v in enumerate(values) if isinstance(v, (int, float)) and not isinstance(v, bool)]
    if len(numbers) < 2 or len({v for v, _ in numbers}) == 1:
        return None
    lower_is_better = "loss" in key.lower() or key.lower() in ("error", "rmse", "mae", "mse", "latency")
    return (min if lower_is_better else max)(numbers)[1]


def _dataset_label(meta: dict) -> str:
    lineage = (meta.get("lineage") or {}).get("dataset")
    return f"{lineage['name']}@{lineage['commit'][:8]}" if lineage else ""


def compare(ws: Workspace, model_refs: Iterable[str]) -> ModelCompareResult:
    """Metrics and parameters of two or more model versions side by side (`nbversion model compare`).

    Args:
        model_refs: two or more NAME[@REV] references.

    Returns:
        ModelCompareResult: one row per metric or parameter, the best value marked.

    Example:
        >>> ws = nbv.open(".")
        >>> ws.model_compare(["det@~1", "det"])
    """
    model_refs = list(model_refs)
    if len(model_refs) < 2:
        raise UsageError("compare needs at least two model versions",
                         hint="e.g. `nbversion model compare yolo@~1 yolo` or `model compare a b`")
    metas, commits = [], []
    for ref in model_refs:
        _name, commit, meta = _resolve(ws, ref)
        metas.append(meta)
        commits.append(commit)
    result = ModelCompareResult([f"{r} ({c[:7]})" for r, c in zip(model_refs, commits)], commits)
    for kind, section in (("metric", "metrics"), ("param", "params")):
        keys = list(dict.fromkeys(k for m in metas for k in m.get(section, {})))
        for key in keys:
            values = [m.get(section, {}).get(key) for m in metas]
            result.rows.append({"kind": kind, "key": key, "values": values,
                                "best": _best(key, values) if kind == "metric" else None})
    result.rows.append({"kind": "info", "key": "dataset", "values": [_dataset_label(m) for m in metas], "best": None})
    result.rows.append({"kind": "info", "key": "framework", "values": [m.get("framework") for m in metas], "best": None})
    result.rows.append({"kind": "info", "key": "size", "values": [m.get("size") for m in metas], "best": None})
    return result
