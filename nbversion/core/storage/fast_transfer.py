"""Push and fetch of a folder remote without DVC (issue 16): what the versions need, one listing of
what either side already has, then a parallel copy of only the difference.

DVC's own push spends its time opening the repo, building indexes of the workspace and the remote
and trying a reflink before each copy; at 10,000 small files its fetch takes seconds more than the
copies. Here the objects are listed from the `.dvc` files and `.dir` listings directly and copied by
`backends.object_copy` in DVC's remote layout, so plain `dvc pull` / `dvc push` read what nbversion
wrote and the reverse.

Every function returns None when the case is not the plain one (an S3 or SSH remote, a remote with
options, `dvc.yaml` stages, legacy DVC 2 outputs, per-output remotes, a group-shared cache,
objects nowhere to be found):
the caller then lets DVC do it, errors and messages as before.
"""
from __future__ import annotations

import configparser
import contextlib
import json
import logging
import time
from pathlib import Path
from typing import Callable, Optional
from urllib.parse import urlparse

from ...errors import RemoteUnreachable
from ...events import Event
from ..backends import _git, dvc_cache, dvc_config, object_copy, pointers

logger = logging.getLogger(__name__)

STAGE_FILES = ["dvc.yaml", "dvc.lock", "*/dvc.yaml", "*/dvc.lock"]


def folder_remote(root, name: str) -> Optional[Path]:
    """`<folder>/files/md5` of DVC remote `name` when it is a local folder with no option but its
    URL (read from `.dvc/config` and `config.local` as plain INI); None otherwise."""
    options: dict = {}
    for file in ("config", "config.local"):
        parser = configparser.ConfigParser(interpolation=None, strict=False)
        try:
            parser.read(Path(root) / ".dvc" / file)
        except configparser.Error:
            return None
        for section in (f'remote "{name}"', f"'remote \"{name}\"'"):
            if parser.has_section(section):
                options.update(parser.items(section))
    url = options.pop("url", "")
    if not url or options or urlparse(url).scheme not in ("", "file"):
        return None
    path = Path(urlparse(url).path if url.startswith("file://") else url).expanduser()
    if not path.is_absolute():   # DVC reads a relative URL against the config file's folder
        path = Path(root) / ".dvc" / path
    return path.resolve() / "files" / "md5"


def worktree_objects(root) -> Optional[set]:
    """The md5s (files and `.dir` listings) the working tree's `.dvc` files point at, as `dvc push`
    and `dvc pull` would collect them; None when DVC must collect them itself."""
    import yaml

    if _git.listed_files(root, STAGE_FILES, cached=True, untracked=True):
        return None
    wanted = set()
    for dvc_file in _git.listed_files(root, ["*.dvc"], cached=True, untracked=True):
        try:
            data = pointers.load_yaml((Path(root) / dvc_file).read_text()) or {}
        except FileNotFoundError:   # deleted, not yet committed: DVC does not see it either
            continue
        except (OSError, yaml.YAMLError):
            return None
        for out in data.get("outs") or []:
            if not isinstance(out, dict) or out.get("hash") != "md5" or out.get("push") is False \
                    or out.get("cache") is False or "remote" in out or "files" in out:
                return None   # DVC 2's layout, an output kept local or uncached, its own remote, cloud versioning
            if out.get("md5"):
                wanted.add(out["md5"])
    return wanted


def _expand(cache: Path, wanted: set) -> Optional[set]:
    """`wanted` plus the files of its `.dir` listings, read from `cache`; None if one is unreadable."""
    everything = set(wanted)
    for md5 in wanted:
        if md5.endswith(".dir"):
            try:
                everything.update(entry["md5"] for entry in json.loads(object_copy.object_path(cache, md5).read_bytes()))
            except (OSError, ValueError, KeyError, TypeError):
                return None
    return everything


def _reporter(emit, where: str, direction: str) -> Callable[[int, int, int], None]:
    started = time.monotonic()

    def progress(done: int, total: int, nbytes: int) -> None:
        rate = nbytes / max(time.monotonic() - started, 1e-3) / 1e6
        emit(Event("transfer", done, total, f"{nbytes / 1e6:.1f} MB {direction} {where} ({rate:.0f} MB/s)"))
    return progress


@contextlib.contextmanager
def _copy_errors(remote: Path, direction: str):
    """An OS error of a copy (a read-only share, a full disk, an unmounted NFS) as RemoteUnreachable."""
    try:
        yield
    except OSError as exc:
        raise RemoteUnreachable(f"could not copy {exc.filename or 'an object'} {direction} {remote}: {exc.strerror or exc}",
                                hint="check the folder is mounted, writable and has room, then run the command again "
                                     "(it resumes)") from exc


def push(root, name: str, emit, md5s: Optional[set] = None) -> Optional[int]:
    """Copy to folder remote `name` the objects it lacks of the working tree (or of `md5s`, which
    may hold objects absent here: those are skipped). Returns how many were copied, or None."""
    remote = folder_remote(root, name)
    if remote is None:
        return None
    cache = dvc_cache.cache_root(root)
    if md5s is None:
        wanted = worktree_objects(root)
        wanted = _expand(cache, wanted) if wanted is not None else None
        if wanted is None:
            return None
    else:
        wanted = set(md5s)
    local, on_remote = object_copy.present(cache, wanted), object_copy.present(remote, wanted)
    if md5s is None and wanted - local - on_remote:
        logger.debug("%d object(s) neither here nor on %s: DVC reports them", len(wanted - local - on_remote), remote)
        return None
    where = remote.parent.parent   # the folder the user knows: the remote's data folder
    emit(Event("transfer", 0, len(local - on_remote), f"{len(on_remote)} of {len(wanted)} object(s) already on {where}"))
    with _copy_errors(where, "to"):
        copied = object_copy.copy(cache, remote, local - on_remote, _reporter(emit, str(where), "to"))
    if copied.missing:   # removed from the cache meanwhile (a gc): DVC says so in its words
        return None
    return copied.objects


def fetch(root, name: str, emit, md5s: Optional[set] = None) -> Optional[tuple[int, set]]:
    """Copy from folder remote `name` into the cache the objects of the working tree (or of `md5s`,
    `.dir` listings expanded once fetched) that are not here. Returns (objects copied, md5s the
    remote lacks), or None; for the working tree, a missing object also means None (DVC's error)."""
    remote = folder_remote(root, name)
    if remote is None or any(dvc_config.value(Path(root) / ".dvc" / file, "cache", "shared")
                             for file in ("config", "config.local")):
        return None   # a group-shared cache: DVC gives the objects it writes the group's modes
    cache = dvc_cache.cache_root(root)
    worktree = md5s is None
    wanted = worktree_objects(root) if worktree else set(md5s)
    if wanted is None:
        return None
    where = remote.parent.parent
    report = _reporter(emit, str(where), "from")
    listings = {m for m in wanted if m.endswith(".dir")}
    with _copy_errors(where, "from"):
        first = object_copy.copy(remote, cache, listings - object_copy.present(cache, listings), report)
    everything = _expand(cache, wanted - first.missing)
    if everything is None:
        return None
    todo = everything - object_copy.present(cache, everything)
    emit(Event("transfer", 0, len(todo), f"{len(everything) - len(todo)} of {len(everything)} object(s) already here"))
    with _copy_errors(where, "from"):
        rest = object_copy.copy(remote, cache, todo, report)
    missing = first.missing | rest.missing
    if worktree and missing:
        logger.debug("%d object(s) of the working tree are not on %s: DVC reports them", len(missing), remote)
        return None
    return first.objects + rest.objects, missing
