"""The slurm:// target on a real single-node Slurm on loopback (slurm_cluster.py), reached through the
loopback sshd as its login host: the job is submitted with sbatch there, followed with squeue/scontrol,
and the run comes back and is committed here exactly as an ssh:// target's run.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from conftest import cli, git, snapshot
from slurm_cluster import slurm  # noqa: F401 (a fixture)
from sshd_server import sshd  # noqa: F401 (a fixture)
from test_training import TINY, assert_committed_run
from trained import trained, trained_template  # noqa: F401 (fixtures)
from nbversion.errors import NbversionError, UsageError


def slurm_url(server, path, partition="debug") -> str:
    return f"slurm://{server['user']}@127.0.0.1:{server['port']}{path}?partition={partition}&time=00:30:00"


def cluster_workspace(trained, tmp_path, server):
    ws, _ = trained
    ws.remote_add("team", str(tmp_path / "remote"))
    ws.target_add("cluster", slurm_url(server, tmp_path / "cluster"), keyfile=server["key"])
    ws.push()
    return ws


def train_on(ws, epochs=1, on="cluster", **kw):
    return ws.train("demo", "yolov8n.yaml", epochs=epochs, imgsz=64, batch=4, device="cpu", extra=dict(TINY),
                    on=on, **kw)


def slurm_job(job) -> dict:
    """What Slurm itself says of job `job` (`scontrol show job`): JobName, JobState, Partition..."""
    shown = subprocess.run(["scontrol", "show", "job", "-o", str(job)], capture_output=True, text=True).stdout
    return dict(p.split("=", 1) for p in shown.split() if "=" in p)


def waiter(stage=None, status=None):
    """(on_event, threading.Event set once an event of that stage, or with that data status, arrives)."""
    seen = threading.Event()

    def on_event(event):
        if event.stage == stage or (status and (event.data or {}).get("status") == status):
            seen.set()
    return on_event, seen


def test_a_run_trained_on_a_slurm_target_is_committed_here(trained, tmp_path, sshd, slurm, monkeypatch):
    ws, _ = trained
    ws.remote_add("team", str(tmp_path / "remote"))
    ws.target_add("typo", slurm_url(sshd, tmp_path / "cluster", partition="gpus"), keyfile=sshd["key"])
    ws.push()
    before = snapshot(ws.root)
    with pytest.raises(UsageError, match="has no partition 'gpus'") as error:   # sinfo -p over SSH, first
        train_on(ws, on="typo")
    assert "debug" in error.value.hint
    assert snapshot(ws.root) == before and not (tmp_path / "cluster").exists()
    # slurm://localhost/PATH: the notebook runs on the login node; the same checks run here, without SSH
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}:{os.environ['PATH']}")
    ws.target_add("here", f"slurm://localhost{tmp_path / 'cluster'}?partition=gpus")
    ws.push()
    before = snapshot(ws.root)
    with pytest.raises(UsageError, match="Slurm on localhost has no partition 'gpus'"):
        train_on(ws, on="here")
    assert snapshot(ws.root) == before and not (tmp_path / "cluster").exists()

    ws.target_add("cluster", slurm_url(sshd, tmp_path / "cluster"), keyfile=sshd["key"])
    ws.push()
    runs_before = len(list((ws.root / "runs").iterdir())) + 1   # and the run below
    events = []
    run = train_on(ws, epochs=2, wait=True, on_event=events.append)
    record = assert_committed_run(ws, run.run_id, "done", 2)
    assert record["target"] == "cluster" and record["error"] is None and record["target_job"]
    assert [e.done for e in events if e.stage == "epoch"] == [1, 2]   # the live view saw each epoch
    job = slurm_job(record["target_job"])                           # Slurm ran it, as a batch job
    assert job["JobName"] == f"nbv-{run.run_id}" and job["Partition"] == "debug"
    batch = next((tmp_path / "cluster").glob(f"*/runs/{run.run_id}/slurm.sh")).read_text()
    assert f"--job-name=nbv-{run.run_id}" in batch and "--partition=debug" in batch and "--time=00:30:00" in batch
    assert next((tmp_path / "cluster").glob(f"*/runs/{run.run_id}/slurm-{record['target_job']}.out")).exists()
    assert ws.verify().problems == []
    entry = json.loads((ws.root / ".nbversion" / "audit.jsonl").read_text().splitlines()[-1])
    assert entry["action"] == "train" and entry["target"] == run.run_id and entry["user"] == ws.user

    # a job Slurm refuses (a GPU this cluster has not got): sbatch's own error, no run left here
    ws.target_add("gpu", slurm_url(sshd, tmp_path / "cluster") + "&gpus=1", keyfile=sshd["key"])
    ws.push()
    before = snapshot(ws.root)
    with pytest.raises(NbversionError, match="sbatch: error"):
        train_on(ws, on="gpu")
    assert snapshot(ws.root) == before and len(list((ws.root / "runs").iterdir())) == runs_before


def test_a_slurm_run_stopped_once_is_resumed_on_the_same_target(trained, tmp_path, sshd, slurm):
    ws = cluster_workspace(trained, tmp_path, sshd)
    on_event, first_epoch = waiter(stage="epoch")
    # 20 epochs: the notebook sees an epoch up to 2 s (a poll) after it ends, and a loaded CI
    # machine trains a few tiny epochs in that time: the stop must land before the last one
    run = train_on(ws, epochs=20, on_event=on_event)
    assert first_epoch.wait(600)                 # running on the node: Stop goes through the STOP file
    cli("runs", "stop", run.run_id, check=0)     # another process, as the sidebar's Stop
    run.wait(600)
    stopped = assert_committed_run(ws, run.run_id, "stopped", len(run.record["epochs"]))
    assert len(stopped["epochs"]) < 20 and stopped["target"] == "cluster"
    resumed = ws.runs_resume(run.run_id, wait=True)
    record = assert_committed_run(ws, resumed.run_id, "done", 20)
    assert record["target_job"] != stopped["target_job"]   # resubmitted to the same cluster
    assert slurm_job(record["target_job"])["JobName"] == f"nbv-{run.run_id}"
    assert ws.verify().problems == []


def test_a_queued_slurm_job_cancelled_is_committed_with_slurms_state(trained, tmp_path, sshd, slurm):
    ws = cluster_workspace(trained, tmp_path, sshd)
    # the node taken by another job: ours waits in the queue with Slurm's reason
    blocker = subprocess.run(["sbatch", "--parsable", "--exclusive", "--output=/dev/null", "--wrap", "sleep 900"],
                             capture_output=True, text=True, check=True).stdout.strip()
    try:
        on_event, queued = waiter(status="queued")
        run = train_on(ws, epochs=1, on_event=on_event)
        assert queued.wait(120)
        listing = cli("runs", "list").stdout
        assert "queued (" in listing and run.run_id in listing        # runs list: queued, with Slurm's reason
        cli("runs", "stop", run.run_id, check=0)                      # Stop of a pending job: scancel
        run.wait(600)
        record = json.loads((ws.root / "runs" / run.run_id / "run.json").read_text())
        assert record["status"] == "cancelled" and "CANCELLED before it started" in record["error"]
        assert not (ws.root / "runs" / run.run_id / "weights.dvc").exists()
        assert git(ws.root, "status", "--porcelain") == ""
        assert slurm_job(record["target_job"])["JobState"] == "CANCELLED"

        # a job cancelled by hand (scancel) ends the run as failed, with Slurm's state as the error
        ws.push()
        on_event, queued = waiter(status="queued")
        run = train_on(ws, epochs=1, on_event=on_event)
        assert queued.wait(120)
        subprocess.run(["scancel", str(run.record["target_job"])], check=True)
        run.wait(600)
        record = json.loads((ws.root / "runs" / run.run_id / "run.json").read_text())
        assert record["status"] == "failed" and f"Slurm job {record['target_job']} ended CANCELLED" in record["error"]
        entry = json.loads((ws.root / ".nbversion" / "audit.jsonl").read_text().splitlines()[-1])
        assert entry["target"] == run.run_id and entry["details"]["status"] == "failed"
        assert git(ws.root, "status", "--porcelain") == ""
    finally:
        subprocess.run(["scancel", blocker], check=False)
