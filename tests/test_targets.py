"""Training targets on real servers on loopback: the `sshd` of sshd_server.py is the GPU box
(same user, CPU training, nbversion on its PATH) and a folder remote is the team remote.

A run trained there comes back as files and is committed here by the notebook's workspace:
lineage, audit, weights in DVC (verified), `target` in run.json; stopped once and resumed once
on the same target; a host without nbversion, or a commit not pushed, changes nothing.
"""
from __future__ import annotations

import json

import pytest

from conftest import cli, cli_json, git, snapshot
from sshd_server import running_sshd, sshd  # noqa: F401 (a fixture)
from test_training import TINY, TINY_ARGS, assert_committed_run
from trained import trained, trained_template  # noqa: F401 (fixtures)
from nbversion.core.backends.hashing import file_md5
from nbversion.errors import NbversionError


def ssh_url(server, path) -> str:
    return f"ssh://{server['user']}@127.0.0.1:{server['port']}{path}"


def team_workspace(trained, tmp_path, server, target="box"):
    """The trained workspace with a folder team remote and an ssh target, everything pushed."""
    ws, _ = trained
    ws.remote_add("team", str(tmp_path / "remote"))
    ws.target_add(target, ssh_url(server, tmp_path / "gpubox"), keyfile=server["key"])
    ws.push()
    return ws


def train_on(ws, epochs=1, **kw):
    return ws.train("demo", "yolov8n.yaml", epochs=epochs, imgsz=64, batch=4, device="cpu", extra=dict(TINY),
                    on="box", **kw)


def test_target_add_list_remove_and_url_errors(ws, tmp_path):
    key = tmp_path / "key"
    key.write_text("not a real key\n")
    cli("target", "add", "box", "ssh://me@gpu1:2222/scratch/nbv", "--keyfile", key, check=0)
    cli("target", "add", "cluster", "slurm://me@login/scratch/nbv?partition=gpu&gpus=2&time=02:00:00", check=0)
    cli("target", "add", "ray", "ray://head:8265", check=0)
    listed = {t["name"]: t for t in cli_json("target", "list")["targets"]}
    assert listed["box"]["kind"] == "ssh" and listed["box"]["keyfile"] == str(key.resolve())
    assert listed["cluster"]["kind"] == "slurm" and listed["ray"]["runnable"] is True
    committed = git(ws.root, "show", "HEAD:.nbversion/config.toml")
    assert "slurm://me@login/scratch/nbv" in committed and str(key) not in committed   # the key stays out of git
    assert git(ws.root, "status", "--porcelain") == ""

    before = snapshot(ws.root)
    for url, part in [("http://gpu1/x", "unknown scheme"), ("ssh://gpu1", "path is missing"),
                      ("slurm://login/x?partitions=gpu", "unknown query key 'partitions'"),
                      ("ray://head:8265/jobs", "no path"), ("ssh://gpu1:notaport/x", "port")]:
        proc = cli("target", "add", "bad", url, check=2)
        assert part in proc.stderr, (url, proc.stderr)
    assert "already exists" in cli("target", "add", "box", "ssh://other/x", check=2).stderr
    assert snapshot(ws.root) == before

    with pytest.raises(NbversionError, match="nosuch"):          # every kind trains now: an unknown name
        ws.train("demo", on="nosuch")
    assert snapshot(ws.root) == before
    cli("target", "remove", "box", check=0)
    assert "box" not in {t["name"] for t in cli_json("target", "list")["targets"]}
    assert "nbversiontarget" not in (ws.root / ".git" / "config").read_text()   # its key file setting went too


def test_a_run_trained_on_an_ssh_target_is_committed_here(trained, tmp_path, sshd):
    ws = team_workspace(trained, tmp_path, sshd)
    events = []
    run = train_on(ws, epochs=2, wait=True, on_event=events.append)
    record = assert_committed_run(ws, run.run_id, "done", 2)
    assert record["target"] == "box" and record["dataset"]["name"] == "demo"
    assert record["commit"] and record["error"] is None
    assert [e.done for e in events if e.stage == "epoch"] == [1, 2]   # the live view saw each epoch
    assert "Epoch" in (ws.root / "runs" / run.run_id / "train.log").read_text() or \
        (ws.root / "runs" / run.run_id / "train.log").stat().st_size > 0
    best = ws.root / "runs" / run.run_id / "weights" / "best.pt"
    host_copy = tmp_path / "gpubox"
    there = next(host_copy.glob(f"*/runs/{run.run_id}/weights/best.pt"))
    assert file_md5(best) == file_md5(there)                # the host's weights, byte for byte
    assert ws.verify().problems == []
    entry = json.loads((ws.root / ".nbversion" / "audit.jsonl").read_text().splitlines()[-1])
    assert entry["action"] == "train" and entry["user"] == ws.user
    assert "on target" in "".join(e.message for e in events)
    # the host never committed: its clone is at the commit the run started from
    clone = next(host_copy.glob("*/.git")).parent
    assert git(clone, "rev-parse", "HEAD").strip() == record["commit"]
    assert cli_json("runs", "show", run.run_id)["status"] == "done"

    # a training that fails on the host (a GPU it lacks) is committed here as failed, with the host's reason
    ws.push()
    failed = ws.train("demo", "yolov8n.yaml", epochs=1, imgsz=64, batch=4, device="0", extra=dict(TINY), on="box",
                      wait=True)
    assert failed.record["status"] == "failed" and "CUDA GPU" in failed.record["error"]
    assert git(ws.root, "status", "--porcelain") == ""
    entry = json.loads((ws.root / ".nbversion" / "audit.jsonl").read_text().splitlines()[-1])
    assert entry["target"] == failed.run_id and entry["details"]["status"] == "failed"


def test_a_target_run_stopped_once_is_resumed_on_the_same_target(trained, tmp_path, sshd):
    from IPython.core.interactiveshell import InteractiveShell

    ws = team_workspace(trained, tmp_path, sshd)
    shell = InteractiveShell.instance()
    try:
        shell.run_cell("%load_ext nbversion")
        started = shell.run_cell("%mv_train --data demo --on box --epochs 20 " + " ".join(TINY_ARGS))   # the stop lands before the end
        assert started.success   # in a notebook it returns at once: the run trains on the host
        run = started.result
    finally:
        InteractiveShell.clear_instance()
    assert run.record["cell"] is not None and run.record["target"] == "box"   # the cell's lineage, as a local run's
    listed = {r["id"]: r for r in cli_json("runs", "list")["runs"]}
    assert listed[run.run_id]["status"] == "running"   # not "failed" for want of a local pid: it runs on the target
    cli("runs", "stop", run.run_id, check=0)            # another process: the STOP file goes to the host
    run.wait(600)
    stopped = assert_committed_run(ws, run.run_id, "stopped", len(run.record["epochs"]))
    assert len(stopped["epochs"]) < 20 and stopped["target"] == "box"
    resumed = ws.runs_resume(run.run_id, wait=True)
    record = assert_committed_run(ws, resumed.run_id, "done", 20)
    assert record["target"] == "box"
    assert ws.verify().problems == []


def test_a_host_without_nbversion_or_an_unpushed_commit_changes_nothing(trained, tmp_path):
    with running_sshd(tmp_path / "bare", nbversion=False) as bare:
        ws = team_workspace(trained, tmp_path, bare)
        before = snapshot(ws.root)
        with pytest.raises(NbversionError, match="nbversion is not installed on") as error:
            train_on(ws)
        assert "install nbversion" in error.value.hint
        assert snapshot(ws.root) == before and not (tmp_path / "gpubox").exists()

        (ws.root / "notes.txt").write_text("new\n")
        ws.commit("notes")
        before = snapshot(ws.root)
        proc = cli("train", "--data", "demo", "--on", "box", "--epochs", "1", check=1)
        assert "is not pushed to team" in proc.stderr and "nbversion push" in proc.stderr
        assert snapshot(ws.root) == before

        label = next((ws.root / "datasets/demo/labels/train").glob("*.txt"))   # an edit under the same pointer
        label.write_text(label.read_text() + "0 0.5 0.5 0.1 0.1\n")
        before = snapshot(ws.root)
        proc = cli("train", "--data", "demo", "--on", "box", "--epochs", "1", check=1)
        assert "working copy of dataset demo is not committed" in proc.stderr
        assert snapshot(ws.root) == before


def started_by_a_closed_notebook(ws, target: str, epochs: int) -> str:
    """A run started on `target` by a process that ends at once, as a closed notebook's kernel."""
    import subprocess
    import sys

    code = ("import nbversion as nbv\n"
            f"run = nbv.open('.').train('demo', 'yolov8n.yaml', epochs={epochs}, imgsz=64, batch=4, device='cpu', "
            f"extra={dict(TINY)!r}, on={target!r})\n"
            "print(run.run_id)\n")
    run_id = subprocess.run([sys.executable, "-c", code], cwd=ws.root, capture_output=True, text=True,
                            check=True).stdout.split()[-1]
    assert cli_json("runs", "show", run_id)["status"] == "running"
    return run_id


def test_a_closed_notebook_leaves_the_run_training_and_runs_attach_commits_it(trained, tmp_path, sshd):
    ws = team_workspace(trained, tmp_path, sshd)
    run_id = started_by_a_closed_notebook(ws, "box", epochs=2)
    cli("runs", "attach", run_id, check=0)
    record = assert_committed_run(ws, run_id, "done", 2)
    assert record["target"] == "box"
    done = cli("runs", "attach", run_id, check=2).stderr
    assert "is done and committed: nothing to attach to" in done and "runs resume" not in done
    # the CLI: the next run needs the new commit pushed; then it reuses the host's clone
    assert "nbversion push" in cli("train", "--data", "demo", "--on", "box", *TINY_ARGS, check=1).stderr
    cli("push", check=0)
    cli("train", "--data", "demo", "--on", "box", "--epochs", "1", *TINY_ARGS, check=0)
    latest = max(r["id"] for r in cli_json("runs", "list")["runs"])
    assert assert_committed_run(ws, latest, "done", 1)["target"] == "box"
    cli("audit", "verify", check=0)
    assert ws.verify().problems == []
