"""`resolve NAME@champion|vX.Y.Z|latest [--at DATE]`: which registered version, and its weights.

A stage is read from the GTO tags (the newest assignment wins, or the newest before `--at`);
the weights served are checked against the version's manifest (`served.py`).
"""
from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Optional

from ...errors import RefNotFound, UsageError
from ..backends import _git
from ..result import Result
from . import tags
from .versions import one_artifact, read_manifest, split_ref, version_dir

logger = logging.getLogger(__name__)

if TYPE_CHECKING:   # annotations only: core.workspace imports this module into Workspace
    from ..workspace import Workspace


@dataclass
class ResolveResult(Result):
    name: str
    version: str
    selector: str
    path: str
    files: list = field(default_factory=list)
    commit: str = ""

    def table(self):
        return ["model", "selector", "version", "path"], [[self.name, self.selector, self.version, self.path]]


def parse_when(text: str, end_of_day: bool = True) -> datetime:
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(f"cannot read the date {text!r}", hint="use ISO 8601: 2026-01-31 or 2026-01-31T14:00:00+00:00") from None
    if len(text) == 10 and end_of_day:
        when = when.replace(hour=23, minute=59, second=59, microsecond=999999)  # a day means its end
    return when if when.tzinfo else when.replace(tzinfo=timezone.utc)


def select_version(art: tags.ArtifactTags, selector: str, at: Optional[str] = None) -> str:
    selector = selector or os.environ.get("MODEL_VERSION") or "champion"
    if selector == "latest":
        return art.latest_version()
    if selector.startswith("v") and selector[1:2].isdigit() or selector[:1].isdigit():
        version = tags.format_version(tags.parse_version(selector))
        if version not in art.versions:
            raise RefNotFound(f"{art.name}@{version} is not registered",
                              hint=f"registered: {', '.join(sorted(art.versions, key=tags.parse_version))}")
        return version
    holders = art.holders(parse_when(at) if at else None)
    if selector not in holders:
        when = f" at {at}" if at else ""
        raise RefNotFound(f"{art.name} had no {selector}{when}" if at else f"{art.name} has no {selector}",
                          hint=f"promote a version: `nbversion promote {art.name}@vX.Y.Z --stage {selector}`")
    return holders[selector]


def local_weights(root: Path, name: str, version: str, commit: str) -> list[Path]:
    """The version's files, the model file first, each checked against the manifest; never written
    into the working tree. Manifests older than multi-file versions name no model file: their one file is."""
    from .served import served_files

    rel = version_dir(name, version)
    tagged = _git.show(root, commit, f"{rel}/manifest.json")   # the tagged manifest, not a working copy
    manifest = json.loads(tagged) if tagged is not None else read_manifest(root, name, version, commit)
    paths = served_files(root, rel, commit, manifest)
    listed = list(manifest.get("files") or {})
    model = listed.index(manifest["model_file"]) if manifest.get("model_file") in listed else 0
    return [paths[model]] + paths[:model] + paths[model + 1:]


def resolve(ws: Workspace, ref: str, at: Optional[str] = None) -> ResolveResult:
    """The version a reference means now (or at a date) and a local path to its weights (`nbversion resolve`).

    Args:
        ref: NAME@champion (or another stage), NAME@vX.Y.Z, NAME@latest, or a bare NAME,
            which honours $MODEL_VERSION (default champion).
        at: an ISO 8601 date or time: which version held the stage then.

    Returns:
        ResolveResult: the name, version, selector, weights `path` (and all `files`), commit.

    Example:
        >>> ws = nbv.open(".")
        >>> ws.resolve("det@champion").path
    """
    name, selector = split_ref(ref)
    art = one_artifact(ws.root, name)
    version = select_version(art, selector, at)
    paths = local_weights(ws.root, name, version, art.versions[version]["commit"])
    logger.debug("resolve %s%s: %r (MODEL_VERSION=%s) -> %s@%s at %s, weights %s", ref, f" at {at}" if at else "",
                 selector, os.environ.get("MODEL_VERSION"), name, version, art.versions[version]["commit"], paths[0])
    return ResolveResult(name, version, selector or os.environ.get("MODEL_VERSION") or "champion",
                         str(paths[0]), [str(p) for p in paths], art.versions[version]["commit"])
