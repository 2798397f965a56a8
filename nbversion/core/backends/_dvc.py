"""DVC's local data operations: init, track (add), untrack, checkout, status, diff, where the
cache is. DVC is used in-process (`dvc.repo.Repo`, opened per operation by `_dvc_session`).

Remotes and transfers live in `_dvc_remote` (split by theme to keep modules short) and are
re-exported here, so callers keep one DVC API: `_dvc.push(...)`, `_dvc.transfer_progress(...)`.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterable, Optional

from ...errors import NbversionError
from . import dvc_config
from ._dvc_session import _abs, _link_override, _quiet, _repo
from ._dvc_remote import (  # noqa: F401  (re-exported: the remote half of this adapter's API)
    checkout_workspace, fetch, fetch_objects, pull, push, push_objects, read_remote_object,
    remote_add, remote_list, remote_missing, remote_objects, remote_remove, remote_set_local,
    transfer_progress)


def init(root, link_types: str) -> None:
    import io
    from contextlib import redirect_stdout

    from dvc.repo import Repo

    _quiet()
    with redirect_stdout(io.StringIO()):  # `dvc init` greets on stdout; core never prints
        repo = Repo.init(str(root))
    try:
        with repo.config.edit() as conf:
            conf["core"]["autostage"] = False
            conf["core"]["analytics"] = False
            conf["cache"]["type"] = link_types
    finally:
        repo.close()


def sync_cache_type(root) -> Optional[str]:
    """Write `core.link`'s DVC link types into `.dvc/config`; returns the old value if it changed."""
    wanted = _link_override(root)["cache"]["type"]
    before = dvc_config.cache_type(root)
    if before.replace(" ", "") == wanted:
        return None
    with _repo(root, "sync_cache_type") as repo:
        with repo.config.edit("repo") as conf:
            conf["cache"]["type"] = wanted
    return before or "(DVC's default)"


def add(root, targets: Iterable[str], known: Optional[dict] = None, on_progress=None) -> dict:
    """Track `targets` with DVC, storing their objects ourselves first (see `linking`): each new
    file is read once (hashed while copied, or reflinked), files in parallel; DVC's state DB is
    told the hashes, so `repo.add` neither hashes nor copies again and leaves the files as they
    are (`relink=False`). `known`: {absolute path: md5} of files nbversion itself just wrote
    while hashing them. Returns how the objects were stored: {"copy": n, "reflink": n, ...}."""
    from dvc_data.hashfile.hash_info import HashInfo

    from ..storage import linking

    targets = list(targets)
    if not targets:
        return {}
    with _repo(root, "add") as repo:
        cache = Path(repo.cache.local.path)   # DVC 3: already ends in files/md5; honours `dvc cache dir`
        todo = _files_to_store(repo, cache, _abs(root, targets))
        try:
            report = linking.store(todo, cache, linking.workspace_mode(root), known=known, on_progress=on_progress)
        except OSError as exc:
            raise NbversionError(f"could not store {exc.filename or 'a file'} in the DVC cache: {exc.strerror or exc}",
                                 hint="check the file is readable and the disk has room, then run the command again") from exc
        _state_save(repo, [(p, HashInfo("md5", m)) for p, m in report.hashes.items()])
        repo.add(_abs(root, targets), relink=False)
    return report.methods


def remember_hashes(root, hashes: dict) -> None:
    """Tell DVC's state DB {absolute path: md5} of files nbversion tracked itself, so DVC (a
    checkout, a plain `dvc status`) does not hash them again."""
    from dvc_data.hashfile.hash_info import HashInfo

    if hashes:
        with _repo(root, "remember_hashes") as repo:
            _state_save(repo, [(p, HashInfo("md5", m)) for p, m in hashes.items()])


def _files_to_store(repo, cache: Path, targets: list[str]) -> list[str]:
    """Files DVC will track under `targets` whose object is not known to be in the cache already
    (unchanged since DVC last hashed them, by its state DB: those are not read at all)."""
    import os

    from ..storage.linking import object_in

    files = []
    for target in targets:
        if os.path.isdir(target):
            files += [f for f in repo.dvcignore.find(repo.fs, target) if not os.path.islink(f)]
        elif os.path.isfile(target) and not os.path.islink(target):
            files.append(target)
    known = {}
    for path, info in _state_get(repo, files):
        if info is not None and object_in(cache, info.value).exists():
            known[path] = info.value
    return [f for f in files if f not in known]


def _state_save(repo, hashes: list) -> None:
    """Tell DVC's state DB these (path, HashInfo): one batch where dvc-data has `save_many`
    (3.16+), one call a file on the oldest supported DVC (3.50)."""
    if hasattr(repo.state, "save_many"):
        repo.state.save_many([(p, h, None) for p, h in hashes], repo.fs)
    else:
        for path, hash_info in hashes:
            repo.state.save(path, repo.fs, hash_info)


def _state_get(repo, files: list):
    """(path, HashInfo or None) for each file, from DVC's state DB (unchanged since last hashed)."""
    if hasattr(repo.state, "get_many"):
        for path, _meta, info in repo.state.get_many(files, repo.fs, {}):
            yield path, info
    else:
        for path in files:
            yield path, repo.state.get(path, repo.fs)[1]


def remove(root, dvc_files: Iterable[str]) -> None:
    """Stop tracking (keeps data in cache); removes the .dvc file and its .gitignore entry."""
    with _repo(root, "remove") as repo:
        for target in dvc_files:
            repo.remove(str(Path(root) / target), outs=False)


def checkout(root, targets: Optional[Iterable[str]] = None) -> None:
    with _repo(root, "checkout") as repo:
        repo.checkout(targets=_abs(root, targets) if targets else None, force=True)


def data_status(root) -> dict:
    """DVC's granular `data status`: uncommitted added/modified/deleted inside tracked outputs."""
    with _repo(root, "data_status") as repo:
        return repo.data_status(granular=True)


def diff(root, rev_a: str, rev_b: Optional[str]) -> dict:
    with _repo(root, "diff") as repo:
        return repo.diff(rev_a, rev_b)


_cache_roots: dict = {}


def cache_root(root) -> Path:
    """What `repo.cache.local.path` says (`<cache dir>/files/md5`), without opening a Repo: read
    from DVC's config files (DVC resolves a relative `dir` against the file that sets it),
    remembered until one of them changes."""
    dvc_dir = Path(root) / ".dvc"
    stamp = tuple(_mtime(dvc_dir / name) for name in ("config", "config.local"))
    key = str(dvc_dir)
    if key not in _cache_roots or _cache_roots[key][0] != stamp:
        configured = _configured_cache_dir(dvc_dir)
        base = Path(configured) if configured else dvc_dir / "cache"
        _cache_roots[key] = (stamp, base / "files" / "md5")
    return _cache_roots[key][1]


def _configured_cache_dir(dvc_dir: Path) -> Optional[str]:
    """`cache.dir` from DVC's config files. Resolving a relative one is DVC's business (against
    the file that sets it), so DVC's parser is asked then, which is rare."""
    if all(dvc_config.value(dvc_dir / name, "cache", "dir") is None for name in ("config", "config.local")):
        return None
    from dvc.config import Config

    return Config(str(dvc_dir), validate=False).get("cache", {}).get("dir")


def _mtime(path: Path):
    try:
        return path.stat().st_mtime_ns
    except OSError:
        return None
