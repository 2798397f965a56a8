"""Per-version summaries (commit, metrics, who registered it, when) for the registry listing.

Manifests are immutable (verify checks it), so a summary keyed by tag and commit stays true:
listing 10,000 versions reads one cached file instead of 10,000 manifests.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

from ...errors import NotFound
from ..backends import atomic
from ..layout import TMP_DIR
from .versions import artifact_tags, read_manifest

SUMMARY_CACHE = f"{TMP_DIR}/registry-summaries.json"


def summaries(root: Path, arts: dict) -> dict:
    """tag -> {commit, metrics, registered_by, registered_at}, from a local cache.

    Manifests are immutable (verify checks it), so a summary keyed by tag and commit stays
    true: listing 10,000 versions reads one file instead of 10,000.
    """
    path = Path(root) / SUMMARY_CACHE
    try:
        cache = json.loads(path.read_bytes())
    except (OSError, ValueError):
        cache = {}
    changed = False
    for art in arts.values():
        for version, info in art.versions.items():
            hit = cache.get(info["tag"])
            if hit is not None and hit["commit"] == info["commit"]:
                continue
            try:
                manifest = read_manifest(root, art.name, version, info["commit"])
            except NotFound:
                cache.pop(info["tag"], None)
                continue    # a half version: listed from its tag, reported by `audit verify`
            cache[info["tag"]] = {"commit": info["commit"], "metrics": manifest.get("metrics") or {},
                                  "registered_by": manifest.get("registered_by"),
                                  "registered_at": manifest.get("registered_at")}
            changed = True
    if changed:
        atomic.write_text(path, json.dumps(cache))
    return cache


def champion_metric(root, metric: str = "mAP50-95", prefer: Optional[str] = None) -> Optional[float]:
    """`metric` of a current champion (of model `prefer` when it has one): the training chart's line."""
    arts = artifact_tags(root)
    champions = [(art_name, art.holders().get("champion")) for art_name, art in sorted(arts.items())]
    champions = sorted(((n, v) for n, v in champions if v), key=lambda nv: nv[0] != prefer)
    if not champions:
        return None
    art_name, version = champions[0]
    summary = summaries(root, {art_name: arts[art_name]}).get(arts[art_name].versions[version]["tag"]) or {}
    value = (summary.get("metrics") or {}).get(metric)
    return float(value) if value is not None else None
