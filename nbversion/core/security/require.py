"""`security require-signing` and `security status`: turning signed mode on, and what it is.

The commit that turns signing on is the bootstrap `audit verify` starts from: it must be signed
by an admin's key listed in the allowed_signers it commits, by an admin under the roles at its
parent. So it is refused here, before anything changes, unless the acting user is that admin.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field

from ...errors import PermissionDenied
from ..repo import identity
from ..repo.config import read_toml, write_toml
from ..result import Result
from . import signing

from typing import TYPE_CHECKING

if TYPE_CHECKING:   # annotations only: core.workspace imports this module into Workspace
    from ..workspace import Workspace

logger = logging.getLogger(__name__)


@dataclass
class SecurityResult(Result):
    signing: str                              # "required" or "off"
    signers: dict = field(default_factory=dict)   # user -> "TYPE BASE64"
    changed: str = ""

    def table(self):
        return ["user", "key"], [[user, key[:40] + "…"] for user, key in sorted(self.signers.items())]

    def summary(self):
        return self.changed or f"signing: {self.signing}; {len(self.signers)} key(s) in {signing.ALLOWED_SIGNERS}"


def _signers(ws: Workspace) -> dict:
    from . import keys
    return {s.principals[0]: s.key for s in keys.read_signers(ws.root)}


def security_status(ws: Workspace) -> SecurityResult:
    """Whether signatures are required, and whose keys are listed (`nbversion security status`).

    Returns:
        SecurityResult: `signing` ("required" or "off") and `signers`, user id -> public key.

    Example:
        >>> ws = nbv.open(".")
        >>> ws.security_status().signing
    """
    return SecurityResult(signing.REQUIRED if signing.required(ws.root) else "off", _signers(ws))


def require_signing(ws: Workspace) -> SecurityResult:
    """Turn signed mode on: from now on every change must carry a listed user's SSH signature
    (`nbversion security require-signing`; admins only, audited, and signed itself).

    Your git must sign with a key listed for you (`nbversion user add YOU --role admin --key
    KEY.pub`, `git config user.signingkey ~/.ssh/id_ed25519`).

    Returns:
        SecurityResult: `signing` ("required") and the listed `signers`.

    Example:
        >>> ws = nbv.open(".")
        >>> ws.require_signing()
    """
    if signing.required(ws.root):
        return SecurityResult(signing.REQUIRED, _signers(ws), "signing was already required; nothing changed")
    principal, key = signing.signed_identity(ws.root)
    acting = identity.current_user(ws.root)
    if principal is None:
        raise PermissionDenied(f"{acting}: your git signing key is not listed in {signing.ALLOWED_SIGNERS}"
                               + (f" ({key.problem})" if key.problem else ""),
                               hint=f"first `nbversion user add {acting} --role admin --key ~/.ssh/id_ed25519.pub` "
                                    "and `git config user.signingkey ~/.ssh/id_ed25519`")
    if principal != acting:
        raise PermissionDenied(f"you act as {acting} but your signing key is listed as {principal}",
                               hint=f"act as {principal} (git user.email or NBVERSION_USER) to turn signing on")
    with ws.transaction("security require-signing", role="admin") as tx:
        path = ws.root / signing.CONFIG_FILE
        data = read_toml(path)
        data.setdefault("security", {})["signing"] = signing.REQUIRED
        write_toml(path, data)
        tx.sign = True     # the bootstrap commit is the first signed one
        tx.audit("security", "signing", {"signing": signing.REQUIRED, "key": key.key})
        tx.commit("nbversion: require signed changes", [signing.CONFIG_FILE])
    logger.debug("signing required by %s", principal)
    return SecurityResult(signing.REQUIRED, _signers(ws),
                          f"signing is now required: every change must be signed by a key in {signing.ALLOWED_SIGNERS}")
