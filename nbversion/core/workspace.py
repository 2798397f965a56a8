"""A workspace: a git repository with DVC initialised and a committed `.nbversion/` folder.

`Workspace` is a thin handle: each verb is a method that calls the module of its
operation family, so the class stays small and the operations stay testable alone.
"""
from __future__ import annotations

import os
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from ..errors import NotAWorkspace, NbversionError, UsageError
from .backends import _git
from .audit import chain as audit
from .repo import identity
from .repo.cell import with_trailers
from .repo.config import META_DIR, load_config
from .backends.lock import workspace_lock


def find_root(path: os.PathLike | str | None = None) -> Path:
    start = Path(path or os.getcwd()).resolve()
    for candidate in (start, *start.parents):
        if (candidate / META_DIR / "config.toml").exists() and (candidate / ".git").exists():
            return candidate
    raise NotAWorkspace(f"{start} is not inside an nbversion workspace",
                        hint="run `nbversion init` (or `%mv_init`) in the project folder first")


@dataclass
class Transaction:
    """One mutating operation: holds the lock, knows the user, audits, then commits last."""

    root: Path
    user: str
    action: str
    entries: list = field(default_factory=list)

    def audit(self, action: str, target: str = "", details: Optional[dict] = None) -> dict:
        entry = audit.append(self.root, self.user, action, target, details)
        self.entries.append(entry)
        return entry

    def commit(self, message: str, paths=()) -> str:
        """Stage `paths` plus the audit log, and make one commit. Returns its sha."""
        paths = [*paths, str(audit.AUDIT_FILE)]
        _git.add(self.root, paths)
        return _git.commit(self.root, with_trailers(message), self.user, paths)


class Workspace:
    def __init__(self, root: os.PathLike | str):
        self.root = Path(root).resolve()

    def __repr__(self) -> str:
        return f"<nbversion workspace {self.root}>"

    # --- plumbing shared by operations -------------------------------------------------
    @property
    def config(self) -> dict:
        return load_config(self.root)

    @property
    def user(self) -> str:
        return identity.current_user(self.root)

    def rel(self, path: os.PathLike | str) -> str:
        """Workspace-relative "/" path; a path outside the workspace is an error."""
        if "\x00" in os.fspath(path):   # no file can have it; the OS would refuse it with a ValueError
            raise UsageError(f"{os.fspath(path)!r}: a path cannot contain a NUL character")
        absolute = (Path(os.getcwd()) / path).resolve() if not Path(path).is_absolute() else Path(path).resolve()
        if absolute != self.root and self.root not in absolute.parents:
            raise NbversionError(f"{path} is outside the workspace {self.root}",
                                 hint="give paths inside the workspace folder")
        return absolute.relative_to(self.root).as_posix() if absolute != self.root else "."

    @contextmanager
    def transaction(self, action: str, role: str = "contributor"):
        user = identity.require(self.root, role, action)
        timeout = float(self.config["core"]["lock_timeout"])
        with workspace_lock(self.root, action, timeout):
            yield Transaction(self.root, user, action)

    # --- workspace verbs -----------------------------------------------------------------
    def status(self, **kw):
        from .repo.status import status
        return status(self, **kw)

    def commit(self, message: str, paths=(), **kw):
        from .repo.commit import commit
        return commit(self, message, paths, **kw)

    def log(self, n: Optional[int] = None, **kw):
        from .repo.history import log
        return log(self, n, **kw)

    def diff(self, rev_a: Optional[str] = None, rev_b: Optional[str] = None, **kw):
        from .repo.history import diff
        return diff(self, rev_a, rev_b, **kw)

    def checkout(self, rev: str, paths=(), force: bool = False, **kw):
        from .repo.checkout import checkout
        return checkout(self, rev, paths, force=force, **kw)

    def whoami(self):
        from .repo.users import whoami
        return whoami(self)

    def user_add(self, user_id: str, role: str):
        from .repo.users import user_add
        return user_add(self, user_id, role)

    def user_list(self):
        from .repo.users import user_list
        return user_list(self)


def open_workspace(path: os.PathLike | str | None = None) -> Workspace:
    return Workspace(find_root(path))


def _delegate(module: str, function: str, doc: str):
    """A Workspace method that calls `<module>.<function>(ws, ...)`, imported on first use."""

    def method(self, *args, **kwargs):
        from importlib import import_module
        return getattr(import_module(module), function)(self, *args, **kwargs)

    method.__name__ = function
    method.__doc__ = doc
    return method


# Verbs of the other operation families: thin, named as the verbs (see DESIGN.md).
for _name, _module, _function, _doc in [
    ("dataset_add", "nbversion.core.artifacts.datasets", "add", "Import a YOLO dataset or folder (or .zip) as a new version."),
    ("dataset_list", "nbversion.core.artifacts.datasets", "list_datasets", "Datasets with their latest version."),
    ("dataset_show", "nbversion.core.artifacts.datasets", "show", "Metadata, class histogram and samples of NAME[@REV]."),
    ("dataset_diff", "nbversion.core.artifacts.datasets", "diff", "Content diff of a dataset between two versions."),
    ("model_add", "nbversion.core.artifacts.models", "add", "Version a weights file with metrics, params and lineage."),
    ("model_list", "nbversion.core.artifacts.models", "list_models", "Models with their latest version."),
    ("model_show", "nbversion.core.artifacts.models", "show", "Metadata of NAME[@REV]."),
    ("model_compare", "nbversion.core.artifacts.models", "compare", "Metrics and params side by side."),
    ("register", "nbversion.core.registry.versions", "register", "Register an immutable semver version."),
    ("promote", "nbversion.core.registry.promotion", "promote", "Assign a stage (default champion) behind gates and roles."),
    ("demote", "nbversion.core.registry.promotion", "demote", "Remove a stage from a version (audited)."),
    ("registry", "nbversion.core.registry.versions", "registry", "Registered versions, stages and champion."),
    ("resolve", "nbversion.core.registry.versions", "resolve", "NAME@champion|vX.Y.Z|latest -> version and weights path."),
    ("deploys", "nbversion.core.registry.deploy", "deploys", "Deploy hook history."),
    ("audit", "nbversion.core.audit.verify", "query", "Filtered audit entries."),
    ("audit_verify", "nbversion.core.audit.verify", "verify", "Check the hash chain and re-check promotions."),
    ("report", "nbversion.core.registry.report", "report", "Registry, champion and deploy history, audit summary."),
    ("train", "nbversion.training.runner", "train", "Train a YOLO model on a dataset version (background)."),
    ("runs_list", "nbversion.training.runs", "list_runs", "Training runs."),
    ("runs_show", "nbversion.training.runs", "show", "One run: params, device, per-epoch metrics, files."),
    ("runs_stop", "nbversion.training.runner", "stop", "Ask a running training to stop cleanly."),
    ("runs_resume", "nbversion.training.runner", "resume", "Continue a stopped or failed run from last.pt."),
    ("predict", "nbversion.training.predict", "predict", "Detect objects in images with a model reference."),
    ("remote_add", "nbversion.core.storage.remotes", "remote_add", "Add a data + history remote (folder, ssh://, s3://)."),
    ("push", "nbversion.core.storage.remotes", "push", "Send history, tags and data to a remote."),
    ("pull", "nbversion.core.storage.remotes", "pull", "Fetch history, tags and data from a remote."),
    ("verify", "nbversion.core.storage.verify", "verify", "Check tags, manifests, pointers, cache and remote; repair."),
    ("gc", "nbversion.core.storage.gc", "gc", "Remove unneeded data, never registered or champion versions."),
    ("unprotect", "nbversion.core.storage.protection", "unprotect", "Make linked data files private writable copies."),
    ("backup_create", "nbversion.core.storage.backup", "create", "One archive of history and needed data."),
    ("exp_new", "nbversion.core.repo.experiments", "new", "Start an experiment branch."),
    ("exp_list", "nbversion.core.repo.experiments", "list_experiments", "Experiment branches."),
    ("exp_compare", "nbversion.core.repo.experiments", "compare", "Runs and versions of each branch side by side."),
    ("exp_best", "nbversion.core.repo.experiments", "best", "The branch with the best metric."),
    ("exp_merge", "nbversion.core.repo.experiments", "merge", "Merge an experiment; metadata and audit by rule."),
]:
    setattr(Workspace, _name, _delegate(_module, _function, _doc))
