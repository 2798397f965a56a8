"""`pull` of a dataset changed on both sides: a content merge, file by file.

Both sides' pointers `datasets/NAME.dvc` name a folder listing (`<md5>.dir`); with the common
ancestor's listing, each file is merged by `merge_rules.merge_listings`: images and labels
added, edited or removed on one side are taken, a file changed on both sides differently is a
conflict listed by its path. `plan` only reads (listings come from the local cache, or straight
from the remote without being stored, so a stopped pull leaves the cache as it was); `apply`
writes the merged folder, re-tracks it as `commit` does and refreshes its metadata.
"""
from __future__ import annotations

import json
import logging
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from ...errors import InvalidInput, NbversionError, RemoteUnreachable, UncommittedChanges
from ..artifacts import dataset_refresh
from ..backends import _dvc, _git_history, dvc_cache, pointers
from ..repo import merge_rules

logger = logging.getLogger(__name__)

_DATASET_POINTER = re.compile(r"datasets/[^/]+\.dvc")


@dataclass
class DatasetMerge:
    folder: str            # datasets/NAME
    pointer_file: str      # datasets/NAME.dvc
    ours_pointer: bytes    # HEAD's pointer file (the conflicted one holds git's markers)
    ours: dict             # relpath -> md5, as checked out
    merged: dict
    conflicts: list        # workspace paths of the files changed on both sides

    @property
    def name(self) -> str:
        return self.folder.split("/", 1)[1]


def plan(root, pointer_file: str, base: str, theirs: str, remote: Optional[str]) -> Optional[DatasetMerge]:
    """The content merge of one dataset pointer both sides changed since `base`; None when none
    applies (not a dataset folder, no common ancestor version, a listing nowhere to be read)."""
    if not _DATASET_POINTER.fullmatch(pointer_file):
        return None
    specs = [f"{rev}:{pointer_file}" for rev in (base, "HEAD", theirs)]
    blobs = _git_history.cat_files(root, specs)
    if any(blobs[s] is None for s in specs):   # added on both sides: no base version to merge from
        return None
    outs = [pointers.parse(pointer_file, blobs[s]) for s in specs]
    if any(len(o) != 1 or not o[0].is_dir for o in outs) or len({o[0].path for o in outs}) != 1:
        return None
    listings = [_listing(root, o[0].md5, remote) for o in outs]
    if any(listing is None for listing in listings):
        return None
    merged, conflicts = merge_rules.merge_listings(*listings)
    folder = outs[0][0].path
    logger.debug("content merge of %s: %d file(s), %d conflict(s)", folder, len(merged), len(conflicts))
    return DatasetMerge(folder, pointer_file, blobs[specs[1]], listings[1], merged,
                        [f"{folder}/{rel}" for rel in conflicts])


def _listing(root, md5_dir: str, remote: Optional[str]) -> Optional[dict]:
    path = dvc_cache.object_path(root, md5_dir)
    if path.exists():
        raw = path.read_bytes()
    elif remote is None:
        return None
    else:
        try:
            raw = _dvc.read_remote_object(root, md5_dir, remote)
        except NbversionError:   # unreachable remote: the pointer stays a conflict, reported as such
            logger.debug("could not read listing %s from %s", md5_dir, remote, exc_info=True)
            return None
        if raw is None:
            return None
    return {entry["relpath"]: entry["md5"] for entry in json.loads(raw)}


def check_unedited(root, merges: list[DatasetMerge]) -> None:
    """A merge re-tracks the whole folder: files added or deleted there since the last commit would
    slip into the merge commit, so they stop it first (edits in place are `commit`'s to find)."""
    for merge in merges:
        base = Path(root) / merge.folder
        present = {p.relative_to(base).as_posix() for p in base.rglob("*") if p.is_file() or p.is_symlink()}
        extra, gone = sorted(present - set(merge.ours)), sorted(set(merge.ours) - present)
        if extra or gone:
            shown = [f"{merge.folder}/{p}" for p in (extra + gone)[:5]]
            raise UncommittedChanges(f"uncommitted changes in {', '.join(shown)}: pull merges only a clean checkout",
                                     hint=f"commit them first (`nbversion commit -m ... {merge.folder}`), then pull again")


def fetch_objects(root, merges: list[DatasetMerge], remote: Optional[str]) -> None:
    """Bring every file the merge takes from the other side into the local cache."""
    wanted = {md5 for m in merges for rel, md5 in m.merged.items() if m.ours.get(rel) != md5}
    missing = sorted(md5 for md5 in wanted if not dvc_cache.object_path(root, md5).exists())
    if not missing:
        return
    lacking = set(missing)
    if remote is not None:
        _count, lacking = _dvc.fetch_objects(root, missing, remote)
    if lacking:
        raise RemoteUnreachable(f"{len(lacking)} file(s) of {', '.join(m.folder for m in merges)} are neither in the "
                                f"local cache nor on the remote {remote or '(none configured)'}; nothing was changed",
                                hint="ask whoever pushed that version to `nbversion push` again, then pull again")


def apply(root, merges: list[DatasetMerge], user: str) -> list[str]:
    """Make each folder equal its merged listing, re-track it, refresh its metadata; returns the
    files to stage (pointers, `.gitignore`, `.meta.json`). Objects must be in the cache already."""
    root = Path(root)
    for merge in merges:
        _write_folder(root, merge)
        (root / merge.pointer_file).write_bytes(merge.ours_pointer)   # DVC reads it back: no conflict markers
    folders = [m.folder for m in merges]
    try:   # each side was valid; together they may not be (a class one side dropped, the other used)
        pending = dataset_refresh.check(root, folders)
    except InvalidInput as exc:
        raise InvalidInput("pull stopped: the merged " + exc.message.replace("nothing was committed", "nothing was changed"),
                           hint="the two sides' changes do not fit together: fix the files named above in one clone, "
                                "`nbversion commit`, `nbversion push`, then pull again",
                           problems=exc.problems) from exc
    _dvc.add(root, folders)
    staged = [m.pointer_file for m in merges] + sorted({f"{Path(f).parent}/.gitignore" for f in folders})
    return staged + dataset_refresh.write(root, pending, user)


def _write_folder(root: Path, merge: DatasetMerge) -> None:
    base = root / merge.folder
    for rel in sorted(set(merge.ours) - set(merge.merged)):
        (base / rel).unlink(missing_ok=True)
        _prune_empty_parents(base, (base / rel).parent)
    for rel, md5 in sorted(merge.merged.items()):
        if merge.ours.get(rel) == md5:
            continue
        target = base / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.unlink(missing_ok=True)   # may be a link into the cache: never write through it
        shutil.copyfile(dvc_cache.object_path(root, md5), target)
    logger.debug("wrote the merged %s: %d file(s)", merge.folder, len(merge.merged))


def _prune_empty_parents(base: Path, folder: Path) -> None:
    while folder != base and folder.is_dir() and not any(folder.iterdir()):
        os.rmdir(folder)
        folder = folder.parent


def restore(root, merges: list[DatasetMerge]) -> None:
    """After the git merge was undone: the folders back as HEAD's pointers say."""
    if merges:
        _dvc.checkout(root, [m.folder for m in merges])
