"""`guard install|remove|status REMOTE`: a remote that checks every push before it accepts it.

Roles live in git, so a clone's own checks are advisory: whoever can push can push anything.
The shared point can refuse, though. `guard install` puts a `pre-receive` hook into the
remote's bare git repository (a folder remote directly, an `ssh://` remote over ssh) that runs
`nbversion guard pre-receive` (core/audit/receive.py) on the remote's machine, with the
nbversion installed there. Hosted git (GitHub, GitLab) takes no hooks: docs/guard.md has the
CI job that runs `audit verify` on every push instead.
"""
from __future__ import annotations

import logging
import os
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Optional
from urllib.parse import urlparse

from ...errors import AlreadyExists, NbversionError, NotFound, RemoteUnreachable, UsageError
from ..backends import _git, _git_sync
from ..result import Result
from .remotes import folder_path, ssh_command

from typing import TYPE_CHECKING

if TYPE_CHECKING:   # annotations only: core.workspace imports this module into Workspace
    from ...events import EventCallback
    from ..workspace import Workspace

logger = logging.getLogger(__name__)

HOOK = "hooks/pre-receive"
VERB = ["guard", "pre-receive"]   # what the hook runs, after the nbversion found on the remote's machine
MARK = "# nbversion guard"      # the line that tells our hook from a hook someone else wrote
NO_NBVERSION = "the remote host has no nbversion; install it there: pip install nbversion"
HOSTED_HINT = "for hosted git (GitHub, GitLab), run `nbversion audit verify` in CI on every push: see docs/guard.md"


@dataclass
class GuardResult(Result):
    remote: str
    history: str            # the bare repo: a folder, or an ssh:// URL
    state: str              # "installed", "not installed", or "another pre-receive hook"
    command: str = ""       # what the hook runs
    changed: str = ""

    def table(self):
        rows = [["remote", self.remote], ["history", self.history], ["guard", self.state]]
        return ["", ""], rows + ([["runs", self.command]] if self.command else [])

    def summary(self):
        return self.changed or f"guard on {self.remote}: {self.state}"


def hook_text(command: list[str]) -> str:
    return (f"#!/bin/sh\n{MARK}: refuses a push whose commits or tags fail `nbversion audit verify`.\n"
            "# Installed by `nbversion guard install`; `nbversion guard remove` takes it out.\n"
            f"exec {shlex.join(command)}\n")


def hook_command(text: str) -> str:
    """The command line of a hook we wrote ("" for another hook)."""
    lines = text.splitlines()
    if not any(line.startswith(MARK) for line in lines):
        return ""
    return next((line[len("exec "):] for line in lines if line.startswith("exec ")), "")


def local_nbversion() -> list[str]:
    """This nbversion, by absolute path: a hook runs with git's environment, not the user's shell."""
    script = Path(sys.executable).with_name("nbversion")
    # -P: the hook runs inside the bare repo, which must not shadow the package
    return ([str(script)] if script.is_file() else [sys.executable, "-P", "-m", "nbversion"]) + VERB


def history_url(ws: Workspace, remote: str) -> tuple[str, str]:
    """("folder" | "ssh", location) of remote `remote`'s bare git repository."""
    url = _git_sync.remotes(ws.root).get(remote)
    if url is None:
        raise NotFound(f"unknown remote {remote!r} (no git history URL of that name)",
                       hint="see `nbversion remote list`; add one with `nbversion remote add NAME URL`")
    scheme = urlparse(url).scheme
    if scheme == "ssh":
        return "ssh", url
    if scheme in ("", "file"):
        path = folder_path(url)
        if (path / "HEAD").is_file() and (path / "objects").is_dir():
            return "folder", str(path)
    raise UsageError(f"remote {remote!r} keeps its history at {url}, which is neither a bare repository in a "
                     "folder of this machine nor an ssh:// URL: nbversion cannot put a hook there",
                     hint=HOSTED_HINT)


# --- the two kinds of remote: a folder here, a folder on an SSH server ------------------------

def _folder_state(bare: Path) -> tuple[str, str]:
    hook = bare / HOOK
    if not hook.exists():
        return "not installed", ""
    command = hook_command(hook.read_text(errors="replace"))
    return ("installed", command) if command else ("another pre-receive hook", "")


def _write_hook(path: Path, text: str) -> None:
    """Executable before it takes the hook's name: git skips a hook it cannot execute, and a push
    in between would go unchecked."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.nbversion-tmp")
    temporary.write_text(text)
    temporary.chmod(0o755)
    os.replace(temporary, path)


def _ssh(ws: Workspace, url: str, script: str, stdin: Optional[str] = None) -> subprocess.CompletedProcess:
    """Run `script` with the remote's login shell, logged in as git's push does (the remote's keyfile)."""
    parts = urlparse(url)
    target = (f"{parts.username}@" if parts.username else "") + (parts.hostname or "")
    base = shlex.split(_git.config_get(ws.root, "core.sshCommand") or "") or ssh_command(None)
    cmd = base + (["-p", str(parts.port)] if parts.port else []) + [target, script]
    proc = subprocess.run(cmd, input=stdin, capture_output=True, text=True, timeout=120)
    if proc.returncode == 255:   # ssh's own failure, not the script's
        raise RemoteUnreachable(f"could not log in to {target}: {proc.stderr.strip()[-300:]}",
                                hint="check the SSH login (try `ssh` by hand with the remote's key)")
    return proc


def _ssh_probe(ws: Workspace, url: str) -> dict:
    """What the SSH host has: the repo, our hook or another, and where nbversion is on its PATH."""
    repo = shlex.quote(urlparse(url).path)
    script = (f"r={repo}; if [ -f \"$r/HEAD\" ] && [ -d \"$r/objects\" ]; then echo repo=yes; fi; "
              f"h=\"$r/{HOOK}\"; if [ -e \"$h\" ]; then if grep -q '^{MARK}' \"$h\"; "
              "then echo hook=ours; sed -n 's/^exec //p' \"$h\"| sed 's/^/command=/'; else echo hook=foreign; fi; fi; "
              "if p=$(command -v nbversion); then echo script=$p; fi; "
              "for py in python3 python; do if p=$(command -v $py) && \"$p\" -c 'import nbversion.cli' >/dev/null 2>&1; "
              "then echo python=$p; break; fi; done; true")
    proc = _ssh(ws, url, script)
    found = dict(line.split("=", 1) for line in proc.stdout.splitlines() if "=" in line)
    logger.debug("ssh probe of %s: %s (stderr %s)", url, found, proc.stderr.strip())
    return found


def _ssh_state(found: dict) -> tuple[str, str]:
    hook = found.get("hook")
    if hook == "ours":
        return "installed", found.get("command", "")
    return ("another pre-receive hook", "") if hook == "foreign" else ("not installed", "")


def _ssh_nbversion(found: dict, url: str) -> list[str]:
    if found.get("script", "").startswith("/"):
        return [found["script"], *VERB]
    if found.get("python", "").startswith("/"):
        return [found["python"], "-P", "-m", "nbversion", *VERB]
    host = urlparse(url).hostname
    raise NbversionError(f"{NO_NBVERSION} (nothing named nbversion on the PATH of an ssh session on {host}, "
                         "and no python3 there imports it)",
                         hint=f"on {host}: pip install nbversion, where its SSH sessions find it on their PATH; "
                              "then run `nbversion guard install` again")


# --- the verbs --------------------------------------------------------------------------------

def _refuse_foreign(remote: str, where: str, state: str) -> None:
    if state == "another pre-receive hook":
        raise AlreadyExists(f"{where}/{HOOK} is a pre-receive hook nbversion did not write; it is left as it is",
                            hint="remove or rename it on the remote, or call `nbversion guard pre-receive` from it "
                                 "(it reads the same stdin), then run `nbversion guard install` again")


def install(ws: Workspace, remote: str, on_event: Optional[EventCallback] = None) -> GuardResult:
    """Make a remote refuse pushes that fail `audit verify` (`nbversion guard install`; admins).

    Puts a `pre-receive` hook into the remote's bare git repository: a folder remote directly,
    an ssh:// remote over ssh (whose host must have nbversion installed). The hook refuses a
    push whose new commits or tags fail verification, naming the commit and the rule, and any
    push that deletes or moves a version or stage tag. Installing again updates the hook.

    Args:
        remote: the remote's name (`nbversion remote list`).
        on_event: unused; kept so every verb takes it.

    Returns:
        GuardResult: the remote, its bare repo, "installed" and the command the hook runs.

    Example:
        >>> ws = nbv.open(".")
        >>> ws.guard_install("team")
    """
    from ..repo import identity

    identity.require(ws.root, "admin", "guard install")
    kind, where = history_url(ws, remote)
    if kind == "folder":
        _refuse_foreign(remote, where, _folder_state(Path(where))[0])
        command = local_nbversion()
        _write_hook(Path(where) / HOOK, hook_text(command))
    else:
        found = _ssh_probe(ws, where)
        if found.get("repo") != "yes":
            raise NotFound(f"{where} is not a git repository on its host", hint="push to the remote once first")
        _refuse_foreign(remote, where, _ssh_state(found)[0])
        command = _ssh_nbversion(found, where)
        path = shlex.quote(f"{urlparse(where).path}/{HOOK}")
        proc = _ssh(ws, where, f"mkdir -p $(dirname {path}) && cat > {path}.tmp && chmod 755 {path}.tmp "
                               f"&& mv -f {path}.tmp {path}", stdin=hook_text(command))
        if proc.returncode != 0:
            raise RemoteUnreachable(f"could not write {where}/{HOOK}: {proc.stderr.strip()[-300:]}",
                                    hint="check that the SSH user may write the repository's hooks folder")
    command = shlex.join(command)
    logger.debug("guard installed on %s (%s): %s", remote, where, command)
    return GuardResult(remote, where, "installed", command,
                       f"guard installed on {remote}: every push to {where} is verified")


def remove(ws: Workspace, remote: str, on_event: Optional[EventCallback] = None) -> GuardResult:
    """Take the guard's hook off a remote (`nbversion guard remove`; admins). Another hook is left alone.

    Args:
        remote: the remote's name.
        on_event: unused; kept so every verb takes it.

    Returns:
        GuardResult: the remote and "not installed".

    Example:
        >>> ws = nbv.open(".")
        >>> ws.guard_remove("team")
    """
    from ..repo import identity

    identity.require(ws.root, "admin", "guard remove")
    kind, where = history_url(ws, remote)
    state = _folder_state(Path(where))[0] if kind == "folder" else _ssh_state(_ssh_probe(ws, where))[0]
    _refuse_foreign(remote, where, state)
    if state == "installed":
        if kind == "folder":
            (Path(where) / HOOK).unlink()
        else:
            _ssh(ws, where, f"rm -f {shlex.quote(urlparse(where).path + '/' + HOOK)}")
    changed = f"guard removed from {remote}" if state == "installed" else f"{remote} had no guard"
    return GuardResult(remote, where, "not installed", changed=changed)


def status(ws: Workspace, remote: str) -> GuardResult:
    """Whether a remote's pushes are verified, and by which nbversion (`nbversion guard status`).

    Args:
        remote: the remote's name.

    Returns:
        GuardResult: "installed", "not installed" or "another pre-receive hook", and the command it runs.

    Example:
        >>> ws = nbv.open(".")
        >>> ws.guard_status("team").state
    """
    kind, where = history_url(ws, remote)
    state, command = _folder_state(Path(where)) if kind == "folder" else _ssh_state(_ssh_probe(ws, where))
    return GuardResult(remote, where, state, command)
