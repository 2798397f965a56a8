"""`clone URL DIR [--all-versions]`: git clone, then the checkout's data from the default DVC remote.

The history URL follows `remote add`'s layout (a folder remote keeps history in DIR/git); the data
remote and its options come from the cloned `.dvc/config`, with a key file kept out of git.
"""
from __future__ import annotations

import logging
import shlex
import shutil
import time
from pathlib import Path
from typing import Optional

from ...errors import AlreadyExists, NbversionError, UsageError
from ...events import Event, emitter
from ...extras import require_for_url
from ..backends import _dvc, _git, _git_sync
from . import fast_transfer, fresh_checkout
from .remotes import TransferResult, fetch_tagged, fetch_versions, folder_path, ssh_command, url_kind

logger = logging.getLogger(__name__)


def _history_url(url: str) -> str:
    """A folder remote made by `remote add` holds its history in DIR/git."""
    if _kind_or_git(url) == "folder" and (folder_path(url) / "git" / "HEAD").exists():
        return str(folder_path(url) / "git")
    if url.startswith("ssh://") and not url.rstrip("/").endswith("/git"):
        return url.rstrip("/") + "/git"
    return url


def _kind_or_git(url: str) -> str:
    try:
        return url_kind(url)
    except UsageError:
        return "git"


def _require_clone_data(target: Path, data_url: Optional[str]) -> None:
    """History came from a folder or over ssh, but the data lives on s3://: without the plug-in,
    take the half-made clone away again rather than leave a checkout without its data."""
    try:
        require_for_url(data_url or "", "clone")
    except NbversionError:
        shutil.rmtree(target, ignore_errors=True)
        raise


def clone(url: str, directory: str, keyfile: Optional[str] = None, all_versions: bool = False,
          on_event=None) -> TransferResult:
    """git clone, then fetch and check out the data of the checkout from the default DVC remote."""
    emit, started = emitter(on_event), time.monotonic()
    require_for_url(url, "clone")
    target = Path(directory).expanduser().resolve()
    if target.exists() and any(target.iterdir()):
        raise AlreadyExists(f"{target} already exists and is not empty", hint="clone into a new folder")
    target.parent.mkdir(parents=True, exist_ok=True)
    existed = target.exists()
    try:
        return _clone_into(url, target, keyfile, all_versions, emit, started)
    except KeyboardInterrupt:   # Ctrl-C: no half clone (history without its data) left behind
        _remove_partial(target, existed)
        raise


def _remove_partial(target: Path, existed: bool) -> None:
    if not existed:
        shutil.rmtree(target, ignore_errors=True)
        return
    for child in target.iterdir():   # an empty folder the user made: left, empty again
        shutil.rmtree(child, ignore_errors=True) if child.is_dir() and not child.is_symlink() else child.unlink()


def _clone_into(url: str, target: Path, keyfile, all_versions: bool, emit, started: float) -> TransferResult:
    emit(Event("clone", 0, 3, "history"))
    _git_sync.clone(_history_url(url), target, shlex.join(ssh_command(keyfile)) if keyfile else None)
    data, default = _dvc.remote_list(target)
    logger.debug("cloned history of %s; data remote %s: %s", url, default, data.get(default, {}).get("url"))
    _require_clone_data(target, data.get(default, {}).get("url") if default else None)
    if default and "origin" in _git_sync.remotes(target) and default not in _git_sync.remotes(target):
        _git_sync.rename_remote(target, "origin", default)   # one name for history and data
    if keyfile:
        _git.config_set(target, "core.sshCommand", shlex.join(ssh_command(keyfile)))
        if default:
            _dvc.remote_set_local(target, default, {"keyfile": str(Path(keyfile).expanduser().resolve())})
    objects = 0
    if default:
        emit(Event("clone", 1, 3, f"data from {default}"))
        if (fetched := fast_transfer.fetch(target, default, emit)) is not None:   # a folder remote: no DVC
            objects = fetched[0]
        else:
            with _dvc.transfer_progress(emit):
                objects = _dvc.fetch(target, default)
        # tagged versions always: verify and `dataset diff v1 HEAD` need them in a fresh clone
        objects += fetch_versions(target, True, False, default, emit) if all_versions \
            else fetch_tagged(target, default, emit)
        emit(Event("clone", 2, 3, "checkout"))
        if leftover := fresh_checkout.checkout(target, emit):
            with _dvc.transfer_progress(emit):
                _dvc.checkout_workspace(target, targets=leftover)
    emit(Event("clone", 3, 3, "done"))
    history = f"cloned {_git.current_branch(target) or 'HEAD'} with {len(_git.tags(target, '**'))} tag(s)"
    return TransferResult("clone", default or url, objects or 0, history, time.monotonic() - started,
                          directory=str(target))

