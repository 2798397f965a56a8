"""Text and HTML rendering of results: one table shape, two outputs."""
from __future__ import annotations

import html
import importlib
import json
from dataclasses import asdict, is_dataclass

from .core.result import Result, _cell, text_table  # noqa: F401 (re-exported: training, server)

STYLE = ("<style>.nbv-table{border-collapse:collapse;font-size:12px;margin:2px 0}"
         ".nbv-table th,.nbv-table td{padding:2px 8px;text-align:left;"
         "border-bottom:1px solid var(--jp-border-color2,#ddd)}"
         ".nbv-title{font-weight:600;margin:2px 0}.nbv-note{color:var(--jp-ui-font-color2,#666)}"
         ".nbv-hl{background:var(--jp-warn-color3,#fff3cd)}</style>")


def html_table(headers, rows, highlight=lambda row: False) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join(
        f"<tr{' class=nbv-hl' if highlight(row) else ''}>"
        + "".join(f"<td>{html.escape(_cell(v))}</td>" for v in row) + "</tr>"
        for row in rows)
    return f"<table class='nbv-table'><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def to_jsonable(obj):
    if hasattr(obj, "to_dict"):
        return obj.to_dict()
    if is_dataclass(obj):
        return asdict(obj)
    return obj


def to_json(obj) -> str:
    data = to_jsonable(obj)
    # indent forces Python's pure-Python encoder: 10,000-row listings go out compact (C encoder)
    big = isinstance(data, dict) and any(isinstance(v, list) and len(v) > 1000 for v in data.values())
    return json.dumps(data, indent=None if big else 2, default=str)


# What a notebook shows below a result's table, by result class: "module:function" of a
# renderer, imported when first drawn (PIL, matplotlib only then). The result modules do not
# import them: core and training stay free of presentation and of import cycles through it.
EXTRA_HTML = {
    "nbversion.core.artifacts.dataset_view.DatasetShowResult": "nbversion.renderers.datasets:show_tiles",
    "nbversion.core.artifacts.dataset_diff.DatasetDiffResult": "nbversion.renderers.datasets:relabelled_tiles",
    "nbversion.core.artifacts.models.ModelCompareResult": "nbversion.renderers.models:metric_bars",
    "nbversion.training.runs.RunShow": "nbversion.widgets.train_chart:run_chart_html",
    "nbversion.training.handle.Run": "nbversion.widgets.train_chart:run_chart_html",
    "nbversion.training.compare.RunsCompare": "nbversion.widgets.compare_chart:compare_chart_html",
    "nbversion.training.prediction_log.PredictionShow": "nbversion.renderers.predictions:recorded_boxes",
}


def extra_html(result) -> str:
    """The chart or images below the table: a registered renderer, else the class's own."""
    cls = type(result)
    target = EXTRA_HTML.get(f"{cls.__module__}.{cls.__qualname__}")
    if target is None:
        return result.extra_html()
    module, _, function = target.partition(":")
    return getattr(importlib.import_module(module), function)(result)


def result_html(result) -> str:
    """A result as notebook HTML: its table, its summary, then what its renderer adds."""
    headers, rows = result.table()
    parts = [STYLE]
    if rows:
        parts.append(html_table(headers, rows, result.highlight))
    if result.summary():
        parts.append(f"<div class='nbv-note'>{html.escape(result.summary())}</div>")
    parts.append(extra_html(result))
    return "".join(parts)
