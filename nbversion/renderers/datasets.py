"""Dataset thumbnails with their boxes drawn, for `dataset show` and `dataset diff` in a notebook."""
from __future__ import annotations

import base64
import html
import io
import logging

from ..core.backends import dvc_cache

logger = logging.getLogger(__name__)

PALETTE = [(230, 25, 75), (60, 180, 75), (0, 130, 200), (245, 130, 48), (145, 30, 180),
           (70, 240, 240), (240, 50, 230), (210, 245, 60), (250, 190, 212), (0, 128, 128)]
THUMB = 160
MAX_PREVIEWS = 4


def show_tiles(result) -> str:
    """The statistics plots, then the sample images of a DatasetShowResult in a wrapping row."""
    from .dataset_plots import stats_html

    plots = stats_html(result.stats)
    names = result.meta.get("classes", [])
    tiles = [tile for tile in (tile_html(result.root, s, names) for s in result.samples) if tile]
    if not tiles:
        return plots
    return plots + "<div style='display:flex;flex-wrap:wrap;gap:6px;margin-top:6px'>" + "".join(tiles) + "</div>"


def relabelled_tiles(result) -> str:
    """Relabelled images of a DatasetDiffResult before and after, boxes drawn (from the DVC cache)."""
    rows = []
    for preview in result.previews[:MAX_PREVIEWS]:
        before = tile_html(result.root, preview["before"], result.classes)
        after = tile_html(result.root, preview["after"], result.classes)
        if before and after:
            rows.append(f"<div style='display:flex;gap:6px;align-items:center'>{before}"
                        f"<span>&rarr;</span>{after}</div>")
    return ("<div class='nbv-title'>relabelled (before &rarr; after)</div>" + "".join(rows)) if rows else ""


def tile_html(root: str, sample: dict, names: list) -> str:
    """One thumbnail with its boxes drawn, as an inline PNG; '' if the cache lacks it."""
    from PIL import Image, ImageDraw

    image_path = dvc_cache.object_path(root, sample["image_md5"])
    if not image_path.exists():
        logger.debug("no tile for %s: its object is not in the local cache", sample.get("path") or sample["image_md5"])
        return ""
    with Image.open(image_path) as img:
        image = img.convert("RGB")
    scale = THUMB / max(image.size)
    image = image.resize((max(1, round(image.width * scale)), max(1, round(image.height * scale))))
    draw = ImageDraw.Draw(image)
    label_path = dvc_cache.object_path(root, sample["label_md5"]) if sample["label_md5"] else None
    lines = label_path.read_text().splitlines() if label_path and label_path.exists() else []
    for line in lines:
        parts = line.split()
        if len(parts) != 5:
            continue
        cls, cx, cy, w, h = int(float(parts[0])), *map(float, parts[1:])
        colour = PALETTE[cls % len(PALETTE)]
        box = [(cx - w / 2) * image.width, (cy - h / 2) * image.height,
               (cx + w / 2) * image.width, (cy + h / 2) * image.height]
        draw.rectangle(box, outline=colour, width=2)
        draw.text((box[0] + 2, box[1] + 1), names[cls] if cls < len(names) else str(cls), fill=colour)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    data = base64.b64encode(buffer.getvalue()).decode()
    caption = html.escape(sample["path"].rsplit("/", 1)[-1])
    return (f"<figure style='margin:0'><img src='data:image/png;base64,{data}' alt='{caption}'>"
            f"<figcaption class='nbv-note'>{caption} ({len(lines)} boxes)</figcaption></figure>")
