"""One page of a long list: which slice of the matching items a listing verb returns.

Every listing verb (`runs_list`, `registry`, `audit`, `log`, `dataset_list`, `model_list`) takes
`limit` and `offset` and says in its result how many items matched (`total`) and where the next
page starts, so the REST API and the CLI page the same way. Lists that grow at the end (runs,
audit entries) count their pages from the newest end: offset 0 is the newest `limit` items, still
shown in the list's own order (oldest first), the way `nbversion audit -n N` always showed them.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from ..errors import UsageError

# the REST API's page when a request gives no `limit`; the most one request may ask for
DEFAULT_LIMIT = 100
MAX_LIMIT = 1000


@dataclass
class Page:
    """`total` items matched; this page holds those from `offset` (counted as the list pages)."""

    total: int
    offset: int = 0
    limit: Optional[int] = None

    @property
    def next_offset(self) -> Optional[int]:
        """Where the next page starts, or None on the last page."""
        if self.limit is None:
            return None
        following = self.offset + self.limit
        return following if following < self.total else None

    def to_dict(self) -> dict:
        return {"total": self.total, "offset": self.offset, "limit": self.limit, "next_offset": self.next_offset}

    def describe(self, shown: int, noun: str) -> str:
        """"100 of 10000 runs" when the page is part of the list, "" when it is all of it."""
        if shown >= self.total:
            return ""
        return f"{shown} of {self.total} {noun}" + (f" (after the first {self.offset})" if self.offset else "")


def check(limit: Optional[int], offset: int = 0) -> None:
    """A negative size or start is the caller's error (a slice would quietly take the wrong items)."""
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 0):
        raise UsageError(f"limit {limit!r}: give a whole number of 0 or more", hint="e.g. limit=100")
    if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
        raise UsageError(f"offset {offset!r}: give a whole number of 0 or more",
                         hint="offset 0 is the first page; each answer's next_offset says where the next one starts")


def bounds(total: int, limit: Optional[int], offset: int = 0, from_end: bool = False) -> tuple[int, int]:
    """(start, stop) indices of the page in a list of `total` items (in the list's order).

    `from_end`: offset 0 is the last `limit` items (lists that grow at the end: runs, audit)."""
    check(limit, offset)
    size = total if limit is None else limit
    if not from_end:
        start = min(offset, total)
        return start, min(total, start + size)
    stop = max(total - offset, 0)
    return max(stop - size, 0), stop


def window(items: list, limit: Optional[int], offset: int = 0, from_end: bool = False) -> tuple[list, Page]:
    """The page of an in-memory list, and its Page."""
    start, stop = bounds(len(items), limit, offset, from_end)
    return items[start:stop], Page(len(items), offset, limit)
