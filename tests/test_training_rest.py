"""The REST `runs` endpoints the sidebar reads show a run whose own commit failed (real training)."""
from __future__ import annotations

import asyncio

# pytest-jupyter's fixtures, imported (not registered) as in test_server.py; ours come after
# them, so this module's jp_server_config is test_server's (it loads our extension)
from pytest_jupyter.jupyter_core import *  # noqa: F401,F403
from pytest_jupyter.jupyter_server import *  # noqa: F401,F403

from conftest import cli, workspace_lock_held
from test_server import _run_in_the_server_loop, api, jp_server_config  # noqa: F401 (fixtures)
from test_training import TINY_ARGS, data_ws   # noqa: F401 (fixture)
from trained import held_training, trained, trained_template   # noqa: F401 (fixtures)


@_run_in_the_server_loop
async def test_rest_runs_show_a_commit_that_failed(api, data_ws):   # noqa: F811
    ws = data_ws
    config = ws.root / ".nbversion" / "config.toml"
    config.write_text(config.read_text().replace("lock_timeout = 120", "lock_timeout = 1"))
    with workspace_lock_held(ws.root, "dataset add"):
        train = ["train", "--data", "demo", "--epochs", "1", "--name", "rest", *TINY_ARGS]
        proc = await asyncio.get_running_loop().run_in_executor(None, lambda: cli(*train))
    assert proc.returncode == 1 and "commit failed" in proc.stderr, (proc.returncode, proc.stderr[-2000:])
    code, data = await api("runs")
    assert code == 200, data
    [run] = data["runs"]
    assert run["status"] == "commit failed" and "busy" in run["commit_error"] and run["outcome"] == "done"
    assert data["view"]["rows"][0][1] == "commit failed"
    code, shown = await api("runs", run["id"])
    assert code == 200 and shown["status"] == "commit failed" and "commit failed" in shown["view"]["summary"]
    _, progress = await api("runs", "progress")
    assert [(r["id"], r["status"]) for r in progress["runs"]] == [(run["id"], "commit failed")]
    assert "busy" in progress["runs"][0]["commit_error"]


@_run_in_the_server_loop
async def test_rest_compare_answers_the_curves_of_a_finished_and_a_running_run(api, trained):   # noqa: F811
    ws, done_id = trained
    with held_training(ws, epochs=2) as live:
        code, data = await api("runs", "compare", params={"runs": f"{done_id},{live.run_id}", "metric": "mAP50"})
        assert code == 200, data
        assert [r["id"] for r in data["runs"]] == [done_id, live.run_id] and data["metric"] == "mAP50"
        assert [len(data["series"][r]["mAP50"]) for r in (done_id, live.run_id)] == [1, 1]
        assert data["params"]["epochs"] == {done_id: 1, live.run_id: 2}   # only what differs
        code, data = await api("runs", "compare", params={"runs": done_id})
        assert code == 400 and "2 to 10" in data["error"]["message"], data
        code, data = await api("runs", "compare")
        assert code == 400 and "runs" in data["error"]["message"], data
