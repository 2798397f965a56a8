"""`dataset remove NAME` and `dataset log NAME`: a dataset leaves the working tree, its history stays.

Removal is one commit that deletes `datasets/<name>.dvc` and its metadata, with an audit line;
the folder goes from the working tree. The `.gitignore` entry stays, so a `checkout` of an old
version brings the folder back as DVC data, not as files git would offer to add. Nothing else goes: the versions stay in git (`dataset log`, `show
NAME@REV`, `checkout REV -- datasets/NAME` restore them), the tags stay, the DVC cache keeps
the data (gc decides that, as for any old version), and runs and models trained on it keep the
commit their lineage names. The name can be added again.
"""
from __future__ import annotations

import logging
import os
import shutil
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Optional

from ...errors import NotFound, UncommittedChanges
from ..result import Result
from ..units import human_bytes
from ..backends import _git, pointers, uncommitted
from ..repo import leftovers, names, refs
from . import dataset_meta

from .dataset_meta import DATASETS_DIR as KIND_DIR

logger = logging.getLogger(__name__)

if TYPE_CHECKING:   # annotations only: core.workspace imports this module into Workspace
    from ...events import EventCallback
    from ..workspace import Workspace


@dataclass
class DatasetRemoveResult(Result):
    name: str
    commit: Optional[str]
    dry_run: bool
    paths: list
    files: int
    bytes: int
    versions: int
    tags: list = field(default_factory=list)

    def table(self):
        return ["removed" if not self.dry_run else "would remove"], [[p] for p in self.paths]

    def summary(self):
        kept = (f"its {self.versions} version(s) stay in the history (`nbversion dataset log {self.name}`)"
                + (f", tags kept: {', '.join(self.tags)}" if self.tags else ""))
        if self.dry_run:
            return (f"dataset {self.name}: would remove {self.files} files ({human_bytes(self.bytes)}); "
                    f"{kept}; nothing was changed")
        return f"dataset {self.name}: removed in {self.commit[:8]}; {kept}"


@dataclass
class DatasetLogResult(Result):
    name: str
    entries: list    # [{"commit", "date", "author", "event", "message", "tags"}] newest first

    def table(self):
        return ["commit", "date", "by", "event", "message", "tags"], [
            [e["commit"][:8], e["date"], e["author"], e["event"], e["message"], ", ".join(e["tags"])]
            for e in self.entries]

    def summary(self):
        return "" if self.entries else f"no history for dataset {self.name}"


def _tags(root, name: str) -> dict:
    """commit -> [tag] of the dataset's tags (`dataset/<name>/<tag>`)."""
    prefix = refs.tag_name(KIND_DIR, name, "")
    found = {}
    for tag in _git.tags(root, f"{prefix}*"):
        found.setdefault(tag.get("commit") or tag.get("sha"), []).append(tag["name"][len(prefix):])
    return found


def remove(ws: Workspace, name: str, force: bool = False, dry_run: bool = False,
           on_event: Optional[EventCallback] = None) -> DatasetRemoveResult:
    """Remove a dataset from the working tree in one audited commit (`nbversion dataset remove`).

    Args:
        name: the dataset.
        force: remove it even when its folder has edits that were never committed (they are lost).
        dry_run: only say what would go; change nothing.
        on_event: unused; kept so every verb takes it.

    Returns:
        DatasetRemoveResult: the commit, the paths removed, and how many versions stay in history.

    Example:
        >>> ws = nbv.open(".")
        >>> ws.dataset_remove("old-traffic", dry_run=True)
    """
    root = ws.root
    names.check_readable_name(name, "dataset")
    out, meta_file = f"{KIND_DIR}/{name}", dataset_meta.meta_path(KIND_DIR, name)
    if not (root / meta_file).exists() and not (root / f"{out}.dvc").exists():
        raise NotFound(f"no dataset named {name!r} in {root / KIND_DIR}",
                       hint="`nbversion dataset list` shows what exists")
    pointer = pointers.in_worktree(root).get(out)
    edited = bool(_git.status(root, [f"{out}.dvc", meta_file])) or (
        (root / out).exists() and (pointer is None or not uncommitted.matches_pointer(root, pointer)))
    if edited and not force:
        raise UncommittedChanges(f"{out} has changes that were never committed; removing it would lose them",
                                 hint=f"commit them first (`nbversion commit -m 'MESSAGE' {out}`), or remove anyway with "
                                      f"`nbversion dataset remove {name} --force`")
    history = refs.versions(root, KIND_DIR, name)
    tags = sorted(t for found in _tags(root, name).values() for t in found)
    paths = [p for p in (out, f"{out}.dvc", meta_file) if (root / p).exists()]
    result = DatasetRemoveResult(name, None, dry_run, paths, pointer.nfiles or 0 if pointer else 0,
                                 pointer.size or 0 if pointer else 0, len(history), tags)
    if dry_run:
        return result
    with ws.transaction("dataset remove") as tx:
        with leftovers.import_folder(root, name) as tmp:
            if (root / out).exists():   # moved aside first: a failed commit puts it back
                os.replace(root / out, tmp / "removed")
            try:
                for rel in (f"{out}.dvc", meta_file):
                    (root / rel).unlink(missing_ok=True)
                tx.audit("dataset remove", name, {"content_hash": pointer.md5 if pointer else None,
                                                  "versions": len(history), "forced": bool(force and edited)})
                result.commit = tx.commit(f"dataset {name}: remove (history kept)", [f"{out}.dvc", meta_file])
            except BaseException:
                _git.checkout(root, "HEAD", [f"{out}.dvc", meta_file], force=True)
                if (tmp / "removed").exists():
                    os.replace(tmp / "removed", root / out)
                raise
            shutil.rmtree(tmp / "removed", ignore_errors=True)
    logger.debug("dataset %s removed in %s (%d version(s) kept in history)", name, result.commit, len(history))
    return result


def log(ws: Workspace, name: str, on_event: Optional[EventCallback] = None) -> DatasetLogResult:
    """Every version of a dataset, and its removals, newest first (`nbversion dataset log`).

    Args:
        name: the dataset (also one that was removed).
        on_event: unused; kept so every verb takes it.

    Returns:
        DatasetLogResult: `entries`, one dict per commit (commit, date, author, event, message, tags).

    Example:
        >>> ws = nbv.open(".")
        >>> ws.dataset_log("traffic")
    """
    root = ws.root
    names.check_readable_name(name, "dataset")
    meta_file = dataset_meta.meta_path(KIND_DIR, name)
    tags = _tags(root, name)
    entries = []
    for commit in _git.log(root, paths=[f"{KIND_DIR}/{name}.dvc", meta_file]):
        removed = ("D", meta_file) in commit.changes
        entries.append({"commit": commit.sha, "date": commit.date, "author": commit.email,
                        "event": "removed" if removed else "version", "message": commit.subject,
                        "tags": tags.get(commit.sha, [])})
    if not entries:
        raise NotFound(f"no dataset named {name!r} in the history", hint="`nbversion dataset list` shows what exists")
    return DatasetLogResult(name, entries)
