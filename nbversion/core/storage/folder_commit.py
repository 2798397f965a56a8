"""Commit a tracked folder that changed, at the cost of its changes: the new `.dir` listing is
the per-file fingerprints' md5s (only changed files were hashed), only objects the cache lacks
are stored, and the pointer is rewritten in DVC's own format. DVC's `add` would walk, look up
and re-list every file; here nothing imports DVC.

Only plain pointers take this path (one output with DVC's standard keys, `.dvcignore` rules
that name bare files or folders, the old listing in the local cache); anything else goes
through `dvc add` as before.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import re
from pathlib import Path

from ..backends import atomic, dvc_cache, file_prints, pointers, statcache, uncommitted
from ..backends.pointers import Pointer
from . import linking

logger = logging.getLogger(__name__)

STANDARD_KEYS = ("md5", "size", "nfiles", "hash", "path")   # in the order DVC writes them
SAFE_PATH = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")         # a name YAML writes unquoted


def _pointer_data(root: Path, pointer: Pointer):
    import yaml

    try:
        data = pointers.load_yaml((Path(root) / pointer.dvc_file).read_text()) or {}
    except (OSError, yaml.YAMLError):
        return None
    outs = data.get("outs") if isinstance(data, dict) else None
    if set(data) != {"outs"} or not isinstance(outs, list) or len(outs) != 1 or not isinstance(outs[0], dict):
        return None
    out = outs[0]
    plain = set(out) <= set(STANDARD_KEYS) and out.get("hash", "md5") == "md5" \
        and isinstance(out.get("path"), str) and SAFE_PATH.fullmatch(out["path"])
    return data if plain else None   # anything else is written by DVC, which knows its YAML


def committed_listing_if_plain(root: Path, pointer: Pointer):
    """The committed listing (relpath -> md5) of a folder this module can commit; None when `dvc
    add` must do it."""
    if (pointer.is_dir and (Path(root) / pointer.path).is_dir() and statcache.exact_ignores(root)
            and _pointer_data(root, pointer) is not None):
        return uncommitted.committed_listing(root, pointer)
    return None


def listing_bytes(md5s: dict) -> bytes:
    """A `.dir` object as DVC writes it: entries sorted by relpath string, JSON with sorted keys."""
    entries = [{"md5": md5s[rel], "relpath": rel} for rel in sorted(md5s)]
    return json.dumps(entries, sort_keys=True).encode("utf-8")


def _store_object(cache: Path, md5: str, data: bytes) -> None:
    obj = linking.object_in(cache, md5)
    if obj.exists():
        return
    obj.parent.mkdir(parents=True, exist_ok=True)
    scratch = obj.with_name(f".{obj.name}.{os.getpid()}.tmp")
    try:
        with open(os.open(scratch, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, linking.CACHE_MODE), "wb") as fh:
            fh.write(data)
        os.replace(scratch, obj)
    except BaseException:   # Ctrl-C or a full disk: no scratch left among the objects
        scratch.unlink(missing_ok=True)
        raise


def commit_folder(root: Path, pointer: Pointer, state: file_prints.FolderState, mode: str,
                  on_progress=None) -> Pointer:
    """Store what the cache lacks, write the new listing and the pointer; returns the new pointer.
    `on_progress(done, total)`: files stored so far."""
    return _write(Path(root), pointer.path, pointer.dvc_file, state, mode, _pointer_data(root, pointer),
                  on_progress=on_progress)


def can_track(root: Path, out: str) -> bool:
    """Whether a folder about to be tracked (or tracked plainly) can be written here."""
    pointer_file = Path(root) / f"{out}.dvc"
    name = Path(out).name
    if not (SAFE_PATH.fullmatch(name) and (Path(root) / out).is_dir() and statcache.exact_ignores(root)):
        return False
    if not pointer_file.exists():
        return True
    found = pointers.in_worktree(root).get(out)
    return found is not None and _pointer_data(root, found) is not None


def track_folder(root: Path, out: str, md5s: dict, mode: str, prepared=None,
                 on_progress=None) -> tuple[Pointer, file_prints.FolderState]:
    """Track the folder `out` from md5s already known for its files (an import hashed them while
    validating): files missing from `md5s` are hashed, objects the cache lacks are stored (moved
    in from `prepared`, a `linking.PreparedObjects` the import wrote while validating, else copied), and the
    listing, the pointer and the `.gitignore` entry are written as `dvc add` writes them.
    Returns the pointer and the folder's state (every file counts as read: the import read it)."""
    root = Path(root)
    stats = statcache.walk(root / out, statcache.ignored_names(root))
    unknown = [rel for rel in stats if not md5s.get(rel)]
    known = {rel: md5s[rel] for rel in stats if md5s.get(rel)}
    known.update(file_prints.hash_files(root / out, unknown))
    state = file_prints.FolderState(known, stats, list(stats))
    existing = root / f"{out}.dvc"
    data = _pointer_data(root, Pointer(f"{out}.dvc", out, "", 0, None)) if existing.exists() else None
    pointer = _write(root, out, f"{out}.dvc", state, mode, data or {"outs": [{"path": Path(out).name}]},
                     prepared, on_progress)
    _ignore_in_git(root, out)
    return pointer, state


def _ignore_in_git(root: Path, out: str) -> None:
    """`/name` in the parent folder's .gitignore, as DVC writes it: the data stays out of git."""
    gitignore = (root / out).parent / ".gitignore"
    entry = "/" + Path(out).name
    text = gitignore.read_text() if gitignore.exists() else ""
    if entry not in text.splitlines():
        atomic.write_text(gitignore, text + ("" if not text or text.endswith("\n") else "\n") + entry + "\n")


def _write(root: Path, out: str, dvc_file: str, state: file_prints.FolderState, mode: str,
           pointer_data: dict, prepared=None, on_progress=None) -> Pointer:
    cache = dvc_cache.cache_root(root)
    folder = root / out
    # every object is looked for, unchanged files' too: a committed listing does not prove its
    # objects are here (an interrupted pull, a plain `dvc gc`), and a pointer must never name an
    # object that exists nowhere while its file still does (at 200,000: a listing of each shard)
    lacking = dvc_cache.absent(cache, state.md5s.values())
    missing = [rel for rel, md5 in state.md5s.items() if md5 in lacking]
    if missing and prepared is not None:
        unprepared = set(prepared.adopt({state.md5s[rel] for rel in missing}))
        missing = [rel for rel in missing if state.md5s[rel] in unprepared]
    linking.clear_scratch(cache)   # store() clears it too, but is not called when nothing is missing
    if missing:
        linking.store([str(folder / rel) for rel in missing], cache, mode,
                      known={str(folder / rel): state.md5s[rel] for rel in missing}, on_progress=on_progress)
    data = listing_bytes(state.md5s)
    dir_md5 = hashlib.md5(data).hexdigest() + ".dir"
    _store_object(cache, dir_md5, data)
    entry = pointer_data["outs"][0]
    entry.update(md5=dir_md5, size=state.size, nfiles=len(state.md5s), hash="md5")
    lines = ["outs:"]
    for i, key in enumerate(k for k in STANDARD_KEYS if k in entry):
        lines.append(f"{'- ' if i == 0 else '  '}{key}: {entry[key]}")
    atomic.write_text(root / dvc_file, "\n".join(lines) + "\n")
    logger.debug("%s: %d file(s), %d stored, listing %s", out, len(state.md5s), len(missing), dir_md5)
    return Pointer(dvc_file, out, dir_md5, state.size, len(state.md5s))
