"""DVC remotes, transfers (push, fetch, pull) and the objects on a remote; DVC's own progress
bars forwarded as events. Split from `_dvc` (local data) by theme; both open DVC's Repo through
`_dvc_session`. Callers reach these through `_dvc`, which re-exports them.
"""
from __future__ import annotations

import contextlib
import logging
import threading
from contextlib import contextmanager
from typing import Iterable, Optional

from ...errors import NbversionError, RemoteUnreachable
from ._dvc_session import _abs, _repo

logger = logging.getLogger("nbversion.core.backends._dvc")


def remote_add(root, name: str, url: str, default: bool = False, options: Optional[dict] = None,
               local_options: Optional[dict] = None) -> None:
    """Add (or replace) a DVC remote. `options` go to the committed .dvc/config, so clones see
    the remote; `local_options` (key files, credentials) to the uncommitted .dvc/config.local."""
    with _repo(root, "remote_add") as repo:
        with repo.config.edit("repo") as conf:
            conf["remote"][name] = {"url": url, **(options or {})}
            if default:
                conf["core"]["remote"] = name
        if local_options:
            with repo.config.edit("local") as conf:
                conf["remote"].setdefault(name, {}).update(local_options)


def remote_set_local(root, name: str, options: dict) -> None:
    """Options of remote `name` (a key file, credentials) in the uncommitted .dvc/config.local
    only: a clone must not leave the committed .dvc/config rewritten (a dirty checkout)."""
    with _repo(root, "remote_set_local") as repo:
        with repo.config.edit("local") as conf:
            conf["remote"].setdefault(name, {}).update(options)


def remote_list(root) -> tuple[dict, Optional[str]]:
    """({name: {"url": ..., other options}}, default remote name or None)."""
    with _repo(root, "remote_list") as repo:
        conf = repo.config
        remotes = {name: dict(values) for name, values in conf.get("remote", {}).items()}
        return remotes, conf.get("core", {}).get("remote")


def _transfer_kwargs(remote, revs, all_commits, workspace, jobs) -> dict:
    return {"remote": remote, "revs": list(revs) if revs else None, "all_commits": all_commits,
            "workspace": workspace, "jobs": jobs}


def push(root, remote: Optional[str] = None, revs=None, all_commits: bool = False,
         workspace: bool = True, jobs: Optional[int] = None) -> int:
    """Upload the objects of the workspace (and `revs`, or every commit) to a remote; returns
    how many objects were sent. Objects are written to a temporary name and renamed."""
    with _repo(root, "push", transfer=True) as repo:
        return repo.push(**_transfer_kwargs(remote, revs, all_commits, workspace, jobs))


def fetch(root, remote: Optional[str] = None, revs=None, all_commits: bool = False,
          workspace: bool = True, jobs: Optional[int] = None) -> int:
    """Download missing objects into the local cache (temporary name, then rename)."""
    with _repo(root, "fetch", transfer=True) as repo:
        return repo.fetch(**_transfer_kwargs(remote, revs, all_commits, workspace, jobs))


def checkout_workspace(root, force: bool = False, targets=None) -> None:
    """Link or copy every tracked output of the working tree (or of `targets`) from the cache."""
    from dvc.exceptions import CheckoutError

    with _repo(root, "checkout_workspace") as repo:
        try:
            repo.checkout(targets=_abs(root, targets) if targets else None, force=force)
        except CheckoutError as exc:
            raise NbversionError(f"dvc checkout: {exc}",
                                 hint="run `nbversion pull` again, or `nbversion verify --repair`") from exc


def _remote_odb(repo, remote: Optional[str]):
    return repo.cloud.get_remote_odb(remote, "verify")


def remote_missing(root, md5s: Iterable[str], remote: Optional[str] = None) -> set:
    """The md5s (files and `.dir` listings) that the remote does not have."""
    md5s = set(md5s)
    if not md5s:
        return set()
    with _repo(root, "remote_missing") as repo:
        odb = _remote_odb(repo, remote)
        present = set(odb.oids_exist(sorted(md5s)))
    return md5s - present


def read_remote_object(root, md5: str, remote: Optional[str] = None) -> Optional[bytes]:
    """Object `md5` (a `.dir` listing) read from the remote without storing it in the local
    cache: a pull that stops on a conflict leaves the cache as it was. None if the remote lacks it."""
    with _repo(root, "read_remote_object", transfer=True) as repo:
        odb = _remote_odb(repo, remote)
        path = odb.oid_to_path(md5)
        return odb.fs.cat_file(path) if odb.fs.exists(path) else None


def remote_objects(root, remote: Optional[str] = None) -> set:
    """Every md5 stored on the remote."""
    with _repo(root, "remote_objects") as repo:
        return set(_remote_odb(repo, remote).all())


def remote_remove(root, md5s: Iterable[str], remote: Optional[str] = None) -> int:
    md5s = list(md5s)
    if not md5s:
        return 0
    with _repo(root, "remote_remove") as repo:
        odb = _remote_odb(repo, remote)
        odb.fs.remove([odb.oid_to_path(m) for m in md5s])
    return len(md5s)


def _hash_infos(md5s: Iterable[str]) -> list:
    from dvc_data.hashfile.hash_info import HashInfo

    return [HashInfo("md5", m) for m in sorted(set(md5s))]


def push_objects(root, md5s: Iterable[str], remote: Optional[str] = None, jobs: Optional[int] = None) -> int:
    """Upload exactly these objects. Unlike `push(revs=...)` this does not read each old commit's
    .dvc/config, so commits made before the remote was added are not skipped."""
    with _repo(root, "push_objects", transfer=True) as repo:
        result = repo.cloud.push(_hash_infos(md5s), jobs=jobs, remote=remote)
    if result.failed:
        raise RemoteUnreachable(f"{len(result.failed)} object(s) could not be uploaded",
                                hint="check the remote is reachable and run push again (it resumes)")
    return len(result.transferred)


def fetch_objects(root, md5s: Iterable[str], remote: Optional[str] = None, jobs: Optional[int] = None) -> tuple[int, set]:
    """Download these objects into the local cache. Returns (count, md5s the remote lacks)."""
    with _repo(root, "fetch_objects", transfer=True) as repo:
        result = repo.cloud.pull(_hash_infos(md5s), jobs=jobs, remote=remote)
    return len(result.transferred), {h.value for h in result.failed}


def pull(root, remote: Optional[str] = None, jobs: Optional[int] = None) -> int:
    """Fetch and check out the working tree's data in one DVC repo session; returns objects fetched."""
    from dvc.exceptions import CheckoutError

    with _repo(root, "pull", transfer=True) as repo:
        try:
            result = repo.pull(remote=remote, jobs=jobs)
        except CheckoutError as exc:
            raise NbversionError(f"dvc checkout: {exc}",
                                 hint="run `nbversion pull` again, or `nbversion verify --repair`") from exc
    return int((result or {}).get("stats", {}).get("fetched", 0) or 0)


# DVC's push, pull and fetch (`Repo.push`, `DataCloud.push`, ...) take no progress callback, in
# 3.50 (the lowest supported) as in 3.6x: they make their own `TqdmCallback`. So the bars are
# forwarded by patching the Tqdm classes for the duration of a transfer; the server runs verbs in
# worker threads, and two patched sections at once would mix their observers and could restore
# the classes in the wrong order (leaving one observer patched in for good). One transfer with
# progress at a time, then: the others wait for it.
_PATCHING_TQDM = threading.RLock()


@contextmanager
def transfer_progress(on_event):
    """Forward DVC's own progress bars (files transferred) to an `on_event` callback.

    DVC draws them with `dvc.progress.Tqdm`, disabled here (quiet logger, maybe no terminal), and
    a disabled tqdm neither counts nor keeps its description, so the wrapper does both; an
    observer's error never reaches the transfer."""
    from dvc.progress import Tqdm

    from ...events import Event

    try:   # dvc-data draws the per-file transfer bars with its own tqdm class
        from dvc_data.callbacks import Tqdm as DataTqdm
    except ImportError:  # pragma: no cover - older dvc-data
        DataTqdm = None
    if not _PATCHING_TQDM.acquire(blocking=False):
        logger.debug("another transfer reports progress: waiting for it to finish")
        _PATCHING_TQDM.acquire()
    try:
        with _forward_tqdm(DataTqdm, on_event, Event) if DataTqdm else contextlib.nullcontext():
            with _forward_tqdm(Tqdm, on_event, Event):
                yield
    finally:
        _PATCHING_TQDM.release()


@contextmanager
def _forward_tqdm(Tqdm, on_event, Event):
    original_init, original_update = Tqdm.__init__, Tqdm.update

    def init(self, *args, **kwargs):
        original_init(self, *args, **kwargs)
        self._nbv_desc = kwargs.get("desc") or ""
        self._nbv_total = kwargs.get("total") or 0
        self._nbv_done = 0

    def update(self, n=1):
        result = original_update(self, n)
        try:
            if getattr(self, "disable", False):   # fsspec callbacks send `value - bar.n`: keep n right
                self.n = getattr(self, "n", 0) + (n or 0)
            total = getattr(self, "total", None) or getattr(self, "_nbv_total", 0)
            on_event(Event("transfer", int(self.n), int(total or 0), str(getattr(self, "_nbv_desc", ""))))
        except Exception:   # an observer's error never reaches the transfer
            logger.debug("forwarding DVC's progress failed", exc_info=True)
        return result

    own = {name: Tqdm.__dict__[name] for name in ("__init__", "update") if name in Tqdm.__dict__}
    Tqdm.__init__, Tqdm.update = init, update
    try:
        yield
    finally:
        for name in ("__init__", "update"):   # put back exactly what the class had (maybe inherited)
            if name in own:
                setattr(Tqdm, name, own[name])
            else:
                delattr(Tqdm, name)
