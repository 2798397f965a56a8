"""Text and HTML rendering of results: one table shape, two outputs."""
from __future__ import annotations

import html
import json
from dataclasses import asdict, is_dataclass

STYLE = ("<style>.nbv-table{border-collapse:collapse;font-size:12px;margin:2px 0}"
         ".nbv-table th,.nbv-table td{padding:2px 8px;text-align:left;"
         "border-bottom:1px solid var(--jp-border-color2,#ddd)}"
         ".nbv-title{font-weight:600;margin:2px 0}.nbv-note{color:var(--jp-ui-font-color2,#666)}"
         ".nbv-hl{background:var(--jp-warn-color3,#fff3cd)}</style>")


def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def text_table(headers, rows) -> str:
    if not rows:
        return ""
    cells = [[_cell(v) for v in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(headers)]
    line = lambda vals: "  ".join(v.ljust(w) for v, w in zip(vals, widths)).rstrip()
    return "\n".join([line(headers), line(["-" * w for w in widths])] + [line(r) for r in cells])


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


class Result:
    """Base of every result dataclass: a title, a table, a summary; HTML in notebooks.

    Subclasses define `table()` -> (headers, rows) and optionally `summary()` and
    `extra_html()` (a chart or images below the table).
    """

    def table(self):
        return [], []

    def summary(self) -> str:
        return ""

    def highlight(self, row) -> bool:
        return False

    def extra_html(self) -> str:
        return ""

    def to_dict(self) -> dict:
        return asdict(self)

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        # IPython prefers a class's own __repr__ (dataclasses write one) over an inherited
        # _repr_pretty_, so give every subclass its own: plain-text output is the table.
        cls._repr_pretty_ = lambda self, printer, cycle: printer.text(str(self))

    def __str__(self) -> str:
        headers, rows = self.table()
        parts = [text_table(headers, rows), self.summary()]
        return "\n".join(p for p in parts if p)

    def _repr_html_(self) -> str:
        headers, rows = self.table()
        parts = [STYLE]
        if rows:
            parts.append(html_table(headers, rows, self.highlight))
        if self.summary():
            parts.append(f"<div class='nbv-note'>{html.escape(self.summary())}</div>")
        parts.append(self.extra_html())
        return "".join(parts)
