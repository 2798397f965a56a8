"""The three roles and their order: viewer < contributor < admin.

Its own module, importing nothing, because the settings (a default role), the policy checks and
identity all need it, and identity itself reads the settings.
"""
from __future__ import annotations

ROLES = ("viewer", "contributor", "admin")
RANK = {role: rank for rank, role in enumerate(ROLES)}


def allows(role: str, needed: str) -> bool:
    """Whether `role` may do what needs `needed` (an unknown role may do nothing)."""
    return RANK.get(role, -1) >= RANK[needed]
