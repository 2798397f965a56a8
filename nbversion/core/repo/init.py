"""`init [PATH]`: make a folder (or an existing git repo) an nbversion workspace."""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

from ...errors import NbversionError
from ...events import Event, emitter
from ..result import Result
from ..backends import _dvc, _git, atomic
from ..audit import chain as audit
from . import identity
from ..storage import linking
from ..layout import META_DIR, tmp_dir
from .config import DEFAULT_CONFIG, DEFAULT_RULES, write_toml
from ..backends.lock import workspace_lock

logger = logging.getLogger(__name__)

GITIGNORE_LINES = [".ipynb_checkpoints/", "__pycache__/", "*.pyc"]
DVCIGNORE_LINES = ["*.cache", ".ipynb_checkpoints/", "__pycache__/"]


@dataclass
class InitResult(Result):
    root: str
    created: bool
    user: str
    commit: str | None

    def table(self):
        return ["workspace", "admin", "commit"], [[self.root, self.user, (self.commit or "")[:8]]]

    def summary(self):
        if self.created:
            return f"initialised an nbversion workspace in {self.root}"
        return f"{self.root} is already an nbversion workspace (nothing changed)"


def _append_missing_lines(path: Path, lines: list[str]) -> None:
    existing = path.read_text().splitlines() if path.exists() else []
    missing = [line for line in lines if line not in existing]
    if missing:
        atomic.write_text(path, "\n".join(existing + missing) + "\n")


def init(path=None, on_event=None) -> InitResult:
    emit = emitter(on_event)
    root = Path(path or os.getcwd()).resolve()
    root.mkdir(parents=True, exist_ok=True)
    if (root / META_DIR / "config.toml").exists():
        logger.debug("%s is already a workspace: nothing to initialise", root)
        return InitResult(str(root), False, identity.current_user(root), _git.head(root))
    top = _git.toplevel(root)
    if top is not None and top != root:
        raise NbversionError(f"{root} is inside the git repository {top}",
                             hint=f"run `nbversion init {top}` at the repository's top folder")
    meta = root / META_DIR
    tmp_dir(root).mkdir(parents=True, exist_ok=True)
    logger.debug("initialising %s (git repository already there: %s, DVC: %s)", root, top is not None,
                 (root / ".dvc").exists())
    with workspace_lock(root, "init"):
        if top is None:
            emit(Event("init", 0, 3, "git init"))
            _git.init(root)
        if not (root / ".dvc").exists():
            emit(Event("init", 1, 3, "dvc init"))
            _dvc.init(root, link_types=linking.dvc_cache_type(DEFAULT_CONFIG["core"]["link"]))
        user = identity.current_user(root)
        write_toml(meta / "config.toml", DEFAULT_CONFIG)
        write_toml(meta / "users.toml", {"users": {user: "admin"}})
        write_toml(meta / "rules.toml", DEFAULT_RULES)
        atomic.write_text(meta / ".gitignore", f"{tmp_dir(root).name}/\n")
        _append_missing_lines(root / ".gitignore", GITIGNORE_LINES)
        _append_missing_lines(root / ".dvcignore", DVCIGNORE_LINES)
        _append_missing_lines(root / ".gitattributes", [audit.MERGE_ATTRIBUTE])   # clones' logs merge
        audit.append(root, user, "init", ".", {"admin": user})
        emit(Event("init", 2, 3, "commit"))
        paths = [META_DIR, ".gitignore", ".dvcignore", ".gitattributes", ".dvc"]
        _git.add(root, paths)
        sha = _git.commit(root, "nbversion: initialise workspace", user, paths)
    emit(Event("init", 3, 3, "done"))
    return InitResult(str(root), True, user, sha)
