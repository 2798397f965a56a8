"""How data files relate to the DVC cache: `core.link` is the one owner of that choice.

- `copy` (default): a workspace file and its cache object never share an inode. The object is
  a reflink (shared extents, copy-on-write) where the filesystem can, else a real copy made
  while hashing, so each byte is read once. An edit in place can never change a stored version.
- `hardlink` (opt-in): the workspace file *is* the cache object (no second copy on disk); both
  are read-only, and `unprotect PATH` swaps a file for a private writable copy before an edit.

Pure file work, no dvc import: `_dvc.add` drives it with the cache folder DVC reports.
"""
from __future__ import annotations

import contextlib
import errno
import hashlib
import logging
import os
import shutil
import stat
import threading
from dataclasses import dataclass, field
from pathlib import Path

from ...errors import InvalidInput
from ..backends.batches import run_batches
from ..backends.faults import checkpoint
from ..backends.files import tree_size

# one summary line a store (below); the per-file paths (store, place, link checks, sizes) stay
# silent, failures included: they run once per file, up to millions of times, and fall back or count
logger = logging.getLogger(__name__)

MODES = ("copy", "hardlink")
DVC_CACHE_TYPE = {"copy": "reflink,copy", "hardlink": "hardlink,copy"}
CACHE_MODE = 0o444            # DVC's mode for cache objects (and hard-linked workspace files)
CHUNK = 1 << 20
BIG_FILE = 64 << 20           # from here a copy runs beside the hashing instead of through it
CACHE_TMP_DIR = ".nbv-tmp"          # inside the cache folder, so a rename into place never crosses filesystems
FICLONE = 0x40049409          # linux/fs.h: _IOW(0x94, 9, int)



def object_in(cache: Path, md5: str) -> Path:
    """DVC 3's layout under `cache` (`repo.cache.local.path`, already ending in files/md5):
    the first two hex digits name the shard folder, the rest (with any `.dir`) the file."""
    return Path(cache) / md5[:2] / md5[2:]

def link_mode(config: dict) -> str:
    """`core.link` from a loaded config; an unknown value is refused before anything is written."""
    mode = str(config.get("core", {}).get("link", "copy"))
    if mode not in MODES:
        raise InvalidInput(f".nbversion/config.toml: core.link = {mode!r} is not one of {', '.join(MODES)}",
                           hint='set `link = "copy"` (safe default) or `link = "hardlink"` under [core]')
    return mode


def workspace_mode(root) -> str:
    """`core.link` of the workspace at `root`, from its `.nbversion/config.toml`."""
    from ..repo.config import load_config

    return link_mode(load_config(root))


def dvc_cache_type(mode: str) -> str:
    """What `.dvc/config` must say so DVC's own checkouts make the same kind of files."""
    return DVC_CACHE_TYPE[mode]


# --- storing files into the cache ---------------------------------------------------------

@dataclass
class StoreReport:
    hashes: dict = field(default_factory=dict)    # absolute path -> md5
    methods: dict = field(default_factory=dict)   # "reflink" | "copy" | "hardlink" | "present" -> count


def store(paths: list, cache: Path, mode: str, jobs: int | None = None, known: dict | None = None,
          on_progress=None) -> StoreReport:
    """Put each file's object into the cache, hashing it on the way; files in parallel (hashlib
    and file I/O release the GIL). Returns the hashes so DVC need not read the files again.

    `known` (path -> md5) is for files nbversion itself just wrote while hashing them (an import's
    private copy): they are not hashed again, and not even read when their object is present.
    `on_progress(done, total)` is called after each batch; a Ctrl-C stops within one file, and
    every object is at its final name whole or not at all (scratch, then rename)."""
    report = StoreReport()
    clear_scratch(cache)
    if not paths:
        return report
    tmp = Path(cache) / CACHE_TMP_DIR / os.urandom(16).hex()
    tmp.mkdir(parents=True)
    clone = _Clone()
    known = known or {}

    def one(path: str):
        if mode != "hardlink" and path in known:
            return (path, *_store_known(Path(path), known[path], Path(cache), tmp, clone))
        return (path, *(_store_hardlink if mode == "hardlink" else _store_copy)(Path(path), Path(cache), tmp, clone))

    def take(done: list) -> None:
        for path, md5, method in done:
            report.hashes[str(path)] = md5
            report.methods[method] = report.methods.get(method, 0) + 1
        if on_progress:
            on_progress(len(report.hashes), len(paths))
        checkpoint("store-batch")   # the interrupt tests stop us here, between two batches

    workers = max(1, min(jobs or os.cpu_count() or 1, len(paths), 32))
    # large batches, not one future per file: at 10,000 small files the pool's own locking cost
    # more than the copies (measured: 4.2 s -> see benchmarks/README.md); 16 per worker so that
    # progress moves and a Ctrl-C is seen between batches
    batches = [paths[i::workers * 16] for i in range(min(len(paths), workers * 16))]
    _make_fanout(Path(cache))
    try:
        run_batches(one, batches, workers, take)
        logger.debug("stored %d file(s) in %s (%s, %d worker(s)): %s; %d known from the import", len(paths), cache,
                     mode, workers, report.methods, len(known))
        checkpoint("store-before-cleanup")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        with contextlib.suppress(OSError):
            tmp.parent.rmdir()
    return report


def clear_scratch(cache: Path) -> None:
    """Remove the scratch an add killed mid-way left in the cache. Every add runs under the
    workspace lock, so no other add of this workspace is live now (`verify` reports such scratch
    as orphan objects). Called even when nothing is left to store: the killed add may have
    stored every object before it died."""
    shutil.rmtree(Path(cache) / CACHE_TMP_DIR, ignore_errors=True)


class PreparedObjects:
    """Cache objects written while an import reads its files (each file is read once), into
    `folder`, a temp folder on the cache's filesystem, read-only as DVC makes objects. `adopt`
    moves them into the cache once the import is accepted: a rename each, so a kill leaves
    either no object or a whole one, and a refused import leaves the cache untouched."""

    def __init__(self, folder: Path, cache: Path):
        self.folder, self.cache = str(folder), str(cache)

    def put(self, md5: str, data: bytes) -> None:
        """Write the object `md5` unless the cache has it (the same content read twice: once)."""
        if os.path.exists(f"{self.cache}/{md5[:2]}/{md5[2:]}"):
            return
        try:
            fd = os.open(f"{self.folder}/{md5}", os.O_WRONLY | os.O_CREAT | os.O_EXCL, CACHE_MODE)
        except FileExistsError:
            return
        with open(fd, "wb", buffering=0) as out:
            view, written = memoryview(data), 0
            while written < len(data):   # raw writes may be short
                written += out.write(view[written:])

    def adopt(self, md5s) -> list:
        """Move the prepared objects among `md5s` into the cache; returns the md5s not prepared."""
        _make_fanout(Path(self.cache))
        missing = []
        for md5 in md5s:
            try:
                os.replace(f"{self.folder}/{md5}", f"{self.cache}/{md5[:2]}/{md5[2:]}")
            except FileNotFoundError:
                missing.append(md5)
        return missing


def same_filesystem(a: Path, b: Path) -> bool:
    """Whether a rename from folder `a` into folder `b` can work (`b` may not exist yet: its
    nearest existing parent tells; nothing is created to find out)."""
    b = Path(b)
    while not b.exists() and b.parent != b:
        b = b.parent
    try:
        return os.stat(a).st_dev == os.stat(b).st_dev
    except OSError:
        return False


def _make_fanout(cache: Path) -> None:
    """The 256 two-hex-digit folders objects go in, made once rather than tried once per file."""
    for n in range(256):
        (cache / f"{n:02x}").mkdir(parents=True, exist_ok=True)


class _Clone:
    """Whether reflinks work between the working tree and the cache: asked once per `store`, not per
    file (a refused ioctl costs little, but 10,000 of them do not)."""

    def __init__(self):
        self.works = None

    def into(self, source, target) -> bool:
        if self.works is False:
            return False
        ok = _ficlone(source, target)
        if self.works is None:
            self.works = ok
        return ok


def _store_copy(path: Path, cache: Path, tmp: Path, clone: _Clone) -> tuple[str, str]:
    """A private object for `path`: a reflink plus one hashing read, else a copy while hashing."""
    scratch = tmp / os.urandom(16).hex()
    with open(path, "rb", buffering=0) as source, _create_readonly(scratch) as target:
        if clone.into(source, target):
            md5, method = _hash_stream(source), "reflink"
        elif os.fstat(source.fileno()).st_size >= BIG_FILE:
            md5, method = _copy_beside_hashing(path, source, target), "copy"
        else:
            md5, method = _copy_hashing(source, target), "copy"
    obj = object_in(cache, md5)
    if obj.exists():
        scratch.unlink()
        return md5, "present"
    os.replace(scratch, obj)
    return md5, method


def _create_readonly(path: Path):
    """A new file opened for writing that is already read-only (DVC's mode for objects): one
    syscall fewer per object than a chmod afterwards."""
    return open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, CACHE_MODE), "wb", buffering=0)


def _store_known(path: Path, md5: str, cache: Path, tmp: Path, clone: _Clone) -> tuple[str, str]:
    """A file whose hash is known: nothing to do if its object exists, else an in-kernel copy."""
    obj = object_in(cache, md5)
    if obj.exists():
        return md5, "present"
    scratch = tmp / os.urandom(16).hex()
    with open(path, "rb") as source, open(scratch, "wb") as target:
        cloned = clone.into(source, target)
    if not cloned:
        shutil.copyfile(path, scratch)   # sendfile/copy_file_range: no pass through Python
    os.chmod(scratch, CACHE_MODE)
    obj.parent.mkdir(exist_ok=True)
    os.replace(scratch, obj)
    return md5, "reflink" if cloned else "copy"


def _store_hardlink(path: Path, cache: Path, tmp: Path, clone: _Clone) -> tuple[str, str]:
    """Opt-in: the workspace file and the object become one read-only inode."""
    md5 = file_md5(path)
    obj = object_in(cache, md5)
    if obj.exists():
        if not _same_inode(path, obj):   # same bytes already stored: link to that object instead
            _replace_with_link(obj, path)
        method = "present"
    else:
        obj.parent.mkdir(exist_ok=True)
        try:
            os.link(path, obj)
            method = "hardlink"
        except OSError:   # the cache is on another filesystem: fall back to a copy
            return _store_copy(path, cache, tmp, clone)
    os.chmod(obj, CACHE_MODE)
    return md5, method


def _replace_with_link(obj: Path, path: Path) -> None:
    scratch = path.with_name(f".{path.name}.{os.urandom(4).hex()}.nbv")
    try:
        os.link(obj, scratch)
        os.replace(scratch, path)
    except OSError:
        scratch.unlink(missing_ok=True)


def _ficlone(source, target) -> bool:
    """Make open file `target` share `source`'s extents (XFS, Btrfs...). False where unsupported."""
    import fcntl

    try:
        fcntl.ioctl(target.fileno(), FICLONE, source.fileno())
        return True
    except OSError as exc:
        if exc.errno not in (errno.EOPNOTSUPP, errno.EXDEV, errno.EINVAL, errno.ENOTTY, errno.EPERM):
            raise
        return False


_buffers = threading.local()


def _buffer() -> tuple[bytearray, memoryview]:
    """One reusable buffer per thread: a fresh 1 MB bytearray per file is a 1 MB memset per file."""
    if not hasattr(_buffers, "buffer"):
        _buffers.buffer = bytearray(CHUNK)
        _buffers.view = memoryview(_buffers.buffer)
    return _buffers.buffer, _buffers.view


def _copy_hashing(source, target) -> str:
    """One read of each byte: hashed and written from the same buffer."""
    digest = hashlib.md5()
    buffer, view = _buffer()
    while n := source.readinto(buffer):
        digest.update(view[:n])
        written = 0
        while written < n:   # raw (unbuffered) writes may be short
            written += target.write(view[written:n])
    return digest.hexdigest()


def _copy_beside_hashing(path: Path, source, target) -> str:
    """A big file: an in-kernel copy (no pass through Python) on one core while this one hashes,
    since one md5 cannot be split across cores; the second read comes from the page cache."""
    from concurrent.futures import ThreadPoolExecutor

    copier = ThreadPoolExecutor(1)
    try:
        copying = copier.submit(_kernel_copy, path, target)
        md5 = _hash_stream(source)
        copying.result()
    finally:
        copier.shutdown()
    return md5


def _kernel_copy(path: Path, target) -> None:
    with open(path, "rb", buffering=0) as again:
        size, offset = os.fstat(again.fileno()).st_size, 0
        while offset < size:
            sent = os.sendfile(target.fileno(), again.fileno(), offset, min(size - offset, 1 << 30))
            if sent == 0:
                break
            offset += sent


def _hash_stream(source) -> str:
    digest = hashlib.md5()
    buffer, view = _buffer()
    while n := source.readinto(buffer):
        digest.update(view[:n])
    return digest.hexdigest()


def file_md5(path: Path) -> str:
    with open(path, "rb", buffering=0) as source:
        return _hash_stream(source)


def _same_inode(a: Path, b: Path) -> bool:
    try:
        sa, sb = os.stat(a), os.stat(b)
    except OSError:
        return False
    return (sa.st_dev, sa.st_ino) == (sb.st_dev, sb.st_ino)


def place(obj: Path, target: Path, mode: str) -> None:
    """Materialise cache object `obj` as a new working-tree file `target`, as `core.link` says:
    a reflink or a copy (writable), or with the opt-in a read-only hard link."""
    if mode == "hardlink":
        try:
            os.link(obj, target)
            return
        except OSError:   # another filesystem: a copy below
            pass
    with open(obj, "rb") as source, open(target, "wb") as out:
        cloned = _ficlone(source, out)
    if not cloned:
        shutil.copyfile(obj, target)


# --- links already in the working tree -----------------------------------------------------

def linked_objects(cache: Path) -> set:
    """(device, inode) of every cache object that has another name somewhere (link count > 1).
    Empty in a healthy copy-mode workspace, so `verify` then looks no further."""
    found = set()
    for shard in Path(cache).glob("??"):
        for entry in os.scandir(shard):
            info = entry.stat(follow_symlinks=False)
            if info.st_nlink > 1:
                found.add((info.st_dev, info.st_ino))
    return found


def shared_with_cache(paths, linked: set) -> list:
    """Those of `paths` that are the very inode of a cache object (`linked`, from linked_objects)."""
    found = []
    for path in paths:
        try:
            info = os.lstat(path)
        except OSError:
            continue
        if info.st_nlink > 1 and (info.st_dev, info.st_ino) in linked:
            found.append(path)
    return found


def break_link(path: Path) -> bool:
    """Give `path` its own writable inode (copy, then rename over it). False if it already had one."""
    info = os.lstat(path)
    if not stat.S_ISREG(info.st_mode) or (info.st_nlink == 1 and info.st_mode & stat.S_IWUSR):
        return False
    scratch = path.with_name(f".{path.name}.{os.urandom(4).hex()}.nbv")
    try:
        with open(path, "rb") as source, open(scratch, "wb") as target:
            cloned = _ficlone(source, target)
        if not cloned:
            shutil.copyfile(path, scratch)
        os.chmod(scratch, (info.st_mode & 0o777) | stat.S_IWUSR | stat.S_IRUSR)
        os.replace(scratch, path)
    except BaseException:
        scratch.unlink(missing_ok=True)
        raise
    return True


def nested_orphans(cache: Path) -> Path | None:
    """Objects an old nbversion wrote under `<cache>/files/md5/` (it appended files/md5 twice)."""
    nested = Path(cache) / "files"       # not a shard name (two hex digits): nothing else lives there
    return nested if nested.is_dir() else None


def remove_tree(path: Path) -> int:
    """Delete a folder of read-only objects; returns the bytes freed."""
    freed = tree_size(path)
    shutil.rmtree(path, ignore_errors=True)
    return freed
