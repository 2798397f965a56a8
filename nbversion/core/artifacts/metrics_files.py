"""`metrics.json` / `metrics_*.json` beside a model: read into the version's metrics.

The rule (docs/registry.md): only files at the top of the version (not in sub-folders) count.
`metrics.json` gives its keys as they are; `metrics_<part>.json` gives them as `<part>/<key>`, so
`metrics_val.json` and `metrics_test.json` can both hold `f1`. Nested objects are flattened with
`/` (`{"val": {"f1": 0.8}}` -> `val/f1`, the way Ultralytics writes `val/box_loss`). Only finite
numbers are metrics: text, lists, booleans and NaN are left out (logged at debug level). A file
that is not valid JSON is an error naming the file and line, found before anything is written.
"""
from __future__ import annotations

import json
import logging
import math
import re
from pathlib import Path

from ...errors import InvalidInput

logger = logging.getLogger(__name__)

METRICS_FILE = re.compile(r"^metrics(?:_(?P<part>[^/]+))?\.json$")


def metrics_files(files: dict) -> list[tuple[str, Path, str]]:
    """(stored path, source file, key prefix) of the metrics files among `files`, metrics.json first."""
    found = []
    for rel, path in files.items():
        match = METRICS_FILE.match(rel)
        if match:
            found.append((rel, Path(path), f"{match['part']}/" if match["part"] else ""))
    return sorted(found, key=lambda item: (item[2] != "", item[0]))


def read_metrics(files: dict) -> dict:
    """The metrics of every metrics file among `files` (stored path -> source file)."""
    metrics = {}
    for rel, path, prefix in metrics_files(files):
        data = _load(path)
        found = dict(_flatten(data, prefix, path))
        logger.debug("metrics from %s: %s", rel, found)
        metrics.update(found)
    return metrics


def _load(path: Path):
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidInput(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})",
                           hint="save metrics.json as UTF-8 JSON; nothing was written") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"{path}:{exc.lineno}: not valid JSON ({exc.msg}, column {exc.colno})",
                           hint="fix the file (e.g. a missing comma or quote), then run the command again; "
                                "nothing was written") from None
    if not isinstance(data, dict):
        raise InvalidInput(f"{path}:1: a metrics file holds a JSON object, not {type(data).__name__}",
                           hint='e.g. {"f1": 0.81, "roc_auc": 0.9}; nothing was written')
    return data


def _flatten(data: dict, prefix: str, path: Path):
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            yield from _flatten(value, f"{name}/", path)
        elif isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            yield name, value
        else:
            logger.debug("%s: %s = %r is not a finite number: not a metric", path.name, name, value)
