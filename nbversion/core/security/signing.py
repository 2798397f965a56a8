"""Whether this workspace requires signatures, and the acting identity when it does.

`security.signing = "required"` in the committed `.nbversion/config.toml` turns signed mode on:
every commit and tag nbversion makes is signed with the acting user's SSH key (git's
`gpg.format=ssh`), and the acting identity is the principal `allowed_signers` gives that key,
not an environment variable.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Optional

from ...errors import PermissionDenied
from .. import layout
from ..layout import META_DIR

# `keys` (regular expressions, subprocess) is imported where a key is read: every verb asks
# `required()`, and only signed workspaces read keys

if TYPE_CHECKING:
    from . import keys

logger = logging.getLogger(__name__)

CONFIG_FILE = f"{META_DIR}/config.toml"
ALLOWED_SIGNERS = layout.ALLOWED_SIGNERS
REQUIRED = "required"


def required(root: Path) -> bool:
    """Whether the workspace's config (as checked out) requires signatures."""
    from ..repo.config import read_toml
    section = read_toml(Path(root) / CONFIG_FILE).get("security", {})
    return isinstance(section, dict) and section.get("signing") == REQUIRED


def required_in(text: Optional[bytes]) -> bool:
    """The same, for a config.toml as committed somewhere in history (unreadable: not required)."""
    from ..repo.config import tomllib
    if not text:
        return False
    try:
        section = tomllib.loads(text.decode()).get("security", {})
    except (ValueError, UnicodeDecodeError):
        return False
    return isinstance(section, dict) and section.get("signing") == REQUIRED


def signed_identity(root: Path) -> tuple[Optional[str], "keys.SigningKey"]:
    """(the principal this user's signing key has in allowed_signers or None, the key)."""
    from . import keys
    key = keys.signing_key(root)
    return keys.principal_of(keys.read_signers(root), key.key), key


def require_signer(root: Path) -> str:
    """The acting user in signed mode; refuses (before anything changes) a user whose git has no
    signing key listed in allowed_signers."""
    from . import keys
    principal, key = signed_identity(root)
    if principal:
        return principal
    why = key.problem or f"the key of user.signingkey ({key.setting}) is not in {keys.ALLOWED_SIGNERS}"
    raise PermissionDenied(f"this workspace requires signed changes, and {why}",
                           hint="ask an admin to run `nbversion user add YOU --role ROLE --key YOUR_KEY.pub`, "
                                "and point git at your key: git config user.signingkey ~/.ssh/id_ed25519")
