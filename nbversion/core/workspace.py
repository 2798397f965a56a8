"""A workspace: a git repository with DVC initialised and a committed `.nbversion/` folder.

`Workspace` is a thin handle: each verb is a function of its operation family's module, imported
into the class body (as DVC's `Repo` does), so the class stays small, the operations stay testable
alone, and `help(ws.register)` shows the function's own signature and docstring.
"""
from __future__ import annotations

import logging
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from ..errors import Interrupted, NotAWorkspace, NbversionError, UsageError
from .backends.lock import workspace_lock
from .repo import identity
from .repo.config import META_DIR, load_config
from .security import signing
from .transaction import Transaction

logger = logging.getLogger(__name__)


def find_root(path: os.PathLike | str | None = None) -> Path:
    start = Path(path or os.getcwd()).resolve()
    for candidate in (start, *start.parents):
        if (candidate / META_DIR / "config.toml").exists() and (candidate / ".git").exists():
            return candidate
    raise NotAWorkspace(f"{start} is not inside an nbversion workspace",
                        hint="run `nbversion init` (or `%mv_init`) in the project folder first")


class Workspace:
    """An nbversion workspace; its methods are the verbs of `nbversion VERB` and `%mv_VERB`.

    Open one with `nbv.open(path)` or create one with `nbv.init(path)`. Every verb returns a result
    dataclass that prints as a table and renders as HTML in a notebook.

    Example:
        >>> import nbversion as nbv
        >>> ws = nbv.open(".")
        >>> ws.status()
    """

    def __init__(self, root: os.PathLike | str):
        self.root = Path(root).resolve()

    def __repr__(self) -> str:
        return f"<nbversion workspace {self.root}>"

    # --- plumbing shared by operations -------------------------------------------------
    @property
    def config(self) -> dict:
        """`.nbversion/config.toml` with its defaults filled in, read now."""
        return load_config(self.root)

    @property
    def user(self) -> str:
        """The current user's identity (see `whoami`)."""
        return identity.current_user(self.root)

    def rel(self, path: os.PathLike | str) -> str:
        """The workspace-relative "/" path of `path`; a path outside the workspace is an error.

        Args:
            path: absolute, or relative to the current folder.

        Returns:
            str: e.g. "datasets/traffic", or "." for the workspace root.

        Example:
            >>> ws = nbv.open(".")
            >>> ws.rel("datasets/traffic/images")
        """
        if "\x00" in os.fspath(path):   # no file can have it; the OS would refuse it with a ValueError
            raise UsageError(f"{os.fspath(path)!r}: a path cannot contain a NUL character")
        absolute = (Path(os.getcwd()) / path).resolve() if not Path(path).is_absolute() else Path(path).resolve()
        if absolute != self.root and self.root not in absolute.parents:
            raise NbversionError(f"{path} is outside the workspace {self.root}",
                                 hint="give paths inside the workspace folder")
        return absolute.relative_to(self.root).as_posix() if absolute != self.root else "."

    @contextmanager
    def transaction(self, action: str, role: str = "contributor") -> Iterator[Transaction]:
        """Lock the workspace for one mutating operation by a user who holds `role`.

        For code that adds a verb: audit inside the block, and make the commit last.

        Args:
            action: the operation's name, shown to whoever waits for the lock.
            role: the least role the current user needs ("viewer", "contributor", "admin").

        Returns:
            A context manager yielding a `Transaction` (`audit(...)`, then `commit(...)`).

        Example:
            >>> ws = nbv.open(".")
            >>> with ws.transaction("label fix") as tx:
            ...     tx.audit("label fix", "datasets/traffic")
            ...     tx.commit("fix labels", ["datasets/traffic"])
        """
        user = identity.require(self.root, role, action)
        timeout = float(self.config["core"]["lock_timeout"])
        sign = signing.required(self.root)
        logger.debug("transaction %s by %s in %s (lock timeout %s s, signed: %s)", action, user, self.root, timeout, sign)
        with workspace_lock(self.root, action, timeout):
            tx = Transaction(self.root, user, action, sign=sign)
            try:
                yield tx
            except KeyboardInterrupt as exc:   # Ctrl-C: said by the front end with what it left
                tx.interrupted()
                if isinstance(exc, Interrupted):   # from an operation inside this one: it knows best
                    raise
                raise Interrupted(action, tx.committed, tx.kept) from exc

    # --- verbs: each method IS its operation's function (first parameter `ws`), so help(),
    # Shift-Tab and IDEs show the real signature and docstring. The operation modules import
    # git, DVC, PIL and torch inside their functions, which keeps this import cheap.
    from .repo.status import status
    from .repo.commit import commit
    from .repo.history import log, diff
    from .repo.checkout import checkout
    from .repo.users import whoami, user_add, user_list
    from .security.require import require_signing, security_status

    from .artifacts.datasets import add as dataset_add, list_datasets as dataset_list
    from .artifacts.dataset_view import show as dataset_show
    from .artifacts.dataset_diff import diff as dataset_diff
    from .artifacts.dataset_lifecycle import remove as dataset_remove, log as dataset_log
    from .artifacts.models import add as model_add, list_models as model_list, \
        show as model_show, compare as model_compare

    from .registry.versions import register
    from .registry.listing import registry
    from .registry.resolve import resolve
    from .registry.promotion import promote, demote
    from .registry.deploy import deploys
    from .registry.report import report
    from .audit.query import query as audit
    from .audit.verify import verify as audit_verify

    from ..training.runner import train, stop as runs_stop, resume as runs_resume
    from ..targets.follow import attach as runs_attach
    from ..targets.settings import target_add, target_list, target_remove
    from ..training.runs import list_runs as runs_list, show as runs_show
    from ..training.compare import compare as runs_compare
    from ..training.queue_verbs import cancel as runs_cancel, worker as runs_worker
    from ..training.predict import predict
    from ..training.prediction_log import history as predict_history, show as predict_show
    from ..training.predict_compare import compare as predict_compare
    from ..training.export import export
    from ..training.presets import list_presets as presets_list, show as presets_show

    from .storage.remotes import remote_add, push, pull
    from .storage.guard import install as guard_install, remove as guard_remove, status as guard_status
    from .storage.verify import verify
    from .storage.gc import gc
    from .storage.protection import unprotect
    from .storage.backup import create as backup_create

    from .repo.experiments import new as exp_new, list_experiments as exp_list, \
        compare as exp_compare, best as exp_best, merge as exp_merge


def open_workspace(path: os.PathLike | str | None = None) -> Workspace:
    return Workspace(find_root(path))

