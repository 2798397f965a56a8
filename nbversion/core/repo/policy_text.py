"""Pointing at a line of a policy file (`.nbversion/*.toml`): shared by the settings and the checks."""
from __future__ import annotations

from ...errors import InvalidInput


def is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def line_of(text: str, *needles: str) -> int:
    """The first line holding the first needle found (0: none)."""
    for needle in needles:
        for number, line in enumerate(text.splitlines(), start=1):
            if needle and needle in line:
                return number
    return 0


def invalid_at(rel: str, line: int, what: str, hint: str) -> InvalidInput:
    return InvalidInput(f"{rel}:{line}: {what}" if line else f"{rel}: {what}",
                        hint=f"{hint}; nothing was committed")
