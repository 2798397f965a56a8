"""The REST server extension, through a real Jupyter server (pytest-jupyter's `jp_fetch`).

Every endpoint: success, bad input, 403 without token / XSRF, 409 while another process
holds the workspace lock, all on the real core modules.
"""
from __future__ import annotations

import asyncio
import functools
import inspect
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from tornado.httpclient import HTTPClientError

from conftest import git, snapshot, workspace_lock_held
from test_training import TINY_ARGS
from trained import held_training, trained, trained_template   # noqa: F401 (fixtures)

# pytest-jupyter's fixtures, imported here rather than registered with `pytest_plugins`: a
# registered plugin's autouse fixtures (an event loop and a ServerApp clean-up) would run
# around every test of the suite; imported, they stay in this module.
from pytest_jupyter.jupyter_core import *  # noqa: E402,F401,F403
from pytest_jupyter.jupyter_server import *  # noqa: E402,F401,F403

API = ("nbversion", "api")


@pytest.fixture
def jp_server_config(ws):
    """The server runs our extension on the test workspace (the traitlets-configured path)."""
    return {"ServerApp": {"jpserver_extensions": {"nbversion.server": True}},
            "NbversionConfig": {"workspace": str(ws.root)}}


@pytest.fixture
def api(jp_fetch, jp_serverapp):
    """`await api("status")` -> (status code, JSON body); errors are answers, not exceptions."""

    async def call(*path, method="GET", body=None, params=None, headers=None):
        kwargs = {"method": method, "params": params or {}}
        if headers is not None:
            kwargs["headers"] = headers
        if method != "GET":
            kwargs["body"] = body if isinstance(body, (str, bytes)) else json.dumps(body or {})
        try:
            response = await jp_fetch(*API, *path, **kwargs)
        except HTTPClientError as exc:
            response = exc.response
            if response is None:
                raise
        text = response.body.decode() if response.body else ""
        return response.code, (json.loads(text) if text.strip().startswith("{") else text)

    return call


def assert_error(code, data, status, error_type):
    assert code == status, data
    assert data["error"]["type"] == error_type, data
    assert data["error"]["message"]


def assert_view(code, data):
    assert code == 200, data
    assert "view" in data, data


@pytest.fixture
def lock_holder(ws):
    """Another process holding the workspace lock, like a CLI commit or another kernel."""
    with workspace_lock_held(ws.root, "commit (held by the test)", seconds=60) as proc:
        yield proc


def cli_training(ws, name: str) -> tuple[subprocess.Popen, dict]:
    """`nbversion train --wait` in another process, as from a terminal; returns once it trains."""
    exe = Path(sys.executable).with_name("nbversion")
    proc = subprocess.Popen([str(exe), "train", "--data", "demo", "--epochs", "30", "--name", name, *TINY_ARGS],
                            cwd=ws.root, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline, record = time.time() + 240, {}
    while time.time() < deadline and record.get("status") != "running" and proc.poll() is None:
        time.sleep(0.3)
        found = list((ws.root / "runs").glob(f"*-{name}/run.json"))
        try:
            record = json.loads(found[0].read_text()) if found else {}
        except ValueError:
            record = {}
    assert record.get("status") == "running", (record, proc.poll())
    return proc, record


# --- workspace verbs ---------------------------------------------------------------------

async def test_status_lists_changes_with_the_cli_table(api, ws):
    (ws.root / "notes.txt").write_text("hello\n")
    code, data = await api("status")
    assert code == 200, data
    assert [c["path"] for c in data["changes"]] == ["notes.txt"]
    assert data["view"]["headers"] == ["state", "path", "tracked by"]
    assert data["view"]["rows"] == [["new", "notes.txt", "git"]]
    assert "1 change" in data["view"]["summary"]


async def test_commit_records_changes_and_audits(api, ws):
    (ws.root / "notes.txt").write_text("hello\n")
    code, data = await api("commit", method="POST", body={"message": "add notes"})
    assert code == 201, data
    assert "add notes" in git(ws.root, "log", "-1", "--format=%s")
    assert git(ws.root, "status", "--porcelain") == ""
    code, data = await api("status")
    assert data["changes"] == []


async def test_commit_without_message_is_400_and_changes_nothing(api, ws):
    (ws.root / "notes.txt").write_text("hello\n")
    before = snapshot(ws.root)
    code, data = await api("commit", method="POST", body={"paths": ["notes.txt"]})
    assert_error(code, data, 400, "usage")
    assert "message" in data["error"]["message"]
    code, data = await api("commit", method="POST", body="{not json")
    assert_error(code, data, 400, "usage")
    assert snapshot(ws.root) == before


async def test_commit_with_nothing_changed_is_409(api, ws):
    code, data = await api("commit", method="POST", body={"message": "nothing"})
    assert_error(code, data, 409, "nothing_to_commit")
    assert data["error"]["hint"] is not None or data["error"]["message"]


async def test_log_returns_history_and_rejects_a_bad_n(api, ws):
    code, data = await api("log", params={"n": "5"})
    assert code == 200, data
    assert data["view"]["rows"], data
    code, data = await api("log", params={"n": "many"})
    assert_error(code, data, 400, "usage")
    assert "`n`" in data["error"]["message"]


async def test_whoami_reports_identity_and_role(api, ws):
    code, data = await api("whoami")
    assert code == 200, data
    assert data["user"] == "tester@example.com"
    assert data["role"] == "admin"   # the user who ran `init`


async def test_audit_lists_entries_and_verify_checks_the_chain(api, ws):
    code, data = await api("audit")
    assert_view(code, data)
    assert any("init" in " ".join(row) for row in data["view"]["rows"]), data["view"]
    code, data = await api("audit", "verify")
    assert_view(code, data)
    assert data["ok"] is True, data


# --- datasets, models, runs, registry ------------------------------------------------------

@pytest.mark.parametrize("path", ["datasets", "models", "runs", "registry"])
async def test_list_endpoints_of_an_empty_workspace_answer_an_empty_table(api, ws, path):
    code, data = await api(path)
    assert_view(code, data)
    assert data["view"]["rows"] == [], data["view"]


async def test_unknown_dataset_is_404(api, ws):
    code, data = await api("datasets", "no-such-dataset")
    assert code == 404, data
    assert "no-such-dataset" in data["error"]["message"]


async def test_dataset_diff_needs_two_versions(api, ws):
    code, data = await api("datasets", "coco", "diff", params={"a": "HEAD"})
    assert_error(code, data, 400, "usage")
    assert "`b`" in data["error"]["message"]


async def test_promote_without_ref_is_400(api, ws):
    before = snapshot(ws.root)
    code, data = await api("registry", "promote", method="POST", body={"stage": "champion"})
    assert_error(code, data, 400, "usage")
    assert "ref" in data["error"]["message"]
    assert snapshot(ws.root) == before


async def test_promote_an_unknown_version_is_an_error_not_a_crash(api, ws):
    code, data = await api("registry", "promote", method="POST", body={"ref": "ghost@v9.9.9"})
    assert code in (400, 404), data
    assert "ghost" in data["error"]["message"]


async def test_stop_an_unknown_run_is_an_error(api, ws):
    code, data = await api("runs", "no-such-run", "stop", method="POST")
    assert code in (400, 404, 409), data
    assert "no-such-run" in data["error"]["message"], data


# --- live progress -------------------------------------------------------------------------

async def test_progress_returns_only_runs_changed_since_the_cursor(trained, api):
    ws, done_id = trained
    with held_training(ws, epochs=3) as live:
        code, first = await api("runs", "progress", params={"cursor": "0"})
        assert code == 200, first
        assert {r["id"] for r in first["runs"]} == {done_id, live.run_id}
        running = next(r for r in first["runs"] if r["id"] == live.run_id)
        assert (running["status"], running["epoch"], running["epochs"]) == ("running", 1, 3)
        assert next(r for r in first["runs"] if r["id"] == done_id)["status"] == "done"
        assert isinstance(first["cursor"], str)     # opaque to the client
        code, again = await api("runs", "progress", params={"cursor": first["cursor"]})
        assert again["runs"] == [] and again["sections"] == [] and again["cursor"] == first["cursor"]
        live.release()                              # epoch 2 trains and is recorded
        assert live.wait_held() == 2
        code, later = await api("runs", "progress", params={"cursor": first["cursor"]})
        assert [(r["id"], r["epoch"]) for r in later["runs"]] == [(live.run_id, 2)]
        assert later["runs"][0]["map"] == pytest.approx(live.record()["epochs"][-1]["mAP50-95"])


async def test_progress_reports_which_sections_changed(api, ws, tmp_path):
    _, first = await api("runs", "progress", params={"cursor": "0"})
    assert set(first["sections"]) == {"status", "datasets", "registry", "audit"}
    (ws.root / "notes.txt").write_text("hello\n")
    ws.commit("notes")                          # from a kernel or the CLI, not the sidebar
    _, answer = await api("runs", "progress", params={"cursor": first["cursor"]})
    assert {"status", "datasets", "audit"} <= set(answer["sections"]) and "registry" not in answer["sections"]
    weights = tmp_path / "m.pt"
    weights.write_bytes(os.urandom(1024))
    ws.register("m", version="1.0.0", source=str(weights))
    _, tagged = await api("runs", "progress", params={"cursor": answer["cursor"]})
    assert {"registry", "audit"} <= set(tagged["sections"])      # the new version tag is seen


async def test_a_cursor_from_another_server_gets_the_full_answer(trained, api):
    ws, done_id = trained
    _, answer = await api("runs", "progress", params={"cursor": "0123abcd:99"})
    assert [r["id"] for r in answer["runs"]] == [done_id]


async def test_progress_long_poll_waits_for_a_change_without_blocking_the_server(trained, api):
    ws, _ = trained
    with held_training(ws, epochs=3) as live:
        _, first = await api("runs", "progress")
        poll = asyncio.ensure_future(api("runs", "progress", params={"cursor": first["cursor"], "wait": "30"}))
        started = time.monotonic()
        code, who = await api("whoami")             # the server answers others while the poll waits
        assert code == 200 and not poll.done()
        await asyncio.sleep(0.3)
        assert not poll.done()
        live.release()                              # the trainer records epoch 2 when it has trained it
        code, answer = await poll
        waited = time.monotonic() - started
        # the first change may be epoch 2's start (its progress), before the epoch is recorded
        while code == 200 and [r["epoch"] for r in answer["runs"]] == [1] and time.monotonic() - started < 30:
            code, answer = await api("runs", "progress", params={"cursor": answer["cursor"], "wait": "30"})
        assert code == 200 and [(r["id"], r["epoch"]) for r in answer["runs"]] == [(live.run_id, 2)]
        assert 0.3 <= waited < 30, waited


async def test_progress_rejects_a_bad_cursor(api, ws):
    code, data = await api("runs", "progress", params={"cursor": "yesterday"})
    assert_error(code, data, 400, "usage")


# --- auth, XSRF, lock, workspace -----------------------------------------------------------

async def test_get_without_token_is_403(api, ws):
    code, data = await api("status", headers={"Authorization": ""})
    assert code == 403, data
    assert data["error"]["type"] == "HTTPError"


async def test_post_without_token_or_xsrf_is_403_and_changes_nothing(api, ws):
    (ws.root / "notes.txt").write_text("hello\n")
    before = snapshot(ws.root)
    code, data = await api("commit", method="POST", body={"message": "sneaky"},
                           headers={"Authorization": ""})
    assert code == 403, data
    code, data = await api("registry", "promote", method="POST", body={"ref": "m@v1.0.0"},
                           headers={"Authorization": "token wrong-token"})
    assert code == 403, data
    assert snapshot(ws.root) == before


async def test_a_browser_session_cookie_needs_the_xsrf_token_to_post(api, ws, jp_fetch):
    """Logged in by cookie (as the sidebar is), a POST without the XSRF token is refused."""
    login = (await jp_fetch(*API, "whoami")).headers.get_list("Set-Cookie")[0].split(";")[0]
    (ws.root / "notes.txt").write_text("hello\n")
    code, data = await api("status", headers={"Authorization": "", "Cookie": login})
    assert code == 200, data                      # the cookie alone is a login
    before = snapshot(ws.root)
    code, data = await api("commit", method="POST", body={"message": "forged"},
                           headers={"Authorization": "", "Cookie": login})
    assert code == 403 and "xsrf" in data["error"]["message"].lower(), data
    assert snapshot(ws.root) == before
    xsrf = "0123456789abcdef" * 2                 # double submit: cookie and header agree
    code, data = await api("commit", method="POST", body={"message": "from the sidebar"},
                           headers={"Authorization": "", "Cookie": f"{login}; _xsrf={xsrf}", "X-XSRFToken": xsrf})
    assert code == 201, data
    assert "from the sidebar" in git(ws.root, "log", "-1", "--format=%s")


async def test_commit_while_another_process_holds_the_lock_is_409(api, ws, lock_holder):
    (ws.root / "notes.txt").write_text("hello\n")
    before = snapshot(ws.root)
    started = time.monotonic()
    code, data = await api("commit", method="POST", body={"message": "blocked"})
    assert_error(code, data, 409, "lock_held")
    assert str(lock_holder.pid) in data["error"]["message"]
    assert "held by the test" in data["error"]["message"]
    assert time.monotonic() - started < 5      # answered at once, not after lock_timeout
    assert snapshot(ws.root) == before
    code, data = await api("status")            # reads take no lock: still served
    assert code == 200


async def test_promote_while_locked_is_409(api, ws, lock_holder):
    code, data = await api("registry", "promote", method="POST", body={"ref": "m@v1.0.0"})
    assert_error(code, data, 409, "lock_held")


async def test_no_workspace_is_a_404_with_a_hint(api, ws, jp_serverapp, tmp_path):
    jp_serverapp.web_app.settings["nbversion_workspace"] = str(tmp_path / "elsewhere")
    code, data = await api("status")
    assert_error(code, data, 404, "not_a_workspace")
    assert "init" in data["error"]["hint"]


def test_workspace_defaults_to_the_server_root_dir(tmp_path):
    from traitlets.config import Config

    from nbversion.server import workspace_folder

    class App:
        root_dir = str(tmp_path)
        config = Config()

    assert workspace_folder(App()) == str(tmp_path)
    App.config = Config({"NbversionConfig": {"workspace": "/data/project"}})
    assert workspace_folder(App()) == "/data/project"


def test_extension_is_enabled_by_the_shipped_config():
    config = Path(__file__).resolve().parents[1] / "jupyter-config" / "jupyter_server_config.d" / "nbversion.json"
    assert json.loads(config.read_text())["ServerApp"]["jpserver_extensions"] == {"nbversion.server": True}
    import nbversion.server as ext
    assert ext._jupyter_server_extension_points() == [{"module": "nbversion.server"}]
    assert os.path.basename(ext.__file__) == "__init__.py"


# --- with state made by the verbs ------------------------------------------------------------

@pytest.fixture
def two_versions(ws, tmp_path):
    """detector v1.0.0 (champion) and v1.1.0, registered from weight files."""
    weights = tmp_path / "detector.pt"
    weights.write_bytes(os.urandom(1024))
    ws.register("detector", version="1.0.0", source=str(weights))
    weights.write_bytes(os.urandom(1024))
    ws.register("detector", version="1.1.0", source=str(weights))
    ws.promote("detector@v1.0.0")
    return ws


async def test_audit_filters_and_limit(api, ws):
    (ws.root / "notes.txt").write_text("hello\n")
    ws.commit("notes")
    code, data = await api("audit", params={"action": "init"})
    assert code == 200 and [row[3] for row in data["view"]["rows"]] == ["init"], data["view"]
    code, data = await api("audit", params={"limit": "1"})
    assert len(data["view"]["rows"]) == 1 and data["view"]["rows"][0][3] == "commit"
    code, data = await api("audit", params={"limit": "all"})
    assert_error(code, data, 400, "usage")


async def test_datasets_list_and_show_a_real_dataset(api, ws, demo_data):
    ws.dataset_add("shapes", demo_data)
    code, data = await api("datasets")
    assert code == 200, data
    assert [row[0] for row in data["view"]["rows"]] == ["shapes"]
    code, data = await api("datasets", "shapes")
    assert code == 200, data
    assert "view" in data


async def test_dataset_diff_between_two_versions(api, ws, demo_data):
    ws.dataset_add("shapes", demo_data)
    label = sorted((demo_data / "labels" / "train").glob("*.txt"))[0]
    image = next((demo_data / "images" / "train").glob(label.stem + ".*"))
    label.unlink()
    image.unlink()
    ws.dataset_add("shapes", demo_data)
    code, data = await api("datasets", "shapes", "diff", params={"a": "~1", "b": "latest"})
    assert code == 200, data
    cells = " ".join(" ".join(row) for row in data["view"]["rows"]) + data["view"]["summary"]
    assert image.name in cells or "removed" in cells, data["view"]
    code, data = await api("datasets", "shapes", "diff", params={"a": "~5", "b": "latest"})
    assert code == 404 and "too far" in data["error"]["message"], data

async def test_registry_lists_versions_with_the_champion_highlighted(api, two_versions):
    code, data = await api("registry")
    assert code == 200, data
    view = data["view"]
    version = view["headers"].index("version")
    assert sorted(row[version] for row in view["rows"]) == ["v1.0.0", "v1.1.0"]
    assert [view["rows"][i][version] for i in view["highlight"]] == ["v1.0.0"]


async def test_promote_moves_the_champion_and_audits(api, two_versions):
    code, data = await api("registry", "promote", method="POST", body={"ref": "detector@v1.1.0"})
    assert code == 201, data
    assert "detector@v1.1.0 is now champion" in data["view"]["summary"]
    code, data = await api("registry")
    version = data["view"]["headers"].index("version")
    assert [data["view"]["rows"][i][version] for i in data["view"]["highlight"]] == ["v1.1.0"]
    last = (two_versions.root / ".nbversion" / "audit.jsonl").read_text().splitlines()[-1]
    assert json.loads(last)["action"] == "promote" and "detector@v1.1.0" in json.loads(last)["target"]


async def test_promote_by_a_contributor_is_403_with_a_hint(api, two_versions, monkeypatch):
    monkeypatch.setenv("NBVERSION_USER", "intern@example.com")     # not in users.toml: contributor
    code, data = await api("registry", "promote", method="POST", body={"ref": "detector@v1.1.0"})
    assert_error(code, data, 403, "permission_denied")
    assert "user add intern@example.com" in data["error"]["hint"]
    last = json.loads((two_versions.root / ".nbversion" / "audit.jsonl").read_text().splitlines()[-1])
    assert last["user"] == "intern@example.com" and last["action"] in ("denied", "promote refused")
    code, data = await api("registry")
    version = data["view"]["headers"].index("version")
    assert [data["view"]["rows"][i][version] for i in data["view"]["highlight"]] == ["v1.0.0"]


async def test_a_bug_is_a_json_500_of_type_internal_not_a_traceback(api, ws, monkeypatch):
    """An unexpected exception in a route or in the long poll: the CLI's message, status 500, type internal."""
    from nbversion.core.workspace import Workspace   # ws.log is history.log itself: patch the method
    from nbversion.server import progress

    def broken(*args, **kwargs):
        raise ZeroDivisionError("a bug")

    monkeypatch.delenv("NBVERSION_TRACEBACK", raising=False)
    monkeypatch.setattr(Workspace, "log", broken)
    code, data = await api("log")
    assert_error(code, data, 500, "internal")
    assert data["error"]["message"] == "internal error: ZeroDivisionError: a bug"
    assert "server log" in data["error"]["hint"] and "Traceback" not in json.dumps(data)
    monkeypatch.setattr(progress, "changes_since", broken)     # outside `respond`: tornado's own error path
    code, data = await api("runs", "progress")
    assert_error(code, data, 500, "internal")
    assert data["error"]["message"] == "internal error: ZeroDivisionError: a bug"
    assert "Traceback" not in json.dumps(data)
    code, data = await api("status")                           # the server still serves
    assert code == 200, data


async def test_fields_view_returns_only_the_table(api, ws):
    (ws.root / "notes.txt").write_text("hello\n")
    code, data = await api("status", params={"fields": "view"})
    assert code == 200 and list(data) == ["view"]
    assert data["view"]["rows"] == [["new", "notes.txt", "git"]]


async def test_runs_list_and_show_read_the_run_records(trained, api):
    ws, done_id = trained
    with held_training(ws, epochs=3) as live:
        code, data = await api("runs", params={"fields": "view"})
        assert code == 200, data
        ids = [row[0] for row in data["view"]["rows"]]
        assert ids == [done_id, live.run_id]
        running = [data["view"]["rows"][i][0] for i in data["view"]["highlight"]]
        assert running == [live.run_id]
        code, data = await api("runs", live.run_id)
        assert code == 200, data
        assert len(data["view"]["rows"]) == 1      # one row per epoch trained so far
    code, data = await api("runs", done_id)
    assert code == 200, data
    assert len(data["view"]["rows"]) == 1
    code, data = await api("runs", "no-such-run")
    assert code == 404, data


async def test_progress_shows_a_run_of_a_dead_process_as_failed(trained, api):
    ws, done_id = trained
    trainer, record = cli_training(ws, "killed")
    trainer.kill()                               # kill -9: the process that trained it is gone
    trainer.wait()
    _, answer = await api("runs", "progress")
    assert {r["id"]: r["status"] for r in answer["runs"]} == {done_id: "done", record["id"]: "failed"}


async def test_stop_asks_a_run_training_elsewhere_to_stop(trained, api):
    ws, done_id = trained
    trainer, record = cli_training(ws, "far")    # trained by another live process
    try:
        code, data = await api("runs", record["id"], "stop", method="POST")
        assert code == 202, data
        out, err = trainer.communicate(timeout=240)   # the trainer polls the stop file and stops
    finally:
        trainer.kill()
    assert trainer.returncode == 0, err
    stopped = json.loads((ws.root / "runs" / record["id"] / "run.json").read_text())
    assert stopped["status"] == "stopped" and len(stopped["epochs"]) < 30
    code, data = await api("runs", done_id, "stop", method="POST")
    assert_error(code, data, 400, "usage")
    assert "not running" in data["error"]["message"]


def _jupyter(*args, env_extra: dict) -> str:
    env = {**os.environ, **env_extra, "NO_COLOR": "1"}
    jupyter = Path(sys.executable).with_name("jupyter")
    proc = subprocess.run([str(jupyter), *args], env=env, capture_output=True, text=True, timeout=120)
    return proc.stdout + proc.stderr


def test_jupyter_server_extension_list_shows_it_enabled(tmp_path):
    """What `pip install` puts in etc/jupyter enables and validates the server extension."""
    shipped = Path(__file__).resolve().parents[1] / "jupyter-config" / "jupyter_server_config.d"
    (tmp_path / "jupyter_server_config.d").mkdir()
    for path in shipped.iterdir():
        (tmp_path / "jupyter_server_config.d" / path.name).write_text(path.read_text())
    out = _jupyter("server", "extension", "list", env_extra={"JUPYTER_CONFIG_DIR": str(tmp_path)})
    assert re.search(r"nbversion\.server\s+\S*enabled", out), out
    assert re.search(r"nbversion\.server\s+\S*0\.1\.0\s+\S*OK", out), out


def test_jupyter_labextension_list_shows_the_built_sidebar(tmp_path):
    built = Path(__file__).resolve().parents[1] / "nbversion" / "labextension"
    if not (built / "package.json").exists():
        pytest.skip("the sidebar is not built: cd labextension && npm ci && npm run build")
    (tmp_path / "labextensions").mkdir()
    (tmp_path / "labextensions" / "nbversion-labextension").symlink_to(built)
    out = _jupyter("labextension", "list", env_extra={"JUPYTER_PATH": str(tmp_path)})
    assert re.search(r"nbversion-labextension v0\.1\.0 \S*enabled\S* \S*OK", out), out

def _run_in_the_server_loop(test):
    """`async def test_...` run on pytest-jupyter's loop (its hook is not registered here)."""
    signature = inspect.signature(test)
    params = list(signature.parameters.values())
    if "jp_asyncio_loop" not in signature.parameters:
        params.append(inspect.Parameter("jp_asyncio_loop", inspect.Parameter.KEYWORD_ONLY))

    @functools.wraps(test)
    def run(**kwargs):
        loop = kwargs["jp_asyncio_loop"] if "jp_asyncio_loop" in signature.parameters \
            else kwargs.pop("jp_asyncio_loop")
        return loop.run_until_complete(test(**kwargs))

    run.__signature__ = signature.replace(parameters=params)
    return run


for _name, _test in list(globals().items()):
    if _name.startswith("test_") and inspect.iscoroutinefunction(_test):
        globals()[_name] = _run_in_the_server_loop(_test)
