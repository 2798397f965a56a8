"""One thing `verify` found wrong, and whether `--repair` fixed it.

Its own module because the checks live where their subject does (leftover temp folders in
`repo/leftovers.py`, hard links in `protection.py`) and `verify` gathers them: each check
builds Problems without importing `verify`.
"""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Problem:
    kind: str            # missing | corrupt | not on remote | immutability | half registration | audit | lock
    what: str            # the object, tag or file at fault
    affects: list = field(default_factory=list)
    detail: str = ""
    repaired: bool = False
