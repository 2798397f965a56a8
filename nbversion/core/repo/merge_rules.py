"""Conflict resolution by rule for `exp merge` and `pull`: `.meta.json` files, the audit log and
the file listings of a dataset folder changed on both sides.

Metadata is merged key by key against the common ancestor: a key changed on one side takes
that side's value; changed on both, dicts merge recursively, lists are unioned (ours first),
and a scalar takes the experiment's value (the branch being merged in is the newer work).
When the sides hold different data (`md5`), the description (metrics, params, lineage) comes
whole from the side whose data is kept: metrics measured on one weights file never end up
attached to another.
Audit logs are merged as git's `merge=union` does, never rewritten: the log is a hash DAG
(`audit/chain.py`), so both sides' new entries keep their parents and hashes, and the next
entry names both heads.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Optional

from ..audit import chain as audit
from ..backends import _git, _git_history, atomic


logger = logging.getLogger(__name__)

_MISSING = object()


def merge_value(base, ours, theirs):
    if ours == theirs:
        return ours
    if base == ours:
        return theirs
    if base == theirs:
        return ours
    if isinstance(ours, dict) and isinstance(theirs, dict):
        return merge_dicts(base if isinstance(base, dict) else {}, ours, theirs)
    if isinstance(ours, list) and isinstance(theirs, list):
        return ours + [item for item in theirs if item not in ours]
    return theirs


def merge_dicts(base: dict, ours: dict, theirs: dict) -> dict:
    merged = {}
    for key in list(ours) + [k for k in theirs if k not in ours]:
        value = merge_value(base.get(key, _MISSING), ours.get(key, _MISSING), theirs.get(key, _MISSING))
        if value is not _MISSING:
            merged[key] = value
    return merged


def merge_meta(base: Optional[bytes], ours: Optional[bytes], theirs: Optional[bytes]) -> bytes:
    """Three versions of a `.meta.json` -> the merged file, formatted as nbversion writes it."""
    load = lambda raw: json.loads(raw) if raw else {}
    ours_meta, theirs_meta = load(ours), load(theirs)
    merged = merge_dicts(load(base), ours_meta, theirs_meta)
    merged = _with_its_own_description(merged, ours_meta, theirs_meta)
    return (json.dumps(merged, indent=2, sort_keys=True, default=str) + "\n").encode()


def _with_its_own_description(merged: dict, ours: dict, theirs: dict) -> dict:
    """Metrics, params and lineage describe one file: never pair one side's weights with the other's.

    When the two sides hold different data (`md5`, a dataset's `content_hash`), the side whose
    data the merge keeps supplies the whole description; a change the other side made described
    data that is no longer there.
    """
    key = next((k for k in ("md5", "content_hash") if k in merged), None)   # models, datasets
    if key is None or ours.get(key) == theirs.get(key):
        return merged
    for side in (ours, theirs):
        if side.get(key) == merged[key]:
            return side
    return merged


def merge_listings(base: dict, ours: dict, theirs: dict) -> tuple[dict, list]:
    """Three listings of a dataset folder (relpath -> md5) -> (merged listing, conflicting relpaths).

    Per file: the same on both sides is kept; changed, added or removed on one side only takes
    that side; changed on both sides differently (added on both with different content, or
    changed on one side and removed on the other) is a conflict, left out of the merged listing."""
    merged, conflicts = {}, []
    for path in sorted(set(base) | set(ours) | set(theirs)):
        was, mine, other = base.get(path, _MISSING), ours.get(path, _MISSING), theirs.get(path, _MISSING)
        if mine == other:
            kept = mine
        elif was == mine:
            kept = other
        elif was == other:
            kept = mine
        else:
            conflicts.append(path)
            continue
        if kept is not _MISSING:
            merged[path] = kept
    return merged, conflicts


def _entries(raw: Optional[bytes]) -> list:
    """Parsed lines; a torn last line (a write cut off) is dropped."""
    entries = []
    for line in (raw or b"").splitlines():
        try:
            entries.append(json.loads(line))
        except ValueError:
            logger.debug("dropping an audit line that is not JSON (a torn write): %r", line[:80], exc_info=True)
            continue
    return entries


def merge_audit(base: Optional[bytes], ours: Optional[bytes], theirs: Optional[bytes]) -> bytes:
    """Both sides' lines, never rewritten: the common ones, then ours, then theirs (what git's
    `merge=union` does). The log is a DAG, so the two sides' new lines keep their own parents
    and hashes; the next entry nbversion appends names both heads."""
    merged, seen = [], set()
    for side in (_entries(base), _entries(ours), _entries(theirs)):
        for entry in side:
            if entry.get("hash") not in seen:
                seen.add(entry.get("hash"))
                merged.append(entry)
    lines = [json.dumps(e, sort_keys=True, separators=(",", ":"), ensure_ascii=False) for e in merged]
    return ("\n".join(lines) + "\n").encode() if lines else b""


def union_lines(ours: Optional[bytes], theirs: Optional[bytes]) -> bytes:
    """Our lines, then theirs that we lack (what git's `merge=union` keeps, without duplicates)."""
    kept = (ours or b"").splitlines()
    have = set(kept)
    kept += [line for line in (theirs or b"").splitlines() if line not in have]
    return b"".join(line + b"\n" for line in kept)


def changed_paths(root, base: str, rev: str) -> set:
    """Paths that differ between commits `base` and `rev`."""
    return {p for _, p in _git.diff_name_status(root, base, rev)}


def resolve_by_rule(root, path: str, base: str, theirs: str, pointers: Optional[str] = None) -> bool:
    """Resolve one path both sides changed, in an unfinished merge of `theirs` into HEAD, and
    stage it. The audit log, `*.meta.json` and `.gitignore` merge by rule; a `*.dvc` pointer takes `theirs`
    when `pointers == "theirs"` (an experiment's data wins), else it is a conflict. False when
    no rule applies: a real conflict for the caller to report."""
    if path == str(audit.AUDIT_FILE) or path.endswith(".meta.json"):
        blobs = _git_history.cat_files(root, [f"{base}:{path}", f"HEAD:{path}", f"{theirs}:{path}"])
        rule = merge_audit if path == str(audit.AUDIT_FILE) else merge_meta
        atomic.write_bytes(Path(root) / path, rule(blobs[f"{base}:{path}"], blobs[f"HEAD:{path}"], blobs[f"{theirs}:{path}"]))
    elif Path(path).name == ".gitignore":   # DVC lists each tracked output there: keep both sides' lines
        blobs = _git_history.cat_files(root, [f"HEAD:{path}", f"{theirs}:{path}"])
        atomic.write_bytes(Path(root) / path, union_lines(blobs[f"HEAD:{path}"], blobs[f"{theirs}:{path}"]))
    elif path.endswith(".dvc") and pointers == "theirs":
        _git.checkout(root, theirs, [path])
    else:
        return False
    _git.add(root, [path])
    return True
