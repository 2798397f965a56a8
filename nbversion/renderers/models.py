"""`model compare` in a notebook: one small bar chart per metric, inline SVG (no plotting library)."""
from __future__ import annotations

import html


def metric_bars(result) -> str:
    """The metric rows of a ModelCompareResult as bar charts, the best value in green."""
    return bar_charts(result.refs, [r for r in result.rows if r["kind"] == "metric"])


def bar_charts(labels: list, rows: list) -> str:
    charts = []
    for row in rows:
        values = [v if isinstance(v, (int, float)) else None for v in row["values"]]
        top = max((abs(v) for v in values if v is not None), default=0) or 1
        bars = []
        for i, (label, value) in enumerate(zip(labels, values)):
            width = 0 if value is None else 160 * abs(value) / top
            colour = "#2e7d32" if i == row["best"] else "#90a4ae"
            text = "" if value is None else f"{value:.4g}"
            bars.append(f"<text x='0' y='{14 * i + 11}' font-size='10'>{html.escape(label[:18])}</text>"
                        f"<rect x='110' y='{14 * i + 2}' width='{width:.1f}' height='11' fill='{colour}'/>"
                        f"<text x='{114 + width:.1f}' y='{14 * i + 11}' font-size='10'>{text}</text>")
        charts.append(f"<figure style='margin:0'><figcaption class='nbv-title'>{html.escape(row['key'])}"
                      f"</figcaption><svg width='320' height='{14 * len(labels) + 4}'>{''.join(bars)}</svg></figure>")
    return "<div style='display:flex;flex-wrap:wrap;gap:12px'>" + "".join(charts) + "</div>" if charts else ""
