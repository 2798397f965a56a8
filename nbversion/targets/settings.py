"""`target add|list|remove`: targets live under `[targets.NAME]` in `.nbversion/config.toml`.

The section is policy (an admin's edit, checked by `audit verify`): it decides where the team's
data and code are sent. A key file is a path on this machine only, so it stays out of git, in
the repository's own git config (`nbversiontarget.NAME.keyfile`), as `remote add` keeps its key
in `.dvc/config.local`.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from ..core.backends import _git
from ..core.layout import META_DIR
from ..core.repo import names
from ..core.repo.config import read_toml, write_toml
from ..core.result import Result
from ..errors import AlreadyExists, InvalidInput, NotFound, UsageError
from . import urls

logger = logging.getLogger(__name__)

CONFIG = f"{META_DIR}/config.toml"
SECTION = "targets"


@dataclass
class Target:
    name: str
    url: urls.TargetUrl
    keyfile: Optional[str] = None

    def to_dict(self) -> dict:
        return {"name": self.name, "url": self.url.url, "kind": self.url.kind, "keyfile": self.keyfile,
                "runnable": self.url.kind in urls.RUNNABLE}


@dataclass
class TargetListResult(Result):
    targets: list = field(default_factory=list)   # [{"name", "url", "kind", "keyfile", "runnable"}]
    changed: str = ""

    def table(self):
        return ["target", "kind", "url", "key file", "train --on"], [
            [t["name"], t["kind"], t["url"], t["keyfile"] or "", "yes" if t["runnable"] else "not yet"]
            for t in self.targets]

    def summary(self):
        return self.changed or ("" if self.targets else "no targets: add one with `nbversion target add NAME URL`")


def _key_setting(name: str) -> str:
    return f"nbversiontarget.{name}.keyfile"


def _read(root) -> dict:
    data = read_toml(Path(root) / CONFIG)
    section = data.get(SECTION) or {}
    if not isinstance(section, dict):
        raise InvalidInput(f"{CONFIG}: [{SECTION}] is not a table", hint="fix it or remove it by hand")
    return section


def load(root, name: str) -> Target:
    """The target `name`, its URL checked again (a hand edit of config.toml is caught here)."""
    section = _read(root)
    entry = section.get(name)
    if not isinstance(entry, dict) or not isinstance(entry.get("url"), str):
        known = ", ".join(sorted(section)) or "none"
        raise NotFound(f"no target named {name!r} in {CONFIG} (targets: {known})",
                       hint=f"add it with `nbversion target add {name} ssh://host/path`")
    try:
        parsed = urls.parse(entry["url"])
    except UsageError as exc:
        raise InvalidInput(f"{CONFIG}: [targets.{name}] {exc.message}", hint=exc.hint) from None
    return Target(name, parsed, _git.config_get(root, _key_setting(name), local_only=True))


def all_targets(root) -> list[Target]:
    return [load(root, name) for name in sorted(_read(root))]


def target_list(ws) -> TargetListResult:
    """Training targets: name, kind (ssh, slurm, ray), URL, key file (`nbversion target list`).

    Returns:
        TargetListResult: every target of the workspace.

    Example:
        >>> ws = nbv.open(".")
        >>> ws.target_list()
    """
    return TargetListResult([t.to_dict() for t in all_targets(ws.root)])


def target_add(ws, name: str, url: str, keyfile: Optional[str] = None) -> TargetListResult:
    """Add a training target: a GPU box over SSH or a Slurm cluster (Ray URLs are accepted, runs come next) (`nbversion target add`).

    Args:
        name: the target's name, for `train --on NAME`.
        url: ssh://[user@]host[:port]/path (path: where workspaces are cloned on the host),
            slurm://[user@]login-host/path?partition=P&gpus=N&time=T, or ray://head:8265.
        keyfile: an SSH private key, or a ray:// cluster's token file (kept in this repository's git
            config, out of history).

    Returns:
        TargetListResult: every target, and `changed`, the one just added.

    Example:
        >>> ws = nbv.open(".")
        >>> ws.target_add("gpubox", "ssh://me@gpu1/scratch/nbversion")
    """
    names.check_name(name, "target")
    parsed = urls.parse(url)
    if keyfile is not None:
        key = Path(keyfile).expanduser()
        if not key.is_file():
            raise NotFound(f"--keyfile {keyfile}: no such file",
                           hint="give the SSH private key's (or the Ray token file's) path")
        keyfile = str(key.resolve())
    with ws.transaction("target add", role="admin") as tx:
        data = read_toml(ws.root / CONFIG)
        section = data.setdefault(SECTION, {})
        if name in section:
            raise AlreadyExists(f"target {name!r} already exists ({section[name].get('url')})",
                                hint=f"remove it first: `nbversion target remove {name}`")
        section[name] = {"url": parsed.url}
        write_toml(ws.root / CONFIG, data)
        if keyfile:
            _git.config_set(ws.root, _key_setting(name), keyfile)
        tx.audit("target add", name, {"url": parsed.url, "kind": parsed.kind})
        tx.commit(f"nbversion: target {name}", [CONFIG])
    result = target_list(ws)
    result.changed = f"target {name}: {parsed.kind} {parsed.url}" + (
        "" if parsed.kind in urls.RUNNABLE else f" (train --on {parsed.kind} targets comes in a later version)")
    return result


def target_remove(ws, name: str) -> TargetListResult:
    """Remove a training target; runs already made on it keep their records (`nbversion target remove`).

    Args:
        name: the target's name (see `target_list`).

    Returns:
        TargetListResult: the targets left.

    Example:
        >>> ws = nbv.open(".")
        >>> ws.target_remove("gpubox")
    """
    with ws.transaction("target remove", role="admin") as tx:
        data = read_toml(ws.root / CONFIG)
        section = data.get(SECTION) or {}
        if name not in section:
            raise NotFound(f"no target named {name!r} in {CONFIG}", hint="see `nbversion target list`")
        url = section.pop(name).get("url")
        if not section:
            data.pop(SECTION, None)
        write_toml(ws.root / CONFIG, data)
        _git.config_unset(ws.root, _key_setting(name))
        tx.audit("target remove", name, {"url": url})
        tx.commit(f"nbversion: target {name} removed", [CONFIG])
    result = target_list(ws)
    result.changed = f"target {name} removed"
    return result
