"""The only module that imports dvc. DVC is used in-process (`dvc.repo.Repo`).

Every call opens the repo, does one thing and closes it: DVC caches state per Repo object
and takes its own short-timeout lock, so we never keep one open across operations (our
workspace lock serialises callers).
"""
from __future__ import annotations

import logging
from contextlib import contextmanager
from pathlib import Path
from typing import Iterable, Optional

from ..errors import NbversionError


def _quiet() -> None:
    """DVC logs hints ("To track the changes with git...") and progress; core never prints."""
    logging.getLogger("dvc").setLevel(logging.ERROR)


@contextmanager
def _repo(root):
    from dvc.repo import Repo
    from dvc.exceptions import DvcException

    _quiet()
    try:
        repo = Repo(str(root))
    except DvcException as exc:
        raise NbversionError(f"DVC could not open {root}: {exc}") from exc
    repo.scm_context.quiet = True
    try:
        yield repo
    except DvcException as exc:
        raise NbversionError(f"dvc: {exc}", hint="run `nbversion verify` to check the workspace") from exc
    finally:
        repo.close()


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


def add(root, targets: Iterable[str]) -> None:
    targets = list(targets)
    if not targets:
        return
    with _repo(root) as repo:
        _prelink_large_files(repo, root, targets)
        repo.add(_abs(root, targets))


def remove(root, dvc_files: Iterable[str]) -> None:
    """Stop tracking (keeps data in cache); removes the .dvc file and its .gitignore entry."""
    with _repo(root) as repo:
        for target in dvc_files:
            repo.remove(str(Path(root) / target), outs=False)


def checkout(root, targets: Optional[Iterable[str]] = None) -> None:
    with _repo(root) as repo:
        repo.checkout(targets=_abs(root, targets) if targets else None, force=True)


def data_status(root) -> dict:
    """DVC's granular `data status`: uncommitted added/modified/deleted inside tracked outputs."""
    with _repo(root) as repo:
        return repo.data_status(granular=True)


def diff(root, rev_a: str, rev_b: Optional[str]) -> dict:
    with _repo(root) as repo:
        return repo.diff(rev_a, rev_b)


def cache_dir(root) -> Path:
    with _repo(root) as repo:
        return Path(repo.cache.local.path)


def read_dir_manifest(root, md5_dir: str) -> list[dict]:
    """The `.dir` object of a tracked directory: [{"relpath", "md5"}...] from the local cache."""
    import json

    path = object_path(root, md5_dir)
    if not path.exists():
        raise NbversionError(f"the cache has no listing for directory hash {md5_dir}",
                             hint="run `nbversion pull` to fetch it from a remote")
    return json.loads(path.read_text())


def object_path(root, md5: str) -> Path:
    """Path of an object in DVC 3's default local cache layout."""
    return Path(root) / ".dvc" / "cache" / "files" / "md5" / md5[:2] / md5[2:]


def pull_targets(root, targets: Iterable[str]) -> None:
    """Restore `targets` from the local cache, else fetch them from the default remote."""
    targets = list(targets)
    with _repo(root) as repo:
        try:
            repo.checkout(targets=_abs(root, targets), force=True)
            return
        except Exception:  # not in the local cache: try the remote below
            pass
    with _repo(root) as repo:
        repo.pull(targets=_abs(root, targets), force=True)


# --- remotes, transfers and remote objects (issue 9: remotes, verify, gc, backup) ---------

def remote_add(root, name: str, url: str, default: bool = False, options: Optional[dict] = None,
               local_options: Optional[dict] = None) -> None:
    """Add (or replace) a DVC remote. `options` go to the committed .dvc/config, so clones see
    the remote; `local_options` (key files, credentials) to the uncommitted .dvc/config.local."""
    with _repo(root) as repo:
        with repo.config.edit("repo") as conf:
            conf["remote"][name] = {"url": url, **(options or {})}
            if default:
                conf["core"]["remote"] = name
        if local_options:
            with repo.config.edit("local") as conf:
                conf["remote"].setdefault(name, {}).update(local_options)


def remote_list(root) -> tuple[dict, Optional[str]]:
    """({name: {"url": ..., other options}}, default remote name or None)."""
    with _repo(root) as repo:
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
    with _repo(root) as repo:
        return repo.push(**_transfer_kwargs(remote, revs, all_commits, workspace, jobs))


def fetch(root, remote: Optional[str] = None, revs=None, all_commits: bool = False,
          workspace: bool = True, jobs: Optional[int] = None) -> int:
    """Download missing objects into the local cache (temporary name, then rename)."""
    with _repo(root) as repo:
        return repo.fetch(**_transfer_kwargs(remote, revs, all_commits, workspace, jobs))


def checkout_workspace(root, force: bool = False) -> None:
    """Link or copy every tracked output of the working tree from the cache."""
    from dvc.exceptions import CheckoutError

    with _repo(root) as repo:
        try:
            repo.checkout(force=force)
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
    with _repo(root) as repo:
        odb = _remote_odb(repo, remote)
        present = set(odb.oids_exist(sorted(md5s)))
    return md5s - present


def remote_objects(root, remote: Optional[str] = None) -> set:
    """Every md5 stored on the remote."""
    with _repo(root) as repo:
        return set(_remote_odb(repo, remote).all())


def remote_remove(root, md5s: Iterable[str], remote: Optional[str] = None) -> int:
    md5s = list(md5s)
    if not md5s:
        return 0
    with _repo(root) as repo:
        odb = _remote_odb(repo, remote)
        odb.fs.remove([odb.oid_to_path(m) for m in md5s])
    return len(md5s)


LARGE_FILE = 64 << 20


def _prelink_large_files(repo, root, targets) -> None:
    """Hash big single files once and hard-link them into the cache before `dvc add`.

    `dvc add` hashes, then copies the file into the cache and links it back: for a 1 GB file
    the copy is as slow as the hash. With hardlinks allowed, the object can simply be the same
    inode, and recording the hash in DVC's state database spares DVC a second hashing pass.
    """
    import os

    from dvc_data.hashfile.hash_info import HashInfo

    from .hashing import file_md5

    if "hardlink" not in str(repo.config["cache"].get("type", "")):
        return
    for target in targets:
        path = Path(root) / target
        if not path.is_file() or path.is_symlink() or path.stat().st_size < LARGE_FILE:
            continue
        md5 = file_md5(path)
        obj = Path(repo.cache.local.path) / "files" / "md5" / md5[:2] / md5[2:]
        if not obj.exists():
            obj.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.link(path, obj)
            except OSError:
                continue   # another filesystem: let DVC copy as usual
        repo.state.save(str(path), repo.fs, HashInfo("md5", md5))


def add_adopting(root, targets: Iterable[str]) -> None:
    """`dvc add` that hard-links the files into the cache instead of copying them.

    Only for files nbversion itself just wrote (its private copy of an imported dataset or
    weights file): DVC's copy into the cache is most of the cost of adding many small files,
    and the workspace ends as it would after a checkout with hardlinks (read-only links).
    """
    from dvc.exceptions import DvcException
    from dvc.repo import Repo

    targets = list(targets)
    if not targets:
        return
    _quiet()
    try:
        repo = Repo(str(root), config={"cache": {"type": "hardlink,copy"}})
    except DvcException as exc:
        raise NbversionError(f"DVC could not open {root}: {exc}") from exc
    repo.scm_context.quiet = True
    try:
        repo.add(_abs(root, targets))
    except DvcException as exc:
        raise NbversionError(f"dvc: {exc}", hint="run `nbversion verify` to check the workspace") from exc
    finally:
        repo.close()


def _hash_infos(md5s: Iterable[str]) -> list:
    from dvc_data.hashfile.hash_info import HashInfo

    return [HashInfo("md5", m) for m in sorted(set(md5s))]


def push_objects(root, md5s: Iterable[str], remote: Optional[str] = None, jobs: Optional[int] = None) -> int:
    """Upload exactly these objects. Unlike `push(revs=...)` this does not read each old commit's
    .dvc/config, so commits made before the remote was added are not skipped."""
    with _repo(root) as repo:
        result = repo.cloud.push(_hash_infos(md5s), jobs=jobs, remote=remote)
    if result.failed:
        raise NbversionError(f"{len(result.failed)} object(s) could not be uploaded",
                             hint="check the remote is reachable and run push again (it resumes)")
    return len(result.transferred)


def fetch_objects(root, md5s: Iterable[str], remote: Optional[str] = None, jobs: Optional[int] = None) -> tuple[int, set]:
    """Download these objects into the local cache. Returns (count, md5s the remote lacks)."""
    with _repo(root) as repo:
        result = repo.cloud.pull(_hash_infos(md5s), jobs=jobs, remote=remote)
    return len(result.transferred), {h.value for h in result.failed}


def pull(root, remote: Optional[str] = None, jobs: Optional[int] = None) -> int:
    """Fetch and check out the working tree's data in one DVC repo session; returns objects fetched."""
    from dvc.exceptions import CheckoutError

    with _repo(root) as repo:
        try:
            result = repo.pull(remote=remote, jobs=jobs)
        except CheckoutError as exc:
            raise NbversionError(f"dvc checkout: {exc}",
                                 hint="run `nbversion pull` again, or `nbversion verify --repair`") from exc
    return int((result or {}).get("stats", {}).get("fetched", 0) or 0)


@contextmanager
def transfer_progress(on_event):
    """Forward DVC's own progress bars (files transferred) to an `on_event` callback.

    DVC draws them with `dvc.progress.Tqdm`, disabled here (quiet logger, maybe no terminal), and
    a disabled tqdm neither counts nor keeps its description, so the wrapper does both; an
    observer's error never reaches the transfer."""
    from dvc.progress import Tqdm

    from ..events import Event

    try:   # dvc-data draws the per-file transfer bars with its own tqdm class
        from dvc_data.callbacks import Tqdm as DataTqdm
    except ImportError:  # pragma: no cover - older dvc-data
        DataTqdm = None
    with _forward_tqdm(DataTqdm, on_event, Event) if DataTqdm else _nothing():
        with _forward_tqdm(Tqdm, on_event, Event):
            yield


@contextmanager
def _nothing():
    yield


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
        except Exception:
            pass
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
