"""One mutating operation's record: the user, its audit entries, and the one commit made last.

Its own module (not workspace.py) because operations that open a transaction without a
`Workspace` (verify --repair's clean-up) would otherwise import the module that imports them.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from .audit import chain as audit
from .backends import _git
from .repo.cell import with_trailers

logger = logging.getLogger(__name__)


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
        if audit.ensure_merge_attribute(self.root):   # a workspace made before the log merged
            paths.append(".gitattributes")
        _git.add(self.root, paths)
        sha = _git.commit(self.root, with_trailers(message), self.user, paths)
        logger.debug("%s by %s: commit %s with %d audit entr(ies)", self.action, self.user, sha, len(self.entries))
        return sha
