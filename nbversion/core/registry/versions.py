"""`register`, `registry`, `resolve`: immutable semver versions of model weights.

A version is `registry/<name>/vX.Y.Z/`: `manifest.json` in git, the weights in `files/`
tracked by DVC, and the annotated tag `<name>@vX.Y.Z` on the registering commit. The tag
is made last: a version without its tag is a half version that `audit verify` reports.
No `artifacts.yaml` is written: GTO 1.10 finds artifacts from the tags alone, and an
artifacts.yaml entry makes `gto show` list the unregistered HEAD commit as an extra version.
"""
from __future__ import annotations

import json
import logging
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from ...errors import DamagedFile, NbversionError, NotFound, UsageError, VersionExists
from ...events import Event, emitter
from ..result import Result
from ..backends.hashing import file_md5
from ..backends import _git, atomic
from ..repo import names
from ..layout import tmp_dir
from . import tags
from ..audit.chain import now_iso
from ..security import signing

from typing import TYPE_CHECKING

logger = logging.getLogger(__name__)

if TYPE_CHECKING:   # annotations only: core.workspace imports this module into Workspace
    from ...events import EventCallback
    from ..workspace import Workspace

REGISTRY_DIR = "registry"
KEY_METRICS = ("mAP50-95", "mAP50", "precision", "recall")


# --- reading the registry ------------------------------------------------------------------
def artifact_tags(root, name: Optional[str] = None) -> dict[str, tags.ArtifactTags]:
    """name -> ArtifactTags; one `git for-each-ref` however many versions there are."""
    found = tags.read_all(_git.tags(root, f"{name}[@#]*" if name else "*"))
    return {n: a for n, a in found.items() if name is None or n == name}


def one_artifact(root, name: str) -> tags.ArtifactTags:
    art = artifact_tags(root, tags.check_name(name)).get(name)
    if art is None or not art.versions:
        raise NotFound(f"no registered model named {name!r}",
                       hint=f"register one with `nbversion register {name} --version 1.0.0 --from RUN|FILE|MODEL`")
    return art


def version_dir(name: str, version: str) -> str:
    return f"{REGISTRY_DIR}/{name}/{version}"


def read_manifest(root, name: str, version: str, commit: Optional[str] = None) -> dict:
    """The manifest from the working tree, else from the version's commit (immutable either way)."""
    try:
        # plain open(), not pathlib: `registry` reads 10,000 of these in well under a second
        with open(f"{root}/{REGISTRY_DIR}/{name}/{version}/manifest.json", "rb") as fh:
            return json.loads(fh.read())
    except FileNotFoundError:
        pass
    data = _git.show(root, commit, f"{version_dir(name, version)}/manifest.json") if commit else None
    if data is None:
        raise NotFound(f"{name}@{version} has no manifest.json",
                       hint="run `nbversion audit verify`: the version may be half registered")
    return json.loads(data)


def split_ref(ref: str) -> tuple[str, str]:
    name, _, selector = ref.partition("@")
    return tags.check_name(name), selector


# --- register ------------------------------------------------------------------------------
@dataclass
class RegisterResult(Result):
    name: str
    version: str
    tag: str
    commit: str
    files: dict = field(default_factory=dict)
    metrics: dict = field(default_factory=dict)
    lineage: dict = field(default_factory=dict)
    model_file: str = ""     # the key of `files` that is the model (`files/model.joblib`)

    def table(self):
        rows = [[path, info["size"], info["md5"][:12]] for path, info in self.files.items()]
        return ["file", "bytes", "md5"], rows

    def summary(self):
        numbers = [k for k, v in self.metrics.items() if isinstance(v, (int, float)) and not isinstance(v, bool)]
        shown = ([k for k in KEY_METRICS if k in numbers] + [k for k in numbers if k not in KEY_METRICS])[:4]
        metrics = ", ".join(f"{k}={self.metrics[k]:.4g}" for k in shown)
        return f"registered {self.name}@{self.version} (tag {self.tag}, commit {self.commit[:8]})" \
               + (f"; {metrics}" if metrics else "")


def _source(ws, source, rename: bool = False, model_file: Optional[str] = None) -> dict:
    """Files, model file, metrics, params and lineage of a RUN id, a MODEL[@REV], a FILE, a FOLDER
    or several files (`source` a list); with `rename`, the model file is stored as model<suffix>."""
    from ..artifacts import model_files

    sources = [source] if isinstance(source, (str, os.PathLike)) else [str(s) for s in source]
    origin = _one_source(ws, str(sources[0]), model_file) if len(sources) == 1 else _from_paths(ws.root, sources, model_file)
    if model_file and origin["source"].startswith(("run:", "model:")):
        raise UsageError(f"--model-file {model_file}: {origin['source']} already names its model file",
                         hint="--model-file picks among the files of a folder or of several --from FILE")
    if rename:
        origin["files"], origin["model_file"] = model_files.renamed(origin["files"], origin["model_file"])
    return origin


def _one_source(ws, source: str, model_file: Optional[str]) -> dict:
    root = ws.root
    from ...training.runs import is_run_id

    run_json = root / "runs" / source / "run.json"
    if is_run_id(source) and run_json.exists():   # "../x" is no run, whatever lies there
        return _from_run(root, source, json.loads(run_json.read_text()))
    from ..repo import refs

    model_name, _, rev = source.partition("@")
    if rev and model_name and "/" not in model_name and refs.versions(root, "models", model_name):
        # NAME@~1, NAME@TAG, NAME@COMMIT: the same revisions `model show` accepts
        return _from_model(root, model_name, refs.resolve(root, "models", model_name, rev), shown=rev)
    if (root / "models" / f"{model_name}.meta.json").exists() or (rev and _git.show(root, rev, f"models/{model_name}.meta.json")):
        return _from_model(root, model_name, rev or None)
    path = Path(source) if Path(source).is_absolute() else Path.cwd() / source
    if path.is_file() and not model_file:
        return _from_file(path)
    if path.exists():
        return _from_paths(root, [path], model_file)
    raise NotFound(f"--from {source!r} is not a run, a model or a file (or a folder of files)",
                   hint="give a run id (runs/<id>/run.json), a model name (models/<name>.meta.json), "
                        "a weights file or a folder holding one")


def _from_paths(root: Path, sources: list, model_file: Optional[str]) -> dict:
    """A folder, or several files: every file kept, the model file picked, metrics*.json read."""
    from ..repo.cell import current_cell
    from ..artifacts import metrics_files, model_files

    paths = [Path(s) if Path(s).is_absolute() else Path.cwd() / s for s in sources]
    for path in paths:
        if not path.exists():
            raise NotFound(f"--from {path}: no such file or folder", hint="give the files of the version")
        if path.is_dir() and Path(root).resolve().is_relative_to(path.resolve()):
            raise UsageError(f"--from {path} holds the whole workspace",
                             hint="give the folder with the model and its files, e.g. --from artifacts/")
    picked = model_files.version_files(paths, model_file)
    metrics = {**picked.detected.metrics, **metrics_files.read_metrics(picked.files)}
    cell = current_cell.get()
    return {"files": picked.files, "model_file": picked.model_file, "metrics": metrics,
            "params": picked.detected.params, "framework": picked.detected.framework,
            "source": "files:" + ",".join(p.name for p in paths),
            "lineage": {"dataset": None, "run": None, "cell": cell.to_dict() if cell else None}}


def _from_file(path: Path) -> dict:
    """A weights file: framework, metrics and params read from it where the format keeps them."""
    from ..repo.cell import current_cell
    from ..artifacts.frameworks import detect

    from ..artifacts.model_files import refuse_metadata_only

    refuse_metadata_only(path)   # a signature or metrics.json alone would be a version with no model
    try:
        found = detect(path)
        framework, metrics, params = found.framework, found.metrics, found.params
    except DamagedFile:
        raise   # a cut-off .pt / .keras would be an immutable version nobody can load
    except NbversionError:
        framework, metrics, params = None, {}, {}   # an unknown format is still a file we can version
    cell = current_cell.get()
    return {"files": {path.name: path}, "model_file": path.name, "metrics": metrics, "params": params,
            "source": f"file:{path.name}",
            "framework": framework,
            "lineage": {"dataset": None, "run": None, "cell": cell.to_dict() if cell else None}}


def _from_run(root: Path, run_id: str, run: dict) -> dict:
    best = (run.get("weights") or {}).get("best")
    if not best or not (root / best).exists():
        raise NotFound(f"run {run_id} has no best weights ({best or 'weights.best missing in run.json'})",
                       hint="use a run that saved weights (`nbversion runs list`), or give a weights file's path")
    if run.get("status") not in (None, "completed", "finished", "stopped", "done"):
        raise UsageError(f"run {run_id} is {run.get('status')}", hint="wait until it has finished, then register it")
    dataset = run.get("dataset") or None
    lineage_dataset = {k: dataset.get(k) for k in ("name", "rev", "commit", "md5")} if dataset else None
    best_path = root / best
    return {"files": {best_path.name: best_path}, "model_file": best_path.name,
            "metrics": run.get("metrics") or {}, "params": run.get("params") or {},
            "source": f"run:{run_id}", "framework": "ultralytics",
            "lineage": {"dataset": lineage_dataset, "run": run.get("id", run_id), "cell": run.get("cell"),
                        "base": run.get("base_model")}}


def _from_model(root: Path, name: str, rev: Optional[str], shown: Optional[str] = None) -> dict:
    """`rev`: the commit to read the model at; `shown`: how the user wrote it (`~1`, a tag)."""
    raw = _git.show(root, rev, f"models/{name}.meta.json") if rev else (root / "models" / f"{name}.meta.json").read_bytes()
    shown = shown or rev
    if raw is None:
        raise NotFound(f"model {name} does not exist at {shown}", hint="see `nbversion model list` and `nbversion log`")
    meta = json.loads(raw)
    files = {entry["path"]: _model_file_here(root, name, entry, rev, shown) for entry in _listed_files(meta)}
    lineage = meta.get("lineage") or {}
    return {"files": files, "model_file": meta.get("file") or next(iter(files)),
            "metrics": meta.get("metrics") or {}, "params": meta.get("params") or {},
            "source": f"model:{name}@{shown or 'HEAD'}", "framework": meta.get("framework"),
            "lineage": {"dataset": lineage.get("dataset"), "run": lineage.get("run"), "cell": lineage.get("cell")}}


def _listed_files(meta: dict) -> list:
    """A model version's files; metadata written before versions had several files lists one."""
    return meta.get("files") or [{"path": meta.get("file", ""), "md5": meta.get("md5"), "size": meta.get("size")}]


def _model_file_here(root: Path, name: str, entry: dict, rev: Optional[str], shown: Optional[str]) -> Path:
    """The file in models/NAME/ when it is the version's, else a copy of it from the DVC cache."""
    parts = Path(entry.get("path") or "").parts
    if not parts or Path(entry["path"]).is_absolute() or ".." in parts:
        raise NbversionError(f"models/{name}.meta.json lists an unsafe file name {entry.get('path')!r}",
                             hint="run `nbversion verify`; register from a file instead")
    weights = root / "models" / name / entry["path"]
    if weights.is_file() and (not entry.get("md5") or file_md5(weights) == entry["md5"]):
        return weights
    from ..backends import dvc_cache
    cached = dvc_cache.object_path(root, entry.get("md5") or "0" * 32)
    if not cached.exists():
        raise NotFound(f"the weights of model {name}{'@' + shown if shown else ''} are not available locally",
                       hint=f"run `nbversion checkout {rev or 'HEAD'} models/{name}` or `nbversion pull` first")
    return _staged_copy(root, cached, entry["path"] or f"{name}.pt")


def _staged_copy(root: Path, cached: Path, filename: str) -> Path:
    target = tmp_dir(root) / "register" / filename
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(cached, target)
    return target


def _choose_version(art: Optional[tags.ArtifactTags], version: Optional[str], bump: Optional[str]) -> str:
    existing = sorted(tags.parse_version(v) for v in (art.versions if art else {}))
    latest = existing[-1] if existing else None
    if bool(version) == bool(bump):
        raise UsageError("give exactly one of --version X.Y.Z or --bump major|minor|patch")
    if bump:
        return tags.format_version(tags.bump(latest, bump))
    wanted = tags.parse_version(version)
    if wanted in existing:
        raise VersionExists(f"{art.name}@{tags.format_version(wanted)} is already registered; versions are immutable",
                            hint=f"register a new version, e.g. --bump patch (-> {tags.format_version(tags.bump(latest, 'patch'))})")
    if latest and wanted < latest:
        raise UsageError(f"{tags.format_version(wanted)} is lower than the latest version {tags.format_version(latest)}",
                         hint="versions only go up: use --bump, or a version above the latest")
    return tags.format_version(wanted)


def _clear_leftover(root: Path, rel: str) -> None:
    """An untagged, uncommitted version folder is what a killed `register` left: start afresh."""
    folder = root / rel
    if not folder.exists():
        return
    if _git.head(root) and _git.tracked_files(root, "HEAD", [rel]):
        raise NbversionError(f"{rel} is committed but has no tag: a register was interrupted",
                             hint="run `nbversion audit verify` for details; register the next version with --bump")
    shutil.rmtree(folder)


def _finish_interrupted(root: Path, user: str, name: str, version: str, origin: dict) -> Optional["RegisterResult"]:
    """A version committed but never tagged (a register killed between its commit and its tag):
    the same register again finishes it by tagging that commit, when it names the same weights.
    Its audit line went in with the commit, so the tag is all that is missing."""
    rel = version_dir(name, version)
    if not (root / rel).exists() or not _git.head(root) or not _git.tracked_files(root, "HEAD", [rel]):
        return None
    sha = _git.last_commit_touching(root, f"{rel}/manifest.json")
    try:
        manifest = json.loads(_git.show(root, sha, f"{rel}/manifest.json") or b"{}") if sha else {}
    except ValueError:
        manifest = {}
    recorded = {k: (v or {}).get("md5") for k, v in (manifest.get("files") or {}).items()}
    if not recorded or recorded != {f"files/{rel}": file_md5(path) for rel, path in origin["files"].items()}:
        above = tags.format_version(tags.bump(tags.parse_version(version), "patch"))
        raise NbversionError(f"{rel} is committed but has no tag: a register of other weights was interrupted",
                             hint=f"run that same `register` again to finish it, or register these weights as "
                                  f"--version {above.removeprefix('v')}; `nbversion audit verify` shows the details")
    tag = tags.version_tag(name, version)
    _git.create_tag(root, tag, sha, tags.register_message(name, version), user, sign=signing.required(root))
    return RegisterResult(name, version, tag, sha, manifest["files"], manifest.get("metrics") or {},
                          manifest.get("lineage") or {}, manifest.get("model_file", ""))


def register(ws: Workspace, name: str, version: Optional[str] = None, bump: Optional[str] = None,
             source="", message: str = "", on_event: Optional[EventCallback] = None,
             rename: bool = False, model_file: Optional[str] = None,
             provenance: Optional[dict] = None) -> RegisterResult:
    """Register an immutable semver version of model weights (`nbversion register`).

    Give either `version` or `bump`.

    Args:
        name: model name (letters, digits, - and _).
        version: an explicit version "X.Y.Z", above the latest registered one.
        bump: "major", "minor" or "patch": the next version after the latest.
        source: where the weights come from: a training run id, a versioned model MODEL[@REV],
            a weights file, a folder (every file in it, sub-paths kept), or a list of files.
            `metrics.json` / `metrics_*.json` among them are read into the metrics.
        message: why this version exists.
        on_event: called with progress `Event`s.
        rename: store the model file as `model<suffix>` (`best.pt` -> `model.pt`); other files
            keep their names.
        model_file: which file is the model when several are (its name or path in the folder).
        provenance: manifest keys set by the operation that made the weights (`export`: parent,
            export arguments, its check, lineage), over what is read from the source.

    Returns:
        RegisterResult: the name, version, tag and commit, the files (and which is the model),
        metrics and lineage.

    Example:
        >>> ws = nbv.open(".")
        >>> ws.register("det", bump="minor", source="yolov8n-20260131-140000")
    """
    from ..backends import _dvc
    from ..backends.faults import checkpoint

    emit = emitter(on_event)
    tags.check_name(name)
    if not source:
        raise UsageError("--from is required", hint="--from RUN, --from MODEL[@REV] or --from FILE")
    origin = {**_source(ws, source, rename, model_file), **(provenance or {})}   # bad input fails here, before anything is written
    with ws.transaction("register", role="contributor") as tx:
        asked, version = version, _choose_version(artifact_tags(ws.root, name).get(name), version, bump)
        logger.debug("register %s: version %s (--version %s, --bump %s)", name, version, asked, bump)
        names.check_tag(tags.version_tag(name, version), "version tag")   # before anything is written
        rel = version_dir(name, version)
        finished = _finish_interrupted(ws.root, tx.user, name, version, origin)
        if finished is not None:

            emit(Event("register", 4, 4, f"finished the interrupted register of {name}@{version}"))
            return finished
        _clear_leftover(ws.root, rel)
        emit(Event("register", 0, 4, f"copying {len(origin['files'])} file(s) to {rel}/files"))
        files = {}
        for stored, source_path in origin["files"].items():
            target = ws.root / rel / "files" / stored
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source_path, target)
            files[f"files/{stored}"] = {"md5": file_md5(target), "size": target.stat().st_size}
        manifest = {"name": name, "version": version, "files": files, "model_file": f"files/{origin['model_file']}",
                    "metrics": origin["metrics"], "params": origin["params"], "lineage": origin["lineage"],
                    "source": origin["source"], "framework": origin.get("framework"), "registered_by": tx.user,
                    "registered_at": now_iso(), "message": message, **(provenance or {})}
        emit(Event("register", 1, 4, "tracking weights with DVC"))
        _dvc.add(ws.root, [f"{rel}/files"])
        atomic.write_json(ws.root / rel / "manifest.json", manifest)
        tag = tags.version_tag(name, version)
        tx.audit("register", f"{name}@{version}", {"tag": tag, "source": origin["source"], "files": files,
                                                   "metrics": origin["metrics"]})
        emit(Event("register", 2, 4, "commit"))
        sha = tx.commit(f"nbversion: register {name}@{version}" + (f"\n\n{message}" if message else ""),
                        [rel])
        checkpoint("register-committed")   # the crash tests kill us here: committed, not tagged
        emit(Event("register", 3, 4, f"tag {tag}"))
        _git.create_tag(ws.root, tag, sha, tags.register_message(name, version), tx.user, sign=tx.sign)
    emit(Event("register", 4, 4, "done"))
    return RegisterResult(name, version, tag, sha, files, origin["metrics"], origin["lineage"], manifest["model_file"])
