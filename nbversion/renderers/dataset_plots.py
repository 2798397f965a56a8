"""`dataset show` statistics in a notebook: one matplotlib figure (class counts, box sizes,
aspect ratios, image sizes) as an inline PNG; without matplotlib, the numbers as tables."""
from __future__ import annotations

import base64
import html
import io
import logging

logger = logging.getLogger(__name__)

HISTOGRAMS = [("box_width", "box width (normalised)"), ("box_height", "box height (normalised)"),
              ("box_area", "box area (normalised)"), ("aspect_ratio", "aspect ratio w/h")]


def stats_html(stats: dict) -> str:
    splits = stats.get("splits", {}) if stats else {}
    if not any(s.get("images") for s in splits.values()):
        return ""
    try:
        import matplotlib   # noqa: F401 (the yolo extra brings it)
    except ImportError:
        return _tables(splits)
    return _figure(splits)


def _bin_labels(edges: list) -> list:
    fmt = lambda v: f"{v:g}"
    labels = [f"{fmt(a)}-{fmt(b)}" for a, b in zip(edges[:-1], edges[1:])]
    labels[-1] = f">{fmt(edges[-2])}"
    return labels


def _figure(splits: dict) -> str:
    import matplotlib
    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure   # not pyplot: no global state, no GUI backend

    fig = Figure(figsize=(11, 5.2), dpi=80, layout="constrained")
    axes = fig.subplots(2, 3)
    names = list(splits)
    width = 0.8 / max(1, len(names))
    classes = list(dict.fromkeys(c["class"] for s in splits.values() for c in s["classes"]))
    ax = axes[0][0]
    for i, split in enumerate(names):
        boxes = {c["class"]: c["boxes"] for c in splits[split]["classes"]}
        counts = [boxes.get(c, 0) for c in classes]
        ax.bar([x + i * width for x in range(len(classes))], counts, width, label=split)
    ax.set_xticks([x + width * (len(names) - 1) / 2 for x in range(len(classes))], classes,
                  rotation=30 if len(classes) > 6 else 0, fontsize=8)
    ax.set_title("boxes per class", fontsize=9)
    # one legend for the figure, outside the panels: constrained layout makes room for it
    fig.legend(*ax.get_legend_handles_labels(), loc="outside right upper", fontsize=8, title="split")
    for panel, (key, title) in zip([axes[0][1], axes[0][2], axes[1][0], axes[1][1]], HISTOGRAMS):
        edges = splits[names[0]][key]["edges"]
        for i, split in enumerate(names):
            panel.bar([x + i * width for x in range(len(edges) - 1)], splits[split][key]["counts"], width,
                      label=split)
        panel.set_xticks([x + width * (len(names) - 1) / 2 for x in range(len(edges) - 1)], _bin_labels(edges),
                         rotation=45, fontsize=6)
        panel.set_title(title, fontsize=9)
    ax = axes[1][2]
    sizes = {}
    for split in names:
        for size, n in splits[split].get("image_sizes", {}).items():
            sizes[size] = sizes.get(size, 0) + n
    top = sorted(sizes.items(), key=lambda kv: -kv[1])[:8]
    ax.barh([s for s, _n in top][::-1], [n for _s, n in top][::-1])
    ax.set_title("image sizes (all splits)", fontsize=9)
    ax.tick_params(labelsize=7)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    data = base64.b64encode(buffer.getvalue()).decode()
    return f"<img src='data:image/png;base64,{data}' alt='dataset statistics' style='max-width:100%'>"


def _tables(splits: dict) -> str:
    from ..render import html_table

    parts = []
    for split, s in splits.items():
        parts.append(f"<div class='nbv-title'>{html.escape(split)}: box and image sizes</div>")
        rows = [[title, h["min"], h["median"], h["max"],
                 ", ".join(f"{label}: {n}" for label, n in zip(_bin_labels(h["edges"]), h["counts"]) if n)]
                for key, title in HISTOGRAMS for h in [s[key]]]
        rows.append(["image sizes", "", "", "", ", ".join(f"{k}: {n}" for k, n in s["image_sizes"].items())])
        parts.append(html_table(["measure", "min", "median", "max", "counts per bin"], rows))
    return "".join(parts)
