"""Public keys: `.nbversion/allowed_signers` (git's allowed-signers format) and the key a
user's git signs with (`user.signingkey`).

Only public keys are read or written here; signing and checking are git's and ssh-keygen's
(`gpg.format=ssh`). One line per user: `ID namespaces="git" TYPE BASE64 [comment]`.
"""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from ...errors import InvalidInput, UsageError
from ..backends import _git, atomic

logger = logging.getLogger(__name__)

from ..layout import ALLOWED_SIGNERS
KEY_TYPES = ("ssh-ed25519", "ssh-rsa", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521",
             "sk-ssh-ed25519@openssh.com", "sk-ecdsa-sha2-nistp256@openssh.com")
_KEY = re.compile(r"(?P<type>(?:ssh|ecdsa|sk)-[\w@.-]+)\s+(?P<blob>[A-Za-z0-9+/]+={0,3})(?:\s|$)")
_LINE = re.compile(r"^(?P<principals>\S+)\s+(?:(?P<options>\S+)\s+)??" + _KEY.pattern)


@dataclass(frozen=True)
class Signer:
    principals: tuple       # the user ids the key may sign as
    key: str                # "TYPE BASE64": what git and ssh-keygen compare


def parse_key(text: str) -> Optional[str]:
    """"TYPE BASE64" of the first public key in `text` (a .pub file, `key::...`), or None."""
    match = _KEY.search(text)
    if match is None or match["type"] not in KEY_TYPES:
        return None
    return f"{match['type']} {match['blob']}"


def read_key_argument(value: str) -> str:
    """The public key `user add --key` was given: a `.pub` file or the key's text itself."""
    path = Path(value).expanduser()
    if path.is_file():
        text = path.read_text(encoding="utf-8", errors="replace")
        if "PRIVATE KEY" in text:
            raise UsageError(f"{value} is a private key: give the public one",
                             hint=f"nbversion user add ID --role ROLE --key {value}.pub")
        key = parse_key(text)
        if key is None:
            raise InvalidInput(f"{value}: no SSH public key found in it",
                               hint="give an OpenSSH public key file, e.g. ~/.ssh/id_ed25519.pub")
        return key
    key = parse_key(value)
    if key is None:
        raise UsageError(f"{value!r} is neither a public key file nor an SSH public key",
                         hint="e.g. --key ~/.ssh/id_ed25519.pub or --key 'ssh-ed25519 AAAA...'")
    return key


def signers(text: str, where: str = ALLOWED_SIGNERS) -> list[Signer]:
    """The lines of an allowed-signers text; a line that is not one is an error naming it."""
    found = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        match = _LINE.match(line.strip())
        if match is None:
            raise InvalidInput(f"{where}, line {number}: not an allowed-signers line",
                               hint='expected `ID namespaces="git" ssh-ed25519 AAAA...`')
        found.append(Signer(tuple(match["principals"].split(",")), f"{match['type']} {match['blob']}"))
    return found


def read_signers(root: Path) -> list[Signer]:
    path = Path(root) / ALLOWED_SIGNERS
    return signers(path.read_text(encoding="utf-8")) if path.exists() else []


def principal_of(found: list[Signer], key: Optional[str]) -> Optional[str]:
    """The user id `key` signs as (its line's first principal), or None when it is not listed."""
    for signer in found if key else ():
        if signer.key == key:
            return signer.principals[0]
    return None


def set_signer(root: Path, user: str, key: str) -> Optional[str]:
    """Give `user` exactly `key` (replacing a key it had); returns the key replaced, if any.
    A key listed under another user is refused: one key, one identity."""
    path = Path(root) / ALLOWED_SIGNERS
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    owner = principal_of(signers(text), key)
    if owner not in (None, user):
        raise UsageError(f"that key is already {owner}'s in {ALLOWED_SIGNERS}",
                         hint="each user signs with their own key")
    kept, replaced = [], None
    for line in text.splitlines():
        match = _LINE.match(line.strip())
        if match and user in match["principals"].split(","):
            replaced = f"{match['type']} {match['blob']}"
            continue
        kept.append(line)
    kept.append(f'{user} namespaces="git" {key}')
    atomic.write_text(path, "\n".join(kept) + "\n")
    return replaced if replaced != key else None


@dataclass
class SigningKey:
    setting: Optional[str]      # user.signingkey as git has it (a path, or `key::...`)
    key: Optional[str]          # its public key, "TYPE BASE64", when it could be read
    problem: str = ""           # why there is none


def signing_key(root: Path) -> SigningKey:
    """The public half of the key this user's git signs with (`git config user.signingkey`)."""
    setting = _git.config_get(root, "user.signingkey")
    if not setting:
        return SigningKey(None, None, "git has no user.signingkey")
    if setting.startswith("key::"):
        return SigningKey(setting, parse_key(setting[5:]))
    path = Path(setting).expanduser()
    if not path.is_absolute():
        path = Path(root) / path
    for candidate in (path, path.with_name(path.name + ".pub")):
        if candidate.is_file():
            text = candidate.read_text(encoding="utf-8", errors="replace")
            if "PRIVATE KEY" not in text:
                return SigningKey(setting, parse_key(text))
    if path.is_file():   # a private key without its .pub beside it: ask ssh-keygen (never prompts)
        import subprocess
        proc = subprocess.run(["ssh-keygen", "-y", "-P", "", "-f", str(path)], capture_output=True, text=True,
                              stdin=subprocess.DEVNULL, timeout=10)
        if proc.returncode == 0:
            return SigningKey(setting, parse_key(proc.stdout))
        logger.debug("ssh-keygen -y %s: %s", path, proc.stderr.strip())
        return SigningKey(setting, None, f"cannot read the public key of {setting} (put {path.name}.pub beside it)")
    return SigningKey(setting, None, f"user.signingkey {setting} is not a file")
