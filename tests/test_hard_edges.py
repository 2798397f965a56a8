"""Hard edges found by probing as an attacker (issue 15, item 4): path-like run ids, viewers
stopping runs, symbolic links out of a dataset's source, hostile REST bodies, failed commits that
left their audit line staged, odd user ids, and files created without regard to the umask.
"""
from __future__ import annotations

import json
import os
import stat

import pytest

from conftest import cli, git, snapshot
from pytest_jupyter.jupyter_core import *  # noqa: F401,F403
from pytest_jupyter.jupyter_server import *  # noqa: F401,F403
from test_server import _run_in_the_server_loop, api, jp_server_config  # noqa: F401

VIEWER = "viewer@example.com"
SECRET = "TOPSECRET-do-not-quote-me"


@pytest.fixture
def outside_run(ws, tmp_path):
    """An attacker's run.json two levels above runs/ (`runs/../../outside`), claiming to be live."""
    folder = tmp_path / "outside"
    folder.mkdir()
    (folder / "run.json").write_text(json.dumps({"id": "outside", "status": "running", "pid": os.getpid(),
                                                 "host": os.uname().nodename}))
    return folder


@pytest.fixture
def viewer(ws, monkeypatch):
    ws.user_add(VIEWER, "viewer")
    monkeypatch.setenv("NBVERSION_USER", VIEWER)
    return VIEWER


# --- run ids -------------------------------------------------------------------------------------

def test_a_run_id_that_is_a_path_is_refused_and_nothing_is_written_outside(ws, outside_run):
    for verb in ("show", "stop", "resume"):
        proc = cli("--json", "runs", verb, "../../outside")
        assert proc.returncode == 2, (verb, proc.stdout, proc.stderr)
        assert "'../../outside' is not a run id" in json.loads(proc.stdout)["error"]["message"]
    for not_an_id in ("..", "a/b", "", ".hidden"):
        assert cli("runs", "show", not_an_id).returncode == 2, not_an_id
    assert not (outside_run / "STOP").exists()
    assert sorted(p.name for p in outside_run.iterdir()) == ["run.json"]


def test_a_viewer_cannot_stop_a_run_from_the_cli_or_a_magic(ws, viewer, capsys):
    proc = cli("--json", "runs", "stop", "20260101-000000-yolov8n")
    assert proc.returncode == 3, proc.stdout + proc.stderr
    error = json.loads(proc.stdout)["error"]
    assert error["type"] == "permission_denied" and "runs stop" in error["message"]

    from IPython.core.interactiveshell import InteractiveShell
    shell = InteractiveShell.instance()
    try:
        shell.run_cell("%load_ext nbversion")
        result = shell.run_cell("%mv_runs stop 20260101-000000-yolov8n")
    finally:
        InteractiveShell.clear_instance()
    assert not result.success
    assert "needs the contributor role" in capsys.readouterr().out


@pytest.fixture
def raw_api(http_server_client, jp_auth_header, jp_base_url):
    """A request to an already-encoded path (`jp_fetch` would escape the %2f of `..%2f..%2foutside`)."""
    async def call(path, method="GET"):
        response = await http_server_client.fetch(
            f"{jp_base_url.rstrip('/')}/nbversion/api/{path}", method=method, headers=jp_auth_header,
            body=b"{}" if method == "POST" else None, raise_error=False)
        return response.code, json.loads(response.body)
    return call


@_run_in_the_server_loop
async def test_rest_refuses_path_run_ids_and_viewers_stopping(api, raw_api, ws, outside_run,   # noqa: F811
                                                              monkeypatch):
    code, data = await raw_api("runs/..%2f..%2foutside")
    assert code == 400 and data["error"]["type"] == "usage", data
    code, data = await raw_api("runs/..%2f..%2foutside/stop", method="POST")
    assert code == 400 and "not a run id" in data["error"]["message"], data
    assert not (outside_run / "STOP").exists()

    ws.user_add(VIEWER, "viewer")
    monkeypatch.setenv("NBVERSION_USER", VIEWER)
    code, data = await api("runs", "20260101-000000-yolov8n", "stop", method="POST")
    assert code == 403 and data["error"]["type"] == "permission_denied", data


# --- REST bodies ---------------------------------------------------------------------------------

@_run_in_the_server_loop
async def test_rest_bodies_of_the_wrong_type_are_400_and_change_nothing(api, ws):   # noqa: F811
    (ws.root / "notes.txt").write_text("not committed\n")
    before = snapshot(ws.root)
    for body in ({"message": "m", "paths": [5]}, {"message": "m", "paths": "notes.txt"},
                 {"message": "m", "paths": {"a": 1}}, {"message": 5}):
        code, data = await api("commit", method="POST", body=body)
        assert code == 400 and data["error"]["message"], (body, data)
    for stage in (5, ["champion"], True):
        code, data = await api("registry", "promote", method="POST", body={"ref": "det@v1.0.0", "stage": stage})
        assert code == 400 and data["error"]["type"] == "usage", (stage, data)
    assert snapshot(ws.root) == before


@_run_in_the_server_loop
async def test_rest_commit_paths_are_relative_to_the_workspace_not_the_server(api, ws, tmp_path,
                                                                             monkeypatch):   # noqa: F811
    (ws.root / "notes.txt").write_text("hello\n")
    (ws.root / "other.txt").write_text("left alone\n")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)   # where `jupyter lab` was started
    code, data = await api("commit", method="POST", body={"message": "notes", "paths": ["notes.txt"]})
    assert code == 201, data
    assert data["git_paths"] == ["notes.txt"]
    assert git(ws.root, "status", "--porcelain") == "?? other.txt\n"


@_run_in_the_server_loop
async def test_rest_commit_of_a_20_mb_message_is_400_and_leaves_no_audit_line(api, ws):   # noqa: F811
    (ws.root / "notes.txt").write_text("hello\n")
    before = snapshot(ws.root)
    code, data = await api("commit", method="POST", body={"message": "x" * (20 * 1024 * 1024)})
    assert code == 400 and data["error"]["type"] == "usage", str(data)[:300]
    assert "bytes" in data["error"]["message"]
    assert snapshot(ws.root) == before
    assert git(ws.root, "diff", "--cached", "--name-only") == ""


def test_a_commit_that_git_refuses_leaves_no_audit_line_behind(ws):
    (ws.root / "notes.txt").write_text("hello\n")
    audit_before = (ws.root / ".nbversion" / "audit.jsonl").read_text()
    hook = ws.root / ".git" / "hooks" / "prepare-commit-msg"   # --no-verify does not skip this one
    hook.parent.mkdir(exist_ok=True)
    hook.write_text("#!/bin/sh\necho 'refused by the team hook' >&2\nexit 1\n")
    hook.chmod(0o755)
    proc = cli("commit", "-m", "notes")
    assert proc.returncode != 0, proc.stdout
    assert (ws.root / ".nbversion" / "audit.jsonl").read_text() == audit_before
    assert ".nbversion/audit.jsonl" not in git(ws.root, "diff", "--cached", "--name-only")
    hook.unlink()
    cli("commit", "-m", "notes", check=0)   # the log's chain goes on where it was
    assert cli("audit", "verify").returncode == 0


# --- dataset sources -----------------------------------------------------------------------------

def test_a_link_out_of_the_source_folder_is_refused_and_never_quoted(ws, demo_data, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text(f"{SECRET}\n{SECRET} 2\n")
    (demo_data / "notes.txt").symlink_to(secret)
    before = snapshot(ws.root)
    proc = cli("--json", "dataset", "add", "shapes", demo_data)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    error = json.loads(proc.stdout)["error"]
    assert error["type"] == "invalid_input" and "notes.txt" in error["message"], error

    (demo_data / "notes.txt").unlink()
    label = demo_data / "labels" / "train" / "train_00003.txt"
    label.unlink()
    label.symlink_to(secret)               # a "label" whose lines would be quoted as malformed
    proc = cli("--json", "dataset", "add", "shapes", demo_data)
    assert proc.returncode == 1
    assert "labels/train/train_00003.txt" in json.loads(proc.stdout)["error"]["message"]
    assert SECRET not in proc.stdout + proc.stderr
    assert snapshot(ws.root) == before and not (ws.root / "datasets" / "shapes").exists()


def test_a_link_inside_the_source_folder_is_imported_as_the_file_it_points_at(ws, demo_data):
    labels = demo_data / "labels" / "train"
    (labels / "train_00001.txt").unlink()
    (labels / "train_00001.txt").symlink_to("train_00000.txt")
    ws.dataset_add("shapes", demo_data)
    imported = ws.root / "datasets" / "shapes" / "labels" / "train" / "train_00001.txt"
    assert imported.read_bytes() == (labels / "train_00000.txt").read_bytes()


# --- user ids and file modes ---------------------------------------------------------------------

@pytest.mark.parametrize("user_id", ["", "ana\n@example.com", "ana@example.com\r", "a\tb", "x\x1b[31m"])
def test_empty_user_ids_and_control_characters_are_refused(ws, user_id):
    before = snapshot(ws.root)
    proc = cli("user", "add", user_id, "--role", "viewer")
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert snapshot(ws.root) == before


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o027, 0o640)])
def test_registered_manifests_honour_the_umask(ws, tmp_path, umask, mode):
    weights = tmp_path / "det.pt"
    weights.write_bytes(os.urandom(256))
    old = os.umask(umask)
    try:
        ws.register("det", version="1.0.0", source=str(weights))
    finally:
        os.umask(old)
    manifest, = (ws.root / "registry" / "det").glob("*/manifest.json")
    assert stat.S_IMODE(manifest.stat().st_mode) == mode
