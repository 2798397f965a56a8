"""`user add`, `user list`, `whoami`: roles in the committed `.nbversion/users.toml`."""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Optional

from ...errors import UsageError
from ..result import Result
from ..security import signing
from . import identity
from .config import META_DIR, read_toml, write_toml

from typing import TYPE_CHECKING

logger = logging.getLogger(__name__)

if TYPE_CHECKING:   # annotations only: core.workspace imports this module into Workspace
    from ..workspace import Workspace


ADVISORY = "advisory (unsigned)"
SIGNED = "signed (required)"


@dataclass
class WhoamiResult(Result):
    user: str
    role: str
    source: str
    # without keys, an identity is what the environment says: local role checks stop mistakes,
    # `audit verify` re-checks the record; signed mode (keys) is what makes roles hold
    mode: str = ADVISORY
    signing_key: Optional[str] = None     # user.signingkey as git has it
    key_listed_as: Optional[str] = None   # the id allowed_signers gives that key, if any
    key_problem: str = ""

    def table(self):
        key = self.signing_key or "none"
        key += f" (listed as {self.key_listed_as})" if self.key_listed_as else \
            f" ({self.key_problem or 'not in allowed_signers'})" if self.signing_key else ""
        return (["user", "role", "identity from", "roles", "signing key"],
                [[self.user, self.role, self.source, self.mode, key]])


@dataclass
class UserListResult(Result):
    users: dict = field(default_factory=dict)
    changed: str | None = None

    def table(self):
        return ["user", "role"], [[u, r] for u, r in sorted(self.users.items())]

    def summary(self):
        return self.changed or ""


def whoami(ws: Workspace) -> WhoamiResult:
    """Your identity in this workspace, your role, and where the identity came from (`nbversion whoami`).

    Returns:
        WhoamiResult: `user`, `role`, `source` (environment, JupyterHub, git config, signing key),
        `mode` ("advisory (unsigned)": roles are checked locally and by `audit verify`, not proven by
        keys; "signed (required)": every change carries the user's SSH signature), `signing_key`
        (git's user.signingkey) and `key_listed_as` (the id allowed_signers gives it).

    Example:
        >>> ws = nbv.open(".")
        >>> ws.whoami().role
    """
    user = identity.current_user(ws.root)
    principal, key = signing.signed_identity(ws.root)
    if signing.required(ws.root):
        mode = SIGNED if principal else f"{SIGNED}; your key is not listed: you cannot change anything"
    else:
        mode = ADVISORY + ("; your key is listed, signing is not required yet" if principal else "")
    return WhoamiResult(user, identity.role_of(ws.root, user), identity.identity_source(ws.root), mode,
                        key.setting, principal, key.problem)


def user_list(ws: Workspace) -> UserListResult:
    """Users and their roles (`nbversion user list`).

    Returns:
        UserListResult: `users`, a mapping of user id to role.

    Example:
        >>> ws = nbv.open(".")
        >>> ws.user_list().users
    """
    return UserListResult(identity.users(ws.root))


MAX_ID = 254   # the longest e-mail address; JupyterHub names are shorter


def user_add(ws: Workspace, user_id: str, role: str, key: Optional[str] = None) -> UserListResult:
    """Give a user a role, and optionally their SSH public key; admins only, audited (`nbversion user add`).

    Args:
        user_id: an identity: an e-mail or a JupyterHub name, no spaces.
        role: "admin", "contributor" or "viewer".
        key: a public key file (`~/.ssh/id_ed25519.pub`) or the key's text: recorded in
            `.nbversion/allowed_signers`, so that the user's signed commits and tags count as theirs.

    Returns:
        UserListResult: every user and role, and `changed`, the user just set.

    Example:
        >>> ws = nbv.open(".")
        >>> ws.user_add("ana@example.com", "contributor")
    """
    if not user_id or len(user_id) > MAX_ID or any(c.isspace() or not c.isprintable() for c in user_id):
        shown = user_id if len(user_id) <= 60 else user_id[:59] + "…"
        raise UsageError(f"{shown!r} is not a user id: an e-mail or a JupyterHub name, 1 to {MAX_ID} characters, "
                         "no spaces", hint="e.g. `nbversion user add ana@example.com --role contributor`")
    if role not in identity.ROLES:
        raise UsageError(f"unknown role {role!r}", hint="use one of: " + ", ".join(identity.ROLES))
    from ..security import keys   # only `user add --key` parses keys
    public_key = keys.read_key_argument(key) if key else None
    with ws.transaction("user add", role="admin") as tx:
        path = ws.root / META_DIR / "users.toml"
        data = read_toml(path)
        table = data.setdefault("users", {})
        before = table.get(user_id)
        table[user_id] = role
        write_toml(path, data)
        logger.debug("user %s: role %s -> %s", user_id, before, role)
        details = {"role": role, "previous_role": before}
        paths = [f"{META_DIR}/users.toml"]
        if public_key:
            replaced = keys.set_signer(ws.root, user_id, public_key)
            details.update(key=public_key, **({"replaced_key": replaced} if replaced else {}))
            paths.append(keys.ALLOWED_SIGNERS)
        tx.audit("user add", user_id, details)
        tx.commit(f"nbversion: {user_id} is {role}", paths)
    said = f"{user_id} is now {role}" + (f" (was {before})" if before else "")
    return UserListResult(table, said + (f", signing with {public_key[:28]}…" if public_key else ""))
