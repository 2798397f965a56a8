"""Registry tags that `pull` re-numbered: which tag an audit entry's `tag` stands for now.

When two clones made the same version or stage tag, `pull` re-creates the local, unpushed one
under a free name and appends a `renumber` entry; the entry that made the tag is never
rewritten. A `renumber` entry's details name the entry it re-numbers (`entry`, its hash), the
tag that entry named (`old_tag`) and the tag it stands for now (`tag`); renumbering twice
chains. `audit verify` and `pull` itself read the log through this one mapping.
"""
from __future__ import annotations

from typing import Iterable

RENUMBER = "renumber"


def add(renames: dict, entry: dict) -> None:
    """Record a `renumber` entry in `renames`: (entry hash, old tag) -> new tag."""
    details = entry.get("details") or {}
    if entry.get("action") == RENUMBER and details.get("entry") and details.get("old_tag"):
        renames[(details["entry"], details["old_tag"])] = details.get("tag")


def current(renames: dict, entry_hash: str, tag: str) -> str:
    """The tag that `tag`, as named by the entry `entry_hash`, stands for after every renumber."""
    seen = set()
    while (entry_hash, tag) in renames and tag not in seen:
        seen.add(tag)
        tag = renames[(entry_hash, tag)]
    return tag


def tags_named(entry: dict) -> list[str]:
    """The registry tags an entry made: a register's or promote's `tag`, a demote's restore tag."""
    details = entry.get("details") or {}
    return [t for t in (details.get("tag"), details.get("restore_tag")) if t]


def entry_of(entries: Iterable[dict], tag: str) -> str | None:
    """The hash of the entry that made `tag` (as it stands after every renumber), or None."""
    renames, found = {}, None
    entries = list(entries)
    for entry in entries:
        add(renames, entry)
    for entry in entries:
        if entry.get("action") in ("register", "promote", "demote"):
            for named in tags_named(entry):
                if current(renames, entry["hash"], named) == tag:
                    found = entry["hash"]    # the last one wins: a re-made tag's newest entry
    return found
