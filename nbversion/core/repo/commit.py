"""`commit -m MSG [PATH...]`: data to DVC, the rest to git, one git commit."""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

from ...errors import NothingToCommit
from ...events import Event, emitter
from ..result import Result
from ..backends import _dvc, _git, pointers, statcache, uncommitted
from ..backends.faults import checkpoint
from ..artifacts import dataset_refresh
from . import policy_check
from ..layout import TMP_DIR
from .routing import Plan, dedupe, route_untracked

from typing import TYPE_CHECKING

logger = logging.getLogger(__name__)

# Linux takes one command-line argument of at most 128 KiB, and git gets the message as one
MAX_MESSAGE_BYTES = 64 * 1024

if TYPE_CHECKING:   # annotations only: core.workspace imports this module into Workspace
    from typing import Iterable, Optional
    from ...events import EventCallback
    from ..workspace import Workspace


@dataclass
class CommitResult(Result):
    commit: str
    message: str
    git_paths: list = field(default_factory=list)
    dvc_paths: list = field(default_factory=list)
    live_runs: list = field(default_factory=list)   # runs/<id> still training: left out, they commit themselves
    # data paths whose pointer (in git) now names a version DVC already stores, an older one checked
    # out: a data change although nothing new went to DVC
    stored_paths: list = field(default_factory=list)

    def table(self):
        rows = [["dvc", p] for p in self.dvc_paths] + [["git", p] for p in self.git_paths]
        return ["tracked by", "path"], rows

    def summary(self):
        if self.stored_paths:
            data = (f"{len(self.dvc_paths) + len(self.stored_paths)} data path(s) changed "
                    f"({len(self.stored_paths)} to a version DVC already stores)")
        else:
            data = f"{len(self.dvc_paths)} data path(s) in DVC"
        text = f"[{self.commit[:8]}] {self.message.splitlines()[0]} — {data}, {len(self.git_paths)} in git"
        if self.live_runs:
            text += f"\n{_left_out_note(self.live_runs)}"
        return text


def _left_out_note(live: list) -> str:
    return (f"left out {len(live)} run(s) still training: {', '.join(live)} "
            "(each commits its own folder when it ends)")


def _matches(path: str, wanted: list[str]) -> bool:
    if not wanted or "." in wanted:
        return True
    path = path.rstrip("/")
    return any(path == w or path.startswith(w + "/") or w.startswith(path + "/") for w in wanted)


def plan_commit(ws, wanted: list[str], walked: dict | None = None) -> tuple[Plan, list, list]:
    """What a commit of `wanted` (all when empty) would do: (plan, dvc outputs to re-add, to drop);
    `walked` gets the per-file stats of the tracked folders looked at."""
    root, config = ws.root, ws.config
    plan = Plan()
    outs = pointers.in_worktree(root)
    for entry in _git.status(root, wanted if wanted and "." not in wanted else ()):
        if entry.path.startswith(TMP_DIR):
            continue
        if entry.code == "??":
            plan.extend(route_untracked(root, entry.path, config))
        else:
            plan.git.append(entry.path.rstrip("/"))
    changed, removed = [], []
    stale, _fresh = statcache.stale_outputs(root, outs, walked)
    for out in stale:
        if not _matches(out, wanted):
            continue
        pointer = outs[out]
        (changed if (root / out).exists() else removed).append(pointer)
    return plan, changed, removed


def _inside(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder + "/")


def _route_around(ws, rel: str, live: list) -> Plan:
    """An untracked folder holding a live run (`runs/` before the first commit): route its
    other children one by one, the way git would have listed them."""
    plan = Plan()
    for child in sorted(os.listdir(ws.root / rel)):
        child_rel = f"{rel}/{child}"
        if any(_inside(child_rel, run) for run in live):
            continue
        if any(run.startswith(child_rel + "/") for run in live):
            plan.extend(_route_around(ws, child_rel, live))
        elif (ws.root / child_rel).is_dir():
            plan.extend(route_untracked(ws.root, child_rel + "/", ws.config))
        else:
            plan.extend(route_untracked(ws.root, child_rel, ws.config))
    return plan


def leave_out_live_runs(ws, plan: Plan, changed: list, removed: list) -> tuple[Plan, list, list, list]:
    """Drop what lies in (or holds) a run that is still training: its files are half-written."""
    from ...training.runs import live_run_folders

    live = live_run_folders(ws.root)
    if not live:
        return plan, changed, removed, []
    kept, touched = Plan(), set()
    for kind in ("git", "dvc"):
        for path in getattr(plan, kind):
            holders = [run for run in live if run.startswith(path + "/")]
            inside = [run for run in live if _inside(path, run)]
            touched.update(holders + inside)
            if holders and (ws.root / path).is_dir():
                kept.extend(_route_around(ws, path, live))
            elif not inside and not holders:
                getattr(kept, kind).append(path)
    keep = lambda pointer: not any(_inside(pointer.path, run) for run in live)
    touched.update(run for p in changed + removed if not keep(p) for run in live if _inside(p.path, run))
    return kept, [p for p in changed if keep(p)], [p for p in removed if keep(p)], sorted(touched)


def commit(ws: Workspace, message: str, paths: Iterable[str | os.PathLike] = (),
           on_event: Optional[EventCallback] = None) -> CommitResult:
    """Record changes as one commit: large data to DVC, the rest to git (`nbversion commit`).

    Args:
        message: what changed, for the history; must not be empty.
        paths: only these workspace paths (default: every change).
        on_event: called with progress `Event`s (hashing, staging).

    Returns:
        CommitResult: the commit sha and message, and the paths sent to git and to DVC.

    Example:
        >>> ws = nbv.open(".")
        >>> ws.commit("relabel night images", ["datasets/traffic"])
    """
    emit = emitter(on_event)
    if not message or not message.strip():
        from ...errors import UsageError
        raise UsageError("a commit needs a message", hint='nbversion commit -m "what changed"')
    if "\x00" in message:   # git would refuse it only after the data is added
        from ...errors import UsageError
        raise UsageError("a commit message cannot contain a NUL character", hint="remove it from the message")
    size = len(message.encode("utf-8", "replace"))
    if size > MAX_MESSAGE_BYTES:   # git gets it as one argument
        from ...errors import UsageError
        raise UsageError(f"the commit message is {size:,} bytes; "
                         f"at most {MAX_MESSAGE_BYTES:,} are allowed",
                         hint="shorten the message; long notes belong in a file you commit")
    wanted = [ws.rel(p) for p in paths]
    for rel in wanted:
        if rel != "." and not (ws.root / rel).exists() and not _git.status(ws.root, [rel]) \
                and pointers.owner(pointers.in_worktree(ws.root), rel) is None:
            raise NothingToCommit(f"{rel}: no such file or folder in the workspace",
                                  hint="check the path (`nbversion status` lists what changed)")
    with ws.transaction("commit") as tx:
        _dvc.sync_cache_type(ws.root)   # a changed core.link reaches .dvc/config with this commit
        emit(Event("scan", 0, 1, "looking for changes"))
        walked = {}
        plan, changed, removed, live = leave_out_live_runs(ws, *plan_commit(ws, wanted, walked))
        # folders whose stat moved, looked at file by file: those whose content did not change
        # (touched, or written just before the last commit) are not committed again
        looked = _look_at_changed_folders(ws.root, changed, walked, emit)
        same = {path: entry for path, entry in looked.items() if entry[2].md5s == entry[1]}
        uncommitted.mark_clean(ws.root, {path: e[0] for path, e in same.items()}, {path: e[2] for path, e in same.items()})
        changed = [p for p in changed if p.path not in same]
        dvc_targets = dedupe(plan.dvc + [p.path for p in changed])
        logger.debug("commit plan: to DVC %s; to git %s; DVC outputs removed %s; live runs left out %s",
                     dvc_targets, plan.git, [p.path for p in removed], live)
        # checked before anything is written: policy files, and datasets whose metadata must follow
        policy_check.check(ws.root, plan.git)
        datasets = dataset_refresh.check(ws.root, dvc_targets + plan.git, walked)
        if dvc_targets:
            emit(Event("dvc add", 0, len(dvc_targets), ", ".join(dvc_targets[:3])))
            stored = lambda done, total: emit(Event("store", done, total, "files into the DVC cache"))
            done = _commit_changed_folders(ws.root, [looked[t] for t in dvc_targets if t in looked], stored)
            rest = [t for t in dvc_targets if t not in done]
            if rest:
                _dvc.add(ws.root, rest, on_progress=stored)
            _remember_clean(ws.root, dvc_targets, done)
            checkpoint("after-dvc-add")
        if removed:
            _dvc.remove(ws.root, [p.dvc_file for p in removed])
        plan.git.extend(dataset_refresh.write(ws.root, datasets, tx.user))
        staged = dedupe(plan.git + [_pointer_file(t) for t in dvc_targets]
                        + [_gitignore_of(t) for t in dvc_targets + [p.path for p in removed]]
                        + [p.dvc_file for p in removed])
        staged = [p for p in staged if (ws.root / p).exists() or _git.status(ws.root, [p])]
        _git.add(ws.root, staged)
        checkpoint("after-git-add")
        if not _git.status_staged(ws.root, staged):
            if live:
                raise NothingToCommit(f"nothing to commit: {_left_out_note(live)}",
                                      hint="wait for the run to end, or stop it with `nbversion runs stop RUN`")
            raise NothingToCommit("nothing to commit: the workspace matches the last commit",
                                  hint="change or add files first; `nbversion status` shows changes")
        data_paths = sorted(set(dvc_targets) | {p.path for p in removed})
        git_paths = sorted(set(plan.git) - set(data_paths))
        tx.audit("commit", message.splitlines()[0], {"dvc": data_paths, "git": git_paths})
        checkpoint("after-audit")
        emit(Event("git commit", 0, 1, message))
        sha = tx.commit(message, staged)
        logger.debug("committed %s: %d data path(s) in DVC, %d path(s) staged in git", sha, len(data_paths), len(staged))
        checkpoint("after-commit")
    emit(Event("git commit", 1, 1, sha))
    stored = sorted(p[:-len(".dvc")] for p in git_paths if p.endswith(".dvc") and p[:-len(".dvc")] not in data_paths)
    return CommitResult(sha, message, git_paths, data_paths, live, stored)


def _look_at_changed_folders(root: Path, changed: list, walked: dict, emit) -> dict:
    """{path: (pointer, committed listing, state now)} of the changed folders `folder_commit` can
    commit: each file's md5 from its fingerprint, hashing only those whose stat moved."""
    from ..storage import folder_commit

    looked = {}
    for pointer in changed:
        listing = folder_commit.committed_listing_if_plain(root, pointer)
        if listing is None:
            continue

        def progress(hashed: int, total: int, out=pointer.path):
            emit(Event("hash", hashed, total, out))

        looked[pointer.path] = (pointer, listing, uncommitted.folder_state(root, pointer, walked.get(pointer.path),
                                                                             on_progress=progress))
    return looked


def _commit_changed_folders(root: Path, looked: list, on_progress=None) -> dict:
    """Commit folders already tracked from their per-file fingerprints (`folder_commit`), without
    DVC: {path: their state}. The others go through `dvc add`."""
    from ..storage import folder_commit, linking

    done, mode = {}, linking.workspace_mode(root) if looked else None
    for pointer, _listing, state in looked:
        folder_commit.commit_folder(root, pointer, state, mode, on_progress)
        done[pointer.path] = state
    return done


def _pointer_file(out: str) -> str:
    return out + ".dvc"


def _gitignore_of(out: str) -> str:
    parent = str(Path(out).parent)
    return ".gitignore" if parent in ("", ".") else f"{parent}/.gitignore"


def _remember_clean(root: Path, outs: list[str], known: dict) -> None:
    """Just added to DVC, so they match their pointers: later `status` can skip hashing them.
    `known`: out -> the folder state just committed (its walk and md5s), not walked again."""
    current = pointers.in_worktree(root)
    uncommitted.mark_clean(root, {o: current[o] for o in outs if o in current}, known)
