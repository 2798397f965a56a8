"""`dataset show NAME[@REV]`: metadata, class histogram and which sample images to show.

The thumbnails themselves are drawn by nbversion/renderers/datasets.py in a notebook.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Optional

from ..result import Result
from ..units import human_bytes
from ..backends import dvc_cache
from . import dataset_meta
from ..repo import names, refs
from .yolo_layout import IMAGE_SUFFIXES, label_for

from .dataset_meta import DATASETS_DIR as KIND_DIR

logger = logging.getLogger(__name__)

if TYPE_CHECKING:   # annotations only: core.workspace imports this module into Workspace
    from ...events import EventCallback
    from ..workspace import Workspace


@dataclass
class DatasetShowResult(Result):
    name: str
    rev: str
    commit: str
    meta: dict
    samples: list = field(default_factory=list)    # [{"path", "image_md5", "label_md5"}]
    root: str = ""

    def table(self):
        counts = self.meta.get("class_instances", {})
        top = max(counts.values(), default=0) or 1
        total = sum(counts.values()) or 1
        rows = [[cls, n, f"{100 * n / total:.1f}%", "#" * round(30 * n / top)] for cls, n in counts.items()]
        return ["class", "instances", "share", "histogram"], rows

    def summary(self):
        m = self.meta
        splits = ", ".join(f"{s} {v['images']} images / {v['instances']} boxes / {v['background']} background"
                           for s, v in m.get("splits", {}).items())
        lines = [f"{self.name}@{self.rev} = {self.commit[:8]}  format {m.get('format')}, {m.get('files')} files, "
                 f"{human_bytes(m.get('bytes'))}, content {m.get('content_hash', '')}",
                 f"added by {m.get('added_by')} at {m.get('added_at')} from {m.get('source')}"]
        if splits:
            lines.append(f"splits: {splits}")
        if m.get("tags"):
            lines.append(f"tags: {', '.join(m['tags'])}")
        if m.get("warnings"):
            lines.append(f"{len(m['warnings'])} warning(s), e.g. {_problem_text(m['warnings'][0])}")
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return {"name": self.name, "rev": self.rev, "commit": self.commit, "meta": self.meta,
                "samples": [s["path"] for s in self.samples]}


def _problem_text(problem: dict) -> str:
    where = f"{problem['file']}:{problem['line']}" if problem.get("line") else problem.get("file", "")
    return f"{where}: {problem.get('message', '')}"


def _pick_samples(manifest: dict, count: int) -> list:
    images = sorted(p for p in manifest if p.rsplit(".", 1)[-1].lower() in {s[1:] for s in IMAGE_SUFFIXES})
    if not images or count <= 0:
        return []
    step = max(1, len(images) // count)
    return [{"path": p, "image_md5": manifest[p], "label_md5": manifest.get(label_for(p))}
            for p in images[::step][:count]]


def show(ws: Workspace, ref: str, samples: int = 6, on_event: Optional[EventCallback] = None) -> DatasetShowResult:
    """Metadata, class histogram and sample images of a dataset version (`nbversion dataset show`).

    Args:
        ref: NAME or NAME@REV; REV is a commit, a tag, or ~N (N versions back).
        samples: how many sample images the notebook view shows.
        on_event: unused; kept so every verb takes it.

    Returns:
        DatasetShowResult: the name, revision, commit, metadata and samples.

    Example:
        >>> ws = nbv.open(".")
        >>> ws.dataset_show("traffic@~1", samples=4)
    """
    name, rev = refs.split_ref(ref)
    names.check_readable_name(name, "dataset")
    commit = refs.resolve(ws.root, KIND_DIR, name, rev)
    logger.debug("dataset show %s: %r -> %s", name, rev, commit)
    meta = dataset_meta.read_at(ws.root, KIND_DIR, name, commit)
    picked = []
    pointer = dataset_meta.pointer_at(ws.root, KIND_DIR, name, commit)
    if samples and pointer.is_dir and dvc_cache.object_path(ws.root, pointer.md5).exists():
        manifest = {e["relpath"]: e["md5"] for e in dvc_cache.read_dir_manifest(ws.root, pointer.md5)}
        picked = _pick_samples(manifest, samples)
    return DatasetShowResult(name, rev or "latest", commit, meta, picked, str(ws.root))
