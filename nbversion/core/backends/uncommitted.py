"""What changed inside DVC outputs since their pointers, told by per-file fingerprints
(`file_prints`) against the committed `.dir` listing: only the files whose stat moved are read.

The answer has the shape of DVC's granular `data status` ("added" / "modified" / "deleted"
paths, workspace-relative), so a caller can fall back to DVC for what it cannot tell here: a
folder whose listing is not in the local cache, or a `.dvcignore` with rules beyond bare names.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Callable, Optional

from ...errors import NbversionError
from . import dvc_cache, file_prints, statcache
from .hashing import file_md5
from .pointers import Pointer

logger = logging.getLogger(__name__)

STATES = ("added", "modified", "deleted")


def committed_listing(root: Path, pointer: Pointer) -> Optional[dict]:
    """relpath -> md5 of the folder as its pointer records it; None when the listing is not cached."""
    try:
        return {e["relpath"]: e["md5"] for e in dvc_cache.read_dir_manifest(root, pointer.md5)}
    except NbversionError:
        return None


def folder_state(root: Path, pointer: Pointer, stats: Optional[dict] = None,
                 on_progress: Optional[Callable] = None) -> file_prints.FolderState:
    """Every file's md5 in the tracked folder now, hashing only those whose fingerprint moved."""
    if stats is None:
        stats = statcache.walk(Path(root) / pointer.path, statcache.ignored_names(root))
    return file_prints.current(root, pointer.path, stats, on_progress)


def compare(listing: dict, md5s: dict) -> dict:
    """{"added", "modified", "deleted": [relpath...]} of `md5s` against a committed `listing`."""
    found = {state: [] for state in STATES}
    for rel, md5 in md5s.items():
        before = listing.get(rel)
        if before is None:
            found["added"].append(rel)
        elif before != md5:
            found["modified"].append(rel)
    found["deleted"] = [rel for rel in listing if rel not in md5s]
    return found


def uncommitted(root: Path, outs: dict, walked: dict, on_progress: Optional[Callable] = None) -> tuple[dict, list]:
    """(changes in DVC's shape, outputs this could not answer). `walked`: out -> relpath -> stat
    of the folders just walked (`statcache.stale_outputs`); outputs that are gone are skipped."""
    report, unanswered = {state: [] for state in STATES}, []
    exact = statcache.exact_ignores(root)
    for out, pointer in outs.items():
        target = Path(root) / out
        if not target.exists():
            continue
        if not pointer.is_dir:
            if target.is_file() and file_md5(target) != pointer.md5:
                report["modified"].append(out)
            continue
        listing = committed_listing(root, pointer) if exact and target.is_dir() else None
        if listing is None:
            unanswered.append(out)
            continue
        state = folder_state(root, pointer, walked.get(out),
                             (lambda done, total, out=out: on_progress(out, done, total)) if on_progress else None)
        for kind, rels in compare(listing, state.md5s).items():
            report[kind] += [f"{out}/{rel}" for rel in sorted(rels)]
        logger.debug("%s: %d file(s), %d hashed; %s", out, len(state.md5s), len(state.hashed),
                     {k: len(v) for k, v in report.items()})
    return report, unanswered


def changed_files(root, outs: dict, walked: dict, on_progress: Optional[Callable] = None) -> dict:
    """DVC-shaped {"added", "modified", "deleted": [path...]} inside `outs`: from per-file
    fingerprints (only files whose stat moved are read); DVC is asked only about the outputs
    those cannot answer (a listing not in the cache, `.dvcignore` rules beyond bare names)."""
    report, unanswered = uncommitted(root, outs, walked, on_progress)
    if unanswered:
        logger.debug("asking DVC about %d output(s) the fingerprints cannot answer: %s", len(unanswered),
                     ", ".join(unanswered[:5]))
        from . import _dvc   # DVC is imported only here
        asked = _dvc.data_status(root).get("uncommitted", {})
        for state in STATES:
            report[state] += [p for p in asked.get(state, []) if any(p == o or p.startswith(o + "/") for o in unanswered)]
    return report


def matches_pointer(root: Path, pointer: Pointer) -> bool:
    """Whether the output holds exactly what its pointer records: its stat fingerprint when that
    is on record, else a file-by-file look (fingerprints, a hash of what moved; DVC where those
    cannot tell), remembered when it is clean. A missing output does not match."""
    if not (Path(root) / pointer.path).exists():
        return False
    walked = {}
    stale, fresh = statcache.stale_outputs(root, {pointer.path: pointer}, walked)
    if not stale:
        return True
    report = changed_files(root, {pointer.path: pointer}, walked)
    if any(report.values()):
        return False
    statcache.mark_clean(root, [pointer.path], fresh)
    return True


def mark_clean(root: Path, pointers: dict, known: Optional[dict] = None) -> None:
    """Outputs that match their pointer right now (just committed, imported or checked out): their
    stat fingerprint, and each folder's per-file fingerprints taken from the committed listing (no
    file is read; one walk). Files written in the last moments stay racy (`file_prints.RACY_NS`)
    and are hashed next time."""
    known = known or {}
    walked = {out: state.stats for out, state in known.items()}
    ignored = statcache.ignored_names(root)
    fresh = {out: statcache.fingerprint(root, p, ignored, walked) if out not in walked
             else statcache.fingerprint_of(p, walked[out]) for out, p in pointers.items()}
    statcache.mark_clean(root, fresh, fresh)
    for out, state in known.items():   # md5s just computed: recorded as they are, unless only
        # a few files were hashed and prints are on record (as `file_prints.current` decides)
        if len(state.hashed) > file_prints.RESAVE_AFTER or not file_prints.on_record(root, out):
            file_prints.record(root, out, state.stats, state.md5s)
    if not statcache.exact_ignores(root):
        return
    for out, stats in walked.items():
        if out in known:
            continue
        listing = committed_listing(root, pointers[out])
        if listing is not None:
            file_prints.record(root, out, stats, {rel: md5 for rel, md5 in listing.items() if rel in stats})
