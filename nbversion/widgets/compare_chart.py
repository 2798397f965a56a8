"""The chart below `runs compare` in a notebook: one small panel per metric, one curve per run.

A static PNG (Agg backend), so nbconvert and nbval show it as the notebook does. The panels carry
no legends of their own (ten runs would cover the curves); one legend above the figure, in HTML,
names each run in the colour of its curves, built from the lines actually drawn. Without
matplotlib (the yolo extra) the tables above are all there is.
"""
from __future__ import annotations

import base64
import html
import io
import logging

logger = logging.getLogger(__name__)

COLUMNS = 4


def _metrics(result) -> list[str]:
    from ..training.compare import CHART_METRICS

    recorded = {name for series in result.series.values() for name in series}
    return [m for m in CHART_METRICS if m in recorded]


def compare_figure(result):
    """The matplotlib Figure: panel per metric, a line per run, each run's best epoch ringed."""
    from matplotlib.figure import Figure
    from .axes import few_short_ticks, whole_epochs

    metrics = _metrics(result)
    rows = max(1, -(-len(metrics) // COLUMNS))
    figure = Figure(figsize=(2.6 * COLUMNS, 2.1 * rows), dpi=72)
    # room between panels for each one's title and tick labels: nothing overlaps
    figure.subplots_adjust(left=0.06, right=0.99, bottom=0.08, top=0.92, wspace=0.35, hspace=0.55)
    axes = figure.subplots(rows, COLUMNS, squeeze=False).ravel()
    colours = [f"C{n}" for n in range(10)]
    for ax, metric in zip(axes, metrics):
        for colour, run in zip(colours, result.runs):
            values = result.series[run["id"]].get(metric) or []
            epochs = result.series[run["id"]].get("epoch") or list(range(1, len(values) + 1))
            points = [(e, v) for e, v in zip(epochs, values) if isinstance(v, (int, float))]
            if not points:
                continue
            ax.plot([p[0] for p in points], [p[1] for p in points], color=colour, marker="o", markersize=2.5,
                    linewidth=1, label=run["id"])
            if metric == result.metric and run["best_epoch"] is not None:
                ax.plot([run["best_epoch"]], [run["best"]], marker="*", markersize=9, color=colour,
                        linestyle="none", label="_best")   # "_": not a curve of the legend
        ax.set_title(metric + (" (best ★)" if metric == result.metric else ""), fontsize=9)
        ax.tick_params(labelsize=7)
        few_short_ticks(ax)
        whole_epochs(ax)
    for ax in axes[len(metrics):]:
        ax.set_visible(False)
    return figure


def curves(figure) -> list[tuple[str, str]]:
    """(run id, colour) of each run with at least one curve drawn in the figure."""
    from matplotlib.colors import to_hex

    drawn = {}
    for ax in figure.axes:
        for line in ax.get_lines():
            if not line.get_label().startswith("_"):
                drawn.setdefault(line.get_label(), to_hex(line.get_color()))
    return list(drawn.items())


def compare_chart_html(result) -> str:
    """Registered in nbversion/render.py for RunsCompare: the legend and the PNG."""
    if not result.series:
        return ""
    try:
        figure = compare_figure(result)
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png", pil_kwargs={"compress_level": 1})
    except Exception:   # no matplotlib or a font problem: the table above still says it all
        logger.debug("could not draw the comparison chart", exc_info=True)
        return ""
    legend = "".join(f"<span class='nbv-curve' style='margin-right:12px'><span style='color:{colour}'>&#9632;</span> "
                     f"{html.escape(label)}</span>" for label, colour in curves(figure))
    png = base64.b64encode(buffer.getvalue()).decode()
    return (f"<div class='nbv-legend' style='font-size:12px;margin:4px 0'>{legend}</div>"
            f"<img alt='runs compared, per epoch' src='data:image/png;base64,{png}'/>")
