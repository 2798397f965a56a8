"""Per-file fingerprints of each DVC-tracked folder, so the cost of `status`, `diff` and `commit`
follows the number of files that changed, not the size of the dataset.

For every file of a tracked folder we keep (size, mtime_ns, inode) -> md5, as git's index and
DVC's state database do. A file whose three stat values still match is not read again; only the
others are hashed. The classic traps:
- a file changed twice within the filesystem's timestamp granularity keeps its mtime and maybe
  its size: a fingerprint taken less than `RACY_NS` after the file's mtime is not trusted (the
  file is hashed again next time, and then is trusted);
- a file replaced by a rename, or two files swapped: the inode differs, so it is hashed again;
- clock skew (an mtime in the future of the fingerprint): racy by the same rule, so not trusted.

One JSON file per tracked folder under `.nbversion/tmp/prints/` (git-ignored, a cache: deleting
it costs one re-hash of the folder). Pure file work: no DVC import.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

from . import atomic
from .hashing import file_md5
from ..layout import TMP_DIR

logger = logging.getLogger(__name__)

PRINTS_DIR = Path(TMP_DIR) / "prints"
RACY_NS = 2_000_000_000          # mtimes this close to the fingerprint's time are not trusted
FORMAT = 1
RESAVE_AFTER = 64                # files hashed again before the prints are rewritten


def walk(folder: Path, skip_file: Callable, skip_folder: Callable) -> dict:
    """relpath ("/"-separated) -> (size, mtime_ns, inode) of every file under `folder`, leaving out
    names the skip tests accept (DVC's ignore rules that name a bare file or folder)."""
    found, stack, base = {}, [str(folder)], len(str(folder)) + 1
    while stack:
        with os.scandir(stack.pop()) as it:
            for entry in it:
                if entry.is_dir(follow_symlinks=False):
                    if not skip_folder(entry.name):
                        stack.append(entry.path)
                elif not skip_file(entry.name):
                    st = entry.stat(follow_symlinks=False)
                    found[entry.path[base:].replace(os.sep, "/")] = (st.st_size, st.st_mtime_ns, st.st_ino)
    return found


def _path(root: Path, out: str) -> Path:
    return Path(root) / PRINTS_DIR / (hashlib.sha1(out.encode()).hexdigest()[:20] + ".json")


def load(root: Path, out: str) -> tuple[int, dict]:
    """(time the prints were taken, relpath -> [size, mtime_ns, inode, md5]); (0, {}) when none."""
    try:
        data = json.loads(_path(root, out).read_bytes())
        if data.get("format") == FORMAT and data.get("out") == out:
            return int(data["taken_ns"]), data["files"]
    except FileNotFoundError:
        pass
    except (OSError, ValueError, KeyError, TypeError):
        logger.debug("the file prints of %s are unreadable; hashing afresh", out, exc_info=True)
    return 0, {}


def save(root: Path, out: str, stats: dict, md5s: dict, taken_ns: int) -> None:
    files = {rel: [*stats[rel], md5s[rel]] for rel in stats if rel in md5s}
    try:
        path = _path(root, out)
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic.write_bytes(path, json.dumps({"format": FORMAT, "out": out, "taken_ns": taken_ns, "files": files},
                                            separators=(",", ":")).encode())
    except OSError:   # a cache: losing it only costs speed
        logger.debug("could not save the file prints of %s", out, exc_info=True)


def on_record(root: Path, out: str) -> bool:
    return _path(root, out).exists()


def forget(root: Path, out: str) -> None:
    _path(root, out).unlink(missing_ok=True)


def trusted(recorded: Optional[list], stat: tuple, taken_ns: int) -> bool:
    """Whether a file's recorded md5 still holds: same size, mtime and inode, and the mtime was
    older than the fingerprint by more than the racy window."""
    return (recorded is not None and recorded[0] == stat[0] and recorded[1] == stat[1] and recorded[2] == stat[2]
            and stat[1] < taken_ns - RACY_NS)


@dataclass
class FolderState:
    md5s: dict                              # relpath -> md5 of every file now
    stats: dict                             # relpath -> (size, mtime_ns, inode)
    hashed: list = field(default_factory=list)   # relpaths read to get there

    @property
    def size(self) -> int:
        return sum(st[0] for st in self.stats.values())


def current(root: Path, out: str, stats: dict, on_progress: Optional[Callable] = None) -> FolderState:
    """The md5 of every file of the tracked folder `out` (its `stats` just walked), hashing only
    those whose fingerprint does not hold; the fingerprints are then saved."""
    taken_before, recorded = load(root, out)
    md5s, unknown = {}, []
    for rel, st in stats.items():
        entry = recorded.get(rel)
        if trusted(entry, st, taken_before):
            md5s[rel] = entry[3]
        else:
            unknown.append(rel)
    taken_ns = time.time_ns()
    md5s.update(hash_files(Path(root) / out, unknown, on_progress))
    # rewriting the prints costs about as much as reading them: for a few files hashed again
    # (the ones just edited) it is cheaper to hash those few again next time
    if len(unknown) > RESAVE_AFTER or not recorded:
        save(root, out, stats, md5s, taken_ns)
    logger.debug("%s: %d file(s), %d hashed (%d fingerprint(s) on record)", out, len(stats), len(unknown), len(recorded))
    return FolderState(md5s, stats, unknown)


def record(root: Path, out: str, stats: dict, md5s: dict) -> None:
    """Remember files whose md5 is known right now (just committed, checked out or imported)."""
    save(root, out, stats, md5s, time.time_ns())


def hash_files(folder: Path, rels: list, on_progress: Optional[Callable] = None) -> dict:
    """relpath -> md5, in parallel batches (file reads and hashlib release the GIL)."""
    if not rels:
        return {}
    if len(rels) < 64:
        return {rel: file_md5(folder / rel) for rel in rels}
    from .batches import run_batches
    from .faults import checkpoint

    workers = min(8, (os.cpu_count() or 1) * 2)
    batches = [rels[i:i + 512] for i in range(0, len(rels), 512)]
    found = {}

    def take(part: list) -> None:
        found.update(part)
        if on_progress:
            on_progress(len(found), len(rels))
        checkpoint("hash-batch")   # the interrupt tests stop us here, between two batches

    run_batches(lambda rel: (rel, file_md5(folder / rel)), batches, workers, take)
    return found
