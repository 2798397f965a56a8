"""`audit [--user U] [--action A] [--since DATE] [-n N]`: the audit log's entries, filtered."""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Optional

from ...errors import UsageError
from .. import paging
from ..registry.resolve import parse_when
from ..result import Result
from . import chain as audit

logger = logging.getLogger(__name__)

if TYPE_CHECKING:   # annotations only: core.workspace imports this module into Workspace
    from ..workspace import Workspace


@dataclass
class AuditResult(Result):
    entries: list = field(default_factory=list)     # (line number, entry)
    total: int = 0                                  # entries that match the filters
    page: Optional[paging.Page] = None

    def table(self):
        rows = [[n, e["time"][:19], e["user"], e["action"], e["target"], _short(e.get("details"))]
                for n, e in self.entries]
        return ["line", "time", "user", "action", "target", "details"], rows

    def highlight(self, row) -> bool:
        return row[3] in ("denied", "promote refused") or "forced" in row[5]

    def summary(self):
        return f"{len(self.entries)} of {self.total} entries"

    def to_dict(self):
        return {"total": self.total, "entries": [{"line": n, **e} for n, e in self.entries],
                **({k: v for k, v in self.page.to_dict().items() if k != "total"} if self.page else {})}


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


_UTC_SHAPE = len("2026-01-31T14:00:00.000000+00:00")


class _Filter:
    """Decides from a line's raw bytes when the line has the shape `chain.append` writes (keys
    sorted, no spaces: `{"action":...` first, `"time"` then `"user"` last); any other line is
    parsed as JSON. Reading 10,000 entries to keep 100 costs a few ms instead of 10,000 parses."""

    def __init__(self, user: Optional[str], action: Optional[str], start: Optional[datetime]):
        self.user, self.action, self.start = user, action, start
        dump = lambda text: json.dumps(text, ensure_ascii=False).encode()
        self.action_prefix = b'{"action":' + dump(action) + b"," if action else None
        self.user_suffix = b',"user":' + dump(user) + b"}" if user else None
        self.start_text = start.astimezone(timezone.utc).isoformat(timespec="microseconds").encode() \
            if start else None

    def __bool__(self) -> bool:
        return bool(self.user or self.action or self.start)

    def keeps(self, raw: bytes) -> bool:
        user_at = raw.rfind(b',"user":"')
        time_at = raw.rfind(b',"time":"', 0, user_at)
        if not (raw.startswith(b'{"action":"') and raw.endswith(b'"}') and time_at > 0
                and raw.count(b'"', user_at + 9, len(raw) - 2) == raw.count(b'\\"', user_at + 9, len(raw) - 2)):
            return self._keeps_entry(json.loads(raw))
        if self.action_prefix and not raw.startswith(self.action_prefix):
            return False
        if self.user_suffix and not raw.endswith(self.user_suffix):
            return False
        if self.start_text:
            when = raw[time_at + 9:raw.find(b'"', time_at + 9)]
            if len(when) == _UTC_SHAPE and when.endswith(b"+00:00"):
                return when >= self.start_text
            return datetime.fromisoformat(when.decode()) >= self.start
        return True

    def _keeps_entry(self, entry: dict) -> bool:
        if self.user and entry.get("user") != self.user:
            return False
        if self.action and entry.get("action") != self.action:
            return False
        return not (self.start and datetime.fromisoformat(entry["time"]) < self.start)


def _lines(root) -> list[tuple[int, bytes]]:
    """(line number, raw line) of every non-empty line of the log."""
    try:
        data = (Path(root) / audit.AUDIT_FILE).read_bytes()
    except FileNotFoundError:
        return []
    return [(number, raw) for number, raw in enumerate(data.split(b"\n"), start=1) if raw.strip()]


def query(ws: Workspace, user: Optional[str] = None, action: Optional[str] = None, since: Optional[str] = None,
          limit: Optional[int] = None, offset: int = 0) -> AuditResult:
    """Audit log entries, filtered (`nbversion audit`).

    Args:
        user: only entries by this user.
        action: only this action (register, promote, denied...).
        since: only entries at or after this ISO 8601 date or time.
        limit: only the last `limit` matching entries.
        offset: skip this many of the newest matching entries first (the next page back).

    Returns:
        AuditResult: the matching `entries` on the page (oldest first), the `total` number of
        matching entries and the `page`.

    Example:
        >>> ws = nbv.open(".")
        >>> ws.audit(action="promote", limit=10)
    """
    if limit is not None and limit < 0:   # found[-(-5):] would silently drop the first five instead
        raise UsageError(f"-n {limit}: give a number of 0 or more", hint="e.g. `nbversion audit -n 20`")
    paging.check(limit, offset)
    wanted = _Filter(user, action, parse_when(since, end_of_day=False) if since else None)
    lines = _lines(ws.root)
    found = [(n, raw) for n, raw in lines if wanted.keeps(raw)] if wanted else lines
    start, stop = paging.bounds(len(found), limit or None, offset, from_end=True)
    logger.debug("audit: %d of %d entries match (user %s, action %s, since %s)", len(found), len(lines), user,
                 action, since)
    return AuditResult([(n, json.loads(raw)) for n, raw in found[start:stop]], len(found),
                       paging.Page(len(found), offset, limit or None))
