"""slurm:// targets: the ssh:// target's clone, data and bring-back, with `sbatch` instead of `setsid nohup`.

The login host's clone (PATH/<workspace>-<first commit>) is prepared over SSH exactly as for an
ssh:// target; the compute node sees the same folder (a cluster's home or scratch is shared). A
batch script `runs/RUN/slurm.sh` is written there and submitted with `sbatch --parsable`; the job
runs `nbversion target exec` with the environment of the submitting session (sbatch's default
`--export=ALL`). Its state comes from `squeue` while Slurm still lists it, then from `scontrol
show job` (`sacct` needs slurmdbd, which small clusters lack). `slurm://localhost/PATH` (no user,
no port) means the notebook runs on the login node itself: the same commands run in a local shell.
"""
from __future__ import annotations

import logging
import shlex
from typing import Optional

from ..errors import UsageError
from ..events import Event
from ..training import runs

logger = logging.getLogger(__name__)

# the states of a job that may still start or write into the run folder
ALIVE = ("PENDING", "CONFIGURING", "RUNNING", "COMPLETING", "SUSPENDED", "REQUEUED", "REQUEUE_HOLD",
         "REQUEUE_FED", "RESIZING", "SIGNALING", "STAGE_OUT")
BATCH_SCRIPT = "slurm.sh"


def check_cluster(host) -> None:
    """Before anything is written: `sbatch` reachable on the login host and the partition known there."""
    partition = host.url.options.get("partition")
    probe = f"command -v sbatch >/dev/null || {{ echo NO-SBATCH; exit 0; }}; sinfo -h -o %P{' -p ' + shlex.quote(partition) if partition else ''}"
    out = host.run(probe, what="asking Slurm for its partitions (sinfo)").stdout.split()
    if out == ["NO-SBATCH"]:
        raise UsageError(f"target {host.target.name}: sbatch is not on the PATH of {host.url.login}'s sessions",
                         hint="use the cluster's login host in the slurm:// URL, with Slurm's commands on its PATH")
    if partition and partition not in {name.rstrip("*") for name in out}:
        known = host.run("sinfo -h -o %P", check=False).stdout.split()
        raise UsageError(f"target {host.target.name}: Slurm on {host.url.login} has no partition {partition!r}",
                         hint=f"partitions there: {', '.join(n.rstrip('*') for n in known) or 'none'}; fix it with "
                              f"`nbversion target remove {host.target.name}` and `target add` with partition=...")


def sbatch_options(options: dict, workdir: str, run_id: str) -> list[str]:
    """What `sbatch` gets: the URL's partition, gpus, time, account and qos; a job name; output in the run folder."""
    chosen = [f"--job-name=nbv-{run_id}", f"--chdir={workdir}", f"--output={workdir}/runs/{run_id}/slurm-%j.out"]
    chosen += [f"--{key}={options[key]}" for key in ("partition", "gpus", "time", "account", "qos") if key in options]
    return chosen


def detach(options: dict, workdir: str, run_id: str):
    """launch.start_script's last step for Slurm: write the batch script, submit it, print the job id."""
    def submit(command: str, log: str) -> str:
        script = f"runs/{run_id}/{BATCH_SCRIPT}"
        lines = ["#!/bin/sh", *(f"#SBATCH {o}" for o in sbatch_options(options, workdir, run_id)),
                 f"cd {shlex.quote(workdir)}", f"exec {command} > {shlex.quote(log)} 2>&1 < /dev/null"]
        body = "\n".join(lines)
        return (f"mkdir -p runs/{run_id} && cat > {script} <<'NBV_BATCH_EOF'\n{body}\nNBV_BATCH_EOF\n"
                f"job=$(sbatch --parsable {script})\necho \"${{job%%;*}}\"")   # `ID;cluster` on a federation
    return submit


def job_state(host, job: str) -> Optional[tuple[str, str]]:
    """(STATE, reason) of job `job`: squeue while Slurm lists it, scontrol after; ("PURGED", ...) once Slurm
    has forgotten it; None when the answer is unknown now (connection dropped, controller restarting)."""
    q = shlex.quote(job)
    proc = host.run(f"squeue -h -j {q} -o '%T|%r' 2>/dev/null; echo '|'; scontrol show job -o {q} 2>&1",
                    check=False, what="asking Slurm for the job's state")
    if proc.returncode == 255:   # ssh's own failure: the job goes on; ask again at the next poll
        return None
    listed, _, shown = proc.stdout.partition("|\n")
    listed = listed.strip().splitlines()
    if listed and "|" in listed[0]:
        state, _, reason = listed[0].partition("|")
        return state.strip(), reason.strip()
    fields = dict(part.split("=", 1) for part in shown.split() if "=" in part)
    if "JobState" in fields:
        return fields["JobState"], fields.get("Reason", "None")
    if "invalid job id" in shown.lower():   # ended long ago (past MinJobAge): Slurm keeps no state
        return "PURGED", "Slurm no longer knows the job"
    logger.debug("no state for Slurm job %s: %s", job, shown.strip()[-300:])
    return None


def alive(run) -> bool:
    """The follow thread's liveness check: the run's queued/running status follows the job's;
    an ended job leaves `run.ended_without_word` for a run that wrote no target.json."""
    record = runs.read(run.root, run.run_id)
    job = str(record.get("target_job") or "")
    if not job:
        return True
    known = job_state(run.host, job)
    if known is None:
        return True
    state, reason = known
    if state in ALIVE:
        status = "queued" if state == "PENDING" else "running"
        reason = reason if status == "queued" and reason != "None" else None
        if (status, reason) != (record.get("status"), record.get("target_reason")):
            runs.update(run.root, run.run_id, status=status, target_reason=reason)
            why = f" ({reason})" if reason else ""
            run.emit(Event("train", len(record.get("epochs") or []), (record.get("params") or {}).get("epochs", 0),
                           f"Slurm job {job} {state.lower()}{why} on target {run.host.target.name}",
                           {"status": status, "reason": reason}))
        return True
    stop, started = run.host.read_files([run.remote(runs.STOP_FILE), run.remote("run.json")])
    detail = f" ({reason})" if reason and reason != "None" else ""
    if state == "CANCELLED" and stop is not None and record.get("resumed_at"):
        # a resumed run stopped while queued again: still stopped, its earlier weights kept, resumable
        run.ended_without_word = {"status": "stopped", "weights": {}, "pushed": True, "error": None}
    elif state == "CANCELLED" and stop is not None and started is None:   # our Stop, before it started
        run.ended_without_word = {"status": "cancelled", "weights": {}, "pushed": True,
                                  "error": f"stopped while queued: Slurm job {job} CANCELLED before it started"}
    else:
        run.ended_without_word = {"status": "failed", "weights": {}, "pushed": True,
                                  "error": f"Slurm job {job} ended {state}{detail} without handing the run back "
                                           f"(see {run.workdir}/runs/{run.run_id}/slurm-{job}.out there)"}
    runs.update(run.root, run.run_id, target_reason=None, target_job_state=state)
    return False


def cancel_pending(run) -> None:
    """Stop of a job Slurm has not started: `scancel --state=PENDING` (a job already running is left to
    the STOP file, which keeps resumable weights)."""
    job = runs.read(run.root, run.run_id).get("target_job")
    if job:
        run.host.run(f"scancel --state=PENDING {shlex.quote(str(job))}", check=False, what="scancel")
        run.note = f"stop requested on target {run.host.target.name}: a queued job is cancelled, a running one " \
                   "ends after the current batch"
