"""A real single-node Slurm on loopback: munged, slurmctld and slurmd of Debian's `slurm-wlm`, as root.

Everything lives in one temporary folder (munge key and socket, slurm.conf, state, spool, logs);
`SLURM_CONF` points the Slurm commands of this process, and of the loopback sshd's sessions
(sshd_server.session_environment), at it. No accounting (no slurmdbd): job states come from
squeue/scontrol, as the slurm:// target reads them.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from sshd_server import free_port

DAEMONS = ("munged", "slurmctld", "slurmd", "sinfo", "sbatch")


def _tail(path: Path) -> str:
    return path.read_text(errors="replace")[-1500:] if path.exists() else "(no log)"


def _conf(base: Path, socket: Path) -> str:
    return "\n".join([
        "ClusterName=nbvtest", "SlurmctldHost=localhost", f"SlurmctldPort={free_port()}", f"SlurmdPort={free_port()}",
        "AuthType=auth/munge", f"AuthInfo=socket={socket}", "CredType=cred/munge",
        "SlurmUser=root", "SlurmdUser=root", f"StateSaveLocation={base / 'state'}", f"SlurmdSpoolDir={base / 'spool'}",
        f"SlurmctldPidFile={base / 'slurmctld.pid'}", f"SlurmdPidFile={base / 'slurmd.pid'}",
        f"SlurmctldLogFile={base / 'slurmctld.log'}", f"SlurmdLogFile={base / 'slurmd.log'}",
        "ProctrackType=proctrack/linuxproc", "TaskPlugin=task/none", "SelectType=select/cons_tres",
        "SelectTypeParameters=CR_Core", "MpiDefault=none", "ReturnToService=2", "JobCompType=jobcomp/none",
        "AccountingStorageType=accounting_storage/none", "JobAcctGatherType=jobacct_gather/none",
        "MinJobAge=600",   # scontrol still knows an ended job while the test reads its state
        "NodeName=localhost CPUs=2 RealMemory=500 State=UNKNOWN",
        "PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP", ""])


@contextlib.contextmanager
def running_slurm(base: Path):
    """{"conf", "partition"} of a started single-node cluster; the daemons are stopped on exit."""
    missing = [name for name in DAEMONS if not shutil.which(name) and not Path(f"/usr/sbin/{name}").exists()]
    if missing:
        pytest.fail(f"{', '.join(missing)} not installed: apt-get install -y slurm-wlm munge (.ci/run does)")
    for sub in ("munge-key", "munge", "state", "spool"):
        (base / sub).mkdir(parents=True)
    key, socket = base / "munge-key" / "munge.key", base / "munge" / "socket"
    key.write_bytes(os.urandom(1024))
    os.chmod(key, 0o600)
    os.chmod(base / "munge-key", 0o700)
    subprocess.run(["munged", "--force", f"--socket={socket}", f"--key-file={key}", f"--pid-file={base / 'munged.pid'}",
                    f"--log-file={base / 'munged.log'}", f"--seed-file={base / 'munged.seed'}"], check=True)
    conf = base / "slurm.conf"
    conf.write_text(_conf(base, socket))
    env = {**os.environ, "SLURM_CONF": str(conf)}
    daemons = [subprocess.Popen(["slurmctld", "-D"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)]
    daemons.append(subprocess.Popen(["slurmd", "-D", "-N", "localhost"], env=env, stdout=subprocess.DEVNULL,
                                    stderr=subprocess.STDOUT))
    previous = os.environ.get("SLURM_CONF")
    os.environ["SLURM_CONF"] = str(conf)
    try:
        deadline = time.monotonic() + 60
        state = ""
        while time.monotonic() < deadline:
            state = subprocess.run(["sinfo", "-h", "-o", "%t"], capture_output=True, text=True, env=env).stdout.strip()
            if state == "idle" or any(d.poll() is not None for d in daemons):
                break
            time.sleep(0.3)
        if state != "idle":
            pytest.fail(f"the loopback Slurm did not come up (sinfo: {state!r}):\nslurmctld: "
                        f"{_tail(base / 'slurmctld.log')}\nslurmd: {_tail(base / 'slurmd.log')}\n"
                        f"munged: {_tail(base / 'munged.log')}")
        yield {"conf": str(conf), "partition": "debug"}
    finally:
        if previous is None:
            os.environ.pop("SLURM_CONF", None)
        else:
            os.environ["SLURM_CONF"] = previous
        # jobs end first: a job step left without its slurmd lingers as an orphan slurmstepd
        subprocess.run(["scancel", "--user=root"], env=env, capture_output=True)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and subprocess.run(["squeue", "-h"], capture_output=True, text=True,
                                                             env=env).stdout.strip():
            time.sleep(0.3)
        for daemon in daemons:
            daemon.terminate()
        for daemon in daemons:
            try:
                daemon.wait(timeout=20)
            except subprocess.TimeoutExpired:
                daemon.kill()
        pid = base / "munged.pid"
        if pid.exists():
            with contextlib.suppress(OSError, ValueError):
                os.kill(int(pid.read_text().strip()), 15)


@pytest.fixture(scope="session")
def slurm(tmp_path_factory):
    with running_slurm(tmp_path_factory.mktemp("slurm")) as cluster:
        yield cluster
