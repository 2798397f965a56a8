"""Plain tools read the registry: the real `gto show` agrees with `nbversion registry`, `git tag` lists the tags."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from conftest import cli_json, git
from test_registry import register_run

GTO = Path(sys.executable).with_name("gto")


def gto(root, *args) -> str:
    return subprocess.run([str(GTO), *args], cwd=root, capture_output=True, text=True, check=True).stdout


def _ours(root) -> dict:
    """name -> {"latest", "stages": {stage: version}} from `nbversion registry --json`."""
    result = {}
    for row in cli_json("registry", cwd=root)["versions"]:
        entry = result.setdefault(row["name"], {"versions": set(), "stages": {}})
        entry["versions"].add(row["version"])
        for stage in row["stages"]:
            entry["stages"][stage] = row["version"]
    return result


def _assert_gto_agrees(root) -> None:
    ours = _ours(root)
    theirs = json.loads(gto(root, "show", "--json"))
    assert set(theirs) == set(ours)
    for name, entry in ours.items():
        assert theirs[name]["version"] == max(entry["versions"], key=lambda v: tuple(map(int, v[1:].split("."))))
        assert {s: v for s, v in theirs[name]["stage"].items() if v} == entry["stages"]
        versions = json.loads(gto(root, "show", name, "--json"))
        assert {v["version"] for v in versions} == entry["versions"], "gto lists no extra (unregistered) rows"


def test_gto_show_agrees_with_registry_through_promotions_and_rollbacks(ws):
    register_run(ws, "det", "1.0.0", {"mAP50-95": 0.4})
    register_run(ws, "det", "1.1.0", {"mAP50-95": 0.5})
    register_run(ws, "seg", "0.1.0", {"mAP50-95": 0.2})
    _assert_gto_agrees(ws.root)
    ws.promote("det@v1.0.0")
    ws.promote("det@v1.1.0")
    ws.promote("seg@v0.1.0", stage="qa")
    _assert_gto_agrees(ws.root)
    ws.demote("det@v1.1.0")                 # rollback: v1.0.0 is champion again
    _assert_gto_agrees(ws.root)
    assert json.loads(gto(ws.root, "show", "--json"))["det"]["stage"]["champion"] == "v1.0.0"
    ws.demote("det@v1.0.0", rollback=False)  # no champion at all
    _assert_gto_agrees(ws.root)
    assert "champion" not in _ours(ws.root)["det"]["stages"]


def test_git_tag_shows_gto_format_tags_on_the_version_commits(ws):
    register_run(ws, "det", "1.0.0", {"mAP50-95": 0.4})
    ws.promote("det@v1.0.0")
    assert git(ws.root, "tag").split() == ["det#champion#1", "det@v1.0.0"]
    assert git(ws.root, "rev-parse", "det#champion#1^{}") == git(ws.root, "rev-parse", "det@v1.0.0^{}")
    assert git(ws.root, "cat-file", "-t", "det#champion#1").strip() == "tag"
    body = git(ws.root, "cat-file", "-p", "det#champion#1")
    assert "Assigning stage champion to artifact det version v1.0.0" in body
    history = gto(ws.root, "history", "det")
    assert "assignment" in history and "registration" in history


def test_gto_made_tags_are_read_by_nbversion(ws):
    """A team member using `gto assign` directly: nbversion sees the stage (and verify accounts for it)."""
    register_run(ws, "det", "1.0.0", {"mAP50-95": 0.4})
    subprocess.run([str(GTO), "assign", "det", "--version", "v1.0.0", "--stage", "prod"], cwd=ws.root,
                   check=True, capture_output=True)
    assert ws.resolve("det@prod").version == "v1.0.0"
    tag = [t for t in git(ws.root, "tag").split() if t.startswith("det#prod")]
    assert tag == ["det#prod#1"]
    verdict = ws.audit_verify()
    assert verdict.ok and any("det#prod#1" in w["message"] for w in verdict.warnings)
