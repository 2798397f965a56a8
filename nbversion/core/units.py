"""Sizes as people read them, the same in every verb (`dataset list`, `diff`, `model list`...).

Decimal (SI) units, like disk vendors, cloud consoles and the Hugging Face hub: 1 kB = 1000 bytes.
"""
from __future__ import annotations

from typing import Optional

_UNITS = ("B", "kB", "MB", "GB", "TB")


def human_bytes(size: Optional[float]) -> str:
    """`205.3 kB`, `1.5 GB`; whole bytes below 1 kB; "" when the size is not known (None)."""
    if size is None:
        return ""
    size = float(size)
    for unit in _UNITS:
        if abs(size) < 1000 or unit == _UNITS[-1]:
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    raise AssertionError("unreachable: the last unit always returns")
