"""`dataset add|list|show|diff`: YOLO datasets (or plain folders) as versions over DVC.

`add` validates first, in a temp folder inside `.nbversion/tmp`, and only then swaps the
new content into `datasets/<name>/`, so a bad import leaves the workspace, the DVC cache and
the audit log as they were. Show and diff live in dataset_view / dataset_diff.
"""
from __future__ import annotations

import hashlib
import logging
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from ...errors import InvalidInput, NbversionError, NotFound, UncommittedChanges, UsageError
from ...events import Event, emitter
from .. import paging
from ..result import Result
from ..units import human_bytes
from ..backends import _dvc, dvc_cache, _git, pointers, uncommitted
from . import dataset_meta, zipsafe
from .dataset_inputs import UNEXPECTED, DatasetCheckResult, check_extensions, check_result as _check_result, \
    class_list, refuse_nameless_yolo
from .source_links import refuse_links_leaving
from ..repo import leftovers, names, refs
from ..backends.faults import checkpoint
from ..storage import folder_commit, linking
from .yolo_layout import find_layout
from .validation_memo import Memo
from .yolo_validate import validate

from typing import TYPE_CHECKING, Optional

if TYPE_CHECKING:   # annotations only: core.workspace imports this module into Workspace
    from typing import Iterable
    from ...events import EventCallback
    from ..workspace import Workspace

from .dataset_meta import DATASETS_DIR as KIND_DIR

logger = logging.getLogger(__name__)
# never imported: VCS and OS litter, Ultralytics' label caches (rebuilt on every train)
SKIP_NAMES = {".git", ".dvc", ".DS_Store", "__MACOSX", ".ipynb_checkpoints", "__pycache__"}
SKIP_SUFFIXES = (".cache",)
MAX_ERRORS_SHOWN = 20


@dataclass
class DatasetAddResult(Result):
    name: str
    commit: str | None
    changed: bool
    format: str
    classes: list
    splits: dict
    class_instances: dict
    files: int
    bytes: int
    content_hash: str
    tags: list = field(default_factory=list)
    warnings: list = field(default_factory=list)
    source: str = ""

    def table(self):
        rows = [[s, v["images"], v["labels"], v["instances"], v["background"]] for s, v in self.splits.items()]
        return ["split", "images", "labels", "instances", "background"], rows

    def summary(self):
        if not self.changed:
            return f"no change: {self.name} already matches {self.source} (version {(self.commit or '')[:8]})"
        warn = f", {len(self.warnings)} warning(s)" if self.warnings else ""
        extra = [w["file"] for w in self.warnings if w["message"].startswith(UNEXPECTED)]
        if extra:   # named, not just counted: a run.sh in an image dataset is worth a look
            warn += f" (not images, labels or metadata: {', '.join(extra[:10])}{' ...' if len(extra) > 10 else ''})"
        tags = f", tagged {', '.join(self.tags)}" if self.tags else ""
        return (f"dataset {self.name}: new version {self.commit[:8]} — {self.files} files, "
                f"{human_bytes(self.bytes)}, {len(self.classes)} class(es){warn}{tags}")


@dataclass
class DatasetListResult(Result):
    datasets: list
    page: Optional[paging.Page] = None

    def to_dict(self) -> dict:
        return {"datasets": self.datasets, **(self.page.to_dict() if self.page else {})}

    def table(self):
        rows = [[d["name"], d["version"][:8], d["versions"], d["images"], len(d["classes"]),
                 human_bytes(d["bytes"]), d["added_by"], d["added_at"], ", ".join(d["tags"])]
                for d in self.datasets]
        return ["name", "version", "versions", "images", "classes", "size", "by", "when", "tags"], rows

    def summary(self):
        return "" if self.datasets else "no datasets yet: `nbversion dataset add NAME FOLDER|ZIP`"


def _source_folder(src: Path, tmp: Path, config: dict, emit) -> Path:
    if src.is_dir():
        return src
    if src.suffix.lower() != ".zip":
        raise UsageError(f"{src}: expected a folder or a .zip archive",
                         hint="unpack other archive formats first, then import the folder")
    emit(Event("extract", 0, 1, src.name))
    extracted = zipsafe.extract(src, tmp / "unzipped", int(config["max_zip_bytes"]), float(config["max_zip_ratio"]),
                                lambda done, total: emit(Event("extract", done, total, src.name)))
    return zipsafe.single_top_folder(extracted)


def _refuse(validation) -> InvalidInput:
    errors = validation.errors
    shown = "\n".join(f"  {e}" for e in errors[:MAX_ERRORS_SHOWN])
    more = f"\n  ... and {len(errors) - MAX_ERRORS_SHOWN} more" if len(errors) > MAX_ERRORS_SHOWN else ""
    return InvalidInput(f"dataset has {len(errors)} error(s), nothing was imported:\n{shown}{more}",
                        hint="fix the files named above (file:line) and run `dataset add` again",
                        problems=errors + validation.warnings)


def _wanted(name: str) -> bool:
    return name not in SKIP_NAMES and not name.endswith(SKIP_SUFFIXES)


def _stage(folder: Path, staging: Path, move: bool, done=frozenset()) -> list[str]:
    """Put the dataset into `staging`: move our own unzipped temp files, else copy.

    Always a private copy, never a link to the user's files (see `linking` for how the
    cache object is then made).
    """
    place = os.replace if move else shutil.copyfile
    copied = []
    for dirpath, dirs, files in os.walk(folder):
        dirs[:] = [d for d in dirs if _wanted(d)]
        rel_dir = os.path.relpath(dirpath, folder)
        prefix = "" if rel_dir == "." else rel_dir.replace(os.sep, "/") + "/"
        os.makedirs(f"{staging}/{prefix}", exist_ok=True)
        for fname in files:
            rel = prefix + fname
            if rel in done:   # already copied while validating
                copied.append(rel)
                continue
            source = os.path.join(dirpath, fname)
            if not _wanted(fname) or os.path.islink(source) and not os.path.exists(source):
                continue
            place(source, f"{staging}/{rel}")
            copied.append(rel)
    return copied


def _write_yaml(layout, staging: Path) -> None:
    if layout.format != "yolo":
        return
    if layout.yaml_file and layout.yaml_file != "data.yaml":
        (staging / layout.yaml_file).unlink(missing_ok=True)
    (staging / "data.yaml").write_text(layout.data_yaml())


def _manifest(staging: Path, known: dict) -> dict:
    """relpath -> md5 like DVC's .dir listing; reuses hashes computed during validation."""
    found = {}
    for dirpath, _dirs, files in os.walk(staging):
        rel_dir = os.path.relpath(dirpath, staging)
        prefix = "" if rel_dir == "." else rel_dir.replace(os.sep, "/") + "/"
        for fname in files:
            rel = prefix + fname
            md5 = known.get(rel) if rel != "data.yaml" else None
            found[rel] = md5 or hashlib.md5(Path(dirpath, fname).read_bytes()).hexdigest()
    return found


def _unchanged(root: Path, name: str, manifest: dict) -> bool:
    current = pointers.in_worktree(root).get(f"{KIND_DIR}/{name}")
    if current is None or not current.is_dir or not (root / KIND_DIR / f"{name}.meta.json").exists():
        return False
    if _git.status(root, [f"{KIND_DIR}/{name}.dvc", dataset_meta.meta_path(KIND_DIR, name)]):
        return False  # pointer or metadata not committed: an import was interrupted, finish it
    if not uncommitted.matches_pointer(root, current):
        return False  # the folder was edited by hand since: not what the pointer says
    try:
        stored = dvc_cache.read_dir_manifest(root, current.md5)
    except NbversionError:   # listing not in the cache (never pulled): import again
        return False
    return {e["relpath"]: e["md5"] for e in stored} == manifest


def _edited_in_place(root: Path, out: str) -> bool:
    current = pointers.in_worktree(root).get(out)
    if current is None or not (root / f"{out}.meta.json").exists():
        return True
    # no fingerprint recorded here (a fresh clone, a plain `dvc pull`, a touched file) is not
    # itself a change: look, as `status` does, and remember the answer when it is clean
    return not uncommitted.matches_pointer(root, current)


def _holds_exactly(folder: Path, manifest: dict) -> bool:
    """Whether `folder` holds exactly the files (relpath -> md5) an import is about to put there:
    what a killed `dataset add` of the same data leaves, so nothing can be lost by replacing it."""
    found = {}
    for dirpath, dirs, files in os.walk(folder):
        dirs[:] = [d for d in dirs if _wanted(d)]
        for fname in files:
            if _wanted(fname):
                found[(Path(dirpath) / fname).relative_to(folder).as_posix()] = Path(dirpath) / fname
    if found.keys() != manifest.keys():
        return False
    return all(hashlib.md5(path.read_bytes()).hexdigest() == manifest[rel] for rel, path in found.items())


def _refuse_to_lose_work(root: Path, out: str, manifest: dict) -> None:
    """An import replaces datasets/<name>/: never over files that exist nowhere else."""
    if not (root / out).exists():
        return
    current = pointers.in_worktree(root).get(out)
    if (current is None or _edited_in_place(root, out)) and _holds_exactly(root / out, manifest):
        return   # the same import, killed after it put the files in place: finish it
    own_import = f"nbversion dataset add {Path(out).name} {out}"
    if current is None:
        raise UncommittedChanges(f"{out} exists but is not a versioned dataset; an import would replace it",
                                 hint=f"move it away, or version it as it is with `{own_import}`")
    if _edited_in_place(root, out):
        raise UncommittedChanges(f"{out} has changes that are not recorded; an import would lose them",
                                 hint=f"record them first with `{own_import}`, or discard them with "
                                      f"`nbversion checkout HEAD {out} --force`")


def _check_tags(root: Path, name: str, tags) -> None:
    """Before anything is written: git must accept each tag, and none may exist yet."""
    if len(set(tags)) != len(tags):
        raise UsageError("the same --tag is given twice", hint="give each tag once")
    for tag in tags:
        if not isinstance(tag, str) or not tag or "/" in tag:
            raise UsageError(f"invalid tag {tag!r}", hint="use letters, digits, '.', '-' and '_', e.g. v1 or reviewed")
        full = names.check_tag(refs.tag_name(KIND_DIR, name, tag), given=tag)
        if refs.tag_commit(root, full):
            raise InvalidInput(f"tag {tag!r} already names a version of {name} ({full})",
                               hint="tags name one version each: pick another tag")


def _swap_in(target: Path, staging: Path, trash: Path) -> None:
    logger.debug("swapping %s in for %s (the previous copy kept in %s until DVC has it)", staging, target, trash)
    if target.exists():
        os.replace(target, trash)
    target.parent.mkdir(parents=True, exist_ok=True)
    os.replace(staging, target)


def add(ws: Workspace, name: str, src: str | os.PathLike, tags: Iterable[str] = (), message: str | None = None,
        dry_run: bool = False, on_event: Optional[EventCallback] = None, classes: Optional[list] = None,
        strict: bool = False) -> DatasetAddResult | DatasetCheckResult:
    """Import a YOLO dataset, a plain folder or a .zip of either as a new version (`nbversion dataset add`).

    Args:
        name: dataset name, the folder under datasets/.
        src: the folder or .zip to import; `datasets/NAME` itself records edits made in place.
        tags: tags for this version.
        message: commit message (default: one naming the dataset).
        dry_run: only validate and list every problem; write nothing.
        on_event: called with progress `Event`s (validate, copy, hash, commit).
        classes: class names for a folder without data.yaml (images/, labels/); a `classes.txt`
            there is read without it. Given with a data.yaml or classes.txt, they must agree.
        strict: refuse an image dataset holding files that are neither images, labels nor its
            metadata (`[datasets] allowed_extensions`); by default they are a warning.

    Returns:
        DatasetAddResult: the commit, format, classes, splits and counts of the new version;
        with `dry_run`, a DatasetCheckResult listing errors and warnings.

    Example:
        >>> ws = nbv.open(".")
        >>> ws.dataset_add("traffic", "~/Downloads/traffic.zip", tags=["v1"])
    """
    emit = emitter(on_event)
    root = ws.root
    refs.check_new_name(root, KIND_DIR, name)
    src = Path(os.path.expanduser(str(src))).resolve()
    if not src.exists():
        raise NotFound(f"{src}: no such folder or file", hint="give a dataset folder or a .zip")
    own = root / KIND_DIR / name
    if src == root or own in src.parents or src in own.parents:
        raise UsageError(f"{src} contains or is inside the dataset's folder {own}",
                         hint=f"import from a folder outside it, or give datasets/{name} itself to "
                              "record edits made in place")
    tags = list(tags or [])
    _check_tags(root, name, tags)
    leftovers.remove(root)   # what killed imports left behind (never a live one's)
    with leftovers.import_folder(root, name) as tmp:
        settings = ws.config["datasets"]
        folder = _source_folder(src, tmp, settings, emit)
        refuse_links_leaving(folder)   # before a byte is read: no file from outside is imported or quoted
        layout = find_layout(folder, class_list(classes))
        refuse_nameless_yolo(folder, layout)
        # files that are neither images, labels nor metadata: named (refused with --strict)
        extra = check_extensions(folder, settings, strict and not dry_run, _wanted) if layout.format == "yolo" else []
        emit(Event("validate", 0, 1, str(folder)))
        # a folder is copied while it is validated (one read per file); unzipped files are moved
        copy_to = tmp / "dataset" if not dry_run and folder == src and src != own else None
        # verdicts remembered by content: a later commit of a few edits checks only those
        memo = None if dry_run else Memo(root, {})
        objects = _objects_folder(root, tmp) if not dry_run else None
        validation = validate(layout, emit, copy_to, memo, objects) if layout.format == "yolo" else None
        if validation:
            for problem in extra:   # a dry run lists them all; with --strict as the errors they are
                problem.severity = "error" if strict else "warning"
            validation.errors += [p for p in extra if strict]
            validation.warnings = [p for p in extra if not strict] + validation.warnings
        if dry_run:
            return _check_result(name, src, layout, validation)
        if validation and validation.errors:
            raise _refuse(validation)
        checkpoint("dataset-validated")
        with ws.transaction("dataset add") as tx:
            return _import(ws, tx, name, src, layout, validation, tmp, folder != src, tags, message, emit, objects)


def _objects_folder(root: Path, tmp: Path) -> Optional[linking.PreparedObjects]:
    """Where validation writes each file's cache object (copy mode, the cache on the import
    folder's filesystem, so one rename stores it); None: the objects are stored afterwards."""
    cache = dvc_cache.cache_root(root)
    if linking.workspace_mode(root) != "copy" or not linking.same_filesystem(tmp, cache):
        return None
    (tmp / "objects").mkdir()
    return linking.PreparedObjects(tmp / "objects", cache)


def _import(ws, tx, name, src, layout, validation, tmp, from_zip, tags, message, emit, objects=None):
    root, out = ws.root, f"{KIND_DIR}/{name}"
    in_place = src == root / out
    if in_place:
        # edits made inside datasets/<name>/: validated where they are, nothing to copy
        changed = _edited_in_place(root, out) or bool(_git.status(root, [f"{out}.dvc", f"{out}.meta.json"]))
    else:
        staging = tmp / "dataset"
        emit(Event("copy", 0, 1, f"{src} -> {out}"))
        copied = set(validation.hashes) if validation and not from_zip else set()
        _stage(layout.root, staging, move=from_zip, done=copied)
        _write_yaml(layout, staging)
        manifest = _manifest(staging, validation.hashes if validation else {})
        _refuse_to_lose_work(root, out, manifest)
        changed = not _unchanged(root, name, manifest)
    checkpoint("dataset-staged")
    if not tags and not changed:
        meta = dataset_meta.read_current(root, KIND_DIR, name)
        return _result(name, refs.versions(root, KIND_DIR, name)[0].sha if _git.head(root) else None,
                       False, meta)
    trash = tmp / "previous"
    if not in_place:
        _swap_in(root / out, staging, trash)
        checkpoint("dataset-swapped-in")
    try:
        emit(Event("dvc add", 0, 1, out))
        stored = lambda done, total: emit(Event("store", done, total, f"{out} into the DVC cache"))
        # objects stored as `core.link` says (copy: never the same inode); the staged files were
        # hashed while validated, so they are not hashed again
        tracked = None   # the folder state `track_folder` saw: not walked again below
        base = f"{root}/{out}"   # strings, not Paths: once per file, up to millions of times
        if not in_place and folder_commit.can_track(root, out):
            # every md5 is known from the import: written as `dvc add` would, without its walk
            # (not in a thread beside it: DVC imported in a thread while another imports deadlocked)
            _pointer, tracked = folder_commit.track_folder(root, out, manifest, linking.workspace_mode(root),
                                                           objects, stored)
            _dvc.remember_hashes(root, {f"{base}/{rel}": md5 for rel, md5 in manifest.items()})
        else:
            _dvc.add(root, [out], known={} if in_place or not validation else {
                f"{base}/{rel}": md5 for rel, md5 in validation.hashes.items() if rel != "data.yaml"},
                on_progress=stored)
        checkpoint("dataset-after-dvc-add")
    except BaseException:
        if not in_place:
            shutil.rmtree(root / out, ignore_errors=True)
        if trash.exists():
            os.replace(trash, root / out)
        raise
    tx.kept = f"{out} holds the new files, not committed; run the same dataset add again to finish"
    pointer = dataset_meta.pointer_at(root, KIND_DIR, name, None)
    uncommitted.mark_clean(root, {out: pointer}, {out: tracked} if tracked else None)
    warnings = validation.warnings if validation else []
    meta = dataset_meta.dataset_meta(name, layout, validation, pointer, tags, str(src), tx.user, warnings)
    meta_file = dataset_meta.write(root, KIND_DIR, name, meta)
    tx.audit("dataset add", name, {"content_hash": pointer.md5, "files": pointer.nfiles,
                                   "tags": tags, "source": str(src)})
    checkpoint("dataset-after-audit")
    emit(Event("git commit", 0, 1, out))
    sha = tx.commit(message or f"dataset {name}: import {src.name}",
                    [f"{out}.dvc", f"{KIND_DIR}/.gitignore", meta_file])
    for tag in tags:   # signed mode: annotated and signed, as every tag nbversion makes then
        _git.create_tag(root, refs.tag_name(KIND_DIR, name, tag), sha,
                        f"dataset {name}: {tag}" if tx.sign else None, tx.user, sign=tx.sign)
    return _result(name, sha, True, meta)


def _result(name, sha, changed, meta) -> DatasetAddResult:
    return DatasetAddResult(name, sha, changed, meta["format"], meta["classes"], meta["splits"],
                            meta["class_instances"], meta["files"], meta["bytes"], meta["content_hash"],
                            meta["tags"], meta["warnings"], meta["source"])


def list_datasets(ws: Workspace, limit: Optional[int] = None, offset: int = 0) -> DatasetListResult:
    """Datasets with their latest version (`nbversion dataset list`).

    Args:
        limit: at most this many datasets (default: all), by name.
        offset: skip this many first (the next page).

    Returns:
        DatasetListResult: `datasets`, one dict per dataset (name, version, versions, images,
        classes, bytes, added_by, added_at, tags, format).

    Example:
        >>> ws = nbv.open(".")
        >>> ws.dataset_list()
    """
    found = []
    for name, history, meta in dataset_meta.catalogue(ws.root, KIND_DIR):
        images = sum(s.get("images", 0) for s in meta.get("splits", {}).values()) or meta.get("files", 0)
        found.append({"name": name, "version": history[0].sha, "versions": len(history), "images": images,
                      "classes": meta.get("classes", []), "bytes": meta.get("bytes", 0),
                      "added_by": meta.get("added_by", ""), "added_at": meta.get("added_at", ""),
                      "tags": meta.get("tags", []), "format": meta.get("format", "")})
    page, whole = paging.window(found, limit, offset)
    return DatasetListResult(page, whole)
