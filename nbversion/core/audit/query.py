"""`audit [--user U] [--action A] [--since DATE] [-n N]`: the audit log's entries, filtered."""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Optional

from ...errors import UsageError
from ..registry.resolve import parse_when
from ..result import Result
from . import chain as audit

logger = logging.getLogger(__name__)

if TYPE_CHECKING:   # annotations only: core.workspace imports this module into Workspace
    from ..workspace import Workspace


@dataclass
class AuditResult(Result):
    entries: list = field(default_factory=list)     # (line number, entry)
    total: int = 0

    def table(self):
        rows = [[n, e["time"][:19], e["user"], e["action"], e["target"], _short(e.get("details"))]
                for n, e in self.entries]
        return ["line", "time", "user", "action", "target", "details"], rows

    def highlight(self, row) -> bool:
        return row[3] in ("denied", "promote refused") or "forced" in row[5]

    def summary(self):
        return f"{len(self.entries)} of {self.total} entries"

    def to_dict(self):
        return {"total": self.total, "entries": [{"line": n, **e} for n, e in self.entries]}


def _short(details) -> str:
    if not details:
        return ""
    parts = []
    for key, value in details.items():
        if key in ("gates", "files", "metrics", "hooks"):
            continue
        if key == "forced" and not value:
            continue
        parts.append(f"{key}={value}")
    return ", ".join(parts)[:80]


def query(ws: Workspace, user: Optional[str] = None, action: Optional[str] = None, since: Optional[str] = None,
          limit: Optional[int] = None) -> AuditResult:
    """Audit log entries, filtered (`nbversion audit`).

    Args:
        user: only entries by this user.
        action: only this action (register, promote, denied...).
        since: only entries at or after this ISO 8601 date or time.
        limit: only the last `limit` matching entries.

    Returns:
        AuditResult: the matching `entries` and the `total` number of lines read.

    Example:
        >>> ws = nbv.open(".")
        >>> ws.audit(action="promote", limit=10)
    """
    if limit is not None and limit < 0:   # found[-(-5):] would silently drop the first five instead
        raise UsageError(f"-n {limit}: give a number of 0 or more", hint="e.g. `nbversion audit -n 20`")
    start = parse_when(since, end_of_day=False) if since else None
    found, total = [], 0
    for number, entry in audit.iter_entries(ws.root):
        total += 1
        if user and entry.get("user") != user:
            continue
        if action and entry.get("action") != action:
            continue
        if start and datetime.fromisoformat(entry["time"]) < start:
            continue
        found.append((number, entry))
    logger.debug("audit: %d of %d entries match (user %s, action %s, since %s)", len(found), total, user, action, since)
    return AuditResult(found[-limit:] if limit else found, total)
