"""Debug logs a user can turn on: `nbversion -v VERB`, `--log-file FILE`, `[core] log_file`, NBVERSION_LOG_FILE.

Every module logs to `logging.getLogger(__name__)`, so all of nbversion's records sit under the
"nbversion" logger; nothing is shown unless asked for. `-v` shows nbversion's own debug records on
stderr; `-vv` adds everything below it (DVC, git, urllib3), which is noisy. A log file gets
nbversion's debug records (everything with `-vv`), appended, so a failure can be sent as a file.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Optional

LOG_FILE_ENV = "NBVERSION_LOG_FILE"
FORMAT = "%(asctime)s %(levelname)s %(name)s [%(threadName)s]: %(message)s"
OWN = "nbversion"

logger = logging.getLogger(__name__)
_installed: list = []   # (logger, handler) pairs set up here, so a second call replaces them


def configure(verbosity: int = 0, log_file: Optional[str] = None, stream=None) -> Optional[Path]:
    """Send debug records to stderr (verbosity >= 1) and/or `log_file`; returns the file's path.

    verbosity 1: nbversion's loggers only; 2: every logger (DVC's and git's debug output too).
    """
    reset()
    formatter = logging.Formatter(FORMAT)
    own = logging.getLogger(OWN)
    target = logging.getLogger() if verbosity >= 2 else own
    path = Path(log_file).expanduser().resolve() if log_file else None
    if verbosity >= 1:
        _attach(target, logging.StreamHandler(stream), formatter)
    if path:
        path.parent.mkdir(parents=True, exist_ok=True)
        _attach(target, logging.FileHandler(path, encoding="utf-8"), formatter)
    if verbosity >= 1 or path:
        own.setLevel(logging.DEBUG)
    if verbosity >= 2:
        logging.getLogger().setLevel(logging.DEBUG)
        logging.getLogger("dvc").setLevel(logging.DEBUG)
    return path


def _attach(target: logging.Logger, handler: logging.Handler, formatter: logging.Formatter) -> None:
    handler.setFormatter(formatter)
    handler.setLevel(logging.DEBUG)
    target.addHandler(handler)
    _installed.append((target, handler))


def reset() -> None:
    """Remove the handlers `configure` added (a magic or a test may configure twice)."""
    while _installed:
        target, handler = _installed.pop()
        target.removeHandler(handler)
        handler.close()


def log_file_setting(explicit: Optional[str], workspace: Optional[str]) -> Optional[str]:
    """The log file asked for: `--log-file`, else NBVERSION_LOG_FILE, else `[core] log_file` of the
    workspace's config (relative to the workspace root); None when none is set."""
    if explicit:
        return explicit
    if os.environ.get(LOG_FILE_ENV):
        return os.environ[LOG_FILE_ENV]
    root = _workspace_root(Path(workspace or ".").resolve())
    if root is None:
        return None
    try:
        from .core.repo.config import load_config
        configured = load_config(root).get("core", {}).get("log_file")
    except Exception:   # a broken config is reported by the verb itself, with file and line
        logger.debug("could not read the log_file setting of %s", root, exc_info=True)
        return None
    return str(root / configured) if configured else None


def configure_from_settings(workspace: Optional[str] = None, read_config: bool = True) -> Optional[Path]:
    """For the kernel and the server, which have no `--log-file`: NBVERSION_LOG_FILE, or (with
    `read_config`) the workspace's `[core] log_file`; nothing changes when neither is set."""
    wanted = os.environ.get(LOG_FILE_ENV) if not read_config else log_file_setting(None, workspace)
    if not wanted:
        return None
    try:
        return configure(0, wanted)
    except OSError:   # an unwritable log file must not stop the kernel or the server
        logging.getLogger(OWN).warning("cannot write the log file %s", wanted, exc_info=True)
        return None


def _workspace_root(start: Path) -> Optional[Path]:
    for folder in (start, *start.parents):
        if (folder / ".nbversion" / "config.toml").is_file():
            return folder
    return None
