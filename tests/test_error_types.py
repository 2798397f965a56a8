"""Scripts tell errors apart by their stable `type` (CLI --json and REST), and docs/errors.md lists them all."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

# pytest-jupyter's fixtures, imported (not registered) as in test_server.py
from pytest_jupyter.jupyter_core import *  # noqa: F401,F403
from pytest_jupyter.jupyter_server import *  # noqa: F401,F403

from conftest import cli, snapshot, workspace_lock_held
from test_promotion import CHAMPION_RULES, set_rules
from test_registry import register_run
from test_server import _run_in_the_server_loop, api, jp_server_config  # noqa: F401 (fixtures)

from nbversion import errors

DOC = Path(__file__).resolve().parents[1] / "docs" / "errors.md"


@pytest.fixture
def log_to_file(tmp_path, monkeypatch):
    """NBVERSION_LOG_FILE set before the server starts (list this fixture before `api`)."""
    from nbversion import logs

    path = tmp_path / "server.log"
    monkeypatch.setenv(logs.LOG_FILE_ENV, str(path))
    yield path
    logs.reset()


def _doc_row(cls) -> str:
    when = " ".join((cls.__doc__ or "").split("\n\n")[0].split())
    parent = "" if cls is errors.NbversionError else cls.__mro__[1].__name__
    return f"| `{cls.type}` | `{cls.__name__}` | {parent} | {cls.exit_code} | {cls.http_status} | {when} |"


def test_docs_errors_md_lists_exactly_the_error_classes():
    expected = [_doc_row(cls) for cls in errors.error_classes()]
    documented = [line for line in DOC.read_text().splitlines() if re.match(r"\| `[a-z_]+` \| `", line)]
    assert documented == expected, "docs/errors.md's table is out of date; it should read:\n" + "\n".join(expected)


def test_every_error_class_has_its_own_type():
    classes = errors.error_classes()
    types = [cls.type for cls in classes]
    assert len(set(types)) == len(types), types
    assert all(re.fullmatch(r"[a-z_]+", t) for t in types), types
    assert all(issubclass(cls, errors.NbversionError) for cls in classes)


def _json_error(proc) -> dict:
    return json.loads(proc.stdout)["error"]


def test_register_of_an_existing_version_is_version_exists(ws):
    register_run(ws, "det", "1.0.0", {"mAP50-95": 0.4})
    source = ws.root.parent / "again.pt"
    source.write_bytes(b"other weights")
    proc = cli("--json", "register", "det", "--version", "1.0.0", "--from", source)
    assert proc.returncode == 2, proc.stderr     # a usage error, as before: exit 2
    error = _json_error(proc)
    assert error["type"] == "version_exists" and "already registered" in error["message"]
    unknown = cli("--json", "checkout", "no-such-rev")
    assert unknown.returncode == 1 and _json_error(unknown)["type"] == "ref_not_found", unknown.stdout


def test_promote_failing_a_gate_is_gate_failed_with_every_rule(ws):
    set_rules(ws, CHAMPION_RULES)
    register_run(ws, "det", "1.0.0", {"mAP50-95": 0.42})
    proc = cli("--json", "promote", "det@v1.0.0")
    assert proc.returncode == 1
    error = _json_error(proc)
    assert error["type"] == "gate_failed"
    assert {(r["rule"], r["passed"]) for r in error["rules"]} >= {("metrics.mAP50-95 >= 0.5", False)}


def test_commit_while_the_lock_is_held_is_lock_held(ws):
    config = ws.root / ".nbversion" / "config.toml"
    config.write_text(config.read_text().replace("lock_timeout = 120", "lock_timeout = 1"))
    (ws.root / "notes.txt").write_text("hello\n")
    with workspace_lock_held(ws.root):
        proc = cli("--json", "commit", "-m", "blocked")
    assert proc.returncode == 1
    assert _json_error(proc)["type"] == "lock_held"
    cli("commit", "-m", "notes and a short lock timeout", check=0)
    nothing = cli("--json", "commit", "-m", "nothing changed")
    assert nothing.returncode == 1 and _json_error(nothing)["type"] == "nothing_to_commit", nothing.stdout


@_run_in_the_server_loop
async def test_rest_gives_the_same_types(api, ws):   # noqa: F811
    set_rules(ws, CHAMPION_RULES)
    register_run(ws, "det", "1.0.0", {"mAP50-95": 0.42})
    before = snapshot(ws.root)
    code, data = await api("registry", "promote", method="POST", body={"ref": "det@v1.0.0"})
    assert code == 409 and data["error"]["type"] == "gate_failed", data
    assert any(not r["passed"] for r in data["error"]["rules"])
    assert snapshot(ws.root)["tags"] == before["tags"]
    code, data = await api("registry", "promote", method="POST", body={"ref": "det@v9.9.9"})
    assert code == 404 and data["error"]["type"] == "ref_not_found", data
    with workspace_lock_held(ws.root):
        code, data = await api("registry", "promote", method="POST", body={"ref": "det@v1.0.0"})
    assert code == 409 and data["error"]["type"] == "lock_held", data


@_run_in_the_server_loop
async def test_the_server_logs_a_refused_request_to_the_log_file(log_to_file, api, ws):   # noqa: F811
    code, data = await api("registry", "promote", method="POST", body={"ref": "ghost@v9.9.9"})
    assert code == 404, data
    text = log_to_file.read_text()
    assert f"nbversion/api/registry/promote: 404 {data['error']['type']}" in text, text
    assert "Traceback" in text, "the log file keeps where the error came from"


def test_a_remote_that_cannot_be_reached_is_remote_unreachable(ws):
    proc = cli("--json", "remote", "add", "team", "ssh://127.0.0.1:1/srv/team")   # port 1: refused
    assert proc.returncode == 1
    error = _json_error(proc)
    assert error["type"] == "remote_unreachable" and "127.0.0.1" in error["message"], error
    assert "team" not in cli("remote", "list", check=0).stdout
