"""The training queue: a second `train` on a busy device is queued, started later by whichever
nbversion process is alive (the kernel that queued it, `runs worker`, the server), cancellable.

Real 1-epoch CPU trainings; the busy device is a real training held between epochs."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from tornado.httpclient import HTTPClientError

from conftest import USER, cli, cli_json, git
from test_training import TINY_ARGS
from trained import held_training, tiny_train, trained, trained_template   # noqa: F401 (fixtures)
from nbversion.errors import NbversionError, UsageError

# pytest-jupyter's fixtures (as test_server.py does): the REST cancel route
from pytest_jupyter.jupyter_core import *  # noqa: E402,F401,F403
from pytest_jupyter.jupyter_server import *  # noqa: E402,F401,F403

QUEUER = "alice@example.com"


@pytest.fixture
def jp_server_config(ws):
    return {"ServerApp": {"jpserver_extensions": {"nbversion.server": True}},
            "NbversionConfig": {"workspace": str(ws.root)}}


def queue_from_cli(ws, name: str, user: str = USER) -> dict:
    """`nbversion train` in a process of its own that exits at once: the run is queued."""
    proc = cli("train", "--data", "demo", "--epochs", "1", "--name", name, *TINY_ARGS, "--json", cwd=ws.root,
               env=dict(os.environ, NBVERSION_USER=user), check=0)
    return json.loads(proc.stdout)


def worker(ws, *args) -> subprocess.Popen:
    exe = Path(sys.executable).with_name("nbversion")
    return subprocess.Popen([str(exe), "runs", "worker", "--json", *args], cwd=ws.root,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finished(proc: subprocess.Popen) -> dict:
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, out + err
    return json.loads(out)


def train_commits(ws, run_id: str) -> list[str]:
    """(author e-mail, subject) of the commits that recorded the run's outcome."""
    log = git(ws.root, "log", "--format=%ae %s", "--", f"runs/{run_id}/run.json")
    return [line for line in log.splitlines() if f"train {run_id}" in line or f"runs cancel {run_id}" in line]


def test_a_cli_run_queued_behind_a_training_is_started_by_a_worker_after_the_cli_exits(trained):
    ws, _ = trained
    with held_training(ws, epochs=3) as live:
        queued = queue_from_cli(ws, "second", user=QUEUER)
        assert (queued["status"], queued["position"], queued["behind"]) == ("queued", 1, live.run_id)
        listed = cli_json("runs", "list", "--status", "queued", cwd=ws.root)["runs"]
        assert [(r["id"], r["queue_position"]) for r in listed] == [(queued["id"], 1)]
        text = cli("runs", "list", cwd=ws.root, check=0).stdout
        assert "queued (position 1)" in text
        shown = cli("runs", "show", queued["id"], cwd=ws.root, check=0).stdout
        assert f"position 1, behind run {live.run_id}" in shown
        summary = cli("train", "--data", "demo", "--epochs", "1", "--name", "third", *TINY_ARGS, cwd=ws.root,
                      check=0).stdout
        assert "(position 2, behind " in summary and queued["id"] in summary
        third = cli_json("runs", "list", "--status", "queued", cwd=ws.root)["runs"][-1]["id"]
        cli("runs", "cancel", third, cwd=ws.root, check=0)
        cli("status", cwd=ws.root, check=0)   # a workspace with queued runs is fine
        cli("verify", cwd=ws.root, check=0)
        cli("gc", cwd=ws.root, check=0)
        (ws.root / "notes.txt").write_text("meanwhile\n")
        cli("commit", "-m", "notes while a run is queued", cwd=ws.root, check=0)
        assert git(ws.root, "ls-files", f"runs/{queued['id']}") == ""   # its folder is the run's to commit
        assert [r["id"] for r in cli_json("runs", "list", "--status", "queued", cwd=ws.root)["runs"]] == [queued["id"]]
    # the queuing CLI process has long exited; nothing runs it until a worker does, and it says so
    shown = cli("runs", "show", queued["id"], cwd=ws.root, check=0).stdout
    assert "runs worker" in shown and f"behind run {live.run_id}" not in shown, shown   # it has ended
    report = finished(worker(ws, "--once"))
    assert report["started"] == [{"run": queued["id"], "status": "done", "device": "cpu"}]
    assert ws.runs_show(queued["id"]).record["status"] == "done"
    assert train_commits(ws, queued["id"]) == [f"{QUEUER} train {queued['id']}: done, mAP50-95 "
                                               f"{ws.runs_show(queued['id']).record['metrics']['mAP50-95']:.3f}"]
    entry = [e for e in ws.audit(action="train").to_dict()["entries"] if e["target"] == queued["id"]]
    assert [e["user"] for e in entry] == [QUEUER]
    assert git(ws.root, "status", "--porcelain", "--", "runs") == ""


def test_a_queued_run_trains_the_dataset_version_it_was_queued_with(trained, tmp_path):
    # a newer version imported while the run waits must not be what it trains: its record names the old one
    from nbversion.demo import make_dataset

    ws, _ = trained
    recorded = ws.dataset_show("demo").meta
    with held_training(ws, epochs=3):
        queued = queue_from_cli(ws, "pinned")
        newer = make_dataset(tmp_path / "newer", val=5)
        ws.dataset_add("demo", newer)                         # the working copy now holds 5 val images
    finished(worker(ws, "--once"))
    record = ws.runs_show(queued["id"]).record
    assert record["status"] == "done" and record["dataset"]["md5"] == recorded["content_hash"]
    log = (ws.root / "runs" / queued["id"] / "train.log").read_text()
    val_images = recorded["splits"]["val"]["images"]
    assert f", {val_images} val images" in log, log          # Ultralytics' "Using 16 train, 8 val images"
    assert record["started_at"] >= record["queued_at"]


def test_a_second_api_train_is_queued_and_starts_by_itself_in_the_same_process(trained, monkeypatch):
    from nbversion.training import queue_worker

    ws, _ = trained
    events = []
    monkeypatch.setattr(queue_worker, "POLL_S", 4.0)   # this kernel looks less often than the other worker
    with held_training(ws, epochs=3) as live:
        second = tiny_train(ws, epochs=1, wait=False, on_event=events.append)
        assert second.status == "queued"
        assert second.to_dict()["position"] == 1
        assert second.summary() == f"queued: {second.run_id} (position 1, behind {live.run_id})"
        chart = second.widget(render=False)
        assert "queued (position 1)" in chart.label.value and not chart.stop_button.disabled   # Stop cancels
        with pytest.raises(NbversionError, match="already training on device cpu") as refused:
            tiny_train(ws, epochs=1, queue=False)
        assert "queue" in refused.value.hint
        other = worker(ws, "--idle-exit", "2")   # another process serving the queue meanwhile
        time.sleep(3)                            # (its start-up) so that it is polling when the device frees
    second.wait(timeout=600)
    assert second.status == "done" and second.thread is not None   # this process trained it: live handle
    assert any(e.stage == "epoch" for e in events)                  # the listener given at queue time follows it
    assert chart.updates >= 1 and chart.state["status"] == "done"   # the widget followed the run it waited for
    assert finished(other)["started"] == []   # it left the run to the live kernel that queued it
    assert [e.data.get("status") for e in events if e.stage == "train"][0] == "queued"
    assert len(train_commits(ws, second.run_id)) == 1


def test_cancel_commits_a_cancelled_run_and_refuses_a_started_one(trained):
    ws, _ = trained
    with held_training(ws, epochs=3) as live:
        queued = queue_from_cli(ws, "tocancel")
        stopped_while_queued = queue_from_cli(ws, "tostop")
        proc = cli("runs", "cancel", live.run_id, cwd=ws.root, check=2)
        assert "has already started" in proc.stderr and f"runs stop {live.run_id}" in proc.stderr
        cancelled = cli_json("runs", "cancel", queued["id"], cwd=ws.root)
        assert cancelled["status"] == "cancelled" and cancelled["weights"] is None
        assert ws.runs_stop(stopped_while_queued["id"]).status == "cancelled"   # stop of a queued run cancels it
        again = cli("runs", "cancel", queued["id"], cwd=ws.root, check=2)
        assert "is not queued (it is cancelled)" in again.stderr
    assert {r["id"] for r in cli_json("runs", "list", "--status", "cancelled", cwd=ws.root)["runs"]} == \
        {queued["id"], stopped_while_queued["id"]}
    assert train_commits(ws, queued["id"]) == [f"{USER} runs cancel {queued['id']}: cancelled before it started"]
    assert [e["target"] for e in ws.audit(action="runs cancel").to_dict()["entries"]] == \
        [queued["id"], stopped_while_queued["id"]]
    assert finished(worker(ws, "--once"))["started"] == []   # nothing left to start


def test_rest_cancel_of_a_queued_run(trained, jp_fetch, jp_serverapp, jp_asyncio_loop):
    ws, _ = trained

    def post(run_id):
        async def call():
            try:
                return await jp_fetch("nbversion", "api", "runs", run_id, "cancel", method="POST", body="{}")
            except HTTPClientError as exc:
                return exc.response
        response = jp_asyncio_loop.run_until_complete(call())
        return response.code, json.loads(response.body.decode())

    with held_training(ws, epochs=3) as live:
        queued = queue_from_cli(ws, "viarest")
        code, data = post(queued["id"])
        assert code == 200, data
        assert ws.runs_show(queued["id"]).record["status"] == "cancelled"
        code, data = post(live.run_id)
        assert code == 400 and "use `nbversion runs stop" in data["error"]["hint"], data


def test_two_workers_race_for_one_entry_and_exactly_one_trains_it(trained):
    ws, _ = trained
    with held_training(ws, epochs=3):
        queued = queue_from_cli(ws, "raced")
    first, second = worker(ws, "--once"), worker(ws, "--once")
    reports = [finished(first), finished(second)]
    assert sorted(len(r["started"]) for r in reports) == [0, 1]
    assert ws.runs_show(queued["id"]).record["status"] == "done"
    assert len(ws.runs_show(queued["id"]).record["epochs"]) == 1
    assert len(train_commits(ws, queued["id"])) == 1


def test_a_worker_killed_after_claiming_leaves_the_run_to_another_worker(trained):
    ws, _ = trained
    with held_training(ws, epochs=3):
        queued = queue_from_cli(ws, "orphan")
    killed = cli("runs", "worker", "--once", cwd=ws.root, env=dict(os.environ, NBVERSION_TEST_KILL_AT="queue-claimed"))
    assert killed.returncode == -9
    assert ws.runs_list(status="queued").runs[0]["id"] == queued["id"]   # not failed, not lost
    report = finished(worker(ws, "--once"))
    assert [r["run"] for r in report["started"]] == [queued["id"]]
    assert ws.runs_show(queued["id"]).record["status"] == "done"
