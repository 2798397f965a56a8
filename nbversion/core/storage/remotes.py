"""`remote add`, `push`, `pull`, `clone`: one remote name for both history (git) and data (DVC).

Layout of a remote URL:
- a local folder `DIR`: history in the bare repo `DIR/git`, data in `DIR/data` (both created);
- `ssh://[user@]host[:port]/path`: the same two folders on the server (`git init --bare` over ssh);
- `s3://bucket/prefix`: data only (an S3 store cannot hold git); give `--git URL` for history.
`--git URL` always overrides where history goes. The DVC remote is written to the committed
`.dvc/config` so a fresh clone (and plain `dvc pull`) finds it; key files stay in
`.dvc/config.local`. Data is pushed before history, so a teammate who sees a commit can fetch
its data. Transfers write to a temporary name and rename, so kill -9 leaves no corrupt object.
"""
from __future__ import annotations

import logging
import shlex
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional
from urllib.parse import urlparse

from ...errors import NotFound, RemoteUnreachable
from ..backends.faults import checkpoint
from ...events import Event, emitter
from ...extras import require_for_url
from ..result import Result
from ..backends import _dvc, dvc_cache, _git, _git_sync
from . import fast_transfer, fresh_checkout, remote_safety, tag_collisions
from .remote_safety import url_kind

from typing import TYPE_CHECKING

logger = logging.getLogger(__name__)

if TYPE_CHECKING:   # annotations only: core.workspace imports this module into Workspace
    from ...events import EventCallback
    from ..workspace import Workspace


@dataclass
class RemoteListResult(Result):
    remotes: list = field(default_factory=list)    # [{"name", "data", "history", "default"}]
    changed: str = ""

    def table(self):
        rows = [[r["name"], r["data"], r["history"] or "(none)", "yes" if r["default"] else ""]
                for r in self.remotes]
        return ["remote", "data", "history", "default"], rows

    def summary(self):
        return self.changed


@dataclass
class TransferResult(Result):
    action: str
    remote: str
    objects: int
    history: str
    seconds: float
    directory: str = ""

    def table(self):
        return ["part", "what happened"], [["data", f"{self.objects} object(s) transferred"],
                                           ["history", self.history]]

    def summary(self):
        where = f" into {self.directory}" if self.directory else ""
        return f"{self.action} {self.remote}{where}: done in {self.seconds:.1f}s"


# --- remote add / list ------------------------------------------------------------------------

def folder_path(url: str) -> Path:
    return Path(urlparse(url).path if url.startswith("file://") else url).expanduser().resolve()


def ssh_command(keyfile: Optional[str]) -> list:
    cmd = ["ssh", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=accept-new"]
    if keyfile:
        cmd += ["-i", str(Path(keyfile).expanduser().resolve()), "-o", "IdentitiesOnly=yes"]
    return cmd


def _ssh_init_bare(url: str, keyfile: Optional[str]) -> None:
    """Create the history repo on an SSH server: git cannot push into a folder that is not a repo."""
    import subprocess

    parts = urlparse(url)
    target = (f"{parts.username}@" if parts.username else "") + (parts.hostname or "")
    cmd = ssh_command(keyfile) + (["-p", str(parts.port)] if parts.port else []) + [
        target, f"git init -q --bare {shlex.quote(parts.path)}"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    if proc.returncode != 0:
        raise RemoteUnreachable(f"could not create the history repo {url}: {proc.stderr.strip()}",
                                hint="check the SSH login (try `ssh` by hand) or give --git URL of an existing repo")


def _layout(root, url: str, git_url: Optional[str], keyfile: Optional[str]) -> tuple[str, Optional[str]]:
    """(data URL for DVC, history URL for git or None) of a remote URL."""
    kind = url_kind(url)
    if kind == "folder":
        base = folder_path(url)
        if git_url is None:
            (base / "git").mkdir(parents=True, exist_ok=True)
            if not (base / "git" / "HEAD").exists():
                _git_sync.init_bare(base / "git")
            git_url = str(base / "git")
        return str(base / "data"), git_url
    if kind == "ssh":
        base = url.rstrip("/")
        if git_url is None:
            git_url = f"{base}/git"
            _ssh_init_bare(git_url, keyfile)
        return f"{base}/data", git_url
    return url, git_url


def _set_git_remote(root, name: str, git_url: str, keyfile: Optional[str]) -> None:
    _git_sync.set_remote(root, name, git_url)
    if keyfile:   # git's own ssh then uses the same key as DVC
        _git.config_set(root, "core.sshCommand", shlex.join(ssh_command(keyfile)))


def remote_add(ws: Workspace, name: str, url: str, git_url: Optional[str] = None, endpoint_url: Optional[str] = None,
               keyfile: Optional[str] = None, default: bool = True,
               on_event: Optional[EventCallback] = None) -> RemoteListResult:
    """Add a remote: one name for history (git) and data (DVC) (`nbversion remote add`).

    Args:
        name: the remote's name.
        url: a folder, ssh://[user@]host[:port]/path or s3://bucket/prefix.
        git_url: where history goes (default: URL/git for folders and ssh; required for s3).
        endpoint_url: an S3-compatible store's endpoint (MinIO, moto...).
        keyfile: an SSH private key (kept out of git).
        default: make it the default remote.
        on_event: unused; kept so every verb takes it.

    Returns:
        RemoteListResult: every remote, and `changed`, the one just added.

    Example:
        >>> ws = nbv.open(".")
        >>> ws.remote_add("team", "/mnt/shared/project")
    """
    remote_safety.check_remote_add(name, url, git_url)
    require_for_url(url, "remote add")
    with ws.transaction("remote add") as tx:
        saved = remote_safety.settings(ws.root)
        try:
            data_url, git_url = _layout(ws.root, url, git_url, keyfile)
            options = {"endpointurl": endpoint_url} if endpoint_url else {}
            local = {"keyfile": str(Path(keyfile).expanduser().resolve())} if keyfile else {}
            _dvc.remote_add(ws.root, name, data_url, default=default, options=options, local_options=local)
            if git_url:
                _set_git_remote(ws.root, name, git_url, keyfile)
        except BaseException:
            remote_safety.restore(ws.root, name, saved)   # no half-added remote, default unmoved
            raise
        tx.audit("remote add", name, {"data": data_url, "history": git_url})
        tx.commit(f"nbversion: remote {name}", [".dvc/config"])
    result = remote_list(ws)
    result.changed = f"remote {name}: data -> {data_url}, history -> {git_url or '(none: give --git URL)'}"
    return result


def remote_list(ws) -> RemoteListResult:
    data, default = _dvc.remote_list(ws.root)
    history = _git_sync.remotes(ws.root)
    names = sorted(set(data) | set(history))
    rows = [{"name": n, "data": data.get(n, {}).get("url", ""), "history": history.get(n),
             "default": n == default} for n in names]
    return RemoteListResult(rows)


def _dvc_remote_names(root) -> tuple[set, Optional[str]]:
    """DVC remote names and the default, read from `.dvc/config` (+ `config.local`) as plain INI:
    opening a DVC repo only to read two settings costs more than a small push."""
    import configparser

    names, default = set(), None
    for name in ("config", "config.local"):
        parser = configparser.ConfigParser(interpolation=None, strict=False)
        try:
            parser.read(Path(root) / ".dvc" / name)
        except configparser.Error:
            logger.debug(".dvc/%s is not plain INI: asking DVC for the remotes", name, exc_info=True)
            data, default = _dvc.remote_list(root)
            return set(data), default
        for section in parser.sections():
            section = section.strip("'")     # DVC writes ['remote "name"']
            if section.startswith('remote "') and section.endswith('"'):
                names.add(section[len('remote "'):-1])
        default = (parser.get("core", "remote", fallback=default) or "").strip("\"'") or None
    return names, default


def _data_url(root, name: str) -> str:
    """The URL of DVC remote `name` (read as plain INI, like `_dvc_remote_names`)."""
    import configparser

    url = ""
    for file in ("config", "config.local"):
        parser = configparser.ConfigParser(interpolation=None, strict=False)
        try:
            parser.read(Path(root) / ".dvc" / file)
        except configparser.Error:
            logger.debug(".dvc/%s is not plain INI: the URL of remote %s is unknown here", file, name, exc_info=True)
            return ""
        for section in (f'remote "{name}"', f"'remote \"{name}\"'"):
            url = parser.get(section, "url", fallback=url)
    return url


def _resolve_remote(root, remote: Optional[str]) -> tuple[str, bool]:
    """(remote name, whether DVC knows it)."""
    data, default = _dvc_remote_names(root)
    name = remote or default
    if not name:
        raise NotFound("no remote given and no default remote",
                       hint="add one with `nbversion remote add NAME URL`")
    if name not in data and name not in _git_sync.remotes(root):
        raise NotFound(f"unknown remote {name!r}", hint="see `nbversion remote list`")
    logger.debug("remote %s (%s): data remote %s", name, "given" if remote else "the default",
                 "known to DVC" if name in data else "absent, history only")
    return name, name in data


def _history_remote(root, name: str, explicit: bool) -> Optional[str]:
    """The git remote for history: the same name, else (no name given) the one a plain
    `git clone` made, `origin`, so a colleague's clone pushes and pulls history too."""
    remotes = _git_sync.remotes(root)
    if name in remotes:
        return name
    return "origin" if not explicit and "origin" in remotes else None


def version_objects(root, all_versions: bool, registered: bool, remote: str, fetch: bool) -> set:
    """Every object of the chosen versions. DVC's own `push -A` skips commits older than the
    remote's entry in .dvc/config, so the objects are listed here and transferred as a set."""
    from . import reachability

    anchors = reachability.tag_anchors(root)
    if registered:
        anchors = [a for a in anchors if not a.label.startswith("dataset ")]
    elif all_versions:
        anchors += reachability.commit_anchors(root)
    return set(reachability.objects_for(root, anchors, include_worktree=not registered, remote=remote, fetch=fetch))


def tagged_objects(root, remote: str, fetch: bool = False) -> set:
    """Objects of every tagged version (registered, staged, tagged datasets): a plain push sends
    their tags with the history, so a clone must find their data (gc keeps it: the tags pin it).
    `fetch`: listings this cache lacks are fetched from `remote` to be read."""
    from . import reachability

    return set(reachability.objects_for(root, reachability.tag_anchors(root), include_worktree=False,
                                        remote=remote, fetch=fetch))


def fetch_tagged(root, name: str, emit) -> int:
    """After a plain pull or clone: the tagged versions' objects this cache lacks (their tags came
    with the history; `verify` and `dataset diff v1 HEAD` need them). Nothing to do: no transfer."""
    return _fetch_listed(root, name, emit, lambda fetch: tagged_objects(root, name, fetch))


def _push_objects(root, name: str, wanted: set, emit) -> int:
    """Send the objects of `wanted` this cache has (folder remote directly, else through DVC)."""
    objects = fast_transfer.push(root, name, emit, wanted)
    if objects is None:
        present = {m for m in wanted if dvc_cache.object_path(root, m).exists()}
        logger.debug("%d object(s) in the chosen versions, %d of them in the local cache", len(wanted), len(present))
        with _dvc.transfer_progress(emit):
            objects = _dvc.push_objects(root, present, name) if present else 0
    return objects or 0


# --- push / pull ------------------------------------------------------------------------------

def push(ws: Workspace, remote: Optional[str] = None, all_versions: bool = False, registered: bool = False,
         on_event: Optional[EventCallback] = None) -> TransferResult:
    """Send data first, then the branch and tags, to a remote (`nbversion push`).

    Args:
        remote: the remote's name (default: the default remote).
        all_versions: send the data of every commit on all branches, not only the current one.
        registered: send only the data of registered versions and stages.
        on_event: called with progress `Event`s.

    Returns:
        TransferResult: the remote, the objects sent, what happened to history, and the time taken.

    Example:
        >>> ws = nbv.open(".")
        >>> ws.push("team", registered=True)
    """
    emit, started = emitter(on_event), time.monotonic()
    name, has_data = _resolve_remote(ws.root, remote)
    if has_data:
        require_for_url(_data_url(ws.root, name), "push")
    tag_collisions.check_push(ws.root, _history_remote(ws.root, name, remote is not None))   # before any transfer
    objects = 0
    if has_data:
        emit(Event("push", 0, 2, f"data to {name}"))
        wanted = version_objects(ws.root, all_versions, registered, name, fetch=False) \
            if all_versions or registered else None
        if wanted is not None:
            objects = _push_objects(ws.root, name, wanted, emit)
        elif (objects := fast_transfer.push(ws.root, name, emit)) is None:   # a folder remote: no DVC
            with _dvc.transfer_progress(emit):
                objects = _dvc.push(ws.root, name)
        if wanted is None:   # the tags go with the history: their versions' data goes too
            objects = (objects or 0) + _push_objects(ws.root, name, tagged_objects(ws.root, name), emit)
    history = "no git remote of this name"
    if git_remote := _history_remote(ws.root, name, remote is not None):
        emit(Event("push", 1, 2, f"history to {git_remote}"))
        history = _push_history(ws.root, git_remote, all_versions)
    logger.debug("pushed %d object(s) to %s; history: %s", objects or 0, name, history)
    emit(Event("push", 2, 2, "done"))
    return TransferResult("push", name, objects or 0, history, time.monotonic() - started)


def _push_history(root, name: str, all_versions: bool) -> str:
    branch = _git.current_branch(root)
    if all_versions:
        _git_sync.push_all(root, name)
    else:
        _git_sync.push_branch(root, name, branch)
    return ("all branches" if all_versions else f"branch {branch}" if branch else "detached HEAD: no branch") + " and tags"


def pull(ws: Workspace, remote: Optional[str] = None, all_versions: bool = False, registered: bool = False,
         abort: bool = False, on_event: Optional[EventCallback] = None) -> TransferResult:
    """Fetch history and tags, merge diverged work, then fetch the data of the checkout (`nbversion pull`).

    A branch that diverged from the remote's is merged: code by git, the audit log, `*.meta.json`
    and run records by rule (one `pull merge` audit entry), a dataset folder changed on both sides
    file by file. Changes on both sides that no rule merges (a label file both edited) stop the
    pull with their list (MergeConflict) and change nothing.

    Args:
        remote: the remote's name (default: the default remote).
        all_versions: also fetch the data of every commit on all branches.
        registered: also fetch the data of registered versions and stages.
        abort: undo a merge left unfinished (by `git merge` / `git pull`) instead of pulling.
        on_event: called with progress `Event`s.

    Returns:
        TransferResult: the remote, the objects fetched, what happened to history, and the time taken.

    Example:
        >>> ws = nbv.open(".")
        >>> ws.pull()
    """
    from ..backends.lock import workspace_lock

    emit, started = emitter(on_event), time.monotonic()
    if abort:
        from .integrate import abort as abort_merge

        with workspace_lock(ws.root, "pull --abort", float(ws.config["core"]["lock_timeout"])):
            return TransferResult("pull", remote or "", 0, abort_merge(ws.root), time.monotonic() - started)
    name, has_data = _resolve_remote(ws.root, remote)
    if has_data:
        require_for_url(_data_url(ws.root, name), "pull")
    history = "no git remote of this name"
    with ws.transaction("pull", role="viewer") as tx:
        if git_remote := _history_remote(ws.root, name, remote is not None):
            emit(Event("pull", 0, 3, f"history from {git_remote}"))
            # our unpushed tags the remote also has (on other content) get free names first:
            # fetching its tags would otherwise stop on them, and nothing pushed ever moves
            renamed = tag_collisions.renumber_local(ws, tx, git_remote)
            history = _pull_history(ws.root, git_remote, name if has_data else None)
            tx.kept = f"the history from {git_remote} is merged in; run pull again for its data"
            checkpoint("pull-history-merged")
            if renamed:
                history = "; ".join(f"{r['old']} re-numbered {r['new']}" for r in renamed) + "; " + history
        objects = 0
        if has_data:
            emit(Event("pull", 1, 3, f"data from {name}"))
            if all_versions or registered:
                objects += fetch_versions(ws.root, all_versions, registered, name, emit)
            emit(Event("pull", 2, 3, "data of the checkout"))
            if (fetched := fast_transfer.fetch(ws.root, name, emit)) is not None:   # a folder remote: no DVC
                if leftover := fresh_checkout.checkout(ws.root, emit):   # outputs already here: DVC's
                    _dvc.checkout_workspace(ws.root, targets=leftover)
                objects += fetched[0]
            else:
                with _dvc.transfer_progress(emit):
                    objects += _dvc.pull(ws.root, name)
            if not (all_versions or registered):
                objects += fetch_tagged(ws.root, name, emit)
    logger.debug("pulled %d object(s) from %s; history: %s", objects or 0, name, history)
    emit(Event("pull", 3, 3, "done"))
    return TransferResult("pull", name, objects or 0, history, time.monotonic() - started)


def fetch_versions(root, all_versions: bool, registered: bool, name: str, emit) -> int:
    """Fetch the objects of the chosen versions that are not here; returns how many came."""
    return _fetch_listed(root, name, emit,
                         lambda fetch: version_objects(root, all_versions, registered, name, fetch=fetch))


def _fetch_listed(root, name: str, emit, listed) -> int:
    """Fetch what `listed(fetch)` names and this cache lacks (`fetch=True`: listings this cache
    lacks are fetched to be read, for a remote DVC transfers); returns how many objects came."""
    wanted = listed(False)
    if all(dvc_cache.object_path(root, m).exists() for m in wanted):
        return 0
    if (fetched := fast_transfer.fetch(root, name, emit, wanted)) is not None:
        return fetched[0]
    wanted = listed(True)
    with _dvc.transfer_progress(emit):
        return _dvc.fetch_objects(root, [m for m in wanted if not dvc_cache.object_path(root, m).exists()], name)[0]


def _pull_history(root, name: str, data_remote: Optional[str]) -> str:
    _git_sync.fetch_tags(root, name)
    branch = _git.current_branch(root)
    if not branch or not _git_sync.remote_branch_exists(root, name, branch):
        return "tags fetched (no matching remote branch)"
    before, theirs = _git.head(root), f"{name}/{branch}"
    if before is None or _git.is_ancestor(root, before, theirs):
        _git_sync.merge(root, theirs, ff_only=True)
        return "up to date" if before == _git.head(root) else f"fast-forwarded {branch} to {_git.head(root)[:8]}"
    if _git.is_ancestor(root, theirs, before):
        return f"up to date ({branch} is ahead of {theirs}: push it)"
    from ..repo import identity
    from .integrate import merge_diverged

    return merge_diverged(root, theirs, identity.current_user(root), data_remote)
