"""`dataset show NAME[@REV]`: metadata, class histogram and which sample images to show.

The thumbnails themselves are drawn by nbversion/renderers/datasets.py in a notebook.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Optional

from ...errors import NotFound
from ..result import Result
from ..units import human_bytes
from ..backends import dvc_cache
from . import dataset_meta
from ..repo import names, refs
from .dataset_stats_backfill import stats_of
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
    stats: dict = field(default_factory=dict)      # dataset_stats summary, per split

    def table(self):
        splits = self.stats.get("splits", {})
        if not splits:   # a plain folder of files, or statistics that could not be read
            counts = self.meta.get("class_instances", {})
            top = max(counts.values(), default=0) or 1
            total = sum(counts.values()) or 1
            rows = [[cls, n, f"{100 * n / total:.1f}%", "#" * round(30 * n / top)] for cls, n in counts.items()]
            return ["class", "instances", "share", "histogram"], rows
        top = max((c["boxes"] for s in splits.values() for c in s["classes"]), default=0) or 1
        rows = []
        for split, s in splits.items():
            total = s["boxes"] or 1
            rows += [[split, c["class"], c["boxes"], f"{100 * c['boxes'] / total:.1f}%", c["images"],
                      "#" * round(24 * c["boxes"] / top)] for c in s["classes"]]
        return ["split", "class", "boxes", "share", "images", "histogram"], rows

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
        lines += [_split_line(split, s) for split, s in self.stats.get("splits", {}).items()]
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return {"name": self.name, "rev": self.rev, "commit": self.commit, "meta": self.meta,
                "stats": self.stats, "samples": [s["path"] for s in self.samples]}


def _median(hist: dict, fmt: str = "{:.3f}") -> str:
    return "-" if hist.get("median") is None else fmt.format(hist["median"])


def _split_line(split: str, s: dict) -> str:
    """One split's box and image sizes, in words (the histograms are in --json and the plots)."""
    sizes = ", ".join(f"{size} ({n})" for size, n in list(s.get("image_sizes", {}).items())[:3])
    px = ""
    if "box_width_px" in s:
        px = f" = {_median(s['box_width_px'], '{:.0f}')}x{_median(s['box_height_px'], '{:.0f}')} px"
    return (f"{split}: {s['images']} images ({s['images_without_boxes']} without boxes), {s['boxes']} boxes; "
            f"median box {_median(s['box_width'])} x {_median(s['box_height'])}{px}, "
            f"area {_median(s['box_area'], '{:.4f}')}, aspect w/h {_median(s['aspect_ratio'], '{:.2f}')}; "
            f"image sizes {sizes or '-'}")


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
    """Metadata, statistics and sample images of a dataset version (`nbversion dataset show`).

    Statistics per split: boxes and images per class, images without boxes, box width, height,
    area and aspect-ratio histograms (normalised, and in pixels where image sizes are known),
    image sizes. Gathered at import; computed from the version's files for older imports.

    Args:
        ref: NAME or NAME@REV; REV is a commit, a tag, or ~N (N versions back).
        samples: how many sample images the notebook view shows.
        on_event: unused; kept so every verb takes it.

    Returns:
        DatasetShowResult: the name, revision, commit, metadata, `stats` and samples.

    Example:
        >>> ws = nbv.open(".")
        >>> ws.dataset_show("traffic@~1", samples=4)
    """
    name, rev = refs.split_ref(ref)
    names.check_readable_name(name, "dataset")
    if rev in (None, "latest") and refs.versions(ws.root, KIND_DIR, name) \
            and not (ws.root / dataset_meta.meta_path(KIND_DIR, name)).exists():
        raise NotFound(f"dataset {name!r} was removed; its versions stay in the history",
                       hint=f"`nbversion dataset log {name}` lists them: show one with {name}@COMMIT or @TAG")
    commit = refs.resolve(ws.root, KIND_DIR, name, rev)
    logger.debug("dataset show %s: %r -> %s", name, rev, commit)
    meta = dataset_meta.read_at(ws.root, KIND_DIR, name, commit)
    picked = []
    pointer = dataset_meta.pointer_at(ws.root, KIND_DIR, name, commit)
    if samples and pointer.is_dir and dvc_cache.object_path(ws.root, pointer.md5).exists():
        manifest = {e["relpath"]: e["md5"] for e in dvc_cache.read_dir_manifest(ws.root, pointer.md5)}
        picked = _pick_samples(manifest, samples)
    stats = stats_of(ws.root, name, commit, meta)
    return DatasetShowResult(name, rev or "latest", commit, meta, picked, str(ws.root), stats)
