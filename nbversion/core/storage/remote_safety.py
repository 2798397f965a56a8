"""`remote add` changes nothing unless it completes: what it checks first, what it puts back.

DVC's remote is written before git's, so a failure in between (a name git refuses, an SSH
server that is down) would leave `.dvc/config` with a half-added remote and the default moved.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Optional
from urllib.parse import urlparse

from ...errors import UsageError
from ..backends import _git, _git_sync
from ..repo import names

logger = logging.getLogger(__name__)


def url_kind(url: str) -> str:
    """"ssh", "s3" or "folder": the kinds of remote URL nbversion knows; anything else is refused."""
    scheme = urlparse(url).scheme
    if scheme in ("ssh", "s3"):
        return scheme
    if scheme in ("", "file"):
        return "folder"
    raise UsageError(f"unsupported remote URL {url!r}",
                     hint="use a local folder, ssh://[user@]host[:port]/path or s3://bucket/prefix")


def check_remote_add(name: str, url: str, git_url: Optional[str]) -> None:
    """Everything `remote add` can refuse, before anything is written."""
    names.check_name(name, "remote")
    if url_kind(url) == "s3" and not git_url:
        raise UsageError(f"{url}: an S3 remote holds data only, and nbversion will not guess where history goes",
                         hint=f"give the git repo for history too: `nbversion remote add {name} {url} "
                              "--git git@host:org/repo.git` (a folder or ssh:// URL holds both)")


def settings(root) -> dict:
    """What `remote add` may change, to put back if it fails half-way."""
    files = {n: (Path(root) / ".dvc" / n).read_bytes() if (Path(root) / ".dvc" / n).exists() else None
             for n in ("config", "config.local")}
    ssh = _git.config_get(root, "core.sshCommand", local_only=True)
    return {"files": files, "git": _git_sync.remotes(root), "ssh": ssh}


def restore(root, name: str, saved: dict) -> None:
    logger.debug("remote add %s failed: restoring .dvc/config and the git remotes as they were", name)
    for fname, data in saved["files"].items():
        path = Path(root) / ".dvc" / fname
        if data is None:
            path.unlink(missing_ok=True)
        else:
            path.write_bytes(data)
    before, now = saved["git"].get(name), _git_sync.remotes(root).get(name)
    if before is None and now is not None:
        _git_sync.remove_remote(root, name)
    elif before is not None and now != before:
        _git_sync.set_remote(root, name, before)
    if saved["ssh"] is None:
        _git.config_unset(root, "core.sshCommand")   # it was not set then either
    else:
        _git.config_set(root, "core.sshCommand", saved["ssh"])
