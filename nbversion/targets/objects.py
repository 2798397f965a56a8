"""The DVC objects a target run moves: the dataset version it needs (to the host), its weights (back).

A folder remote is copied directly (`fast_transfer`), any other remote goes through DVC.
Only the named objects move, never the whole working tree's.
"""
from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

from ..core.backends import _dvc, dvc_cache
from ..core.backends.hashing import file_md5
from ..core.storage import fast_transfer
from ..errors import IntegrityError, NotFound

logger = logging.getLogger(__name__)


def _quiet(event) -> None:
    pass


def fetch(root, remote: str, md5s: set) -> None:
    """Bring `md5s` (a `.dir` listing's files included) into the cache; NotFound when the remote lacks one."""
    result = fast_transfer.fetch(root, remote, _quiet, set(md5s))
    if result is not None:
        missing = result[1]
    else:
        _, missing = _dvc.fetch_objects(root, [m for m in md5s if not dvc_cache.object_path(root, m).exists()], remote)
        listed = {e["md5"] for m in md5s if m.endswith(".dir") and m not in missing
                  for e in dvc_cache.read_dir_manifest(root, m)}
        todo = [m for m in listed if not dvc_cache.object_path(root, m).exists()]
        missing |= _dvc.fetch_objects(root, todo, remote)[1] if todo else set()
    if missing:
        raise NotFound(f"{len(missing)} object(s) are not on the DVC remote {remote!r} (e.g. {sorted(missing)[0]})",
                       hint="run `nbversion push` in the notebook's workspace, then train again")


def push(root, remote: str, md5s: set) -> None:
    if fast_transfer.push(root, remote, _quiet, set(md5s)) is None:
        _dvc.push_objects(root, md5s, remote)


def missing_on_remote(root, remote: str, md5s: set) -> set:
    """The md5s (a `.dir` listing's files included, read from the local cache) the remote lacks."""
    wanted = set(md5s)
    for m in md5s:
        if m.endswith(".dir") and dvc_cache.object_path(root, m).exists():
            wanted |= {e["md5"] for e in dvc_cache.read_dir_manifest(root, m)}
    folder = fast_transfer.folder_remote(root, remote)
    if folder is not None:
        return {m for m in wanted if not (folder / m[:2] / m[2:]).exists()}
    return _dvc.remote_missing(root, wanted, remote)


def store_files(root, folder: Path) -> dict:
    """Each file under `folder` copied into the cache as an object; {relpath: md5}."""
    return {path.relative_to(folder).as_posix(): store_file(root, path)
            for path in sorted(p for p in folder.rglob("*") if p.is_file())}


def store_file(root, path: Path) -> str:
    """One file copied into the cache as an object; its md5."""
    md5 = file_md5(path)
    target = dvc_cache.object_path(root, md5)
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.tmp")
        shutil.copyfile(path, tmp)
        os.chmod(tmp, 0o444)
        os.replace(tmp, target)
    return md5


def place_files(root, manifest: dict, folder: Path) -> None:
    """The files of `manifest` written from the cache into `folder` (replacing what is there),
    each checked against its md5: a file that arrived damaged is never committed."""
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    for rel, md5 in manifest.items():
        source, target = dvc_cache.object_path(root, md5), folder / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
        os.chmod(target, 0o644)
        if file_md5(target) != md5:
            raise IntegrityError(f"{target.relative_to(root)}: md5 differs from the target's ({md5})",
                                 hint="the weights were damaged on the way: `nbversion runs attach RUN` fetches them again")
