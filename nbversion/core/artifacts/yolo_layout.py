"""Find a dataset's layout: a YOLO `data.yaml` and its splits, or a plain folder of files.

Follows the rules Ultralytics applies, so whatever it can train from is recognised:
`path:` is the base of the split paths (relative to the yaml; an absolute path from another
machine falls back to the yaml's folder), a split is a folder of images, a `.txt` list of
images, or a list of either, `../x` is retried as `x` (Roboflow exports), and an image's
label is the same path with the last `/images/` replaced by `/labels/` and a `.txt` suffix.
"""
from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

logger = logging.getLogger(__name__)

IMAGE_SUFFIXES = {".bmp", ".dng", ".jpeg", ".jpg", ".mpo", ".png", ".tif", ".tiff", ".webp", ".pfm", ".heic"}
SPLITS = ("train", "val", "test")
YAML_NAMES = ("data.yaml", "data.yml", "dataset.yaml", "dataset.yml")
CLASSES_TXT = "classes.txt"   # YOLO's class list for folders without a data.yaml


@dataclass
class Problem:
    """One thing wrong with an input, named by file and (where it has one) line."""

    file: str
    line: int | None
    message: str
    severity: str = "error"

    def to_dict(self) -> dict:
        return {"file": self.file, "line": self.line, "message": self.message, "severity": self.severity}

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.message}"


@dataclass
class Split:
    name: str
    sources: list            # the split's entries, relative to the dataset root ("images/train")
    images: list             # image paths relative to the root, sorted
    labels: dict             # image path -> its label path (which may not exist)


@dataclass
class Layout:
    root: Path
    format: str                         # "yolo" | "files"
    yaml_file: str | None = None        # relative to root
    names: list = field(default_factory=list)
    splits: dict = field(default_factory=dict)
    problems: list = field(default_factory=list)
    same_as: dict = field(default_factory=dict)   # split -> the split whose images it reuses (flat images/)

    def data_yaml(self) -> str:
        """The data.yaml to store: split paths relative to the dataset folder.

        No `path:` key: Ultralytics resolves `path: .` against the current directory, while
        without it the split paths start at the yaml's own folder, wherever the copy lives.
        """
        import yaml

        data = {}
        for name, split in self.splits.items():
            data[name] = split.sources[0] if len(split.sources) == 1 else split.sources
        for name, reused in self.same_as.items():
            data[name] = data[reused]
        data["names"] = dict(enumerate(self.names))
        return yaml.safe_dump(data, sort_keys=False)


def label_for(image_rel: str) -> str:
    """Ultralytics' img2label_paths on a root-relative path (string operations: diffs call it a lot)."""
    path = "/" + image_rel
    marker = "/images/"
    if marker in path:
        head, tail = path.rsplit(marker, 1)
        path = f"{head}/labels/{tail}"
    return os.path.splitext(path)[0][1:] + ".txt"


def key_line(text: str, key: str) -> int | None:
    match = re.search(rf"^\s*{re.escape(key)}\s*:", text, re.MULTILINE)
    return text.count("\n", 0, match.start()) + 1 if match else None


def find_yaml(folder: Path) -> Path | None:
    for name in YAML_NAMES:
        if (folder / name).is_file():
            return folder / name
    candidates = sorted(p for p in folder.glob("*.y*ml") if "names" in p.read_text(errors="replace"))
    return candidates[0] if candidates else None


def find_layout(folder, classes: list | None = None) -> Layout:
    """The folder's layout; `classes` (`dataset add --classes`): the class names of a folder
    without a data.yaml, checked against data.yaml / classes.txt when those exist."""
    folder = Path(folder)
    yaml_path = find_yaml(folder)
    listed = read_classes_txt(folder)
    if yaml_path is None:
        if classes is None and listed is None:
            logger.debug("no YOLO data.yaml or classes.txt under %s: a plain folder of files", folder)
            return Layout(folder, "files")
        if classes is not None and listed is not None:
            same_classes(classes, listed, CLASSES_TXT)
        return _layout_without_yaml(folder, list(classes if classes is not None else listed))
    layout = Layout(folder, "yolo", yaml_path.relative_to(folder).as_posix())
    text = yaml_path.read_text(errors="replace")
    data = _load_yaml(layout, text)
    if data is None:
        return layout
    layout.names = _names(layout, data, text)
    if classes is not None:
        same_classes(classes, layout.names, layout.yaml_file)
    base = _base(folder, yaml_path.parent, data.get("path"))
    for split in SPLITS:
        value = data.get(split)
        if value in (None, ""):
            if split != "test":
                layout.problems.append(Problem(layout.yaml_file, None, f"no `{split}:` split; "
                                               "YOLO training needs train and val"))
            continue
        _add_split(layout, split, value if isinstance(value, list) else [value], base,
                   key_line(text, split))
    logger.debug("YOLO layout from %s: %d class(es), splits %s, %d problem(s)", layout.yaml_file, len(layout.names),
                 {name: len(split.images) for name, split in layout.splits.items()}, len(layout.problems))
    return layout


def read_classes_txt(folder: Path) -> list | None:
    """YOLO's `classes.txt`: one class name a line (blank lines skipped); None when absent."""
    path = folder / CLASSES_TXT
    if not path.is_file():
        return None
    return [line.strip() for line in path.read_text(errors="replace").splitlines() if line.strip()]


def same_classes(given: list, found: list, where: str) -> None:
    from ...errors import UsageError

    if list(given) != list(found):
        raise UsageError(f"--classes {','.join(given)} disagrees with {where} ({', '.join(found)})",
                         hint=f"drop --classes to use the names in {where}, or fix {where}")


def _layout_without_yaml(folder: Path, names: list) -> Layout:
    """A YOLO folder with no data.yaml: images/{train,val,test} (or a flat images/ used for both
    train and val) with labels/ beside it; the data.yaml is written at import."""
    layout = Layout(folder, "yolo", None, names)
    images = folder / "images"
    if not images.is_dir():
        layout.problems.append(Problem(".", None, "no images/ folder: with classes.txt or --classes, the "
                                                  "images go in images/train, images/val (or images/)"))
        return layout
    splits = [s for s in SPLITS if (images / s).is_dir()]
    for split in splits:
        _add_split(layout, split, [f"images/{split}"], folder, None)
    if not splits:   # validated once as train; data.yaml gives Ultralytics the same images for val
        _add_split(layout, "train", ["images"], folder, None)
        layout.same_as["val"] = "train"
    elif "val" not in splits:
        layout.problems.append(Problem("images", None, "no images/val: YOLO training needs train and val"))
    logger.debug("YOLO layout of %s from class names (no data.yaml): splits %s", folder, list(layout.splits))
    return layout


def _load_yaml(layout: Layout, text: str):
    import yaml

    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        layout.problems.append(Problem(layout.yaml_file, mark.line + 1 if mark else None,
                                       f"not valid YAML: {getattr(exc, 'problem', exc)}"))
        return None
    if not isinstance(data, dict):
        layout.problems.append(Problem(layout.yaml_file, 1, "expected a mapping with `names`, `train`, `val`"))
        return None
    return data


def _names(layout: Layout, data: dict, text: str) -> list:
    names = data.get("names")
    if isinstance(names, dict):
        try:
            return [str(names[i]) for i in range(len(names))]
        except KeyError:
            layout.problems.append(Problem(layout.yaml_file, key_line(text, "names"),
                                           "`names` keys must be the class ids 0..N-1"))
            return [str(v) for v in names.values()]
    if isinstance(names, list):
        return [str(n) for n in names]
    if isinstance(data.get("nc"), int):
        return [str(i) for i in range(data["nc"])]
    layout.problems.append(Problem(layout.yaml_file, key_line(text, "names") or 1, "no class `names`"))
    return []


def _base(root: Path, yaml_dir: Path, path_value) -> Path:
    """Where split paths start; never outside the dataset folder we are importing."""
    if not path_value:
        return yaml_dir
    candidate = Path(path_value)
    candidate = candidate if candidate.is_absolute() else (yaml_dir / candidate)
    candidate = candidate.resolve()
    resolved_root = root.resolve()
    if candidate.is_dir() and (candidate == resolved_root or resolved_root in candidate.parents):
        return candidate
    return yaml_dir


def _resolve(base: Path, entry: str) -> Path | None:
    for candidate in (base / entry, base / entry[3:] if entry.startswith("../") else None):
        if candidate is not None and candidate.exists():
            return candidate.resolve()
    return None


def _add_split(layout: Layout, split: str, entries: list, base: Path, line: int | None) -> None:
    root = layout.root.resolve()
    sources, images = [], []
    for entry in map(str, entries):
        target = _resolve(base, entry)
        if target is None:
            layout.problems.append(Problem(layout.yaml_file, line, f"split `{split}`: {entry} does not exist"))
            continue
        if target != root and root not in target.parents:
            layout.problems.append(Problem(layout.yaml_file, line,
                                           f"split `{split}`: {entry} is outside the dataset folder"))
            continue
        sources.append(target.relative_to(root).as_posix())
        if target.is_dir():
            images += _images_under(target, root)
        else:
            images += _images_listed(layout, target, root)
    images = sorted(set(images))
    layout.splits[split] = Split(split, sources, images, {img: label_for(img) for img in images})


def _images_under(folder: Path, root: Path) -> list[str]:
    found = []
    for dirpath, _dirs, files in os.walk(folder):
        rel_dir = Path(dirpath).relative_to(root).as_posix()
        found += [f"{rel_dir}/{f}" if rel_dir != "." else f for f in files
                  if os.path.splitext(f)[1].lower() in IMAGE_SUFFIXES]
    return found


def _images_listed(layout: Layout, listing: Path, root: Path) -> list[str]:
    """A `.txt` split: one image path a line, relative to the list's folder (or `./`)."""
    found = []
    list_rel = listing.relative_to(root).as_posix()
    for number, raw in enumerate(listing.read_text(errors="replace").splitlines(), 1):
        entry = raw.strip()
        if not entry:
            continue
        image = (listing.parent / entry).resolve()
        if not image.is_file() or (root not in image.parents):
            layout.problems.append(Problem(list_rel, number, f"image {entry} does not exist in the dataset"))
            continue
        found.append(image.relative_to(root).as_posix())
    return found
