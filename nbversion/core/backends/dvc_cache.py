"""DVC's objects in the workspace's local cache: where object H is, which are there, and a
folder's listing. The one owner of "path of the object with hash H": every verb asks here, and
here asks `_dvc.cache_root`, which honours `dvc cache dir` (absolute, relative, config.local).
"""
from __future__ import annotations

import json
from pathlib import Path

from ...errors import NbversionError
from ._dvc import cache_root


def read_dir_manifest(root, md5_dir: str) -> list[dict]:
    """The `.dir` object of a tracked directory: [{"relpath", "md5"}...] from the local cache."""
    path = object_path(root, md5_dir)
    if not path.exists():
        raise NbversionError(f"the cache has no listing for directory hash {md5_dir}",
                             hint="run `nbversion pull` to fetch it from a remote")
    return json.loads(path.read_text())


def object_path(root, md5: str) -> Path:
    """Path of object `md5` (a file hash, or `<hash>.dir` for a folder listing) in the workspace's
    local cache, wherever `dvc cache dir` put it (absolute, relative or in `.dvc/config.local`)."""
    from ..storage.linking import object_in

    return object_in(cache_root(root), md5)


def cached_objects(root) -> dict:
    """md5 (with the `.dir` suffix for listings) -> size of every object in the local cache."""
    base = cache_root(root)
    found = {}
    if base.exists():
        for path in base.glob("??/*"):
            if path.is_file() and not path.name.startswith("."):   # dot files: a killed add's temp files
                found[path.parent.name + path.name] = path.stat().st_size
    return found
