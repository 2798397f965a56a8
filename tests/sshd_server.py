"""A real OpenSSH server on loopback, as the same user: the "remote host" of ssh:// remotes.

Its sessions get the environment a host with nbversion installed gives (`SetEnv` in
sshd_config): this interpreter's bin folder on PATH, this checkout on PYTHONPATH, and the test's
isolated HOME and git config. `running_sshd(..., nbversion=False)` is a host without nbversion:
its sessions' PATH is the system's only.
"""
from __future__ import annotations

import contextlib
import getpass
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

SSHD = shutil.which("sshd") or "/usr/sbin/sshd"
SYSTEM_PATH = "/usr/local/bin:/usr/bin:/bin"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def session_environment(nbversion: bool) -> dict:
    # SLURM_CONF: the loopback Slurm of test_targets_slurm.py, reached from the host's sessions
    env = {name: os.environ[name] for name in ("HOME", "GIT_CONFIG_GLOBAL", "GIT_CONFIG_NOSYSTEM", "SLURM_CONF")
           if name in os.environ}
    if nbversion:
        env["PATH"] = f"{Path(sys.executable).parent}:{SYSTEM_PATH}"
        if os.environ.get("PYTHONPATH"):   # a checkout tested in place: the host runs the same code
            env["PYTHONPATH"] = os.environ["PYTHONPATH"]
    else:
        env["PATH"] = SYSTEM_PATH
    return env


@contextlib.contextmanager
def running_sshd(folder: Path, nbversion: bool = True):
    """{"port", "key", "user"} of an sshd on 127.0.0.1 that accepts `key`, stopped on exit."""
    if not Path(SSHD).exists():
        pytest.skip("sshd not installed: apt-get install -y openssh-server")
    keys = Path(folder)
    keys.mkdir(parents=True)
    for name in ("host", "user"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(keys / name)], check=True)
    (keys / "authorized_keys").write_text((keys / "user.pub").read_text())
    os.chmod(keys / "authorized_keys", 0o600)
    port = free_port()
    # ssh keeps host keys in the real user's known_hosts (not $HOME's): an earlier test's server on this
    # port left another key there, which accept-new refuses as a changed host
    subprocess.run(["ssh-keygen", "-R", f"[127.0.0.1]:{port}"], capture_output=True)
    setenv = " ".join(f'"{k}={v}"' for k, v in session_environment(nbversion).items())
    config = keys / "sshd_config"
    config.write_text(f"Port {port}\nListenAddress 127.0.0.1\nHostKey {keys / 'host'}\n"
                      f"AuthorizedKeysFile {keys / 'authorized_keys'}\nPasswordAuthentication no\n"
                      f"KbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\nPermitRootLogin yes\n"
                      f"PidFile {keys / 'sshd.pid'}\nSubsystem sftp internal-sftp\nSetEnv {setenv}\n")
    Path("/run/sshd").mkdir(exist_ok=True)   # sshd's privilege separation folder
    proc = subprocess.Popen([SSHD, "-D", "-e", "-f", str(config)], stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", port)) == 0:
                    break
            if proc.poll() is not None:
                pytest.skip(f"sshd did not start: {proc.stderr.read().decode()[-300:]}")
            time.sleep(0.05)
        yield {"port": port, "key": str(keys / "user"), "user": getpass.getuser()}
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture
def sshd(tmp_path):
    with running_sshd(tmp_path / "sshkeys") as server:
        yield server
