"""`registry [NAME] [--stage S]`: the registered versions, one page at a time.

A listing is a function of the tags alone: a version's manifest is immutable (verify checks
it) and its stages come from the stage tags. So the rows of every version are kept in
`.nbversion/tmp/registry-rows.jsonl` (git-ignored), keyed by the state of git's tag refs
(`packed-refs`, the loose `refs/tags` folder, reftable's `tables.list`): a registration,
promotion, demotion, pull or `git tag -d` changes that key and the next listing rebuilds the
rows from `git for-each-ref`. While the key holds, a page reads the file's first line (the
model name and stages of every row, for the filters) and parses only the rows of the page:
listing 100 of 10,000 versions does not read 10,000 tags (~200 ms) or manifests.
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Optional

from ...errors import NotFound
from .. import paging
from ..backends import atomic, git_files
from ..layout import TMP_DIR
from ..result import Result
from . import tags
from .summaries import summaries
from .versions import KEY_METRICS, artifact_tags, one_artifact

logger = logging.getLogger(__name__)

if TYPE_CHECKING:   # annotations only: core.workspace imports this module into Workspace
    from ..workspace import Workspace

ROWS_CACHE = f"{TMP_DIR}/registry-rows.jsonl"
FORMAT = 1
# tags changed this recently may change again within the same mtime tick: rebuild next time too
RACY_SECONDS = 2.0
# metric columns of a one-model table: more would not fit a terminal next to the other columns
MAX_METRIC_COLUMNS = 6


@dataclass
class RegistryResult(Result):
    versions: list = field(default_factory=list)   # dicts, newest first per model
    page: Optional[paging.Page] = None

    def table(self):
        """One model: a column per metric it has. Several models: a `metrics` cell per row with
        that model's own top metrics (a YOLO model's mAP next to a classifier's f1 and roc_auc)."""
        names = {v["name"] for v in self.versions}
        columns = metric_columns(self.versions) if len(names) == 1 else []
        headers = ["model", "version", "stages", "champion", *(columns or ["metrics"]), "registered by", "registered at"]
        rows = []
        for v in self.versions:
            metrics = [v["metrics"].get(k) for k in columns] if columns else [metrics_cell(v["metrics"])]
            rows.append([v["name"], v["version"], ", ".join(v["stages"]), "★" if v["champion"] else "",
                         *metrics, v["registered_by"], (v["registered_at"] or "")[:19]])
        return headers, rows

    def highlight(self, row) -> bool:
        return row[3] == "★"

    def to_dict(self) -> dict:
        # dataclasses.asdict deep-copies: slow for 10,000 rows. `metric_columns`: what the table shows
        return {"versions": self.versions, "metric_columns": metric_columns(self.versions),
                **(self.page.to_dict() if self.page else {})}

    def summary(self):
        names = {v["name"] for v in self.versions}
        if not names:
            return "the registry is empty: `nbversion register NAME --version 1.0.0 --from RUN|FILE|MODEL`"
        if self.page is not None and self.page.describe(len(self.versions), "versions"):
            return self.page.describe(len(self.versions), "versions")
        return f"{len(self.versions)} version(s) of {len(names)} model(s)"


def ordered_metrics(metrics, limit: int = MAX_METRIC_COLUMNS) -> list:
    """Metric names, the KEY_METRICS first (in their order), then the others as they come."""
    names = list(dict.fromkeys(metrics))
    chosen = [k for k in KEY_METRICS if k in names] + [k for k in names if k not in KEY_METRICS]
    return chosen[:limit]


def metric_columns(versions: list) -> list:
    """The metric columns of these rows: the union of their numeric metrics, ordered, capped."""
    return ordered_metrics(k for v in versions for k, value in (v.get("metrics") or {}).items()
                           if isinstance(value, (int, float)) and not isinstance(value, bool))


def metrics_cell(metrics: dict, limit: int = 4) -> str:
    """`f1=0.81, roc_auc=0.9`: a row's own top metrics, for a table of several models."""
    numbers = {k: v for k, v in (metrics or {}).items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    return ", ".join(f"{k}={numbers[k]:.4g}" for k in ordered_metrics(numbers, limit))


def _build_rows(root: Path) -> list[dict]:
    """Every version's row, sorted by model name, newest version first: from the tags."""
    arts = artifact_tags(root)
    known = summaries(root, arts)
    rows = []
    for art_name in sorted(arts):
        art = arts[art_name]
        holders = art.holders()
        for version in sorted(art.versions, key=tags.parse_version, reverse=True):
            info = art.versions[version]
            summary = known.get(info["tag"]) or {}
            rows.append({"name": art_name, "version": version,
                         "stages": sorted(s for s, v in holders.items() if v == version),
                         "champion": holders.get("champion") == version,
                         "metrics": summary.get("metrics") or {},
                         "registered_by": summary.get("registered_by") or info["tagger"],
                         "registered_at": summary.get("registered_at") or info["date"]})
    return rows


class _Rows:
    """All rows: their model names and stages in memory, each row parsed when asked for."""

    def __init__(self, names: list, stages: list, lines: list):
        self.names, self.stages, self._lines = names, stages, lines

    def row(self, index: int) -> dict:
        line = self._lines[index]
        return json.loads(line) if isinstance(line, (bytes, str)) else line


def _load(root: Path, key: list) -> Optional[_Rows]:
    try:
        data = (root / ROWS_CACHE).read_bytes()
    except OSError:
        return None
    lines = data.split(b"\n")
    try:
        header = json.loads(lines[0])
    except ValueError:
        return None
    if not isinstance(header, dict) or header.get("format") != FORMAT or header.get("key") != key \
            or header.get("racy") or len(header.get("names") or []) != len(lines) - 2:
        return None     # another state of the tags, or a cut-off file: rebuild
    return _Rows(header["names"], header["stages"], lines[1:-1])


def _rows(root: Path) -> _Rows:
    key = git_files.tag_refs_stamp(root)
    cached = _load(root, key)
    if cached is not None:
        return cached
    built = _build_rows(root)
    names, stages = [r["name"] for r in built], [r["stages"] for r in built]
    header = {"format": FORMAT, "key": key, "racy": git_files.is_recent(key, RACY_SECONDS),
              "names": names, "stages": stages}
    text = "\n".join([json.dumps(header), *(json.dumps(r) for r in built)]) + "\n"
    try:
        atomic.write_text(root / ROWS_CACHE, text)
    except OSError:
        logger.debug("could not keep the registry rows; the next listing reads the tags again", exc_info=True)
    logger.debug("registry rows rebuilt from the tags: %d versions", len(built))
    return _Rows(names, stages, built)


def registry(ws: Workspace, name: Optional[str] = None, stage: Optional[str] = None,
             limit: Optional[int] = None, offset: int = 0) -> RegistryResult:
    """Registered versions with their stages, champion and metrics (`nbversion registry`).

    Args:
        name: only this model (default: every registered model).
        stage: only the versions that hold this stage now (e.g. "champion").
        limit: at most this many versions (default: all).
        offset: skip this many matching versions first (the next page).

    Returns:
        RegistryResult: `versions`, one dict per version (every metric), by model name, newest
        version first, and `page` (total, offset, limit, next_offset). The table shows the metric
        columns the model has (one model) or each row's own top metrics (several models).

    Example:
        >>> ws = nbv.open(".")
        >>> ws.registry("det", limit=20)
    """
    paging.check(limit, offset)
    if name:
        tags.check_name(name)
    if stage:
        tags.check_name(stage)
    rows = _rows(ws.root)
    chosen = range(len(rows.names))
    if name:
        chosen = [i for i in chosen if rows.names[i] == name]
        if not chosen:
            one_artifact(ws.root, name)    # raises the usual "no registered model named ..."
            raise NotFound(f"no registered model named {name!r}")
    if stage:
        chosen = [i for i in chosen if stage in rows.stages[i]]
    start, stop = paging.bounds(len(chosen), limit, offset)
    return RegistryResult([rows.row(i) for i in chosen[start:stop]], paging.Page(len(chosen), offset, limit))
