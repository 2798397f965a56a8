"""`commit` of an edited dataset folder keeps `datasets/<name>.meta.json` true.

A dataset edited in place (a relabelled file, images added by hand) or left half-imported by
a killed `dataset add` gets a new DVC pointer from `commit`; its metadata (split counts,
classes, instances, bytes, content hash) must describe that new version, not the old one.
The folder is validated like an import, before anything is written, and a folder that is no
longer a valid dataset is refused with the file and line at fault.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from ...errors import InvalidInput
from . import dataset_meta
from .yolo_layout import find_layout
from .yolo_validate import validate

from .dataset_meta import DATASETS_DIR as KIND_DIR

logger = logging.getLogger(__name__)
MAX_SHOWN = 20


@dataclass
class Pending:
    name: str
    layout: object
    validation: object


def _names(root: Path, paths) -> list[str]:
    """Datasets among `paths` (folders `datasets/<name>` or pointers `.dvc`): those with metadata,
    and a new YOLO folder committed in place (README's quickstart: the demo written into
    datasets/shapes, then `commit`), which becomes a dataset like an import would make it."""
    from ..repo.names import NAME_RE

    found = []
    for path in paths:
        parts = path.rstrip("/").split("/")
        if len(parts) != 2 or parts[0] != KIND_DIR:
            continue
        name = parts[1].removesuffix(".dvc")
        if not (root / KIND_DIR / name).is_dir():
            continue
        if (root / dataset_meta.meta_path(KIND_DIR, name)).exists() or (
                NAME_RE.fullmatch(name) and find_layout(root / KIND_DIR / name).format == "yolo"):
            found.append(name)
    return sorted(set(found))


def _memo(root: Path, name: str, walked: dict):
    """Verdicts by content for the dataset's files, their md5s from its per-file fingerprints
    (only files whose stat moved are read): a commit of a few edits checks those few."""
    from ..backends import pointers, uncommitted
    from .validation_memo import Memo

    pointer = pointers.in_worktree(root).get(f"{KIND_DIR}/{name}")
    if pointer is None or not pointer.is_dir:
        return None
    return Memo(root, uncommitted.folder_state(root, pointer, walked.get(pointer.path)).md5s)


def check(root: Path, paths, walked: dict | None = None) -> list[Pending]:
    """Validate every dataset folder among `paths` that has metadata; nothing is written.
    `walked`: per-file stats of folders a caller just walked (not walked again)."""
    pending = []
    for name in _names(root, paths):
        layout = find_layout(root / KIND_DIR / name)
        validation = validate(layout, memo=_memo(root, name, walked or {})) if layout.format == "yolo" else None
        if validation and validation.errors:
            errors = validation.errors
            shown = "\n".join(f"  {e}" for e in errors[:MAX_SHOWN])
            more = f"\n  ... and {len(errors) - MAX_SHOWN} more" if len(errors) > MAX_SHOWN else ""
            raise InvalidInput(f"{KIND_DIR}/{name} is no longer a valid dataset ({len(errors)} error(s)), "
                               f"nothing was committed:\n{shown}{more}",
                               hint=f"fix the files named above (file:line) and commit again, or discard the "
                                    f"edits with `nbversion checkout HEAD {KIND_DIR}/{name} --force`",
                               problems=errors + validation.warnings)
        pending.append(Pending(name, layout, validation))
    return pending


def write(root: Path, pending: list[Pending], user: str) -> list[str]:
    """Rewrite the metadata of each checked dataset from its (new) pointer; returns the files."""
    written = []
    for item in pending:
        pointer = dataset_meta.pointer_at(root, KIND_DIR, item.name, None)
        old = dataset_meta.read_current(root, KIND_DIR, item.name) or {}
        if old.get("content_hash") == pointer.md5:
            continue   # the data did not change: the metadata still describes it
        logger.debug("dataset %s changed (%s -> %s): rewriting its metadata", item.name, old.get("content_hash"), pointer.md5)
        warnings = item.validation.warnings if item.validation else []
        how = "edited in place" if old else "committed in place"
        meta = dataset_meta.dataset_meta(item.name, item.layout, item.validation, pointer, [],
                                         f"{KIND_DIR}/{item.name} ({how})", user, warnings)
        written.append(dataset_meta.write(root, KIND_DIR, item.name, meta))
    return written
