"""One name rule for everything nbversion names: datasets, models, registry names, stages,
experiments and remotes, checked before anything is written.

The rule is GTO's artifact-name rule (`gto/constants.py`: letters, digits, '-' and '_',
starting and ending with a letter or digit; GTO's '/' is left out because our names become
folders), so a name `model add` accepts is one `register` and `gto show` accept. A name is at
most MAX_NAME characters, which keeps every path component nbversion builds from it
(`NAME.meta.json`, `NAME@vX.Y.Z`, `NAME#stage#N` and git's `.lock` beside each) under the
255-byte file-name limit. Names that earlier versions created under a looser rule (dots
allowed) stay readable (`check_readable_name`) and can get new versions. Tags (`--tag T`, version and stage tags) must also pass
`git check-ref-format` and the same limit.
"""
from __future__ import annotations

import re

from ...errors import UsageError

NAME_PATTERN = r"[A-Za-z0-9](?:[A-Za-z0-9_-]*[A-Za-z0-9])?"    # also embedded in the registry's tag regex
NAME_RE = re.compile(rf"^{NAME_PATTERN}$")
# what earlier versions accepted for datasets and models (dots allowed): still readable
LEGACY_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
MAX_NAME = 100
MAX_COMPONENT_BYTES = 255
# git writes `<ref>.lock` next to a loose ref while it updates it
REF_LOCK_SUFFIX = ".lock"
RULE = ("letters, digits, '-' and '_', starting and ending with a letter or digit, "
        f"at most {MAX_NAME} characters (GTO's rule: no dots, no spaces)")


def check_name(name, kind: str = "dataset") -> str:
    """`name` if it follows the rule, else a UsageError that says the rule."""
    shown = _shown(name)
    if not isinstance(name, str) or not name:
        raise UsageError(f"a {kind} needs a name", hint=f"use {RULE}")
    if len(name) > MAX_NAME:
        raise UsageError(f"invalid {kind} name {shown}: {len(name)} characters long (at most {MAX_NAME})",
                         hint="choose a shorter name: it becomes a folder and a git tag")
    if not NAME_RE.fullmatch(name):   # `$` alone would let a trailing newline through
        raise UsageError(f"invalid {kind} name {shown}", hint=f"use {RULE}")
    return name


def check_readable_name(name, kind: str = "dataset") -> str:
    """A dataset or model name to READ (show, diff, train --data): the rule above, or a dotted
    name an earlier version created."""
    if isinstance(name, str) and (NAME_RE.fullmatch(name) or (
            LEGACY_NAME_RE.fullmatch(name) and not name.endswith((".dvc", ".json")))):
        return name
    raise UsageError(f"{_shown(name)} is not a valid {kind} name", hint=f"use {RULE}")


def is_legacy_name(name) -> bool:
    """A dotted name only the looser rule of earlier versions allowed."""
    return isinstance(name, str) and bool(LEGACY_NAME_RE.fullmatch(name)) and not NAME_RE.fullmatch(name)


def check_tag(tag, what: str = "tag", given=None) -> str:
    """A git tag name nbversion will create: valid for `git check-ref-format`, short enough.
    `given`: what the user typed, when the tag is built from it (`--tag T` -> dataset/NAME/T)."""
    from ..backends import _git

    shown = _shown(tag if given is None else given)
    if not isinstance(tag, str) or not tag:
        raise UsageError(f"empty {what}", hint="give a tag such as v1 or reviewed")
    longest = max(len(part.encode()) for part in tag.split("/")) + len(REF_LOCK_SUFFIX)
    if longest > MAX_COMPONENT_BYTES:
        raise UsageError(f"invalid {what} {shown}: too long ({len(tag.encode())} bytes)",
                         hint=f"each part of a tag must stay under {MAX_COMPONENT_BYTES - len(REF_LOCK_SUFFIX)} bytes")
    if tag != tag.strip() or not _git.ref_format_ok(f"refs/tags/{tag}"):
        raise UsageError(f"invalid {what} {shown}",
                         hint="git refuses it (see `git check-ref-format`): no '..', spaces, '~^:?*[\\', "
                              "no trailing '.' or '.lock'; e.g. v1, reviewed, 2024-06")
    return tag


def _shown(value) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:40] + "..." + text[-12:]
