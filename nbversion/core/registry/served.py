"""The weights `resolve` / `load_model` serve, checked against the version's manifest.

A registered version is immutable, so what is served must hash to what the manifest recorded:
a working copy edited in place (a re-save over `registry/NAME/vX.Y.Z/files/best.pt`) is refused,
not served. The check is cheap: a stat fingerprint (size, mtime, inode) recorded when the file
last hashed clean skips the hash; only a changed fingerprint costs a re-hash.

Reading verbs never write into the working tree. A version that is not there (registered on
another branch, or data not checked out) is materialised under the git-ignored
`.nbversion/resolved/NAME/vX.Y.Z/`, with the manifest's file names (so `load_model`'s suffix
checks keep working), from the local DVC cache or else the default remote.
"""
from __future__ import annotations

import hashlib
import logging
import os
import uuid
from pathlib import Path

from ...errors import IntegrityError, NotFound
from ..backends import _git, atomic, statcache
from ..backends.pointers import Pointer
from .versions import REGISTRY_DIR

logger = logging.getLogger(__name__)

RESOLVED_DIR = Path(".nbversion") / "resolved"
CHUNK = 1 << 20


def served_files(root: Path, rel: str, commit: str, manifest: dict) -> list[Path]:
    """Paths of the version's files, each checked against the manifest hash."""
    files = {name: info["md5"] for name, info in (manifest.get("files") or {}).items()}
    if not files:
        return [root / rel]
    for name in files:   # names come from a (pushed, maybe crafted) manifest: stay inside the version
        parts = Path(name).parts
        if not parts or Path(name).is_absolute() or ".." in parts:
            raise IntegrityError(f"the manifest of {rel} lists an unsafe file name {name!r}",
                                 hint="run `nbversion verify`; do not serve this version")
    in_tree = [root / rel / name for name in files]
    if _in_worktree(root, rel, commit) and all(p.is_file() for p in in_tree):
        logger.debug("serving %s from the working tree (its pointer is the tagged one)", rel)
        for name, path in zip(files, in_tree):
            _check(root, path, files[name], manifest)
        return in_tree
    logger.debug("serving %s from %s (not checked out here)", rel, RESOLVED_DIR)
    return _materialised(root, rel, manifest, files)


def edited_files(root: Path, rel: str, manifest: dict) -> list[str]:
    """Workspace paths of the version's files in the working tree that no longer hash to the
    manifest (`verify`); a file not there (data not checked out) is not an edit."""
    edited = []
    for name, info in (manifest.get("files") or {}).items():
        path = root / rel / name
        if ".." in Path(name).parts or Path(name).is_absolute() or not path.is_file():
            continue
        key, fresh, known = _fingerprint(root, path, info.get("md5", ""))
        if known:
            continue
        if _md5(path) == info.get("md5"):
            statcache.mark_clean(root, [key], {key: fresh})
        else:
            edited.append(path.relative_to(root).as_posix())
    return edited


def _in_worktree(root: Path, rel: str, commit: str) -> bool:
    """The working tree holds this version: its pointer there is the tagged one."""
    try:
        here = (root / rel / "files.dvc").read_bytes()
    except OSError:
        return False
    return here == _git.show(root, commit, f"{rel}/files.dvc")


def _fingerprint(root: Path, path: Path, md5: str) -> tuple[str, str | None, bool]:
    """(stat-cache key, fingerprint now, whether it equals the one recorded when last clean)."""
    rel = path.relative_to(root).as_posix()
    fresh = statcache.fingerprint(root, Pointer("", rel, md5, 0, None))
    key = "served:" + rel
    return key, fresh, fresh is not None and statcache.load(root).get(key) == fresh


def _check(root: Path, path: Path, md5: str, manifest: dict) -> None:
    key, fresh, known = _fingerprint(root, path, md5)
    if known:
        return
    if _md5(path) != md5:
        ref = f"{manifest.get('name')}@{manifest.get('version')}"
        rel = path.relative_to(root).as_posix()
        # a version of several files is registered again as a whole: its folder, not the one file
        source = rel if len(manifest.get("files") or {}) <= 1 else rel[:rel.index("/files/") + len("/files")]
        raise IntegrityError(
            f"{rel} was modified after {ref} was registered: it no longer matches the manifest hash {md5}",
            hint=f"restore the registered file with `nbversion checkout HEAD {rel} --force`, or register "
                 f"the changed files as a new version (`nbversion register {manifest.get('name')} "
                 f"--bump patch --from {source}`)")
    statcache.mark_clean(root, [key], {key: fresh})


def _md5(path: Path) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _materialised(root: Path, rel: str, manifest: dict, files: dict) -> list[Path]:
    """Copies under `.nbversion/resolved/NAME/vX.Y.Z/`, made once from the cache (or the remote),
    hash-checked."""
    base = root / RESOLVED_DIR
    base.mkdir(parents=True, exist_ok=True)
    if not (base / ".gitignore").exists():
        atomic.write_text(base / ".gitignore", "*\n")   # ignored even in workspaces made before it existed
    folder = base / Path(rel).relative_to(REGISTRY_DIR)
    paths = [folder / name for name in files]
    todo = {name: md5 for (name, md5), path in zip(files.items(), paths) if not _clean_copy(root, path, md5)}
    if todo:
        _fetch_missing(root, manifest, set(todo.values()))
        for name, md5 in todo.items():
            _copy_checked(root, md5, folder / name, manifest)
    return paths


def _clean_copy(root: Path, path: Path, md5: str) -> bool:
    """A copy made earlier that still hashes right (it is ours to replace if not)."""
    if not path.is_file():
        return False
    key, fresh, known = _fingerprint(root, path, md5)
    if known or _md5(path) == md5:
        statcache.mark_clean(root, [key], {key: fresh})
        return True
    return False


def _fetch_missing(root: Path, manifest: dict, md5s: set) -> None:
    from ..backends import _dvc, dvc_cache

    missing = {m for m in md5s if not dvc_cache.object_path(root, m).exists()}
    if not missing:
        return
    ref = f"{manifest.get('name')}@{manifest.get('version')}"
    hint = "push them from the workspace where they were registered, then `nbversion pull`"
    try:
        _dvc.fetch_objects(root, missing, None)
    except Exception as exc:   # no default remote, or it is unreachable
        logger.debug("fetching %d object(s) of %s failed", len(missing), ref, exc_info=True)
        raise NotFound(f"the weights of {ref} are not in the local cache and could not be fetched: {exc}",
                       hint=hint) from None
    if any(not dvc_cache.object_path(root, m).exists() for m in missing):
        raise NotFound(f"the weights of {ref} are neither in the local cache nor on the default remote",
                       hint=hint)


def _copy_checked(root: Path, md5: str, target: Path, manifest: dict) -> None:
    """Copy one cache object, hashing while copying; rename into place only if it is whole."""
    from ..backends import dvc_cache

    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}.tmp")
    digest = hashlib.md5()
    try:
        with open(dvc_cache.object_path(root, md5), "rb") as src, open(tmp, "wb") as dst:
            while chunk := src.read(CHUNK):
                digest.update(chunk)
                dst.write(chunk)
        if digest.hexdigest() != md5:
            raise IntegrityError(f"the cached weights of {manifest.get('name')}@{manifest.get('version')} "
                                 f"do not match their hash {md5}",
                                 hint="run `nbversion verify --repair` to fetch a good copy from the remote")
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()
    key, fresh, _ = _fingerprint(root, target, md5)
    statcache.mark_clean(root, [key], {key: fresh})
