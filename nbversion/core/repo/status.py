"""`status`: new / modified / deleted paths, git and DVC alike, in one table."""
from __future__ import annotations

import logging
from dataclasses import dataclass, field

from ...events import Event, emitter
from ..result import Result
from ..backends import _git, pointers, statcache, uncommitted
from ..layout import TMP_DIR
from .routing import route_untracked

from typing import TYPE_CHECKING

logger = logging.getLogger(__name__)

if TYPE_CHECKING:   # annotations only: core.workspace imports this module into Workspace
    from typing import Optional
    from ...events import EventCallback
    from ..workspace import Workspace

GIT_STATES = {"?": "new", "A": "new", "M": "modified", "D": "deleted", "R": "renamed",
              "T": "modified", "U": "conflict"}


@dataclass
class Change:
    state: str        # new | modified | deleted | conflict
    path: str
    tracked_by: str   # git | dvc
    staged: bool = False


@dataclass
class StatusResult(Result):
    branch: str | None
    head: str | None
    changes: list = field(default_factory=list)
    live_runs: list = field(default_factory=list)   # runs/<id> still training: `commit` leaves them out

    @property
    def clean(self) -> bool:
        return not self.changes

    def table(self):
        return (["state", "path", "tracked by"],
                [[c.state, c.path, c.tracked_by] for c in self.changes])

    def summary(self):
        where = f"on {self.branch}" if self.branch else f"at {(self.head or '')[:8]} (detached)"
        if self.clean:
            return f"{where}: nothing changed since the last commit"
        text = f"{where}: {len(self.changes)} change(s); `nbversion commit -m MSG` records them"
        if self.live_runs:
            text += (f"\n{', '.join(self.live_runs)}: still training; `commit` leaves it out, "
                     "the run commits its own folder when it ends")
        return text


def _git_state(code: str) -> str:
    letter = code[1] if code[1] != " " else code[0]
    return GIT_STATES.get(letter, "modified")


def git_changes(ws) -> list[Change]:
    changes = []
    for entry in _git.status(ws.root):
        path = entry.path
        if path.startswith(TMP_DIR):
            continue
        if entry.code == "??":
            plan = route_untracked(ws.root, path, ws.config)
            for p in plan.dvc:
                changes.append(Change("new", p, "dvc"))
            for p in plan.git:
                changes.append(Change("new", p, "git"))
            continue
        staged = entry.code[0] not in " ?"
        if path.endswith(".dvc"):
            # a pointer changed but not committed: show the data path it points to
            changes.append(Change(_git_state(entry.code), path[:-4], "dvc", staged))
        else:
            changes.append(Change(_git_state(entry.code), path.rstrip("/"), "git", staged))
    return changes


def dvc_changes(ws, emit=None) -> list[Change]:
    """Changes inside DVC outputs; hashes only outputs whose stat fingerprint moved."""
    outs, walked = pointers.in_worktree(ws.root), {}
    stale, fresh = statcache.stale_outputs(ws.root, outs, walked)
    if not stale:
        logger.debug("the stat cache answered for all %d DVC output(s): DVC not asked", len(outs))
        return []
    progress = (lambda out, done, total: emit(Event("hash", done, total, out))) if emit else None
    report = uncommitted.changed_files(ws.root, {o: outs[o] for o in stale}, walked, progress)
    gone = [o for o in stale if not (ws.root / o).exists()]
    changes = [Change("deleted", o, "dvc") for o in gone]   # one row, not one per file
    for state in ("added", "modified", "deleted"):
        for path in report.get(state, []):
            if path.endswith("/") or any(path.startswith(o + "/") or path == o for o in gone):
                continue  # the folder itself (its files are listed one by one), or all of it gone
            changes.append(Change({"added": "new"}.get(state, state), path, "dvc"))
    dirty = {c.path for c in changes}
    clean = [o for o in stale if not any(p == o or p.startswith(o + "/") for p in dirty)]
    statcache.mark_clean(ws.root, clean, fresh)
    return changes


def status(ws: Workspace, on_event: Optional[EventCallback] = None) -> StatusResult:
    """New, modified and deleted paths since the last commit, git and DVC alike (`nbversion status`).

    Args:
        on_event: called with progress `Event`s ("hash": files of a tracked folder read because
            their fingerprint moved; a first look after a clone reads them all).

    Returns:
        StatusResult: the branch, HEAD, the changed paths, and live training runs among them.

    Example:
        >>> ws = nbv.open(".")
        >>> ws.status().changes
    """
    changes = git_changes(ws) + dvc_changes(ws, emitter(on_event))
    changes.sort(key=lambda c: c.path)
    from ...training.runs import live_run_folders

    live = [run for run in live_run_folders(ws.root)   # said once, next to the files it explains
            if any(c.path == run or c.path.startswith(run + "/") or run.startswith(c.path + "/") for c in changes)]
    return StatusResult(_git.current_branch(ws.root), _git.head(ws.root), changes, live)
