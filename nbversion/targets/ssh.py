"""Commands and file reads on an ssh:// target, over one shared connection (ControlMaster).

The same `ssh` options as remotes (`remotes.ssh_command`: BatchMode, the key file); the
connection is opened once and reused for the many small polls of a live run.
"""
from __future__ import annotations

import hashlib
import logging
import os
import shlex
import subprocess
import tempfile
from pathlib import Path
from typing import Optional

from ..core.storage.remotes import ssh_command
from ..errors import RemoteUnreachable

logger = logging.getLogger(__name__)

SEPARATOR = "----nbversion-target-separator----"


class Host:
    """One ssh:// target: `run` a shell command there, `read` files there."""

    def __init__(self, target):
        self.target, self.url = target, target.url

    def _control(self) -> list:
        # a socket path must stay under ~100 bytes: a short folder of our own in /tmp
        folder = Path(tempfile.gettempdir()) / f"nbv-ssh-{os.getuid()}"
        folder.mkdir(mode=0o700, exist_ok=True)
        name = hashlib.sha1(f"{self.url.login}:{self.url.port}:{self.target.keyfile}".encode()).hexdigest()[:16]
        return ["-o", "ControlMaster=auto", "-o", f"ControlPath={folder / name}", "-o", "ControlPersist=60",
                "-o", "ConnectTimeout=20"]

    @property
    def local(self) -> bool:
        """slurm://localhost/PATH (no user, no port): the notebook runs on the login node; no SSH."""
        return self.url.kind == "slurm" and self.url.host == "localhost" and not self.url.user and not self.url.port

    def command(self, script: str) -> list:
        if self.local:
            return ["/bin/sh", "-c", script]
        port = ["-p", str(self.url.port)] if self.url.port else []
        return ssh_command(self.target.keyfile) + self._control() + port + [self.url.login, script]

    def run(self, script: str, check: bool = True, timeout: float = 600, what: str = "") -> subprocess.CompletedProcess:
        logger.debug("ssh %s: %s", self.url.login, script)
        try:
            proc = subprocess.run(self.command(script), capture_output=True, text=True, timeout=timeout,
                                  stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            raise RemoteUnreachable(f"target {self.target.name}: {what or 'a command'} took over {timeout:.0f}s "
                                    f"on {self.url.login}", hint="check the host, then try again") from None
        if check and proc.returncode != 0:
            detail = (proc.stderr.strip() or proc.stdout.strip())[-800:]
            if proc.returncode == 255:   # ssh's own failure: no connection, key refused
                raise RemoteUnreachable(f"target {self.target.name}: cannot reach {self.url.login}"
                                        f"{':' + str(self.url.port) if self.url.port else ''} over SSH: {detail}",
                                        hint="check the host and the key (`ssh` by hand; --keyfile of `target add`)")
            raise RemoteUnreachable(f"target {self.target.name}: {what or 'a command'} failed on {self.url.login} "
                                    f"(exit {proc.returncode}): {detail}",
                                    hint=f"the log on the host is under {self.url.path}")
        return proc

    def read_files(self, paths: list) -> list[Optional[str]]:
        """The text of each file (None when absent), in one round trip."""
        script = "; ".join(f"if [ -f {shlex.quote(p)} ]; then echo Y; cat {shlex.quote(p)}; else echo N; fi; "
                           f"echo; echo {SEPARATOR}" for p in paths)
        out = self.run(script, what="reading the run's files").stdout
        parts = out.split(SEPARATOR + "\n")
        texts = []
        for part in parts[:len(paths)]:
            flag, _, body = part.partition("\n")
            texts.append(body[:-1] if flag == "Y" else None)   # the `echo` added one newline
        return texts

    def close(self) -> None:
        if self.local:
            return
        subprocess.run(self.command("true")[:-2] + ["-O", "exit", self.url.login], capture_output=True, timeout=30)
