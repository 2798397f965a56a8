"""`dataset show NAME[@REV]`: metadata, class histogram and sample images with their boxes."""
from __future__ import annotations

import base64
import html
import io
from dataclasses import dataclass, field

from ...render import Result
from ..backends import _dvc
from . import dataset_meta
from ..repo import names, refs
from .yolo_layout import IMAGE_SUFFIXES, label_for

from .dataset_meta import DATASETS_DIR as KIND_DIR
PALETTE = [(230, 25, 75), (60, 180, 75), (0, 130, 200), (245, 130, 48), (145, 30, 180),
           (70, 240, 240), (240, 50, 230), (210, 245, 60), (250, 190, 212), (0, 128, 128)]
THUMB = 160


@dataclass
class DatasetShowResult(Result):
    name: str
    rev: str
    commit: str
    meta: dict
    samples: list = field(default_factory=list)    # [{"path", "image_md5", "label_md5"}]
    root: str = ""

    def table(self):
        counts = self.meta.get("class_instances", {})
        top = max(counts.values(), default=0) or 1
        total = sum(counts.values()) or 1
        rows = [[cls, n, f"{100 * n / total:.1f}%", "#" * round(30 * n / top)] for cls, n in counts.items()]
        return ["class", "instances", "share", "histogram"], rows

    def summary(self):
        from ..units import human_bytes

        m = self.meta
        splits = ", ".join(f"{s} {v['images']} images / {v['instances']} boxes / {v['background']} background"
                           for s, v in m.get("splits", {}).items())
        lines = [f"{self.name}@{self.rev} = {self.commit[:8]}  format {m.get('format')}, {m.get('files')} files, "
                 f"{human_bytes(m.get('bytes'))}, content {m.get('content_hash', '')}",
                 f"added by {m.get('added_by')} at {m.get('added_at')} from {m.get('source')}"]
        if splits:
            lines.append(f"splits: {splits}")
        if m.get("tags"):
            lines.append(f"tags: {', '.join(m['tags'])}")
        if m.get("warnings"):
            lines.append(f"{len(m['warnings'])} warning(s), e.g. {_problem_text(m['warnings'][0])}")
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return {"name": self.name, "rev": self.rev, "commit": self.commit, "meta": self.meta,
                "samples": [s["path"] for s in self.samples]}

    def extra_html(self) -> str:
        tiles = [tile for tile in (_tile(self.root, s, self.meta.get("classes", [])) for s in self.samples) if tile]
        if not tiles:
            return ""
        return ("<div style='display:flex;flex-wrap:wrap;gap:6px;margin-top:6px'>" + "".join(tiles) + "</div>")


def _problem_text(problem: dict) -> str:
    where = f"{problem['file']}:{problem['line']}" if problem.get("line") else problem.get("file", "")
    return f"{where}: {problem.get('message', '')}"


def _pick_samples(manifest: dict, count: int) -> list:
    images = sorted(p for p in manifest if p.rsplit(".", 1)[-1].lower() in {s[1:] for s in IMAGE_SUFFIXES})
    if not images or count <= 0:
        return []
    step = max(1, len(images) // count)
    return [{"path": p, "image_md5": manifest[p], "label_md5": manifest.get(label_for(p))}
            for p in images[::step][:count]]


def _tile(root: str, sample: dict, names: list) -> str:
    """One thumbnail with its boxes drawn, as an inline PNG; '' if the cache lacks it."""
    from PIL import Image, ImageDraw

    image_path = _dvc.object_path(root, sample["image_md5"])
    if not image_path.exists():
        return ""
    with Image.open(image_path) as img:
        image = img.convert("RGB")
    scale = THUMB / max(image.size)
    image = image.resize((max(1, round(image.width * scale)), max(1, round(image.height * scale))))
    draw = ImageDraw.Draw(image)
    label_path = _dvc.object_path(root, sample["label_md5"]) if sample["label_md5"] else None
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


def show(ws, ref: str, samples: int = 6) -> DatasetShowResult:
    name, rev = refs.split_ref(ref)
    names.check_readable_name(name, "dataset")
    commit = refs.resolve(ws.root, KIND_DIR, name, rev)
    meta = dataset_meta.read_at(ws.root, KIND_DIR, name, commit)
    picked = []
    pointer = dataset_meta.pointer_at(ws.root, KIND_DIR, name, commit)
    if samples and pointer.is_dir and _dvc.object_path(ws.root, pointer.md5).exists():
        manifest = {e["relpath"]: e["md5"] for e in _dvc.read_dir_manifest(ws.root, pointer.md5)}
        picked = _pick_samples(manifest, samples)
    return DatasetShowResult(name, rev or "latest", commit, meta, picked, str(ws.root))
