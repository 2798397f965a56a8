"""The ray:// target on a real Ray head on loopback (one per module: Ray starts slowly on 2 cores).

The head is `ray.init` in a subprocess with its dashboard (the Jobs API) on a free port, token
authentication on (Ray's default: the token file in the head's HOME is the target's --keyfile),
and the environment a node with nbversion installed has (this interpreter's bin folder on PATH,
this checkout on PYTHONPATH). A folder remote is the team remote. A run trained there as a Ray job
comes back through its log and the DVC remote and is committed here; stopped once (`ray job
stop`) and resumed once; a job that fails is committed as failed with the job's reason.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from conftest import cli, cli_json, git, snapshot
from sshd_server import SYSTEM_PATH, free_port
from test_training import TINY, assert_committed_run
from test_targets import started_by_a_closed_notebook
from trained import isolated_env, trained, trained_template  # noqa: F401 (fixtures)
from nbversion.core.backends.hashing import file_md5
from nbversion.errors import NbversionError

HEAD = """
import signal, sys, time, ray
ray.init(num_cpus=2, include_dashboard=True, dashboard_host="127.0.0.1", dashboard_port=int(sys.argv[1]),
         _temp_dir=sys.argv[2], configure_logging=False)
print("READY", flush=True)
signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))
try:
    while True:
        time.sleep(1)
finally:
    ray.shutdown()
"""


@pytest.fixture(scope="module")
def ray_head(tmp_path_factory):
    """A Ray head with the Jobs API on loopback: {"url", "token", "home"}; shut down at the end."""
    base = tmp_path_factory.mktemp("rayhead")
    temp = Path(tempfile.mkdtemp(prefix="nbvray", dir="/tmp"))   # Ray's socket paths must stay short
    port = free_port()
    with pytest.MonkeyPatch.context() as mp:
        isolated_env(mp, base / "home")
        env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{SYSTEM_PATH}",
               "RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "token"}
    log = open(base / "head.log", "w")
    head = subprocess.Popen([sys.executable, "-c", HEAD, str(port), str(temp)], env=env, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)
    token = base / "home" / ".ray" / "auth_token"
    try:
        while True:   # no deadline of our own: pytest-timeout bounds a head that never comes up
            assert head.poll() is None, (base / "head.log").read_text()[-3000:]
            if token.is_file() and _answers(port, token.read_text().strip()):
                break
            time.sleep(1)
        yield {"url": f"ray://127.0.0.1:{port}", "token": token, "home": base / "home"}
    finally:
        head.send_signal(signal.SIGTERM)
        try:
            head.wait(120)
        except subprocess.TimeoutExpired:
            os.killpg(head.pid, signal.SIGKILL)
            head.wait()
        log.close()
        shutil.rmtree(temp, ignore_errors=True)


def _answers(port: int, token: str) -> bool:
    request = urllib.request.Request(f"http://127.0.0.1:{port}/api/jobs/", headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status == 200
    except OSError:
        return False


def team_workspace(trained, tmp_path, head, target="cluster", query=""):
    """The trained workspace with a folder team remote and a ray target, everything pushed."""
    ws, _ = trained
    ws.remote_add("team", str(tmp_path / "remote"))
    ws.target_add(target, f"{head['url']}?workdir={tmp_path / 'node'}{query}", keyfile=str(head["token"]))
    ws.push()
    return ws


def train_on(ws, epochs=1, target="cluster", **kw):
    return ws.train("demo", "yolov8n.yaml", epochs=epochs, imgsz=64, batch=4, device=kw.pop("device", "cpu"),
                    extra=dict(TINY), on=target, **kw)


def test_a_run_trained_on_a_ray_target_is_committed_here(trained, tmp_path, ray_head):
    ws = team_workspace(trained, tmp_path, ray_head)
    assert {t["name"]: t for t in cli_json("target", "list")["targets"]}["cluster"]["runnable"] is True
    events = []
    run = train_on(ws, epochs=2, wait=True, on_event=events.append)
    record = assert_committed_run(ws, run.run_id, "done", 2)
    assert record["target"] == "cluster" and record["dataset"]["name"] == "demo" and record["error"] is None
    assert [e.done for e in events if e.stage == "epoch"] == [1, 2]   # the job's log fed the live view
    assert "on target" in "".join(e.message for e in events)
    assert (ws.root / "runs" / run.run_id / "train.log").stat().st_size > 0   # came back through the DVC remote
    best = ws.root / "runs" / run.run_id / "weights" / "best.pt"
    there = next((tmp_path / "node").glob(f"*/runs/{run.run_id}/weights/best.pt"))
    assert file_md5(best) == file_md5(there)                # the node's weights, byte for byte
    assert ws.verify().problems == []
    entry = json.loads((ws.root / ".nbversion" / "audit.jsonl").read_text().splitlines()[-1])
    assert entry["action"] == "train" and entry["user"] == ws.user
    clone = next((tmp_path / "node").glob("*/.git")).parent   # the node never committed
    assert git(clone, "rev-parse", "HEAD").strip() == record["commit"]
    cli("audit", "verify", check=0)

    # a training that fails there (a GPU the node lacks) is committed here as failed, with the node's reason
    ws.push()
    failed = train_on(ws, device="0", wait=True)
    assert failed.record["status"] == "failed" and "CUDA GPU" in failed.record["error"]
    assert git(ws.root, "status", "--porcelain") == ""

    # a job that fails before nbversion runs (its folder cannot be made): failed, with the job's own words
    ws.target_add("nowhere", f"{ray_head['url']}?workdir=/proc/nbversion", keyfile=str(ray_head["token"]))
    ws.push()
    lost = train_on(ws, target="nowhere", wait=True)
    assert lost.record["status"] == "failed" and "Ray job" in lost.record["error"]
    assert "/proc/nbversion" in lost.record["error"]
    assert git(ws.root, "status", "--porcelain") == "" and ws.verify().problems == []

    # a commit not pushed changes nothing, here or there
    (ws.root / "notes.txt").write_text("new\n")
    ws.commit("notes")
    before = snapshot(ws.root)
    with pytest.raises(NbversionError, match="is not pushed to team"):
        train_on(ws)
    assert snapshot(ws.root) == before


def test_a_ray_run_stopped_once_is_resumed_on_the_same_target(trained, tmp_path, ray_head):
    ws = team_workspace(trained, tmp_path, ray_head)
    first_epoch = threading.Event()
    # 20 epochs: an epoch is seen here up to a poll (2 s) late; the stop must land before the last one
    run = train_on(ws, epochs=20, on_event=lambda e: e.stage == "epoch" and first_epoch.set())
    assert cli_json("runs", "show", run.run_id)["status"] == "running"   # not failed for want of a local pid
    assert first_epoch.wait(600)
    cli("runs", "stop", run.run_id, check=0)   # another process: `ray job stop`, SIGTERM on the node
    run.wait(600)
    stopped = assert_committed_run(ws, run.run_id, "stopped", len(run.record["epochs"]))
    assert 1 <= len(stopped["epochs"]) < 20 and stopped["target"] == "cluster"
    resumed = ws.runs_resume(run.run_id, wait=True)
    record = assert_committed_run(ws, resumed.run_id, "done", 20)
    assert record["target"] == "cluster" and len(record["target_jobs"]) == 2   # a second job, same folder
    assert ws.verify().problems == []


def test_a_closed_notebook_leaves_the_ray_job_running_and_runs_attach_commits_it(trained, tmp_path, ray_head):
    ws = team_workspace(trained, tmp_path, ray_head)
    run_id = started_by_a_closed_notebook(ws, "cluster", epochs=1)
    cli("runs", "attach", run_id, check=0)   # the job's whole log is still there: read from its start
    record = assert_committed_run(ws, run_id, "done", 1)
    assert record["target"] == "cluster" and ws.verify().problems == []
