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
    audit_size: Optional[int] = None   # the log's size before this operation's first entry
    sign: bool = False                 # signed mode: its commit and tags carry the user's signature
    committed: Optional[str] = None    # the sha of its commit, once made
    kept: Optional[str] = None         # what an interruption before the commit leaves, if not nothing

    def audit(self, action: str, target: str = "", details: Optional[dict] = None) -> dict:
        if self.audit_size is None:
            log = Path(self.root) / audit.AUDIT_FILE
            self.audit_size = log.stat().st_size if log.exists() else 0
        entry = audit.append(self.root, self.user, action, target, details)
        self.entries.append(entry)
        return entry

    def commit(self, message: str, paths=()) -> str:
        """Stage `paths` plus the audit log, and make one commit. Returns its sha."""
        paths = [*paths, str(audit.AUDIT_FILE)]
        if audit.ensure_merge_attribute(self.root):   # a workspace made before the log merged
            paths.append(".gitattributes")
        before = _git.head(self.root)
        try:
            _git.add(self.root, paths)
            sha = _git.commit(self.root, with_trailers(message), self.user, paths, sign=self.sign)
        except BaseException:   # Ctrl-C too: no commit, no audit line left behind
            now = _git.head(self.root)
            if now == before:   # no commit was made: its audit entries never happened
                self._drop_audit_entries()
            else:               # interrupted just after git made it: it stands
                self.committed = now
            raise
        self.committed = sha
        logger.debug("%s by %s: commit %s with %d audit entr(ies)", self.action, self.user, sha, len(self.entries))
        return sha

    def interrupted(self) -> None:
        """A Ctrl-C inside the operation: audit lines written for a commit that will not come
        are taken back (the commit itself takes its own back, above)."""
        if self.committed is None:
            self._drop_audit_entries()

    def _drop_audit_entries(self) -> None:
        """Cut this operation's lines off the log and unstage it, so a failed commit leaves no
        audit line behind in the working tree or the index."""
        if self.audit_size is None:
            return
        log = Path(self.root) / audit.AUDIT_FILE
        try:
            with open(log, "r+b") as fh:
                if fh.seek(0, 2) < self.audit_size:   # put back shorter by someone else: never pad it
                    return
                fh.truncate(self.audit_size)
            _git.unstage(self.root, [str(audit.AUDIT_FILE)])
        except Exception:   # the commit's own error is what the user must see
            logger.warning("could not take back the audit entries of the failed %s", self.action, exc_info=True)
            return
        logger.debug("%s failed before its commit: dropped %d audit entr(ies)", self.action, len(self.entries))
        self.entries.clear()
