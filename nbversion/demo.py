"""A tiny YOLO detection dataset made locally (numpy + Pillow), deterministic by seed.

Coloured rectangles on a noisy background, one class per colour, in the layout
Ultralytics reads: data.yaml + images/{train,val} + labels/{train,val}. Small enough to
train 2 epochs on a CPU in seconds; nothing is downloaded.
"""
from __future__ import annotations

import os
from pathlib import Path

CLASSES = ["red", "green", "blue"]
COLOURS = [(220, 40, 40), (40, 200, 60), (40, 80, 230)]


def make_image(rng, size: int):
    """One image and its YOLO label lines."""
    from PIL import Image, ImageDraw

    import numpy as np

    background = rng.integers(90, 140, size=(size, size, 3), dtype=np.uint8)
    image = Image.fromarray(background)
    draw = ImageDraw.Draw(image)
    lines = []
    for _ in range(int(rng.integers(1, 4))):
        cls = int(rng.integers(0, len(CLASSES)))
        w, h = (int(v) for v in rng.integers(size // 6, size // 2, size=2))
        x0, y0 = int(rng.integers(0, size - w)), int(rng.integers(0, size - h))
        draw.rectangle([x0, y0, x0 + w - 1, y0 + h - 1], fill=COLOURS[cls])
        cx, cy = (x0 + w / 2) / size, (y0 + h / 2) / size
        lines.append(f"{cls} {cx:.6f} {cy:.6f} {w / size:.6f} {h / size:.6f}")
    return image, lines


def write_label(path: Path, lines: list[str]) -> None:
    """Write by rename, never in place: the old file may be a link into the DVC cache."""
    tmp = path.with_suffix(".tmp")
    tmp.write_text("".join(line + "\n" for line in lines))
    os.replace(tmp, path)


def make_dataset(dest, train: int = 16, val: int = 8, size: int = 64, seed: int = 0,
                 classes=None) -> Path:
    """Write the dataset to `dest` and return it. Same seed, same bytes."""
    import numpy as np

    dest = Path(dest)
    rng = np.random.default_rng(seed)
    names = list(classes or CLASSES)
    for split, count in (("train", train), ("val", val)):
        (dest / "images" / split).mkdir(parents=True, exist_ok=True)
        (dest / "labels" / split).mkdir(parents=True, exist_ok=True)
        for i in range(count):
            image, lines = make_image(rng, size)
            stem = f"{split}_{i:05d}"
            image.save(dest / "images" / split / f"{stem}.png", optimize=False)
            write_label(dest / "labels" / split / f"{stem}.txt", lines)
    yaml_lines = ["path: .", "train: images/train", "val: images/val", "names:"]
    yaml_lines += [f"  {i}: {name}" for i, name in enumerate(names)]
    (dest / "data.yaml").write_text("\n".join(yaml_lines) + "\n")
    return dest


def edit_labels(dataset, count: int = 2, split: str = "train") -> list[Path]:
    """Shift the first box of `count` label files a little: a realistic relabelling."""
    changed = []
    for path in sorted((Path(dataset) / "labels" / split).glob("*.txt"))[:count]:
        lines = path.read_text().splitlines()
        cls, cx, cy, w, h = lines[0].split()
        lines[0] = f"{cls} {min(float(cx) + 0.01, 0.99):.6f} {cy} {w} {h}"
        write_label(path, lines)
        changed.append(path)
    return changed


if __name__ == "__main__":  # python -m nbversion.demo DEST
    import sys

    print(make_dataset(sys.argv[1] if len(sys.argv) > 1 else "demo-dataset"))
