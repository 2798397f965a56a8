"""`checkout REV [PATH...]`: code and data together, never losing uncommitted work.

Without paths it moves HEAD like `git checkout REV` (a branch, or a detached commit) and
makes the data match; with paths it restores just those paths as they were at REV, to be
committed as a new version (a rollback that keeps history).
"""
from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass, field

from ...errors import NotFound, UncommittedChanges
from ..backends.faults import checkpoint
from ...events import Event, emitter
from ..result import Result
from ..backends import _dvc, dvc_cache, _git, _git_history, pointers, uncommitted
from .status import dvc_changes, git_changes

logger = logging.getLogger(__name__)

from typing import TYPE_CHECKING

if TYPE_CHECKING:   # annotations only: core.workspace imports this module into Workspace
    import os
    from typing import Iterable, Optional
    from ...events import EventCallback
    from ..workspace import Workspace


@dataclass
class CheckoutResult(Result):
    rev: str
    commit: str
    branch: str | None
    paths: list = field(default_factory=list)
    data_paths: list = field(default_factory=list)
    differs: bool = True   # the restored paths differ from HEAD: there is something to commit

    def table(self):
        return ["restored", "tracked by"], ([[p, "dvc"] for p in self.data_paths]
                                            + [[p, "git"] for p in self.paths if p not in self.data_paths])

    def summary(self):
        where = f"branch {self.branch}" if self.branch else f"commit {self.commit[:8]} (detached)"
        if self.paths and not self.differs:
            return (f"restored {len(self.paths)} path(s) from {self.rev}; "
                    "they match the last commit: nothing to commit")
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


def checkout(ws: Workspace, rev: str, paths: Iterable[str | os.PathLike] = (), force: bool = False,
             on_event: Optional[EventCallback] = None) -> CheckoutResult:
    """Restore the code and data of a version, everything or only `paths` (`nbversion checkout`).

    Args:
        rev: a commit, branch, tag or HEAD~N.
        paths: restore only these paths (default: the whole workspace, switching branch/commit).
        force: discard uncommitted changes instead of refusing.
        on_event: called with progress `Event`s (data checkout).

    Returns:
        CheckoutResult: the revision, its commit, the branch, and the paths restored.

    Example:
        >>> ws = nbv.open(".")
        >>> ws.checkout("HEAD~1", ["datasets/traffic"])
    """
    emit = emitter(on_event)
    wanted = [ws.rel(p) for p in paths]
    commit = _git.rev_parse(ws.root, rev)
    with ws.transaction("checkout", role="viewer") as tx:
        target_outs = pointers.at_rev(ws.root, commit)
        blocking = _blocking_changes(ws, wanted)
        if wanted:
            blocking += [p for p in _untracked_overwritten(ws.root, commit, wanted, target_outs) if p not in blocking]
        if blocking and not force:
            shown = ", ".join(blocking[:5]) + (f" and {len(blocking) - 5} more" if len(blocking) > 5 else "")
            raise UncommittedChanges(f"checkout would lose uncommitted changes: {shown}",
                                     hint="commit them first (`nbversion commit -m MSG`), or use --force to discard them")
        old_outs = pointers.in_worktree(ws.root)
        needed = [o for o in target_outs.values()
                  if (not wanted or any(o.path == w or w.startswith(o.path + "/") or o.path.startswith(w + "/")
                                        for w in wanted)) and not _already_here(ws.root, o, old_outs)]
        require_data(ws.root, needed, rev, emit)   # before anything in the working tree changes
        if wanted:
            git_paths, data_targets = [], []
            for rel in wanted:
                owner = pointers.owner(target_outs, rel)
                inside = [o for o in target_outs.values() if o.path.startswith(rel.rstrip("/") + "/")]
                if owner is None and inside:   # a folder holding data outputs: its git files and the data
                    git_paths.append(rel)
                    git_paths += [o.dvc_file for o in inside]
                    data_targets += [o.path for o in inside]
                elif owner is not None:
                    git_paths.append(owner.dvc_file)
                    data_targets.append(owner.path)
                    meta = owner.path + ".meta.json"   # a dataset / model's metadata goes with it
                    if _git.show(ws.root, commit, meta) is not None:
                        git_paths.append(meta)
                else:
                    if not _git_history.tree_paths(ws.root, commit, [rel]):   # git's own "pathspec" error otherwise
                        raise NotFound(f"{rel} is not in {rev} ({commit[:8]}): nothing to restore",
                                       hint=f"it was removed or never added there; delete it yourself, or "
                                            f"`nbversion dataset remove NAME` for a dataset")
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
            # the retry needs --force: the half-restored data now differs from the pointers (it
            # was checked above that nothing uncommitted was there to lose)
            tx.kept = (f"the files in git are at {rev}, its data only partly; run the same checkout "
                       "again with --force to finish")
            emit(Event("checkout", 1, 2, f"restoring {len(data_targets)} data path(s)"))
            checkpoint("checkout-git-done")   # the interrupt tests stop us here: code moved, data not yet
            with _dvc.transfer_progress(emit):   # DVC's own per-file count, with its total
                _dvc.checkout(ws.root, data_targets)
            now = pointers.in_worktree(ws.root)
            uncommitted.mark_clean(ws.root, {o: now[o] for o in data_targets if o in now})
    emit(Event("checkout", 2, 2, "done"))
    # the data matches its restored pointers now, so comparing the files in git with HEAD says
    # whether anything changed; untracked files were there before and are not the checkout's
    differs = not wanted or any(e.code != "??" for e in _git.status(ws.root, git_paths))
    return CheckoutResult(rev, commit, _git.current_branch(ws.root), wanted, data_targets, differs)


def _untracked_overwritten(root, commit: str, wanted: list[str], target_outs: dict) -> list[str]:
    """Untracked files (`status` lists them as new) that restoring `wanted` from `commit` would
    replace: git does that silently for `checkout REV -- PATH`, so ask for --force like git does
    for a branch switch."""
    untracked = _git.listed_files(root, wanted, cached=False, untracked=True)
    if not untracked:
        return []
    at_rev = set(_git_history.tree_paths(root, commit, wanted))
    return [p for p in untracked if p in at_rev or pointers.owner(target_outs, p) is not None]


def _already_here(root, out, current: dict) -> bool:
    """The working tree already holds this exact version, known clean: DVC will not need the cache."""
    here = current.get(out.path)
    return here is not None and here.md5 == out.md5 and uncommitted.matches_pointer(root, here)


def require_data(root, outs: list, rev: str, emit=None) -> None:
    """Every cache object `outs` need is here, else fetched from the default remote, else an
    error: a checkout must fail before it touches the working tree, not halfway through."""
    missing = _missing_objects(root, outs)
    remote = _dvc.remote_list(root)[1] if missing else None
    if missing and remote:
        if emit:
            emit(Event("checkout", 0, 2, f"fetching {len(missing)} object(s) from the default remote"))
        try:
            _dvc.fetch_objects(root, missing)
            missing = _missing_objects(root, outs)   # the files of listings that just arrived
            if missing:
                _dvc.fetch_objects(root, missing)
        except Exception:   # unreachable remote: reported below as missing data
            logger.debug("fetching %d missing object(s) from %s failed", len(missing), remote, exc_info=True)
        missing = _missing_objects(root, outs)
    if missing:
        paths = sorted({o.path for o in outs if o.md5 in missing or _needs_any(root, o, missing)})
        where = f"the default remote {remote} lacks them too" if remote else "no default remote is set"
        raise NotFound(f"the data of {', '.join(paths[:5])} at {rev} is not available: {len(missing)} object(s) "
                       f"are missing from the cache and {where}; nothing was changed",
                       hint="`nbversion pull` from a remote that has them (see `nbversion verify`), "
                            "or check out a version whose data is here")


def _listing(root, md5: str):
    import json

    try:
        return json.loads(dvc_cache.object_path(root, md5).read_bytes())
    except (OSError, ValueError):   # not here, or damaged: its files count as missing
        logger.debug("directory listing %s is not readable", md5, exc_info=True)
        return None


def _missing_objects(root, outs: list) -> set:
    missing = set()
    for out in outs:
        if not out.md5:
            continue
        if not out.md5.endswith(".dir"):
            if not dvc_cache.object_path(root, out.md5).exists():
                missing.add(out.md5)
            continue
        entries = _listing(root, out.md5)
        if entries is None:
            missing.add(out.md5)
            continue
        missing |= {e["md5"] for e in entries if not dvc_cache.object_path(root, e["md5"]).exists()}
    return missing


def _needs_any(root, out, missing: set) -> bool:
    entries = _listing(root, out.md5) if out.md5.endswith(".dir") else None
    return any(e["md5"] in missing for e in entries or [])


def _is_branch(root, rev: str) -> bool:
    return _git.branch_exists(root, rev)


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
        for parent in target.parents:   # git removed the folder's own files: drop what is left empty
            if parent == root or not parent.is_dir() or any(parent.iterdir()):
                break
            parent.rmdir()
