"""What a training starts from: `--data NAME[@REV]` resolved to files + lineage (`--model`: base_weights.py).

A dataset version that is not the working copy is exported into the run folder from the DVC
cache (its `.dir` listing names every object), so training never touches the user's checkout.
"""
from __future__ import annotations

import logging
from pathlib import Path

from ..core.backends import dvc_cache, _git
from ..core.repo import names, refs
from ..core.artifacts.dataset_meta import DATASETS_DIR as KIND_DIR, pointer_at
from ..errors import NotFound

logger = logging.getLogger(__name__)


def resolve_data(root: Path, ref: str, run_folder: Path) -> tuple[Path, dict]:
    """(absolute data.yaml, lineage {"name", "rev", "md5", "commit"}) of NAME[@REV].

    Writes `run_folder/data.yaml` (paths pinned) and, for an older version, `run_folder/data/`.
    """
    name, rev = refs.split_ref(ref)
    names.check_readable_name(name, "dataset")
    if not (root / KIND_DIR / f"{name}.dvc").exists() and not rev:
        raise NotFound(f"--data {ref}: no dataset named {name!r} (no {KIND_DIR}/{name}.dvc)",
                       hint="`nbversion dataset list` shows what exists; add one with `nbversion dataset add NAME SRC`")
    commit = refs.resolve(root, KIND_DIR, name, rev)
    at_commit = pointer_at(root, KIND_DIR, name, commit)
    working = _working_pointer(root, name)
    lineage = {"name": name, "rev": rev or "latest", "md5": at_commit.md5, "commit": commit}
    if _holds(root, working, at_commit.md5):
        folder = root / KIND_DIR / name
    else:
        folder = export_version(root, at_commit.md5, run_folder / "data")
    logger.debug("--data %s: %s at %s (%s), read from %s", ref, name, commit, at_commit.md5, folder)
    yaml_file = folder / "data.yaml"
    if not yaml_file.exists():
        raise NotFound(f"--data {ref}: {yaml_file.relative_to(root)} is missing",
                       hint=f"re-import the dataset with `nbversion dataset add {name} SRC` (a YOLO dataset)")
    return _absolute_yaml(yaml_file, folder, run_folder / "data.yaml"), lineage


def _holds(root: Path, working, md5: str) -> bool:
    """Whether the working copy holds exactly version `md5`: its pointer says so AND its files
    were not edited since (uncommitted edits would be trained while the run records `md5`)."""
    from ..core.backends import uncommitted

    return working is not None and working.md5 == md5 and uncommitted.matches_pointer(root, working)


def pin_for_start(root: Path, run_folder: Path, lineage: dict) -> None:
    """A queued run starts later than it was resolved: if the working copy it was to read no longer
    holds its recorded version (a newer `dataset add`, edits), that version is exported into the
    run folder now, so the run trains what its record names."""
    pinned = run_folder / "data.yaml"
    name, md5 = lineage.get("name"), lineage.get("md5")
    if not name or not md5 or not pinned.is_file():
        return
    folder = root / KIND_DIR / name
    reads_working_copy = f"path: {folder}" in pinned.read_text().splitlines()
    if not reads_working_copy or _holds(root, _working_pointer(root, name), md5):
        return
    logger.debug("queued run %s: %s changed since it was queued; exporting %s", run_folder.name, folder, md5)
    exported = export_version(root, md5, run_folder / "data")
    _absolute_yaml(exported / "data.yaml", exported, pinned)


def _working_pointer(root: Path, name: str):
    try:
        return pointer_at(root, KIND_DIR, name, None)
    except (NotFound, OSError):
        return None


def export_version(root: Path, md5_dir: str, dest: Path) -> Path:
    """Materialise a tracked directory from the DVC cache into `dest`, linked as `core.link` says:
    the export stays in the run folder, where a user may open and edit it, so by default it is a
    copy (a reflink where the filesystem can) that cannot reach the cache."""
    from ..core.storage import linking
    from ..core.repo.config import load_config

    mode = linking.link_mode(load_config(root))
    listing = dvc_cache.read_dir_manifest(root, md5_dir.removesuffix(".dir") + ".dir")
    for entry in listing:
        source = dvc_cache.object_path(root, entry["md5"])
        if not source.exists():
            raise NotFound(f"object {entry['md5']} of {entry['relpath']} is not in the DVC cache",
                           hint="run `nbversion pull` to fetch that dataset version")
        target = dest / entry["relpath"]
        target.parent.mkdir(parents=True, exist_ok=True)
        linking.place(source, target, mode)
    return dest


def _absolute_yaml(yaml_file: Path, folder: Path, pinned: Path) -> Path:
    """Ultralytics resolves a relative `path:` against its own datasets dir: pin it absolute."""
    text = yaml_file.read_text()
    lines = [f"path: {folder}" if line.startswith("path:") else line for line in text.splitlines()]
    if not any(line.startswith("path:") for line in lines):
        lines.insert(0, f"path: {folder}")
    pinned.parent.mkdir(parents=True, exist_ok=True)
    pinned.write_text("\n".join(lines) + "\n")
    return pinned


def run_commit(root: Path) -> str | None:
    return _git.head(root)
