"""The base of every result dataclass: data, a table of it and its plain-text form.

Core returns data only. Notebook HTML (tables, thumbnails, charts) lives in the renderers
(nbversion/render.py, nbversion/renderers/); `_repr_html_` reaches them through a lazy
import, so the import graph stays one way: render -> core.
"""
from __future__ import annotations

from dataclasses import asdict


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


class Result:
    """Base of every result dataclass: a title, a table, a summary; HTML in notebooks.

    Subclasses define `table()` -> (headers, rows) and optionally `summary()`. What a
    notebook shows below the table (a chart, thumbnails) is a renderer registered for the
    class in nbversion/render.py.
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
        from ..render import result_html   # lazy: core never imports presentation at import time

        return result_html(self)
