"""Axis settings the training charts share (the live chart, `runs show`, `runs compare`)."""
from __future__ import annotations


def few_short_ticks(ax) -> None:
    """Four integer ticks on the epoch axis, four on the values, each its own short number:
    drawing tick labels is most of the cost of a frame, and matplotlib's shared offset
    ("1e-17", "1e-6+1e3") lands on the panel's title."""
    from matplotlib.ticker import FuncFormatter, MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(4, integer=True))
    ax.yaxis.set_major_locator(MaxNLocator(4))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:.3g}"))


def whole_epochs(ax) -> None:
    """One epoch drawn: matplotlib's own margin would tick 0.96 ... 1.04; show epoch N between N-1 and N+1."""
    low, high = ax.get_xlim()
    if high - low < 2:
        middle = round((low + high) / 2)
        ax.set_xlim(middle - 1, middle + 1)
