"""Validate a YOLO detection dataset before it is imported: labels, images, splits.

Every problem names the file and, for labels, the line. Errors stop the import; warnings
(background images, duplicate images) are kept in the metadata. Each image and label is
read once: the same bytes are hashed (for duplicates and the "no change" check) and decoded.
"""
from __future__ import annotations

import hashlib
import io
import logging
import os
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from ...events import Event, emitter
from .dataset_stats import Collector, image_size, parse_boxes
from .yolo_layout import IMAGE_SUFFIXES, Layout, Problem

logger = logging.getLogger(__name__)

# stop listing after this many errors: a wrong class list would otherwise flood the report
MAX_ERRORS = 1000
WORKERS = min(8, 2 * (os.cpu_count() or 1))


@dataclass
class Validation:
    errors: list = field(default_factory=list)
    warnings: list = field(default_factory=list)
    splits: dict = field(default_factory=dict)          # split -> {images, labels, instances, background}
    class_instances: dict = field(default_factory=dict)  # class name -> boxes
    hashes: dict = field(default_factory=dict)           # relative path -> md5 of every file read
    stats: dict = field(default_factory=dict)            # dataset_stats summary: classes, boxes, sizes
    # one pair's findings, merged into `stats` in dataset order (not kept per image)
    size: tuple | None = None                            # the image's width and height
    boxes: list | None = None                            # [(class id, w, h)] of its label


class _Reader:
    """Reads each file once; optionally writes the same bytes to a copy (the import's staging)
    and to a cache object made ready in `objects_to` (moved into the cache once the import is
    accepted): a file read to be validated is not read again to be stored."""

    def __init__(self, root: Path, copy_to: Path | None, objects_to=None):
        self.root, self.copy_to, self.objects_to, self.made = root, copy_to, objects_to, set()

    def read(self, rel: str) -> tuple[str, bytes]:
        # strings, not Paths: this runs once per file, up to millions of times
        with open(f"{self.root}/{rel}", "rb") as source:
            data = source.read()
        if self.copy_to is not None:
            folder = rel.rpartition("/")[0]
            if folder not in self.made:
                os.makedirs(f"{self.copy_to}/{folder}", exist_ok=True)
                self.made.add(folder)
            with open(f"{self.copy_to}/{rel}", "wb") as target:
                target.write(data)
        md5 = hashlib.md5(data).hexdigest()
        if self.objects_to is not None:
            self.objects_to.put(md5, data)
        return md5, data


def check_label_line(text: str, nclasses: int) -> str | None:
    """What is wrong with one label line, or None. Blank lines are allowed."""
    parts = text.split()
    if len(parts) != 5:
        return (f"expected 5 numbers (class x_center y_center width height), found {len(parts)} "
                f"value(s): {text.strip()[:60]!r}")
    try:
        values = [float(p) for p in parts]
    except ValueError:
        return f"not a number in {text.strip()[:60]!r}"
    cls = values[0]
    if cls != int(cls) or not 0 <= cls < nclasses:
        return f"class id {parts[0]} is outside `names` (0..{nclasses - 1})"
    outside = [p for p, v in zip(parts[1:], values[1:]) if not 0.0 <= v <= 1.0]
    if outside:
        return f"coordinates outside [0, 1]: {' '.join(outside)}"
    return None


def parse_label_counts(data: bytes) -> Counter:
    """class id -> boxes, for a label file already known to be valid (diffs, samples)."""
    counts = Counter()
    for line in data.decode("utf-8", errors="replace").splitlines():
        parts = line.split()
        if len(parts) == 5:
            counts[int(float(parts[0]))] += 1
    return counts


def _check_image(result: Validation, reader: _Reader, rel: str) -> bool:
    """Read, hash and decode one image; True when it decodes."""
    from PIL import Image, UnidentifiedImageError

    try:
        md5, data = reader.read(rel)
    except OSError as exc:
        result.errors.append(Problem(rel, None, f"cannot read the image: {exc.strerror}"))
        return False
    result.hashes[rel] = md5
    try:
        with Image.open(io.BytesIO(data)) as image:
            result.size = image.size   # from the header, already parsed: no extra read
            image.verify()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, ImportError) as exc:
        # ImportError: once Ultralytics is imported (a notebook that trained), it patches Image.open
        # and an unknown format ends in its HEIF fallback, which needs the absent pi_heif
        result.errors.append(Problem(rel, None, f"image does not decode: {_decode_problem(exc, data)}"))
        return False
    return True


def _decode_problem(exc: Exception, data: bytes) -> str:
    """What is wrong, in words: Pillow's own message names the in-memory buffer, not the file."""
    from PIL import UnidentifiedImageError

    if isinstance(exc, (UnidentifiedImageError, ImportError)):
        return f"not an image format Pillow knows (it starts with {data[:8]!r})" if data else "the file is empty"
    return re.sub(r"<_io\.BytesIO object at 0x[0-9a-fA-F]+>", "the file", str(exc)) or type(exc).__name__


def _check_pair(reader: _Reader, image: str, label: str, names: list, memo=None):
    """One image and its label, checked apart from the others (runs in a worker thread); `memo`
    (a `validation_memo.Memo`) answers for files whose content was checked before."""
    part = Validation()
    known = memo.image_ok(image) if memo is not None else None
    if known:
        part.hashes[image], decoded = known, True
        part.size = _remembered_size(reader, image, known, memo)
    else:
        decoded = _check_image(part, reader, image)
        if decoded and memo is not None:
            memo.image_decoded(part.hashes[image], part.size)
    if not os.path.isfile(f"{reader.root}/{label}"):
        return part, decoded, None
    remembered = memo.label(label, len(names)) if memo is not None else None
    if remembered:
        part.hashes[label], counts = remembered
        part.boxes = _remembered_boxes(reader, label, part.hashes[label], memo)
        return part, decoded, counts
    errors_before = len(part.errors)
    counts = _check_label(part, reader, label, names)
    if memo is not None and len(part.errors) == errors_before and label in part.hashes:
        memo.label_parsed(part.hashes[label], len(names), counts, part.boxes)
    return part, decoded, counts


def _remembered_size(reader: _Reader, image: str, md5: str, memo):
    """An image's size from the memo, else from its header (a memo written before sizes were kept)."""
    size = memo.image_size(md5)
    if size is None:
        size = image_size(f"{reader.root}/{image}")
        if size:
            memo.image_decoded(md5, size)
    return size


def _remembered_boxes(reader: _Reader, label: str, md5: str, memo) -> list:
    boxes = memo.boxes(md5)
    if boxes is None:   # a memo written before boxes were kept: the label is small text, read it
        with open(f"{reader.root}/{label}", "rb") as source:
            boxes = parse_boxes(source.read().decode("utf-8", errors="replace"))
        memo.remember_boxes(md5, boxes)
    return boxes


def _check_label(result: Validation, reader: _Reader, rel: str, names: list) -> Counter:
    md5, data = reader.read(rel)
    result.hashes[rel] = md5
    counts = Counter()
    result.boxes = []
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        result.errors.append(Problem(rel, None, "not a text file (UTF-8)"))
        return counts
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        problem = check_label_line(line, len(names))
        if problem:
            result.errors.append(Problem(rel, number, problem))
        else:
            cls, _x, _y, w, h = line.split()
            counts[int(float(cls))] += 1
            result.boxes.append((int(float(cls)), float(w), float(h)))
    return counts


def _image_dir_of(label_dir: str) -> str:
    """The inverse of Ultralytics' img2label rule, for a folder."""
    path = f"/{label_dir}/"
    if "/labels/" in path:
        head, tail = path.rsplit("/labels/", 1)
        path = f"{head}/images/{tail}"
    return path.strip("/")


def _orphan_labels(layout: Layout) -> list[str]:
    """Label files in the splits' label folders with no image of the same name on disk.

    An image that exists but is not listed in a `.txt` split is not an orphan's cause:
    the list just picks a subset.
    """
    expected = {lbl for split in layout.splits.values() for lbl in split.labels.values()}
    orphans = []
    # names and strings, not Path objects: 100,000 labels are listed here on every commit
    for folder in {lbl.rpartition("/")[0] for lbl in expected}:
        image_dir = layout.root / _image_dir_of(folder)
        stems = {os.path.splitext(name)[0] for name in os.listdir(image_dir)
                 if os.path.splitext(name)[1].lower() in IMAGE_SUFFIXES} if image_dir.is_dir() else set()
        label_dir = layout.root / folder
        for name in os.listdir(label_dir) if label_dir.is_dir() else ():
            rel = f"{folder}/{name}" if folder else name
            if name.endswith(".txt") and rel not in expected and name[:-4] not in stems:
                orphans.append(rel)
    return sorted(orphans)


def _remembered_pair(reader: _Reader, image: str, label: str, names: list, memo):
    """A pair whose files' verdicts the memo holds, answered without a thread (None: check it)."""
    md5 = memo.image_ok(image)
    if not md5:
        return None
    part = Validation()
    part.hashes[image] = md5
    part.size = _remembered_size(reader, image, md5, memo)
    if not os.path.isfile(f"{reader.root}/{label}"):
        return part, True, None
    remembered = memo.label(label, len(names))
    if not remembered:
        return None
    part.hashes[label], counts = remembered
    part.boxes = _remembered_boxes(reader, label, part.hashes[label], memo)
    return part, True, counts


def _checked_in_order(pool, reader: _Reader, split, names: list, memo):
    """(part, decoded, counts) of each image of `split`, in order: pairs the memo answers at once,
    the others in the pool (a future per pair costs more than a remembered verdict)."""
    if memo is None:
        return pool.map(lambda img: _check_pair(reader, img, split.labels[img], names), split.images)
    answers = [_remembered_pair(reader, img, split.labels[img], names, memo) for img in split.images]
    todo = [img for img, answer in zip(split.images, answers) if answer is None]
    checked = iter(pool.map(lambda img: _check_pair(reader, img, split.labels[img], names, memo), todo))
    return (answer if answer is not None else next(checked) for answer in answers)


def _merge(result: Validation, part: Validation, image: str, decoded: bool, seen: dict) -> None:
    """Add one pair's findings, in dataset order; duplicates are found here, across pairs."""
    result.errors += part.errors
    result.hashes.update(part.hashes)
    if not decoded:
        return
    md5 = part.hashes[image]
    if md5 in seen:
        result.warnings.append(Problem(image, None, f"duplicate of {seen[md5]}", "warning"))
    else:
        seen[md5] = image


def validate(layout: Layout, on_event=None, copy_to: Path | None = None, memo=None,
             objects_to=None) -> Validation:
    """Check every image and label; with `copy_to`, also copy each file read there, and with
    `objects_to` (a `linking.PreparedObjects`), make each one's cache object ready too.

    Copying while validating reads every file once instead of twice; the copy is a temp
    folder the caller discards if there are errors. `memo` (a `validation_memo.Memo`, not with
    `copy_to`): files whose content was checked before are not read again.
    """
    emit = emitter(on_event)
    reader = _Reader(layout.root, copy_to, objects_to)
    result = Validation(errors=list(layout.problems))
    names = layout.names
    total = sum(len(s.images) for s in layout.splits.values())
    done, seen, classes = 0, {}, Counter()
    collector = Collector(names)
    # reading and decoding wait on the disk and zlib/hashlib release the GIL: threads overlap them
    from concurrent.futures import ThreadPoolExecutor   # only when a dataset is validated

    pool = ThreadPoolExecutor(max_workers=WORKERS)
    try:
        for split in layout.splits.values():
            stats = {"images": len(split.images), "labels": 0, "instances": 0, "background": 0}
            checked = _checked_in_order(pool, reader, split, names, memo)
            for image, (part, decoded, counts) in zip(split.images, checked):
                _merge(result, part, image, decoded, seen)
                if decoded:
                    collector.add(split.name, part.size, part.boxes)
                if counts is None:
                    stats["background"] += 1
                    result.warnings.append(Problem(image, None, f"no label file ({split.labels[image]}): "
                                                                "kept as a background image", "warning"))
                else:
                    stats["labels"] += 1
                    classes.update(counts)
                    stats["instances"] += sum(counts.values())
                    stats["background"] += 0 if counts else 1
                done += 1
                if done % 500 == 0:
                    emit(Event("validate", done, total, image))
                if len(result.errors) >= MAX_ERRORS:
                    break
            result.splits[split.name] = stats
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        if memo is not None:
            memo.save()
    result.errors += [Problem(lbl, None, "label without an image (no image with this name in the "
                                         "matching images folder)") for lbl in _orphan_labels(layout)]
    result.stats = collector.summary()
    result.class_instances = {names[i] if i < len(names) else str(i): classes.get(i, 0)
                              for i in range(len(names))}
    emit(Event("validate", total, total, f"{len(result.errors)} error(s), {len(result.warnings)} warning(s)"))
    logger.debug("validated %d image(s) of %s (copied to %s): %s; %d error(s), %d warning(s)", done, layout.root,
                 copy_to, result.splits, len(result.errors), len(result.warnings))
    return result
