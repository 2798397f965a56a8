"""A recorded prediction (`predict show ID`) drawn again in a notebook: the record keeps no pixels,
so each image is read from the path it was predicted at, when its md5 still matches the record."""
from __future__ import annotations

import base64
import html
import io

from .datasets import PALETTE

WIDTH = 480   # the largest side drawn, in pixels: a 4000 px photo is not inlined whole


def recorded_boxes(result) -> str:
    """Each image of a PredictionShow with its recorded boxes drawn; a note for those moved or changed."""
    parts = []
    for image, state in zip(result.record.get("images", []), result.states):
        name = html.escape(str(image.get("name")))
        if state != "here":
            parts.append(f"<div class='nbv-note'>{name}: {'moved' if state == 'moved' else 'changed'} since the "
                         f"prediction ({html.escape(str(image.get('path')))}): boxes not drawn</div>")
            continue
        picture = _drawn(image)
        parts.append(f"<figure style='display:inline-block;margin:4px'><img style='max-width:{WIDTH}px' "
                     f"src='data:image/png;base64,{picture}' alt='{name}'/><figcaption class='nbv-note'>"
                     f"{name} ({len(image.get('detections') or [])} detection(s))</figcaption></figure>")
    return "".join(parts)


def _drawn(image: dict) -> str:
    from PIL import Image, ImageDraw

    with Image.open(image["path"]) as opened:
        picture = opened.convert("RGB")
    scale = min(1.0, WIDTH / max(picture.size))
    if scale < 1.0:
        picture = picture.resize((max(1, round(picture.width * scale)), max(1, round(picture.height * scale))))
    draw = ImageDraw.Draw(picture)
    classes = sorted({box["class"] for box in image.get("detections") or []})
    for box in image.get("detections") or []:
        colour = PALETTE[classes.index(box["class"]) % len(PALETTE)]
        x1, y1, x2, y2 = (v * scale for v in box["box"])
        draw.rectangle([x1, y1, x2, y2], outline=colour, width=2)
        draw.text((x1 + 2, y1 + 1), f"{box['class']} {box['confidence']:.2f}", fill=colour)
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()
