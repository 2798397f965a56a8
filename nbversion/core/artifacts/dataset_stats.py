"""Dataset statistics for `dataset show`: class counts, box sizes, aspect ratios, image sizes.

Gathered while an import validates (each image and label is read then anyway: the image size
comes from the header Pillow already parsed), summarised into histograms with fixed bin edges
and kept in `datasets/<name>.meta.json` under "stats": the file stays small whatever the size
of the dataset (no per-image lists), and `show` of any version reads them from git.
"""
from __future__ import annotations

import statistics
from bisect import bisect_right
from collections import Counter

STATS_VERSION = 1
# fixed edges, so histograms of two versions compare bin by bin; a value past the last edge is
# counted in the last bin (every histogram sums to the number of boxes)
NORM_EDGES = [0.0, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0]
AREA_EDGES = [0.0, 0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0]
ASPECT_EDGES = [0.0, 0.25, 0.5, 0.67, 0.8, 1.25, 1.5, 2.0, 4.0, 1000.0]   # width / height
PIXEL_EDGES = [0, 8, 16, 32, 64, 96, 128, 256, 512, 1024, 100_000]
MAX_IMAGE_SIZES = 12   # the most common width x height; the rest summed under "other"


def histogram(values: list, edges: list) -> dict:
    """Counts per bin [edges[i], edges[i+1]) (the last bin also holds what lies past it),
    with min, median and max of the values (None when there are none)."""
    counts = [0] * (len(edges) - 1)
    last = len(counts) - 1
    for value in values:   # bisect: a 100,000-image dataset has a few hundred thousand boxes
        counts[min(max(bisect_right(edges, value) - 1, 0), last)] += 1
    rounded = lambda v: None if v is None else round(float(v), 6)
    return {"edges": list(edges), "counts": counts, "min": rounded(min(values, default=None)),
            "median": rounded(statistics.median(values) if values else None),
            "max": rounded(max(values, default=None))}


class _Split:
    def __init__(self):
        self.images = self.without_boxes = 0
        self.boxes, self.images_with = Counter(), Counter()
        self.widths, self.heights, self.areas, self.aspects = [], [], [], []
        self.px_widths, self.px_heights, self.sizes = [], [], Counter()


class Collector:
    """Fed one image at a time (its size, its boxes), in any order; `summary()` at the end."""

    def __init__(self, names: list):
        self.names, self.splits = list(names), {}

    def add(self, split: str, size, boxes) -> None:
        """`size`: (width, height) in pixels or None; `boxes`: [(class id, w, h)] normalised, or
        None for an image without a label file."""
        s = self.splits.setdefault(split, _Split())
        s.images += 1
        if size:
            s.sizes[f"{size[0]}x{size[1]}"] += 1
        if not boxes:
            s.without_boxes += 1
            return
        for cls in {int(b[0]) for b in boxes}:
            s.images_with[cls] += 1
        for cls, w, h in boxes:
            s.boxes[int(cls)] += 1
            s.widths.append(w)
            s.heights.append(h)
            s.areas.append(w * h)
            if size:
                pw, ph = w * size[0], h * size[1]
                s.px_widths.append(pw)
                s.px_heights.append(ph)
                s.aspects.append(pw / ph if ph else ASPECT_EDGES[-1])
            else:
                s.aspects.append(w / h if h else ASPECT_EDGES[-1])

    def _name(self, cls: int) -> str:
        return self.names[cls] if 0 <= cls < len(self.names) else str(cls)

    def summary(self) -> dict:
        return {"version": STATS_VERSION,
                "splits": {name: self._split_summary(s) for name, s in self.splits.items()}}

    def _split_summary(self, s: _Split) -> dict:
        ids = sorted(set(range(len(self.names))) | set(s.boxes))
        sizes = s.sizes.most_common()
        shown = dict(sizes[:MAX_IMAGE_SIZES])
        if len(sizes) > MAX_IMAGE_SIZES:
            shown["other"] = sum(n for _size, n in sizes[MAX_IMAGE_SIZES:])
        out = {"images": s.images, "images_without_boxes": s.without_boxes, "boxes": sum(s.boxes.values()),
               # a list, in class id order (a mapping's keys would be sorted when the metadata is written)
               "classes": [{"class": self._name(c), "boxes": s.boxes.get(c, 0), "images": s.images_with.get(c, 0)}
                           for c in ids],
               "image_sizes": shown,
               "box_width": histogram(s.widths, NORM_EDGES), "box_height": histogram(s.heights, NORM_EDGES),
               "box_area": histogram(s.areas, AREA_EDGES), "aspect_ratio": histogram(s.aspects, ASPECT_EDGES)}
        if s.px_widths:
            out["box_width_px"] = histogram(s.px_widths, PIXEL_EDGES)
            out["box_height_px"] = histogram(s.px_heights, PIXEL_EDGES)
        return out


def parse_boxes(text: str) -> list:
    """(class id, w, h) of each valid line of a YOLO label file (already validated)."""
    boxes = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 5:
            try:
                boxes.append((int(float(parts[0])), float(parts[3]), float(parts[4])))
            except ValueError:
                continue
    return boxes


def image_size(path) -> tuple | None:
    """Width and height from the image's header (Pillow's open is lazy: the pixels are not read)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            return image.size
    except (OSError, UnidentifiedImageError, ValueError, ImportError):
        return None
