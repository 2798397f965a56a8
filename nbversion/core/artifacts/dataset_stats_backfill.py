"""Statistics of a dataset version imported before they were gathered at import time.

Computed on demand from that version's own files, as `dataset diff` reads an old version: its
`.dir` listing (relpath -> md5) from the DVC cache, each file from the working copy when the
working copy's file has the same md5 (no copy of the cache needed), else the cache object.
Only label files and image headers are read. The answer is kept by content hash in
`.nbversion/tmp` (a cache), so the next `show` of that version reads one small file.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path

from ...errors import NotFound
from ..backends import atomic, dvc_cache, pointers
from ..layout import TMP_DIR
from . import dataset_meta
from .dataset_stats import STATS_VERSION, Collector, image_size, parse_boxes
from .yolo_layout import IMAGE_SUFFIXES, label_for

from .dataset_meta import DATASETS_DIR as KIND_DIR

logger = logging.getLogger(__name__)
CACHE_DIR = Path(TMP_DIR) / "dataset-stats"


def stats_of(root: Path, name: str, commit: str, meta: dict) -> dict:
    """The version's statistics: its metadata's, else the cached or computed ones."""
    stats = meta.get("stats")
    if stats and stats.get("version") == STATS_VERSION:
        return stats
    if meta.get("format") != "yolo":
        return {}
    content = meta.get("content_hash", "")
    cached = Path(root) / CACHE_DIR / f"{content.replace('.', '_')}.json"
    try:
        found = json.loads(cached.read_bytes())
        if found.get("version") == STATS_VERSION:
            return found
    except (OSError, ValueError):
        pass
    stats = compute(root, name, commit, meta)
    try:
        cached.parent.mkdir(parents=True, exist_ok=True)
        atomic.write_json(cached, stats)
    except OSError:   # a cache: the next show computes again
        logger.debug("could not keep the statistics of %s", content, exc_info=True)
    return stats


def _file_reader(root: Path, name: str, manifest: dict):
    """relpath -> a path holding that content: the working copy's file where its md5 is the
    version's, else the DVC cache object (None when neither has it)."""
    out = f"{KIND_DIR}/{name}"
    current = pointers.in_worktree(root).get(out)
    worktree = {}
    if current is not None and current.is_dir and (Path(root) / out).is_dir():
        from ..backends import uncommitted
        worktree = uncommitted.folder_state(root, current).md5s

    def locate(rel: str):
        md5 = manifest.get(rel)
        if md5 is None:
            return None
        if worktree.get(rel) == md5:
            return Path(root) / out / rel
        path = dvc_cache.object_path(root, md5)
        return path if path.exists() else None
    return locate


def compute(root: Path, name: str, commit: str, meta: dict) -> dict:
    pointer = dataset_meta.pointer_at(root, KIND_DIR, name, commit)
    if not pointer.is_dir:
        return {}
    manifest = {e["relpath"]: e["md5"] for e in dvc_cache.read_dir_manifest(root, pointer.md5)}
    locate = _file_reader(root, name, manifest)
    collector = Collector(meta.get("classes", []))
    missing = 0
    for split, sources in meta.get("split_dirs", {}).items():
        prefixes = tuple(s.rstrip("/") + "/" for s in sources)
        for rel in sorted(manifest):
            if not rel.startswith(prefixes) or f".{rel.rsplit('.', 1)[-1].lower()}" not in IMAGE_SUFFIXES:
                continue
            image = locate(rel)
            if image is None:
                missing += 1
                continue
            label = locate(label_for(rel))
            boxes = parse_boxes(label.read_text(errors="replace")) if label is not None else None
            collector.add(split, image_size(image), boxes)
    if missing and not collector.splits:
        raise NotFound(f"the files of {KIND_DIR}/{name} at {commit[:8]} are not in the local DVC cache",
                       hint="run `nbversion pull` to fetch the data of that version")
    logger.debug("statistics of %s@%s computed from its files (%d image(s) not in the cache)",
                 name, commit[:8], missing)
    return collector.summary()
