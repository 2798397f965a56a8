"""DVC objects copied between two object folders in DVC 3's layout (`files/md5/xx/rest`, `.dir`
listings beside them): the local cache and a folder remote, without going through DVC.

Byte for byte what DVC's own transfer writes, so plain `dvc push` / `dvc pull` read it and the
reverse: the same paths, read-only objects, and a temporary name (`.<random>.tmp`, DVC's own
pattern, which its listings skip) renamed into place only once complete. A process killed mid-copy
leaves at most such a temporary file; it never leaves a partial object at an object's name.
"""
from __future__ import annotations

import logging
import os
import secrets
import shutil
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Optional

from .faults import checkpoint

logger = logging.getLogger(__name__)

OBJECT_MODE = 0o444          # DVC's mode for objects, in a cache as on a folder remote
STAT_EACH_UP_TO = 512        # fewer wanted objects than this: one stat each beats listing 256 folders
BATCH_OBJECTS = 64           # a worker's batch: the pool's own locking costs more than a small file's copy
BATCH_BYTES = 64 << 20
FICLONE = 0x40049409         # linux/fs.h: _IOW(0x94, 9, int)


def object_path(base: Path, md5: str) -> Path:
    return Path(base) / md5[:2] / md5[2:]


def present(base: Path, md5s: Iterable[str]) -> set:
    """Those of `md5s` stored under `base`: for a large set, one listing of each shard folder
    they fall in (256 at most) instead of one stat per object, as DVC does for large sets."""
    md5s = set(md5s)
    if len(md5s) <= STAT_EACH_UP_TO:
        return {m for m in md5s if object_path(base, m).is_file()}
    found = set()
    for shard in sorted({m[:2] for m in md5s}):
        try:
            with os.scandir(Path(base) / shard) as entries:
                # DVC's temporary names start with a dot: never an object
                found.update(shard + e.name for e in entries if not e.name.startswith("."))
        except FileNotFoundError:
            continue
    return md5s & found


@dataclass
class Copied:
    objects: int = 0
    bytes: int = 0
    missing: set = field(default_factory=set)    # md5s the source does not have


class Cloner:
    """Whether reflinks work between the two folders: asked once per transfer, not per object."""

    def __init__(self):
        self.works = None

    def into(self, source, target) -> bool:
        if self.works is False:
            return False
        import errno
        import fcntl

        try:
            fcntl.ioctl(target.fileno(), FICLONE, source.fileno())
            ok = True
        except OSError as exc:
            if exc.errno not in (errno.EOPNOTSUPP, errno.EXDEV, errno.EINVAL, errno.ENOTTY, errno.EPERM):
                raise
            ok = False
        if self.works is None:
            self.works = ok
        return ok


def _copy_one(source_base: Path, target_base: Path, md5: str, cloner: Cloner) -> Optional[int]:
    """Copy object `md5`; its size, or None when the source lacks it. The copy goes to a temporary
    name in the target shard folder (same filesystem, so the rename is atomic)."""
    source, target = object_path(source_base, md5), object_path(target_base, md5)
    tmp = target.parent / f".{secrets.token_urlsafe(16)}.tmp"
    try:
        size = clone_or_copy(source, tmp, cloner, OBJECT_MODE)
        checkpoint("transfer-temp-written")
        os.replace(tmp, target)
    except FileNotFoundError as exc:
        tmp.unlink(missing_ok=True)
        if exc.filename == str(source):
            return None
        raise
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return size


def clone_or_copy(source: Path, target: Path, cloner: Cloner, mode: int) -> int:
    """A new file `target` (never an existing one: O_EXCL) with `source`'s bytes, a reflink where
    the filesystem shares extents, else an in-kernel copy; returns its size."""
    with open(source, "rb", buffering=0) as src, \
            open(os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode), "wb", buffering=0) as out:
        size = os.fstat(src.fileno()).st_size
        if not cloner.into(src, out):
            _kernel_copy(src, out, size)
    return size


def _kernel_copy(source, out, size: int) -> None:
    """copy_file_range / sendfile: the bytes never pass through Python."""
    offset = 0
    while offset < size:
        try:
            sent = os.sendfile(out.fileno(), source.fileno(), offset, min(size - offset, 1 << 30))
        except OSError:   # no sendfile to this file (some platforms): plain copy
            source.seek(offset)
            out.seek(offset)
            shutil.copyfileobj(source, out, 1 << 20)
            return
        if sent == 0:
            break
        offset += sent


def _batches(items: list, weigh: Callable) -> list:
    batches, batch, weight = [], [], 0
    for item in items:
        weight += weigh(item)
        batch.append(item)
        if len(batch) >= BATCH_OBJECTS or weight >= BATCH_BYTES:
            batches.append(batch)
            batch, weight = [], 0
    return batches + ([batch] if batch else [])


def in_parallel(groups: list, work: Callable, weigh: Callable = lambda item: 0,
                tick: Optional[Callable[[], None]] = None, jobs: Optional[int] = None) -> None:
    """`work(item)` for every item of every group, on a pool of threads, in batches (`weigh(item)`:
    its bytes); a group starts once the one before is done. `tick()` is called from this thread
    a few times a second. Ctrl-C (or an error) stops the workers after the item each has in hand."""
    from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait

    stop = threading.Event()

    def run(batch):
        for item in batch:
            if stop.is_set():
                return
            work(item)

    workers = max(1, min(jobs or 4 * (os.cpu_count() or 1), 16))
    with ThreadPoolExecutor(workers) as pool:
        try:
            for group in groups:
                pending = {pool.submit(run, b) for b in _batches(group, weigh)}
                while pending:
                    done, pending = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
                    for future in done:
                        future.result()
                    if tick:
                        tick()
        except BaseException:
            stop.set()   # running items finish (or clean up), queued ones never start
            raise


def copy(source_base: Path, target_base: Path, md5s: Iterable[str],
         progress: Optional[Callable[[int, int, int], None]] = None, jobs: Optional[int] = None) -> Copied:
    """Copy objects `md5s` from `source_base` to `target_base` in parallel; `.dir` listings after
    every file (a listing on the target promises its files are there). `progress(objects done,
    objects in all, bytes done)` is called from this thread, a few times a second.

    Ctrl-C (or any error) stops the workers after the object each is copying and removes its
    temporary file: what was renamed into place is complete, the rest is not there."""
    md5s = sorted(set(md5s), key=lambda m: (m.endswith(".dir"), m))
    result = Copied()
    if not md5s:
        return result
    for shard in {m[:2] for m in md5s}:
        (Path(target_base) / shard).mkdir(parents=True, exist_ok=True)
    lock, cloner, started = threading.Lock(), Cloner(), time.monotonic()

    def one(md5):
        size = _copy_one(Path(source_base), Path(target_base), md5, cloner)
        with lock:
            if size is None:
                result.missing.add(md5)
            else:
                result.objects += 1
                result.bytes += size

    def weigh(md5):   # a few big objects each make a batch; thousands of small ones are not stat'ed twice
        return _size(object_path(source_base, md5)) if len(md5s) < 4096 else 0

    groups = [[m for m in md5s if not m.endswith(".dir")], [m for m in md5s if m.endswith(".dir")]]
    in_parallel(groups, one, weigh, (lambda: progress(result.objects, len(md5s), result.bytes)) if progress else None, jobs)
    logger.debug("copied %d object(s), %d bytes, %s -> %s in %.2f s (reflink: %s); %d missing", result.objects,
                 result.bytes, source_base, target_base, time.monotonic() - started, cloner.works, len(result.missing))
    return result


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0
