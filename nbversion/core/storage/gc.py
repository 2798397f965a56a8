"""`gc [--keep-last N] [--older-than DAYS] [--dry-run] [--remote NAME]`: retention that keeps what matters.

A *version* of a data path is one DVC hash it had in some commit. A version is removed only
when it is outside the policy on both counts: older than the newest N versions of its path
(across all branches) AND first committed more than DAYS ago. Never removed, whatever the
policy: anything a registry version tag, a stage/champion tag or a tagged dataset version
points at, the dataset version a registered or staged model was trained on (its lineage), the
tip of every branch, and the working tree. Objects no commit refers to go too.
Defaults come from `[gc]` in `.nbversion/config.toml`.
"""
from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from typing import Optional

from ...errors import NbversionError, UsageError
from ..backends.faults import checkpoint
from ...events import Event, emitter
from ..result import Result
from ..backends import _dvc, dvc_cache, _git_history, pointers
from ..repo import leftovers
from .reachability import expand, merge_needed, protected_needed

from typing import TYPE_CHECKING

logger = logging.getLogger(__name__)

if TYPE_CHECKING:   # annotations only: core.workspace imports this module into Workspace
    from ...events import EventCallback
    from ..workspace import Workspace

UNREFERENCED = "(no commit)"


@dataclass
class GcResult(Result):
    removed: list = field(default_factory=list)   # [{"version", "objects", "bytes", "where"}]
    objects: int = 0
    bytes: int = 0
    kept_objects: int = 0
    dry_run: bool = False
    policy: dict = field(default_factory=dict)

    def table(self):
        return ["version", "objects", "bytes", "where"], [
            [r["version"], r["objects"], r["bytes"], r["where"]] for r in self.removed]

    def summary(self):
        verb = "would remove" if self.dry_run else "removed"
        return (f"{verb} {self.objects} object(s), {self.bytes} bytes; kept {self.kept_objects} "
                f"(policy: keep last {self.policy.get('keep_last')}, older than "
                f"{self.policy.get('older_than_days')} days; registered, staged and tagged versions always kept)")


def _versions(root) -> list[dict]:
    """Every (path, md5) a commit introduced, newest first: {"path", "md5", "sha", "time"}."""
    touched = [(sha, ts, path) for sha, ts, paths in _git_history.files_changed_by_commit(root, "*.dvc")
               for path in paths if path.endswith(".dvc")]
    blobs = _git_history.cat_files(root, [f"{sha}:{path}" for sha, _, path in touched])
    versions = []
    for sha, ts, dvc_file in touched:
        for pointer in pointers.parse(dvc_file, blobs.get(f"{sha}:{dvc_file}") or b""):
            if pointer.md5:
                versions.append({"path": pointer.path, "md5": pointer.md5, "sha": sha, "time": ts})
    return versions


def _kept_by_policy(versions: list, keep_last: int, older_than_days: float, now: float) -> dict:
    """md5 -> labels of versions inside the policy (newest N per path, or younger than DAYS)."""
    kept, seen = {}, {}
    cutoff = now - older_than_days * 86400
    for version in versions:   # newest first
        hashes = seen.setdefault(version["path"], [])
        if version["md5"] not in hashes:
            hashes.append(version["md5"])
        rank = hashes.index(version["md5"])
        if rank < keep_last or version["time"] >= cutoff:
            kept.setdefault(version["md5"], set()).add(f"{version['path']}@{version['sha'][:8]}")
    return kept


def keep_set(root, keep_last: int, older_than_days: float, now: Optional[float] = None) -> tuple[set, set, list]:
    """(md5s to keep incl. `.dir` contents, kept `.dir`s unreadable here, all versions)."""
    versions = _versions(root)
    needed = merge_needed(protected_needed(root),
                          _kept_by_policy(versions, keep_last, older_than_days, now or time.time()))
    everything, unreadable = expand(root, needed)
    logger.debug("gc keeps %d object(s) (%d version(s) protected or inside keep_last=%s / %s days; of %d committed); "
                 "%d kept listing(s) unreadable here", len(everything), len(needed), keep_last, older_than_days,
                 len(versions), len(unreadable))
    return set(everything), unreadable, versions


def _origin(versions: list) -> dict:
    """md5 -> "path@sha" of the newest commit that introduced it."""
    origin = {}
    for version in versions:
        origin.setdefault(version["md5"], f"{version['path']}@{version['sha'][:8]}")
    return origin


def _listing_md5s(root, md5_dir: str) -> list:
    """File hashes of a `.dir` listing in the local cache; [] when it is not readable here."""
    try:
        return [e["md5"] for e in json.loads(dvc_cache.object_path(root, md5_dir).read_text()) if isinstance(e.get("md5"), str)]
    except FileNotFoundError:   # not in the local cache
        return []
    except (OSError, ValueError, TypeError, AttributeError, KeyError):
        logger.debug("directory listing %s is not readable; its files are labelled %s", md5_dir, UNREFERENCED,
                     exc_info=True)
        return []


def _group(doomed: dict, versions: list, root, where: str) -> list:
    """Rows per version: a `.dir` listing carries its files with it."""
    origin, rows = _origin(versions), {}
    for md5 in [m for m in doomed if m.endswith(".dir") and m in origin]:
        for file_md5 in _listing_md5s(root, md5):   # the files of a folder version are that version's
            origin.setdefault(file_md5, origin[md5])
    for md5, size in doomed.items():
        label = origin.get(md5, UNREFERENCED)
        row = rows.setdefault(label, {"version": label, "objects": 0, "bytes": 0, "where": where})
        row["objects"] += 1
        row["bytes"] += size
    return sorted(rows.values(), key=lambda r: r["version"])


def gc(ws: Workspace, keep_last: Optional[int] = None, older_than: Optional[float] = None, dry_run: bool = False,
       remote: Optional[str] = None, on_event: Optional[EventCallback] = None) -> GcResult:
    """Remove data outside the retention policy; never registered, staged or tagged versions (`nbversion gc`).

    Args:
        keep_last: newest versions kept per path (default: config gc.keep_last, 5).
        older_than: days; younger versions are kept (default: config gc.older_than_days, 30).
        dry_run: only list what would go and how many bytes.
        remote: also remove from this remote (admins only).
        on_event: called with progress `Event`s.

    Returns:
        GcResult: what was (or would be) removed, the objects and bytes, and the policy used.

    Example:
        >>> ws = nbv.open(".")
        >>> ws.gc(keep_last=3, dry_run=True)
    """
    emit = emitter(on_event)
    policy = dict(ws.config.get("gc", {}))
    keep_last = int(policy.get("keep_last", 5) if keep_last is None else keep_last)
    older_than = float(policy.get("older_than_days", 30) if older_than is None else older_than)
    if keep_last < 1 or older_than < 0:
        raise UsageError("--keep-last must be at least 1 and --older-than at least 0",
                         hint="the newest version of every path is always kept")
    role = "admin" if remote and not dry_run else "contributor"   # a remote is the whole team's data
    with ws.transaction("gc", role=role) as tx:
        emit(Event("gc", message="finding what the policy keeps"))
        keep, unreadable, versions = keep_set(ws.root, keep_last, older_than)
        local = {m: s for m, s in dvc_cache.cached_objects(ws.root).items() if m not in keep}
        rows = _group(local, versions, ws.root, "cache")
        remote_doomed = _remote_doomed(ws.root, remote, keep, unreadable) if remote else {}
        rows += _group(remote_doomed, versions, ws.root, f"remote {remote}")
        rows += leftovers.gc_rows(ws.root, dry_run)   # temp folders of killed `dataset add`s
        orphans = _orphan_row(ws.root)
        rows += orphans
        logger.debug("gc %s: %d local object(s), %d bytes; %d remote object(s) on %s; %d orphan(s)",
                     "would remove" if dry_run else "removes", len(local), sum(local.values()),
                     len(remote_doomed), remote, sum(r["objects"] for r in orphans))
        if not dry_run:
            tx.kept = "the objects already removed were ones the policy does not keep; run gc again to finish"
            _remove_orphans(ws.root)
            _remove_local(ws.root, local, emit)
            if remote_doomed:
                _dvc.remote_remove(ws.root, remote_doomed, remote)
            if local or remote_doomed:
                tx.audit("gc", remote or "cache", {"objects": len(local) + len(remote_doomed),
                                                   "bytes": sum(local.values()), "keep_last": keep_last,
                                                   "older_than_days": older_than})
                tx.commit(f"nbversion: gc removed {len(local) + len(remote_doomed)} object(s)")
    return GcResult(rows, len(local) + len(remote_doomed) + sum(r["objects"] for r in orphans),
                    sum(local.values()) + sum(r["bytes"] for r in orphans), len(keep), dry_run,
                    {"keep_last": keep_last, "older_than_days": older_than})


def _remote_doomed(root, remote: str, keep: set, unreadable: set) -> dict:
    if unreadable:
        raise NbversionError(f"{len(unreadable)} kept directory listing(s) are not in the local cache, "
                             "so gc cannot tell which remote files they need",
                             hint="run `nbversion pull --all-versions` first, then gc the remote")
    return {m: 0 for m in _dvc.remote_objects(root, remote) if m not in keep}


def _remove_local(root, doomed: dict, emit) -> None:
    for number, md5 in enumerate(sorted(doomed), start=1):
        emit(Event("gc", number, len(doomed), md5[:12]))
        path = dvc_cache.object_path(root, md5)
        try:
            path.chmod(0o644)     # DVC makes cache files read-only
            path.unlink()
        except FileNotFoundError:
            pass
        checkpoint("gc-removed-one")   # the interrupt tests stop us here, part-way through


def _orphan_row(root) -> list:
    """Objects nothing reads (an old nbversion's `files/md5/files/md5/`, a killed add's temp files)."""
    from . import protection
    found = protection.orphans(root)
    if not found["objects"]:
        return []
    return [{"version": "(orphan objects)", "objects": found["objects"], "bytes": found["bytes"], "where": "cache"}]


def _remove_orphans(root) -> None:
    from . import protection
    protection.remove_orphans(root)
