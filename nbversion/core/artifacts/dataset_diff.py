"""`dataset diff NAME REV_A REV_B`: what changed in the content, from DVC's own hashes.

Both versions' `.dir` listings (relpath -> md5) are compared; only label files whose md5
differs are read (from the DVC cache), so a diff of two 10,000-image versions that differ
by a few files reads a few files.
"""
from __future__ import annotations

import logging
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Optional

from ...errors import NotFound
from ...events import Event, emitter
from ..result import Result
from ..backends import dvc_cache
from . import dataset_meta
from ..repo import refs
from ..repo.names import check_readable_name
from .yolo_layout import IMAGE_SUFFIXES, label_for
from .yolo_validate import parse_label_counts

from .dataset_meta import DATASETS_DIR as KIND_DIR

logger = logging.getLogger(__name__)

if TYPE_CHECKING:   # annotations only: core.workspace imports this module into Workspace
    from ...events import EventCallback
    from ..workspace import Workspace
MAX_PREVIEWS = 4   # relabelled images kept for a notebook's before/after thumbnails


@dataclass
class DatasetDiffResult(Result):
    name: str
    rev_a: str
    rev_b: str
    commit_a: str
    commit_b: str
    images_added: list = field(default_factory=list)      # [{"path", "split"}]
    images_removed: list = field(default_factory=list)
    images_changed: list = field(default_factory=list)
    images_moved: list = field(default_factory=list)      # [{"path", "from", "to"}]
    labels_changed: list = field(default_factory=list)    # [{"path", "before", "after", "classes"}]
    class_deltas: dict = field(default_factory=dict)      # class -> +/- boxes
    other_files: list = field(default_factory=list)       # [{"path", "change"}]
    previews: list = field(default_factory=list)          # relabelled images: md5s before/after
    root: str = ""
    classes: list = field(default_factory=list)

    def to_dict(self) -> dict:
        data = super().to_dict()
        for private in ("previews", "root", "classes"):
            data.pop(private)
        return data

    def table(self):
        rows = [["image added", i["path"], i["split"]] for i in self.images_added]
        rows += [["image removed", i["path"], i["split"]] for i in self.images_removed]
        rows += [["image changed", i["path"], i["split"]] for i in self.images_changed]
        rows += [["image moved", i["path"], f"{i['from']} -> {i['to']}"] for i in self.images_moved]
        rows += [["label changed", lc["path"], f"{lc['before']} -> {lc['after']} boxes"
                  + (f" ({_deltas_text(lc['classes'])})" if lc["classes"] else "")]
                 for lc in self.labels_changed]
        rows += [[f"file {o['change']}", o["path"], ""] for o in self.other_files]
        return ["change", "path", "detail"], rows

    def summary(self):
        head = f"{self.name} {self.rev_a} ({self.commit_a[:8]}) -> {self.rev_b} ({self.commit_b[:8]}): "
        if self.commit_a == self.commit_b or not self.table()[1]:
            return head + "no content changes"
        parts = [f"{len(self.images_added)} image(s) added", f"{len(self.images_removed)} removed",
                 f"{len(self.images_changed)} changed", f"{len(self.images_moved)} moved between splits",
                 f"{len(self.labels_changed)} label file(s) changed"]
        deltas = _deltas_text(self.class_deltas)
        return head + ", ".join(parts) + (f"; instances per class: {deltas}" if deltas else "")


def _deltas_text(deltas: dict) -> str:
    return ", ".join(f"{cls} {d:+d}" for cls, d in deltas.items() if d)


def _manifest(root, name: str, commit: str) -> dict:
    pointer = dataset_meta.pointer_at(root, KIND_DIR, name, commit)
    if not pointer.is_dir:
        raise NotFound(f"{KIND_DIR}/{name} is a single file at {commit[:8]}, not a dataset folder")
    return {e["relpath"]: e["md5"] for e in dvc_cache.read_dir_manifest(root, pointer.md5)}


def _split_of(path: str, split_dirs: dict) -> str:
    for split, sources in split_dirs.items():
        if any(path == s or path.startswith(s.rstrip("/") + "/") for s in sources):
            return split
    return str(PurePosixPath(path).parent)


def _is_image(path: str) -> bool:
    return os.path.splitext(path)[1].lower() in IMAGE_SUFFIXES


def _label_counts(root, md5: str | None) -> Counter:
    if md5 is None:
        return Counter()
    path = dvc_cache.object_path(root, md5)
    if not path.exists():
        raise NotFound(f"label object {md5} is not in the local DVC cache",
                       hint="run `nbversion pull` to fetch the data of that version")
    return parse_label_counts(path.read_bytes())


def diff(ws: Workspace, name: str, rev_a: str, rev_b: Optional[str] = None,
         on_event: Optional[EventCallback] = None) -> DatasetDiffResult:
    """Images and labels added, removed, moved or changed between two versions (`nbversion dataset diff`).

    Args:
        name: the dataset.
        rev_a: the older version: a commit, a tag, or ~N.
        rev_b: the newer version (default: the latest).
        on_event: called with progress `Event`s.

    Returns:
        DatasetDiffResult: the image and label changes, class count deltas and other files.

    Example:
        >>> ws = nbv.open(".")
        >>> ws.dataset_diff("traffic", "~1")
    """
    root = ws.root
    check_readable_name(name, "dataset")
    rev_b = rev_b or "latest"
    commit_a = refs.resolve(root, KIND_DIR, name, rev_a)
    commit_b = refs.resolve(root, KIND_DIR, name, rev_b)
    meta_a = dataset_meta.read_at(root, KIND_DIR, name, commit_a)
    meta_b = dataset_meta.read_at(root, KIND_DIR, name, commit_b)
    result = DatasetDiffResult(name, rev_a, rev_b, commit_a, commit_b, root=str(root),
                               classes=meta_b.get("classes") or meta_a.get("classes") or [])
    logger.debug("dataset diff %s: %s -> %s, %s -> %s", name, rev_a, commit_a, rev_b, commit_b)
    if meta_a.get("content_hash") == meta_b.get("content_hash"):
        return result
    old, new = _manifest(root, name, commit_a), _manifest(root, name, commit_b)
    dirs_a, dirs_b = meta_a.get("split_dirs", {}), meta_b.get("split_dirs", {})
    # each path's kind and label computed once: a 10,000-image version has 20,000 paths
    label_of = {p: label_for(p) for p in {*old, *new} if _is_image(p)}
    moved_labels = _images(result, old, new, dirs_a, dirs_b, label_of)
    names = meta_b.get("classes") or meta_a.get("classes") or []
    _labels(result, root, old, new, moved_labels, names, label_of, emitter(on_event))
    _previews(result, old, new, label_of)
    image_labels = set(label_of.values())
    for path in sorted({p for p in {*old, *new} if old.get(p) != new.get(p)}):
        if path in label_of or path in image_labels:
            continue
        change = "added" if path not in old else "removed" if path not in new else "changed"
        result.other_files.append({"path": path, "change": change})
    return result


def _images(result, old: dict, new: dict, dirs_a: dict, dirs_b: dict, label_of: dict) -> set:
    """Fill image changes; returns the (old, new) label pairs of images that moved split."""
    added = {p for p in label_of if p not in old}
    removed = {p for p in label_of if p not in new}
    by_name = {PurePosixPath(p).name: p for p in removed}
    moved_pairs = set()
    for path in sorted(added):
        source = by_name.pop(PurePosixPath(path).name, None)
        if source is not None and old[source] == new[path]:
            removed.discard(source)
            result.images_moved.append({"path": path, "from": _split_of(source, dirs_a),
                                        "to": _split_of(path, dirs_b)})
            moved_pairs.add((label_of[source], label_of[path]))
        else:
            result.images_added.append({"path": path, "split": _split_of(path, dirs_b)})
    result.images_removed = [{"path": p, "split": _split_of(p, dirs_a)} for p in sorted(removed)]
    result.images_changed = [{"path": p, "split": _split_of(p, dirs_b)} for p in sorted(label_of)
                             if p in old and p in new and old[p] != new[p]]
    return moved_pairs


def _labels(result, root, old: dict, new: dict, moved_pairs: set, names: list, label_of: dict, emit) -> None:
    """Read only the label files whose content differs; count boxes before and after."""
    same_after_move = {a for a, b in moved_pairs if old.get(a) == new.get(b)}
    same_after_move |= {b for a, b in moved_pairs if old.get(a) == new.get(b)}
    # labels of images present in both versions are "edits"; the others come and go with
    # their image and only count towards the per-class deltas
    kept = {label for image, label in label_of.items() if image in old and image in new}
    changed = {label for label in set(label_of.values()) if old.get(label) != new.get(label)}
    totals = Counter()
    to_read = sorted(changed - same_after_move)
    for number, path in enumerate(to_read, start=1):
        if number % 64 == 1 or number == len(to_read):   # a relabelled version reads every label twice
            emit(Event("labels", number, len(to_read), path))
        md5_a, md5_b = old.get(path), new.get(path)
        before, after = _label_counts(root, md5_a), _label_counts(root, md5_b)
        delta = Counter(after)
        delta.subtract(before)
        per_class = {_class_name(names, c): d for c, d in sorted(delta.items()) if d}
        totals.update(delta)
        if path not in kept:
            continue
        result.labels_changed.append({"path": path, "before": sum(before.values()),
                                      "after": sum(after.values()), "classes": per_class})
    result.class_deltas = {_class_name(names, c): d for c, d in sorted(totals.items()) if d}


def _previews(result, old: dict, new: dict, label_of: dict) -> None:
    changed = {lc["path"] for lc in result.labels_changed}
    for image, label in sorted(label_of.items()):
        if label in changed and image in old and image in new and len(result.previews) < MAX_PREVIEWS:
            result.previews.append({
                "before": {"path": image, "image_md5": old[image], "label_md5": old.get(label)},
                "after": {"path": image, "image_md5": new[image], "label_md5": new.get(label)}})


def _class_name(names: list, cls: int) -> str:
    return names[cls] if 0 <= cls < len(names) else str(cls)
