"""Who is acting, and what their role allows.

Signed mode (`security.signing = "required"`): the identity is the principal `allowed_signers`
gives the user's git signing key. Advisory mode: the user a Jupyter server authenticated, while a
REST request acts as them (`acting_as`), else NBVERSION_USER, else JUPYTERHUB_USER, else git
user.email. Roles live in the committed `.nbversion/users.toml`: in advisory mode local checks
stop mistakes, and `audit verify` re-checks them against the roles in force at each commit.
"""
from __future__ import annotations

import getpass
import logging
import os
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path

from ...errors import PermissionDenied
from ..backends import _git
from ..security import signing
from .config import META_DIR, load_config, read_toml, tomllib
from .roles import RANK, ROLES, allows  # noqa: F401 (identity.ROLES / allows, as users and audit verify read them)

logger = logging.getLogger(__name__)

# (user, where that identity came from) of the operation in progress, set by the REST handler
# to the user the Jupyter server authenticated: it wins over the server's environment, which
# the person running that server controls
_ACTING: ContextVar[tuple[str, str] | None] = ContextVar("nbversion_acting_as", default=None)


@contextmanager
def acting_as(user: str, source: str):
    """Within the block (this thread or task only), act as `user`: roles, audit and git author."""
    token = _ACTING.set((user, source))
    try:
        with _git.authored_by(user):
            yield
    finally:
        _ACTING.reset(token)


def current_user(root: Path | None = None) -> str:
    if root is not None and signing.required(root):   # signed mode: the key says who acts
        principal, _ = signing.signed_identity(root)
        if principal:
            return principal
    acting = _ACTING.get()
    if acting:
        return acting[0]
    for var in ("NBVERSION_USER", "JUPYTERHUB_USER"):
        if os.environ.get(var):
            return os.environ[var]
    email = _git.identity_email(root or Path.cwd())
    if email:
        return email
    return getpass.getuser()


def identity_source(root: Path | None = None) -> str:
    if root is not None and signing.required(root) and signing.signed_identity(root)[0]:
        return "signing key (allowed_signers)"
    acting = _ACTING.get()
    if acting:
        return acting[1]
    for var in ("NBVERSION_USER", "JUPYTERHUB_USER"):
        if os.environ.get(var):
            return var
    return "git user.email"


def users(root: Path) -> dict[str, str]:
    return dict(read_toml(Path(root) / META_DIR / "users.toml").get("users", {}))


def users_at(root, rev: str) -> dict | None:
    """users.toml as committed at `rev` (None: there is none; {} when it is unreadable)."""
    text = _git.show(root, rev, f"{META_DIR}/users.toml")
    if text is None:
        return None
    try:
        return dict(tomllib.loads(text.decode()).get("users", {}))
    except (ValueError, UnicodeDecodeError):
        logger.debug("users.toml at %s is unreadable: no roles there", rev, exc_info=True)
        return {}


def role_of(root: Path, user: str, table: dict | None = None) -> str:
    table = users(root) if table is None else table
    return table.get(user) or load_config(root)["core"]["default_role"]


def require(root: Path, needed: str, action: str) -> str:
    """Raise PermissionDenied (and audit the refusal) unless the current user has `needed`."""
    signed = signing.required(root)
    user = signing.require_signer(root) if signed else current_user(root)
    role = role_of(root, user)
    logger.debug("%s: user %s (from %s) is %s; needs %s", action, user, identity_source(root), role, needed)
    if allows(role, needed):
        return user
    if role not in RANK:   # a typo in users.toml is not a refusal to audit: say where it is
        from .policy_check import check_users
        check_users(Path(root))
    from ..audit import chain as audit
    from ..backends.lock import workspace_lock
    with workspace_lock(root, f"refused {action}"):
        audit.append(root, user, "denied", action, {"role": role, "needed": needed})
        _git.add(root, [str(audit.AUDIT_FILE)])
        _git.commit(root, f"nbversion: denied {action} to {user}", user, [str(audit.AUDIT_FILE)], sign=signed)
    raise PermissionDenied(
        f"{user} is a {role}; `{action}` needs the {needed} role",
        hint=f"ask an admin to run `nbversion user add {user} --role {needed}`",
    )
