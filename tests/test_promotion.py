"""Promotion: roles, gates (all forms), force, stage order, rollback, deploy hooks."""
from __future__ import annotations

import json
import re
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from conftest import USER, cli, git, snapshot
from test_registry import as_user, register_run
from nbversion.errors import PermissionDenied

CHAMPION_RULES = """
[stages.champion]
role = "admin"
[[stages.champion.gates]]
metric = "mAP50-95"
op = ">="
value = 0.5
[[stages.champion.gates]]
beats_champion = "mAP50-95"
"""


def set_rules(ws, text: str) -> None:
    (ws.root / ".nbversion" / "rules.toml").write_text(text)
    git(ws.root, "commit", "-qam", "rules")


def audit_lines(ws) -> list[dict]:
    return [json.loads(line) for line in (ws.root / ".nbversion/audit.jsonl").read_text().splitlines()]


@pytest.mark.parametrize("role", ["viewer", "contributor"])
def test_promote_by_a_non_admin_exits_3_and_is_audited(ws, monkeypatch, role):
    register_run(ws, "det", "1.0.0", {"mAP50-95": 0.6})
    ws.user_add("bob@example.com", role)
    before = git(ws.root, "tag")
    as_user(monkeypatch, "bob@example.com")
    proc = cli("promote", "det@v1.0.0")
    assert proc.returncode == 3
    assert f"bob@example.com is a {role}; `promote` needs the admin role" in proc.stderr
    assert git(ws.root, "tag") == before, "a refused promotion creates no stage tag"
    last = audit_lines(ws)[-1]
    assert (last["user"], last["action"], last["target"]) == ("bob@example.com", "denied", "promote")
    assert git(ws.root, "status", "--porcelain", "--", ".nbversion", "registry") == "", "the refusal is committed with the audit log"


def test_gates_pass_and_fail_with_the_printed_rule_table(ws):
    set_rules(ws, CHAMPION_RULES)
    register_run(ws, "det", "1.0.0", {"mAP50-95": 0.42})
    register_run(ws, "det", "1.1.0", {"mAP50-95": 0.55})
    before = snapshot(ws.root)
    refused = cli("promote", "det@v1.0.0")
    assert refused.returncode == 1
    assert "FAIL  metrics.mAP50-95 >= 0.5  (mAP50-95 = 0.42)" in refused.stderr
    assert "pass  role admin" in refused.stderr and "not promoted to champion" in refused.stderr
    assert git(ws.root, "tag") == before["tags"]
    assert audit_lines(ws)[-1]["action"] == "promote refused"
    passed = cli("promote", "det@v1.1.0", check=0).stdout
    assert re.search(r"metrics.mAP50-95 >= 0.5 +pass +mAP50-95 = 0.55", passed)
    assert re.search(r"beats the current champion on mAP50-95 +pass +no current champion", passed)
    assert "det@v1.1.0 is now champion; tag det#champion#1" in passed


def test_compact_string_gates(ws):
    set_rules(ws, '[stages.champion]\nrole = "admin"\ngates = ["metrics.mAP50-95 >= 0.5", "recall > 0.7"]\n')
    register_run(ws, "det", "1.0.0", {"mAP50-95": 0.6, "recall": 0.65})
    with pytest.raises(Exception) as info:
        ws.promote("det@v1.0.0")
    results = {r.rule: r.passed for r in info.value.results}
    assert results == {"role admin": True, "metrics.mAP50-95 >= 0.5": True, "metrics.recall > 0.7": False}


def test_beats_champion_gate(ws):
    set_rules(ws, '[stages.champion]\n[[stages.champion.gates]]\nbeats_champion = "mAP50-95"\n')
    register_run(ws, "det", "1.0.0", {"mAP50-95": 0.5})
    register_run(ws, "det", "1.1.0", {"mAP50-95": 0.45})
    register_run(ws, "det", "1.2.0", {"mAP50-95": 0.58})
    ws.promote("det@v1.0.0")
    with pytest.raises(Exception) as worse:
        ws.promote("det@v1.1.0")
    assert "0.45 vs v1.0.0's 0.5" in str(worse.value)
    result = ws.promote("det@v1.2.0")
    assert result.previous == "v1.0.0" and ws.resolve("det@champion").version == "v1.2.0"
    # rolling back to a former champion is not blocked by "beats": it held the stage before
    rollback = ws.promote("det@v1.0.0")
    assert ws.resolve("det@champion").version == "v1.0.0"
    assert any("rollback" in r.detail for r in rollback.rules)


def _untagged_dataset_behind_a_tag_gate(ws, source):
    """A dataset version without the "reviewed" tag that the champion gate requires, and a
    version of det trained on it (`model add --dataset`, then `register --from`)."""
    set_rules(ws, '[stages.champion]\n[[stages.champion.gates]]\ndataset_tag = "reviewed"\n')
    ws.dataset_add("shapes", source)
    commit = git(ws.root, "rev-parse", "HEAD").strip()
    register_run(ws, "det", "1.0.0", {"mAP50-95": 0.5}, dataset="shapes")
    return commit


def test_dataset_tag_gate_reads_the_dataset_metadata(ws, demo_data):
    _untagged_dataset_behind_a_tag_gate(ws, demo_data)
    with pytest.raises(Exception) as info:
        ws.promote("det@v1.0.0")
    assert "dataset tagged 'reviewed'" in str(info.value)
    ws.dataset_add("shapes", demo_data, tags=["reviewed"])    # the same content, now reviewed
    assert "reviewed" in json.loads((ws.root / "datasets/shapes.meta.json").read_text())["tags"]
    assert ws.promote("det@v1.0.0").version == "v1.0.0"


def test_dataset_tag_gate_accepts_a_git_tag_on_the_dataset_version(ws, demo_data):
    commit = _untagged_dataset_behind_a_tag_gate(ws, demo_data)
    git(ws.root, "tag", "-a", "dataset/shapes/reviewed", commit, "-m", "reviewed by QA")
    result = ws.promote("det@v1.0.0")
    assert [r.detail for r in result.rules if r.rule == "dataset tagged 'reviewed'"] == ["shapes tags: reviewed"]


def test_force_is_for_admins_only_and_audited_as_forced(ws, monkeypatch):
    set_rules(ws, '[stages.champion]\nrole = "contributor"\ngates = ["mAP50-95 >= 0.9"]\n')
    register_run(ws, "det", "1.0.0", {"mAP50-95": 0.4})
    ws.user_add("carol@example.com", "contributor")
    as_user(monkeypatch, "carol@example.com")
    denied = cli("promote", "det@v1.0.0", "--force")
    assert denied.returncode == 3 and "`promote --force` needs the admin role" in denied.stderr
    monkeypatch.delenv("NBVERSION_USER")
    forced = cli("promote", "det@v1.0.0", "--force", check=0).stdout
    assert "FORCED past failing gates" in forced
    entry = audit_lines(ws)[-1]
    assert entry["action"] == "promote" and entry["details"]["forced"] is True
    assert ws.audit_verify().ok


def test_promotes_from_enforces_stage_order(ws):
    set_rules(ws, '[stages.qa]\nrole = "contributor"\n[stages.prod]\npromotes_from = "qa"\n')
    register_run(ws, "det", "1.0.0", {"mAP50-95": 0.4})
    with pytest.raises(Exception) as info:
        ws.promote("det@v1.0.0", stage="prod")
    assert "promotes from qa" in str(info.value)
    ws.promote("det@v1.0.0", stage="qa")
    assert ws.promote("det@v1.0.0", stage="prod").tag == "det#prod#2"


def test_demote_rolls_back_to_the_former_champion(ws):
    register_run(ws, "det", "1.0.0", {"mAP50-95": 0.4})
    register_run(ws, "det", "1.1.0", {"mAP50-95": 0.5})
    ws.promote("det@v1.0.0")
    ws.promote("det@v1.1.0")
    result = cli("demote", "det@champion", check=0).stdout
    assert "det@v1.0.0 is now champion (was v1.1.0)" in result
    assert ws.resolve("det@champion").version == "v1.0.0"
    assert "det#champion!#3" in git(ws.root, "tag")
    ws.demote("det@v1.0.0", rollback=False)
    assert cli("resolve", "det@champion").returncode == 1


def test_rules_errors_name_the_file_and_line(ws):
    set_rules(ws, '[stages.champion]\nrole = "admin"\ngates = [\n  "mAP50-95 >= 0.5",\n  "mAP50-95 is great",\n]\n')
    register_run(ws, "det", "1.0.0", {"mAP50-95": 0.4})
    proc = cli("promote", "det@v1.0.0")
    assert proc.returncode == 1 and "rules.toml:5: cannot read the gate 'mAP50-95 is great'" in proc.stderr


class _Hook(BaseHTTPRequestHandler):
    received: list = []
    status = 200

    def do_POST(self):  # noqa: N802 - http.server's name
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).received.append(json.loads(body))
        self.send_response(type(self).status)
        self.end_headers()
        self.wfile.write(b"thanks")

    def log_message(self, *args):
        pass


@pytest.fixture
def webhook_server():
    _Hook.received, _Hook.status = [], 200
    server = HTTPServer(("127.0.0.1", 0), _Hook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()


def test_webhook_on_loopback_receives_the_promotion_json(ws, webhook_server):
    port = webhook_server.server_address[1]
    set_rules(ws, f'[stages.champion.deploy]\ncommand = "echo deployed $NBVERSION_VERSION"\n'
                  f'webhook = "http://127.0.0.1:{port}/hook"\n')
    register_run(ws, "det", "1.0.0", {"mAP50-95": 0.4})
    out = cli("promote", "det@v1.0.0", check=0).stdout
    assert "deploy command echo deployed $NBVERSION_VERSION: ok" in out and "deploy webhook" in out
    (payload,) = _Hook.received
    assert (payload["name"], payload["version"], payload["stage"], payload["user"]) == ("det", "v1.0.0", "champion", USER)
    assert payload["paths"][0].endswith("registry/det/v1.0.0/files/best.pt")
    history = ws.deploys("det").deploys
    assert [(d["hook"], d["ok"]) for d in history] == [("command", True), ("webhook", True)]
    assert history[0]["output"].strip() == "deployed v1.0.0"
    assert git(ws.root, "status", "--porcelain", "--", ".nbversion", "registry") == "", "the deploy history is committed"


def test_a_failing_hook_is_recorded_and_never_undoes_the_promotion(ws, webhook_server):
    _Hook.status = 500
    port = webhook_server.server_address[1]
    set_rules(ws, f'[stages.champion.deploy]\ncommand = "echo boom >&2; exit 7"\nwebhook = "http://127.0.0.1:{port}/x"\n')
    register_run(ws, "det", "1.0.0", {"mAP50-95": 0.4})
    result = ws.promote("det@v1.0.0")
    assert ws.resolve("det@champion").version == "v1.0.0"
    assert [(r.hook, r.ok, r.status) for r in result.deploys] == [("command", False, 7), ("webhook", False, 500)]
    assert "FAILED (status 7)" in str(result)
    listing = cli("deploys", check=0).stdout
    assert "FAILED" in listing and "boom" in listing and "2 hook run(s), 2 failed" in listing
    assert audit_lines(ws)[-1]["details"]["hooks"][0]["ok"] is False


def test_a_deploy_command_injected_by_a_contributor_never_runs(ws, monkeypatch, tmp_path):
    """rules.toml's deploy command runs on every later promote: only from rules an admin committed."""
    register_run(ws, "det", "1.0.0", {"mAP50-95": 0.6})
    ws.user_add("mallory@example.com", "contributor")
    as_user(monkeypatch, "mallory@example.com")
    marker = tmp_path / "pwned"
    (ws.root / ".nbversion/rules.toml").write_text(
        f'[stages.champion]\nrole = "contributor"\n[stages.champion.deploy]\ncommand = "touch {marker}"\n')
    ws.commit("tweak rules")                              # an audited commit, by a contributor
    as_user(monkeypatch, USER)                            # later, the admin promotes
    with pytest.raises(PermissionDenied, match="mallory@example.com .contributor., not by an admin"):
        ws.promote("det@v1.0.0")
    assert not marker.exists() and "det#champion" not in git(ws.root, "tag")
    assert any("mallory@example.com (contributor) changed .nbversion/rules.toml" in p["message"]
               for p in ws.audit_verify().problems)


def test_a_deploy_command_in_uncommitted_rules_never_runs(ws, tmp_path):
    register_run(ws, "det", "1.0.0", {"mAP50-95": 0.6})
    marker = tmp_path / "ran"
    (ws.root / ".nbversion/rules.toml").write_text(
        f'[stages.champion]\nrole = "admin"\n[stages.champion.deploy]\ncommand = "touch {marker}"\n')
    proc = cli("promote", "det@v1.0.0")
    assert proc.returncode == 3 and "not committed" in proc.stderr and not marker.exists()
    git(ws.root, "commit", "-qam", "rules by the admin")  # committed by the admin: it runs
    assert ws.promote("det@v1.0.0").deploys and marker.exists()
