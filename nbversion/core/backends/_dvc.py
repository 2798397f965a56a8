"""The only module that imports dvc. DVC is used in-process (`dvc.repo.Repo`).

Every call opens the repo, does one thing and closes it: DVC caches state per Repo object
and takes its own short-timeout lock, so we never keep one open across operations (our
workspace lock serialises callers).
"""
from __future__ import annotations

import logging
import threading
import time
import contextlib
from contextlib import contextmanager
from pathlib import Path
from typing import Iterable, Optional

from ...errors import NbversionError, RemoteUnreachable
from . import dvc_config

logger = logging.getLogger(__name__)


def _quiet() -> None:
    """DVC logs hints ("To track the changes with git...") and progress; core never prints.

    Except under `nbversion -vv` (the root logger at DEBUG): then DVC's debug log is wanted."""
    if logging.getLogger().level != logging.DEBUG:
        logging.getLogger("dvc").setLevel(logging.ERROR)
    _no_spinner()


def _no_spinner() -> None:
    """`repo.add` shows a rich spinner (`ui.status`) whatever the log level; in a kernel rich draws
    it as an Output widget and swaps sys.stdout/sys.stderr meanwhile, so a run's commit leaked it
    into the notebook cell. DVC's own switch, `ui.enable()`, does not cover `status`."""
    from dvc.ui import ui

    from types import SimpleNamespace

    silent = SimpleNamespace(update=lambda *args, **kwargs: None)   # what DVC calls on the spinner
    ui.status = lambda *args, **kwargs: contextlib.nullcontext(silent)   # on the instance: idempotent


def _link_override(root) -> dict:
    """`core.link` decides how DVC links, whatever `.dvc/config` says (an old workspace may still
    say "reflink,hardlink,copy" until `verify --repair` rewrites it)."""
    from ..storage import linking

    return {"cache": {"type": linking.dvc_cache_type(linking.workspace_mode(root))}}


@contextmanager
def _repo(root, operation: str, transfer: bool = False):
    """DVC's Repo of `root`, closed after; a DVC error as an NbversionError keeping its cause
    (a RemoteUnreachable for a `transfer`: the remote refused, or could not be reached).
    `operation` names the adapter function in the debug log line, with the time it took."""
    from dvc.repo import Repo
    from dvc.exceptions import DvcException

    _quiet()
    started = time.monotonic()
    override = _link_override(root)
    try:
        repo = Repo(str(root), config=override)
    except DvcException as exc:
        raise NbversionError(f"DVC could not open {root}: {exc}") from exc
    repo.scm_context.quiet = True
    try:
        yield repo
    except (DvcException, ConnectionError) as exc:
        if transfer:
            raise RemoteUnreachable(f"dvc: {exc}", hint="check the remote's URL, login and network "
                                    "(`nbversion remote list`), then run the command again") from exc
        if isinstance(exc, ConnectionError):
            raise
        raise NbversionError(f"dvc: {exc}", hint="run `nbversion verify` to check the workspace") from exc
    finally:
        repo.close()
        logger.debug("dvc %s (in %s, %.2f s)", operation, root, time.monotonic() - started)


def _abs(root, targets) -> list[str]:
    """DVC resolves relative targets against the process cwd, not the repo: make them absolute."""
    return [str(Path(root) / t) for t in targets]


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


# --- remotes, transfers and remote objects (issue 9: remotes, verify, gc, backup) ---------

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
