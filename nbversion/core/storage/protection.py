"""Working-tree files vs the cache: `verify` checks, `verify --repair` / `gc` clean-ups, `unprotect`.

A workspace made before `core.link` existed (or with `core.link = "hardlink"` switched back to
"copy") has working-tree files that are the very inode of a cache object: an edit in place
changes the stored version. `verify` names them and `--repair` gives each its own copy.
"""
from __future__ import annotations

import contextlib
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

from ...errors import NotFound
from ..result import Result
from ..backends import _dvc, dvc_config, pointers
from . import linking
from ..repo.config import load_config

from typing import TYPE_CHECKING

logger = logging.getLogger(__name__)

if TYPE_CHECKING:   # annotations only: core.workspace imports this module into Workspace
    from typing import Iterable
    from ..workspace import Workspace

HARD_LINKED = "hard-linked: an edit in place would change the stored version"


def _cache(root) -> Path:
    return _dvc.cache_root(root)


def worktree_files(root):
    """Every file under the working tree's tracked outputs, and under the runs' dataset exports
    (`runs/<id>/data/`, hard-linked from the cache by older versions)."""
    root = Path(root)
    tops = [root / out for out in pointers.in_worktree(root)] + sorted(root.glob("runs/*/data"))
    for top in tops:
        if top.is_file():
            yield top
            continue
        for dirpath, _dirs, files in os.walk(top):
            for name in files:
                yield Path(dirpath) / name


def check(root) -> list:
    """Problems for verify: a stale `.dvc/config` link setting, shared inodes, orphan objects."""
    from .problem import Problem

    root = Path(root)
    problems = []
    mode = linking.link_mode(load_config(root))
    current = dvc_config.cache_type(root).replace(" ", "")
    if current != linking.dvc_cache_type(mode):
        problems.append(Problem("link setting", ".dvc/config", ["every checkout"],
                                f"cache.type is {current or '(unset)'!r} but core.link = {mode!r} "
                                f"needs {linking.dvc_cache_type(mode)!r}"))
    cache = _cache(root)
    linked = linking.linked_objects(cache) if mode == "copy" else set()
    if linked:
        for path in linking.shared_with_cache(worktree_files(root), linked):
            rel = Path(path).relative_to(root).as_posix()
            problems.append(Problem("hard link", rel, [f"working tree {rel}"], HARD_LINKED))
    for path in _orphan_dirs(root):
        problems.append(Problem("orphan objects", _shown(root, path), ["disk space"],
                                "objects nothing reads (left by an older nbversion or a killed add)"))
    return problems


def _shown(root: Path, path: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return str(path)


def repair(root, problems: list) -> set:
    """Fix the problems `check` found (the caller holds the workspace lock). Returns (kind, what) acted on."""
    root = Path(root)
    acted = set()
    for problem in problems:
        if problem.kind == "hard link":
            with contextlib.suppress(FileNotFoundError):   # deleted since the check: nothing to break
                linking.break_link(root / problem.what)
            acted.add((problem.kind, problem.what))
        elif problem.kind == "orphan objects":
            linking.remove_tree(root / problem.what)       # an absolute `what` (cache elsewhere) stays absolute
            acted.add((problem.kind, problem.what))
    if any(p.kind == "link setting" for p in problems):
        _commit_link_setting(root)
        acted |= {(p.kind, p.what) for p in problems if p.kind == "link setting"}
    return acted


def _commit_link_setting(root: Path) -> None:
    from ..repo import identity
    from ..transaction import Transaction

    before = _dvc.sync_cache_type(root)
    if before is None:
        return
    tx = Transaction(root, identity.current_user(root), "verify --repair")
    tx.audit("verify --repair", ".dvc/config", {"cache.type": {"from": before, "to": dvc_config.cache_type(root)}})
    tx.commit("nbversion: DVC link types follow core.link", [".dvc/config"])


def _orphan_dirs(root) -> list:
    cache = _cache(root)
    return [p for p in (linking.nested_orphans(cache), cache / linking.CACHE_TMP_DIR) if p and p.exists()]


def orphans(root) -> dict:
    """{"objects", "bytes"} under the folders of objects nothing reads."""
    count = size = 0
    for folder in _orphan_dirs(root):
        for dirpath, _dirs, files in os.walk(folder):
            for name in files:
                count += 1
                size += os.lstat(os.path.join(dirpath, name)).st_size
    return {"objects": count, "bytes": size}


def remove_orphans(root) -> int:
    """For gc: drop objects nothing reads; returns bytes freed."""
    folders = _orphan_dirs(root)
    logger.debug("removing %d orphan object folder(s): %s", len(folders), folders)
    return sum(linking.remove_tree(p) for p in folders)


# --- `unprotect PATH` -----------------------------------------------------------------------

@dataclass
class UnprotectResult(Result):
    paths: list = field(default_factory=list)      # files given their own writable copy
    already: int = 0                               # files that already were private and writable

    def table(self):
        return ["made writable"], [[p] for p in self.paths]

    def summary(self):
        return (f"{len(self.paths)} file(s) now a private writable copy; the stored version is unchanged"
                + (f" ({self.already} already were)" if self.already else ""))


def unprotect(ws: Workspace, paths: Iterable[str | os.PathLike]) -> UnprotectResult:
    """Replace read-only links into the cache under `paths` by private writable copies (`nbversion unprotect`).

    Args:
        paths: files or folders in the workspace.

    Returns:
        UnprotectResult: the paths copied, and how many were already private.

    Example:
        >>> ws = nbv.open(".")
        >>> ws.unprotect(["datasets/traffic/labels"])
    """
    targets = [ws.root / ws.rel(p) for p in paths]
    hint = "give a file or folder of tracked data: under datasets/, models/, runs/ or registry/"
    outs = pointers.in_worktree(ws.root)
    for target in targets:
        rel = ws.rel(target)
        if not target.exists():
            raise NotFound(f"{rel}: no such file or folder in the workspace", hint=hint)
        # only data nbversion tracks: never the whole workspace, .git or the cache itself
        if not _tracked_under(outs, rel):
            raise NotFound(f"{rel}: not tracked data (nothing there is a link into the cache)", hint=hint)
    result = UnprotectResult()
    with ws.transaction("unprotect", role="viewer"):   # changes no version: no audit line, no commit
        for target in targets:
            for top in _tracked_under(outs, ws.rel(target)):
                for path in _files_under(ws.root / top):
                    if linking.break_link(path):
                        result.paths.append(path.relative_to(ws.root).as_posix())
                    else:
                        result.already += 1
    logger.debug("unprotect: %d file(s) now private copies, %d already were", len(result.paths), result.already)
    return result


def _tracked_under(outs: dict, rel: str) -> list:
    """The tracked data at or under `rel`: the output holding it, or the outputs inside a folder
    (never the whole workspace, .git or the cache, whose files are no business of `unprotect`)."""
    if pointers.owner(outs, rel) is not None:
        return [rel]
    if rel in ("", "."):
        return []
    return sorted(out for out in outs if out.startswith(rel.rstrip("/") + "/"))


def _files_under(target: Path):
    if target.is_file():
        yield target
        return
    for dirpath, _dirs, files in os.walk(target):
        for name in sorted(files):
            path = Path(dirpath) / name
            if not path.is_symlink():
                yield path
