"""`train --on NAME` for a ray:// target: the training submitted as a job to the Ray Jobs API.

The same preconditions as an ssh:// target (launch.py checks them first); the cluster's
nbversion is checked by a tiny job (`nbversion --version`) before anything is written. The job's
entrypoint fetches the team remote's history into a working folder on the node it runs on,
checks out the commit and `exec`s `nbversion target exec RUN SPEC` (host.py), told by the spec
to report through its log (ray_host.py). The job is named `nbv-RUN-N` (N: the attempt).
"""
from __future__ import annotations

import base64
import json
import os
import re
import shlex
import uuid

from ..errors import NbversionError
from .launch import LOG_DIR, local_version
from .ray_jobs import JobsApi

# how long `ray job stop` lets the training end cleanly (the current batch, the weights pushed)
# before Ray sends SIGKILL; Ray's own default is 3 s
STOP_WAIT_S = 600
JOB_ENV = {"RAY_JOB_STOP_SIGNAL": "SIGTERM", "RAY_JOB_STOP_WAIT_TIME_S": str(STOP_WAIT_S), "PYTHONUNBUFFERED": "1"}


def check_version(target) -> str:
    """The cluster's nbversion, by a tiny job; refused when missing or of another major.minor."""
    api = JobsApi(target)
    mine = local_version()
    info, logs = api.run_to_end(f"nbv-version-{uuid.uuid4().hex[:12]}", "nbversion --version")
    found = [m.group(1) for m in re.finditer(r"^(?:nbversion )?(\d+\.\d+\S*)\s*$", logs, re.M)]
    if info.get("status") != "SUCCEEDED" or not found:
        tail = " | ".join(line for line in logs.strip().splitlines()[-3:])[-300:]
        raise NbversionError(f"target {target.name}: nbversion is not installed on the Ray cluster at "
                             f"{target.url.host}:{target.url.port} (the job `nbversion --version`: "
                             f"{info.get('status')}, {info.get('message') or ''} {tail})".strip(),
                             hint=f"install nbversion {mine} with its yolo extra on the cluster's nodes "
                                  "(`pip install 'nbversion[yolo]'`), on the PATH of the Ray processes")
    theirs = found[-1]
    if theirs.split(".")[:2] != mine.split(".")[:2]:
        raise NbversionError(f"target {target.name}: nbversion {theirs} on the Ray cluster does not match this "
                             f"workspace's {mine} (same major.minor needed)",
                             hint=f"install nbversion {'.'.join(mine.split('.')[:2])}.x on the cluster's nodes")
    return theirs


def workdir(root, target) -> str:
    """A shell word: the clone on the node, under `?workdir=` or the node's temp dir."""
    from .launch import workdir as named

    base = target.url.options.get("workdir")
    if base:
        return shlex.quote(named(root, _with_path(target, base)))
    folder = named(root, _with_path(target, "")).lstrip("/")
    return '"${TMPDIR:-/tmp}"/nbversion-ray/' + shlex.quote(folder)


def _with_path(target, path: str):
    from dataclasses import replace
    return replace(target, url=replace(target.url, path=path))


def entrypoint(where: str, git_url: str, commit: str, run_id: str, spec: dict) -> str:
    q = shlex.quote
    encoded = base64.b64encode(json.dumps({**spec, "report": "log"}).encode()).decode()
    prepare = (f"{{ [ -d .git ] || git init -q . ; }} && git fetch -q {q(git_url)} '+refs/heads/*:refs/remotes/team/*'"
               f" && git checkout -q -f --detach {q(commit)} && ") if commit else ""
    stale = f"runs/{run_id}/target.json runs/{run_id}/STOP"
    # exec: `ray job stop`'s SIGTERM reaches nbversion itself, not a shell in between
    return (f"set -e; mkdir -p {where} && cd {where} && {prepare}mkdir -p {LOG_DIR} && rm -f {stale} && "
            f"exec nbversion target exec {q(run_id)} {q(encoded)}")


def start(target, run_id: str, where: str, git_url: str, commit: str, spec: dict, jobs: list) -> str:
    """Submit the job; returns its submission id (`nbv-RUN-N`, N counting this run's attempts)."""
    job_id = f"nbv-{run_id}-{len(jobs) + 1}"
    JobsApi(target).submit(job_id, entrypoint(where, git_url, commit, run_id, spec), JOB_ENV,
                           gpus=int(target.url.options.get("gpus") or 0))
    return job_id


def resume(ws, target, run_id: str, record: dict, remote: str, wait: bool, on_event):
    """`runs resume RUN`: a new job in the same working folder, from the checkpoint left there."""
    from ..training import runs
    from . import follow

    check_version(target)
    device = record.get("device") or "cpu"
    spec = {"remote": remote, "resume": True, "model": record["model"], "dataset_md5": record["dataset"]["md5"],
            "args": {"device": device, **({"workers": 0, "amp": False} if device == "cpu" else {})}}
    (runs.run_dir(ws.root, run_id) / runs.STOP_FILE).unlink(missing_ok=True)
    jobs = record.get("target_jobs") or []
    job = start(target, run_id, record["target_host"]["workdir"], "", "", spec, jobs)
    runs.update(ws.root, run_id, status="running", error=None, ended_at=None, resumed_at=runs.now(),
                pid=os.getpid(), host=os.uname().nodename, target_jobs=[*jobs, job])
    return follow.start(ws, run_id, wait, on_event)
