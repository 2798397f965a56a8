"""What `dataset add` accepts besides images and labels, and what `--dry-run` reports.

Class names given on the command line (`--classes`); which other files an image dataset may
hold (`[datasets] allowed_extensions`): a `run.sh` or an `evil.exe` is named in a warning, or
refused with `--strict`, never imported silently.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from ...errors import InvalidInput, UsageError
from ..result import Result
from .yolo_layout import Problem

# always allowed beside the configured image formats: YOLO labels and split lists (.txt,
# classes.txt), the data.yaml, and nbversion's own metadata
ALWAYS_ALLOWED = {"txt", "yaml", "yml"}
MAX_NAMED = 20
UNEXPECTED = "not an image, label or dataset metadata file"   # how such a warning starts


@dataclass
class DatasetCheckResult(Result):
    """`dataset add --dry-run`: what an import would find, nothing written."""

    name: str
    source: str
    format: str
    classes: list
    splits: dict
    errors: list
    warnings: list

    @property
    def exit_code(self) -> int:
        return 1 if self.errors else 0

    def table(self):
        rows = [[p["severity"], p["file"], p["line"], p["message"]] for p in self.errors + self.warnings]
        return ["severity", "file", "line", "problem"], rows

    def summary(self):
        verdict = "would be refused" if self.errors else "can be imported"
        return (f"{self.source} ({self.format}, {len(self.classes)} class(es)): {verdict} — "
                f"{len(self.errors)} error(s), {len(self.warnings)} warning(s); nothing was written")


def check_result(name, src, layout, validation) -> DatasetCheckResult:
    errors = [p.to_dict() for p in (validation.errors if validation else [])]
    warnings = [p.to_dict() for p in (validation.warnings if validation else [])]
    return DatasetCheckResult(name, str(src), layout.format, list(layout.names),
                              validation.splits if validation else {}, errors, warnings)


def class_list(classes) -> Optional[list]:
    """`--classes a,b,c` (or a list) -> names in class id order; None when not given."""
    if classes is None:
        return None
    names = [c.strip() for c in (classes.split(",") if isinstance(classes, str) else classes)]
    if not names or not all(names) or len(set(names)) != len(names):
        raise UsageError(f"--classes {classes!r}: expected distinct, non-empty names",
                         hint="e.g. --classes car,truck,bus (class ids 0, 1, 2 in that order)")
    return names


def allowed_extensions(config: dict) -> set:
    return {str(e).lower().lstrip(".") for e in config.get("allowed_extensions", ())} | ALWAYS_ALLOWED


def unexpected_files(folder: Path, allowed: set, wanted) -> list[str]:
    """Files under `folder` (those an import takes: `wanted(name)`) whose extension is not allowed."""
    found = []
    for dirpath, dirs, files in os.walk(folder):
        dirs[:] = [d for d in dirs if wanted(d)]
        rel_dir = os.path.relpath(dirpath, folder)
        prefix = "" if rel_dir == "." else rel_dir.replace(os.sep, "/") + "/"
        found += [prefix + f for f in files if wanted(f) and os.path.splitext(f)[1].lower().lstrip(".") not in allowed]
    return sorted(found)


def check_extensions(folder: Path, config: dict, strict: bool, wanted) -> list:
    """Warnings (Problems) naming the files an image dataset should not hold; with `strict`,
    InvalidInput before anything is written."""
    allowed = allowed_extensions(config)
    extra = unexpected_files(folder, allowed, wanted)
    if not extra:
        return []
    named = ", ".join(extra[:MAX_NAMED]) + (f" and {len(extra) - MAX_NAMED} more" if len(extra) > MAX_NAMED else "")
    if strict:
        raise InvalidInput(f"{folder}: {len(extra)} file(s) that are not images, labels or dataset metadata: "
                           f"{named}; nothing was imported (--strict)",
                           hint="remove them from the folder, or allow their extension in .nbversion/config.toml "
                                "([datasets] allowed_extensions)")
    return [Problem(rel, None, f"{UNEXPECTED}: imported anyway (`--strict` refuses it; "
                               "[datasets] allowed_extensions)", "warning") for rel in extra]


def refuse_nameless_yolo(folder: Path, layout) -> None:
    """images/ beside labels/ with no data.yaml and no classes.txt: a YOLO dataset missing its
    class names, not a plain folder of files (imported as one it would train nothing and count
    every label file as an image)."""
    if layout.format == "files" and (folder / "images").is_dir() and (folder / "labels").is_dir():
        raise InvalidInput(f"{folder} has images/ and labels/ but no data.yaml or classes.txt: its class names "
                           "are unknown; nothing was imported",
                           hint="give them with --classes a,b,c (in class id order), or add a classes.txt with "
                                "one name a line")
