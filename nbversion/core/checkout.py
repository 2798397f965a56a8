"""`checkout REV [PATH...]`: code and data together, never losing uncommitted work.

Without paths it moves HEAD like `git checkout REV` (a branch, or a detached commit) and
makes the data match; with paths it restores just those paths as they were at REV, to be
committed as a new version (a rollback that keeps history).
"""
from __future__ import annotations

import shutil
from dataclasses import dataclass, field

from ..errors import UncommittedChanges
from ..events import Event, emitter
from ..render import Result
from . import _dvc, _git, pointers, statcache
from .status import dvc_changes, git_changes


@dataclass
class CheckoutResult(Result):
    rev: str
    commit: str
    branch: str | None
    paths: list = field(default_factory=list)
    data_paths: list = field(default_factory=list)

    def table(self):
        return ["restored", "tracked by"], ([[p, "dvc"] for p in self.data_paths]
                                            + [[p, "git"] for p in self.paths if p not in self.data_paths])

    def summary(self):
        where = f"branch {self.branch}" if self.branch else f"commit {self.commit[:8]} (detached)"
        if self.paths:
            return (f"restored {len(self.paths)} path(s) from {self.rev}; "
                    "`nbversion commit -m MSG` records them as a new version")
        return f"now at {where}"


def _blocking_changes(ws, wanted: list[str]) -> list[str]:
    """Changes a checkout would overwrite. New git files outside data survive a checkout."""
    changes = [c for c in git_changes(ws) if not (c.state == "new" and c.tracked_by == "git")]
    changes += dvc_changes(ws)
    paths = [c.path for c in changes]
    if wanted:
        paths = [p for p in paths if any(p == w or p.startswith(w + "/") or w.startswith(p + "/")
                                         for w in wanted)]
    return paths


def checkout(ws, rev: str, paths=(), force: bool = False, on_event=None) -> CheckoutResult:
    emit = emitter(on_event)
    wanted = [ws.rel(p) for p in paths]
    commit = _git.rev_parse(ws.root, rev)
    with ws.transaction("checkout", role="viewer"):
        blocking = _blocking_changes(ws, wanted)
        if blocking and not force:
            shown = ", ".join(blocking[:5]) + (f" and {len(blocking) - 5} more" if len(blocking) > 5 else "")
            raise UncommittedChanges(f"checkout would lose uncommitted changes: {shown}",
                                     hint="commit them first (`nbversion commit -m MSG`), or use --force to discard them")
        old_outs = pointers.in_worktree(ws.root)
        if wanted:
            target_outs = pointers.at_rev(ws.root, commit)
            git_paths, data_targets = [], []
            for rel in wanted:
                owner = pointers.owner(target_outs, rel)
                if owner is not None:
                    git_paths.append(owner.dvc_file)
                    data_targets.append(owner.path)
                    meta = owner.path + ".meta.json"   # a dataset / model's metadata goes with it
                    if _git.show(ws.root, commit, meta) is not None:
                        git_paths.append(meta)
                else:
                    git_paths.append(rel)
            emit(Event("checkout", 0, 2, f"git checkout {rev} -- {' '.join(git_paths)}"))
            _git.checkout(ws.root, commit, git_paths, force=force)
        else:
            emit(Event("checkout", 0, 2, f"git checkout {rev}"))
            # a branch name (or HEAD) keeps you on the branch; anything else detaches, like git
            _git.checkout(ws.root, rev if rev == "HEAD" or _is_branch(ws.root, rev) else commit, force=force)
            data_targets = list(pointers.in_worktree(ws.root))
            _drop_outputs_gone(ws.root, old_outs, set(data_targets))
        if data_targets:
            emit(Event("checkout", 1, 2, f"restoring {len(data_targets)} data path(s)"))
            _dvc.checkout(ws.root, data_targets)
            now = pointers.in_worktree(ws.root)
            fresh = {o: statcache.fingerprint(ws.root, now[o]) for o in data_targets if o in now}
            statcache.mark_clean(ws.root, fresh, fresh)
    emit(Event("checkout", 2, 2, "done"))
    return CheckoutResult(rev, commit, _git.current_branch(ws.root), wanted, data_targets)


def _is_branch(root, rev: str) -> bool:
    try:
        _git.run(root, "show-ref", "--verify", "-q", f"refs/heads/{rev}")
        return True
    except Exception:
        return False


def _drop_outputs_gone(root, old_outs: dict, still_tracked: set) -> None:
    """Data tracked before but not at the new commit: safe in the cache, so remove the copy."""
    for out in old_outs:
        if out in still_tracked:
            continue
        target = root / out
        if target.is_dir():
            shutil.rmtree(target)
        elif target.exists():
            target.unlink()
