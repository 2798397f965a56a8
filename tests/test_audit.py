"""Audit log: filters, `audit verify` (chain, roles, rules, hand-made tags, half versions), report.

The workspace is built with the verbs (`register`, `promote`, `user add`, a denied promote). A test
that then writes the log, a manifest, a tag or users.toml by hand does so because that write IS
the tampering `audit verify` must detect (each is marked `# the attack:`); none sets up state.
"""
from __future__ import annotations

import json

import pytest

from conftest import USER, cli, cli_json, git
from test_registry import as_user, checkpoint_file

AUDIT = ".nbversion/audit.jsonl"


@pytest.fixture
def busy_ws(ws, monkeypatch):
    """A workspace with registrations, a promotion, a role change and a denial: six audit lines."""
    for version, score in (("1.0.0", 0.4), ("1.1.0", 0.5)):
        weights = checkpoint_file(ws.root.parent / f"w{version}" / "best.pt", {"mAP50-95": score})
        ws.register("det", version=version, source=str(weights))
    ws.promote("det@v1.1.0")
    ws.user_add("vic@example.com", "viewer")
    as_user(monkeypatch, "vic@example.com")
    assert cli("promote", "det@v1.0.0").returncode == 3
    monkeypatch.delenv("NBVERSION_USER")
    return ws


def _lines(ws) -> list[str]:
    return (ws.root / AUDIT).read_text().splitlines(keepends=True)


def _write(ws, lines) -> None:
    # the attack: someone edits the log file by hand (only the tampering tests call this)
    (ws.root / AUDIT).write_text("".join(lines))


def test_audit_filters_by_user_action_and_date(busy_ws):
    everything = cli_json("audit")
    assert [e["action"] for e in everything["entries"]] == ["init", "register", "register", "promote", "user add",
                                                            "denied"]
    assert [e["line"] for e in cli_json("audit", "--user", "vic@example.com")["entries"]] == [6]
    promotes = cli_json("audit", "--action", "promote")["entries"]
    assert len(promotes) == 1 and promotes[0]["details"]["tag"] == "det#champion#1"
    assert cli_json("audit", "--since", "2999-01-01")["entries"] == []
    assert len(cli_json("audit", "--since", "2000-01-01", "--user", USER)["entries"]) == 5
    text = cli("audit", "-n", "2", check=0).stdout
    assert "denied" in text and "2 of 6 entries" in text


def test_verify_passes_on_an_honest_log(busy_ws):
    proc = cli("audit", "verify", check=0)
    assert "audit log OK: 6 lines chained" in proc.stdout


@pytest.mark.parametrize("tamper, line, problem", [
    ("edit", 4, "line was edited"),
    ("delete", 3, "chain broken"),
    ("swap", 2, "chain broken"),
])
def test_editing_deleting_or_swapping_a_line_is_detected_at_that_line(busy_ws, tamper, line, problem):
    lines = _lines(busy_ws)
    if tamper == "edit":
        lines[3] = lines[3].replace('"user":"tester@example.com"', '"user":"mallory@example.com"')
    elif tamper == "delete":
        del lines[2]
    else:
        lines[1], lines[2] = lines[2], lines[1]
    _write(busy_ws, lines)
    proc = cli("audit", "verify")
    assert proc.returncode == 1
    assert f"audit verify FAILED: line {line}: {problem}" in proc.stdout
    result = json.loads(cli("audit", "verify", "--json").stdout)
    assert result["ok"] is False and result["problems"][0]["line"] == line


def test_a_truncated_last_line_is_reported(busy_ws):
    # corrupt input the verbs never make: a write cut off mid-line
    with open(busy_ws.root / AUDIT, "a") as fh:
        fh.write('{"action":"promote","det')
    proc = cli("audit", "verify")
    assert proc.returncode == 1 and "line 7: line is incomplete" in proc.stdout


def test_a_stage_tag_made_by_hand_by_a_non_admin_is_flagged(busy_ws, monkeypatch):
    busy_ws.user_add("eve@example.com", "contributor")
    monkeypatch.setenv("GIT_COMMITTER_EMAIL", "eve@example.com")
    # the attack: a contributor makes a stage tag with plain git
    git(busy_ws.root, "tag", "-a", "det#champion#2", "det@v1.0.0^{}",
        "-m", "Assigning stage champion to artifact det version v1.0.0")
    monkeypatch.delenv("GIT_COMMITTER_EMAIL")
    proc = cli("audit", "verify")
    assert proc.returncode == 1
    assert "stage tag det#champion#2 was made by hand by eve@example.com (contributor); champion needs admin" in proc.stdout
    # the registry believes the tag (GTO semantics) — which is exactly why CI runs verify
    assert busy_ws.resolve("det@champion").version == "v1.0.0"


def test_a_hand_made_tag_by_an_admin_is_only_a_warning(busy_ws):
    # the attack: a stage tag made with plain git, outside nbversion
    git(busy_ws.root, "tag", "-a", "det#champion#2", "det@v1.0.0^{}", "-m", "by hand")
    proc = cli("audit", "verify", check=0)
    assert "warn" in proc.stdout and "det#champion#2 by tester@example.com is not in the audit log" in proc.stdout


def test_roles_are_rechecked_against_the_users_toml_in_force(busy_ws, monkeypatch):
    """A contributor who makes himself admin with a plain commit and then promotes is caught."""
    users = busy_ws.root / ".nbversion/users.toml"
    busy_ws.user_add("bob@example.com", "contributor")
    # the attack: users.toml edited and committed with plain git
    users.write_text(users.read_text().replace('"bob@example.com" = "contributor"', '"bob@example.com" = "admin"'))
    git(busy_ws.root, "-c", "user.email=bob@example.com", "commit", "-qam", "make me admin")
    as_user(monkeypatch, "bob@example.com")
    busy_ws.promote("det@v1.0.0")          # passes locally: local checks are advisory
    result = busy_ws.audit_verify()
    assert not result.ok
    assert any("by bob@example.com (contributor) changed .nbversion/users.toml" in p["message"]
               for p in result.problems)


def test_a_policy_edit_committed_with_nbversion_commit_is_checked_too(busy_ws, monkeypatch):
    """The self-promotion of issue 15: the commit carries an audit line, and is still a policy edit."""
    busy_ws.user_add("carol@example.com", "contributor")
    assert busy_ws.audit_verify().ok
    as_user(monkeypatch, "carol@example.com")
    users = busy_ws.root / ".nbversion/users.toml"
    users.write_text(users.read_text().replace('"carol@example.com" = "contributor"', '"carol@example.com" = "admin"'))
    busy_ws.commit("tweak")                                # an audited commit, by carol
    rules_file = busy_ws.root / ".nbversion/rules.toml"
    rules_file.write_text(rules_file.read_text() + '\n[stages.prod]\nrole = "contributor"\n')
    busy_ws.commit("open prod to contributors")
    result = busy_ws.audit_verify()
    messages = [p["message"] for p in result.problems]
    assert not result.ok
    assert any("by carol@example.com (contributor) changed .nbversion/users.toml" in m for m in messages)
    # by then carol was admin in the (forged) users.toml: the rules edit is judged by the roles
    # in force at its parent, so it passes on its own; the forged grant is what is reported
    assert cli("audit", "verify", cwd=busy_ws.root).returncode == 1


def test_an_entry_that_lied_about_gates_is_flagged(busy_ws):
    """A promotion recorded with a failing gate and no --force (e.g. a patched client)."""
    from nbversion.core.audit import chain as core_audit

    # the attack: an entry appended by a patched client, not by `promote`
    core_audit.append(busy_ws.root, USER, "promote", "det@v1.0.0",
                      {"stage": "qa", "tag": "det#qa#9", "forced": False,
                       "gates": [{"rule": "metrics.mAP50-95 >= 0.9", "passed": False, "detail": ""}]})
    result = busy_ws.audit_verify()
    messages = [p["message"] for p in result.problems]
    assert "det@v1.0.0 was promoted past a failing gate without --force" in messages
    assert any("records det#qa#9 but the tag does not exist" in m for m in messages)


def test_half_versions_are_reported(busy_ws):
    # the attack (or a half-pushed clone): a version tag deleted, another made with plain git
    git(busy_ws.root, "tag", "-d", "det@v1.0.0")
    first_commit = git(busy_ws.root, "rev-list", "--max-parents=0", "HEAD").strip()   # before any manifest
    git(busy_ws.root, "tag", "-a", "ghost@v1.0.0", first_commit, "-m", "Registering artifact ghost version v1.0.0")
    result = busy_ws.audit_verify()
    messages = [p["message"] for p in result.problems]
    assert any("registry/det/v1.0.0 has no tag det@v1.0.0" in m for m in messages)
    assert "tag ghost@v1.0.0 has no manifest at its commit (half version)" in messages


def test_a_manifest_changed_after_registration_is_reported(busy_ws):
    # the attack: a registered (immutable) manifest rewritten and committed with plain git
    path = busy_ws.root / "registry/det/v1.0.0/manifest.json"
    manifest = json.loads(path.read_text())
    manifest["metrics"]["mAP50-95"] = 0.99
    path.write_text(json.dumps(manifest))
    git(busy_ws.root, "commit", "-qam", "better numbers")
    result = busy_ws.audit_verify()
    assert "det@v1.0.0/manifest.json changed after registration" in [p["message"] for p in result.problems]


def test_verify_chain_accepts_valid_lines_written_by_another_tool(tmp_path):
    from nbversion.core.audit import chain as core_audit

    for i in range(2000):
        core_audit.append(tmp_path, "u", "commit", f"t{i}", {"nested": {"hash": "x", "prev": "y"}})
    path = tmp_path / core_audit.AUDIT_FILE
    # a unit test of verify_chain on a bare folder: what a third-party writer may legitimately append
    # a valid line written by another tool with different key order still verifies (slow path)
    entry = {"user": "u", "time": core_audit.now_iso(), "action": "x", "target": "", "details": {},
             "prev": json.loads(path.read_text().splitlines()[-1])["hash"]}
    entry["hash"] = core_audit.entry_hash(entry)
    with open(path, "a") as fh:
        fh.write(json.dumps(entry) + "\n")
    check = core_audit.verify_chain(tmp_path)
    assert check.ok and check.lines == 2001
    # and the fast path does not wave through an edit made in the same key order
    lines = path.read_text().splitlines(keepends=True)
    lines[1000] = lines[1000].replace('"target":"t1000"', '"target":"t9999"')
    path.write_text("".join(lines))
    assert core_audit.verify_chain(tmp_path).line == 1001


def test_report_html_and_json(busy_ws, tmp_path):
    out = tmp_path / "report.html"
    proc = cli("report", "--out", out, check=0)
    assert str(out) in proc.stdout
    page = out.read_text()
    assert page.startswith("<!DOCTYPE html>") and "<script" not in page and "@media print" in page
    assert "Champion history" in page and "det#champion#1" in page and "chain and rules verified" in page
    data_path = tmp_path / "report.json"
    cli("report", "--format", "json", "--out", data_path, check=0)
    data = json.loads(data_path.read_text())
    assert [v["version"] for v in data["registry"]] == ["v1.1.0", "v1.0.0"]
    assert data["audit"]["ok"] is True and data["audit"]["by_action"]["denied"] == 1
    assert data["champion_history"][0]["version"] == "v1.1.0"


def test_a_promotion_that_the_rules_in_force_forbade_is_flagged(busy_ws):
    """The gates are re-run from the immutable manifest, not taken from the entry's word."""
    from nbversion.core.audit import chain as core_audit

    (busy_ws.root / ".nbversion/rules.toml").write_text('[stages.champion]\ngates = ["mAP50-95 >= 0.45"]\n')
    git(busy_ws.root, "commit", "-qam", "stricter champion")
    # the attack: a promotion forged by hand (entry, commit and tag) past the rules in force
    core_audit.append(busy_ws.root, USER, "promote", "det@v1.0.0",
                      {"stage": "champion", "tag": "det#champion#2", "previous": "v1.1.0", "forced": False,
                       "gates": [{"rule": "metrics.mAP50-95 >= 0.45", "passed": True, "detail": "forged"}]})
    git(busy_ws.root, "commit", "-qam", "forged promotion")
    git(busy_ws.root, "tag", "-a", "det#champion#2", "det@v1.0.0^{}", "-m", "by hand")
    result = busy_ws.audit_verify()
    assert any("det@v1.0.0 fails `metrics.mAP50-95 >= 0.45` (mAP50-95 = 0.4) under the rules in force then"
               in p["message"] for p in result.problems), result.problems
    assert result.lines == 7


def test_removing_the_last_line_is_detected_against_git(busy_ws):
    lines = _lines(busy_ws)
    _write(busy_ws, lines[:-1])          # the chain of the 5 lines left is intact
    proc = cli("audit", "verify")
    assert proc.returncode == 1
    assert "line 6: the log has 5 lines but 6 were committed: its last line(s) were removed" in proc.stdout


def test_a_rechained_log_committed_to_git_is_detected(busy_ws):
    """Edit a line and recompute every hash after it: the chain verifies, git history does not."""
    from nbversion.core.audit import chain as core_audit

    # the attack: the log rewritten by hand with every hash recomputed
    entries = [json.loads(line) for line in _lines(busy_ws)]
    entries[3]["user"] = "mallory@example.com"
    prev, out = core_audit.GENESIS, []
    for entry in entries:
        entry["prev"] = prev
        entry["hash"] = prev = core_audit.entry_hash(entry)
        out.append(json.dumps(entry, sort_keys=True, separators=(",", ":")) + "\n")
    _write(busy_ws, out)
    assert core_audit.verify_chain(busy_ws.root).ok, "a re-chained log passes the chain check alone"
    git(busy_ws.root, "commit", "-qam", "tidy the log")
    result = busy_ws.audit_verify()
    assert not result.ok
    assert any("removed or rewrote 3 committed audit line(s); the log is append-only" in p["message"]
               for p in result.problems), result.problems
