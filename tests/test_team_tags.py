"""Two clones that make the same registry tag: `push` refuses, re-numbering settles it (issue 14, part 3).

alice and bob both register `det@v1.0.0`, or both promote (and so both make `det#champion#N`
with the same N). The second push is refused, naming the tag, who made it and when; bob's
unpushed tag is then re-numbered (`tag_collisions.renumber_local`, which `pull` calls before
merging), the two histories merge with plain git, and `registry`, `gto show` and `audit verify`
agree in both clones.
"""
from __future__ import annotations

import json
import re
from datetime import datetime

import pytest

import nbversion as nbv
from conftest import cli, cli_json, git
from test_gto_compat import _assert_gto_agrees, gto
from test_registry import checkpoint_file, register_version
from nbversion.core.audit import chain as audit
from nbversion.core.storage import tag_collisions
from nbversion.core.storage.clone import clone
from nbversion.errors import NbversionError, TagCollision

ALICE, BOB = "alice@example.com", "bob@example.com"


def as_user(monkeypatch, ws, user: str):
    """Who acts next: nbversion's user and (as on a colleague's own laptop) git's identity."""
    monkeypatch.setenv("NBVERSION_USER", user)
    git(ws.root, "config", "user.email", user)
    return ws


@pytest.fixture
def alice_and_bob(ws, tmp_path, monkeypatch):
    for user in (ALICE, BOB):       # promoting to champion needs an admin
        ws.user_add(user, "admin")
    as_user(monkeypatch, ws, ALICE)
    ws.remote_add("team", str(tmp_path / "remote"))
    ws.push()
    clone(str(tmp_path / "remote"), str(tmp_path / "bob"))
    return ws, nbv.open(tmp_path / "bob")


def register_file(ws, version: str, metric: float):
    weights = checkpoint_file(ws.root.parent / f"weights-{ws.root.name}" / "best.pt", {"mAP50-95": metric})
    return ws.register("det", version=version, source=str(weights))


def renumber(ws) -> list[dict]:
    """`pull`: our unpushed tags that clash with the remote's get free names, then its work merges."""
    history = ws.pull().history
    return [{"old": old, "new": new} for old, new in re.findall(r"(\S+) re-numbered (\S+);", history)]


def merge_and_push(ws):
    git(ws.root, "pull", "--no-rebase", "--no-edit", "team", "main")
    ws.pull()
    ws.push()


def registry_rows(root) -> dict:
    return {row["version"]: row for row in cli_json("registry", "det", cwd=root)["versions"]}


def verified(root):
    result = cli("audit", "verify", "--json", cwd=root)
    assert result.returncode == 0, result.stdout + result.stderr
    assert json.loads(result.stdout)["ok"]
    return json.loads(result.stdout)


def test_the_same_version_registered_in_two_clones_is_refused_then_renumbered(alice_and_bob, monkeypatch):
    alice, bob = alice_and_bob
    register_file(as_user(monkeypatch, alice, ALICE), "1.0.0", 0.41)
    alice.push()
    register_file(as_user(monkeypatch, bob, BOB), "1.0.0", 0.52)
    bob_commit = git(bob.root, "rev-parse", "det@v1.0.0^{commit}").strip()

    with pytest.raises(TagCollision) as refused:
        bob.push()
    message = refused.value.message
    assert "det@v1.0.0" in message and ALICE in message
    when = message.rsplit(" at ", 1)[1].split()[0].rstrip(";")
    assert datetime.fromisoformat(when)                     # the remote tag's date, not a guess
    assert "nbversion pull" in refused.value.hint
    assert cli("push", cwd=bob.root).returncode != 0        # the CLI says the same
    assert git(bob.root, "for-each-ref", "refs/nbversion") == ""   # the remote's tags were read aside, then dropped

    done = renumber(bob)
    assert [(d["old"], d["new"]) for d in done] == [("det@v1.0.0", "det@v1.0.1")]
    assert git(bob.root, "rev-parse", "det@v1.0.0^{commit}").strip() != bob_commit   # now alice's, fetched
    ours = registry_rows(bob.root)
    assert {v: r["metrics"]["mAP50-95"] for v, r in ours.items()} == {"v1.0.0": 0.41, "v1.0.1": 0.52}
    assert json.loads((bob.root / "registry/det/v1.0.1/manifest.json").read_text())["version"] == "v1.0.1"
    old_manifest = json.loads(git(bob.root, "show", f"{bob_commit}:registry/det/v1.0.0/manifest.json"))
    assert old_manifest["version"] == "v1.0.0"             # the registering commit is untouched
    entry = [e for _, e in audit.iter_entries(bob.root) if e["action"] == "renumber"][-1]
    assert entry["target"] == "det@v1.0.0"
    assert (entry["details"]["old"], entry["details"]["new"], entry["details"]["tag"]) == \
        ("v1.0.0", "v1.0.1", "det@v1.0.1")
    assert ALICE in entry["details"]["reason"]
    verified(bob.root)

    merge_and_push(bob)
    as_user(monkeypatch, alice, ALICE).pull()
    for ws in (alice, bob):
        rows = registry_rows(ws.root)
        assert {v: r["metrics"]["mAP50-95"] for v, r in rows.items()} == {"v1.0.0": 0.41, "v1.0.1": 0.52}
        verified(ws.root)
        _assert_gto_agrees(ws.root)
    assert (alice.root / "registry/det/v1.0.1/files/best.pt").read_bytes() == \
        (bob.root / "registry/det/v1.0.1/files/best.pt").read_bytes()


def test_concurrent_promotions_renumber_the_unpushed_stage_tag_with_a_newer_date(alice_and_bob, monkeypatch):
    alice, bob = alice_and_bob
    register_version(alice, "det", "1.0.0", {"mAP50-95": 0.4})
    register_version(alice, "det", "1.1.0", {"mAP50-95": 0.5})
    alice.push()
    bob.pull(registered=True)
    as_user(monkeypatch, alice, ALICE).promote("det@v1.0.0")
    alice.push()
    remote_tag = "det#champion#1"
    as_user(monkeypatch, bob, BOB).promote("det@v1.1.0")
    assert git(bob.root, "tag", "--list", "det#*").split() == [remote_tag]

    with pytest.raises(TagCollision) as refused:
        bob.push()
    assert remote_tag in refused.value.message and ALICE in refused.value.message

    done = renumber(bob)
    assert [(d["old"], d["new"]) for d in done] == [(remote_tag, "det#champion#2")]
    dates = {}
    for ws, tag in ((alice, remote_tag), (bob, "det#champion#2")):
        dates[tag] = datetime.fromisoformat(git(ws.root, "for-each-ref", "--format=%(taggerdate:iso-strict)",
                                                f"refs/tags/{tag}").strip())
    assert dates["det#champion#2"] > dates[remote_tag]      # GTO orders by date: bob's is the newest
    entry = [e for _, e in audit.iter_entries(bob.root) if e["action"] == "renumber"][-1]
    assert entry["details"]["old"] == remote_tag
    assert entry["details"]["new"] == "det#champion#2"
    assert verified(bob.root)["warnings"] == []              # the promote entry maps to the new tag

    merge_and_push(bob)
    as_user(monkeypatch, alice, ALICE).pull()
    for ws in (alice, bob):
        assert registry_rows(ws.root)["v1.1.0"]["stages"] == ["champion"]
        assert json.loads(gto(ws.root, "show", "--json"))["det"]["stage"]["champion"] == "v1.1.0"
        _assert_gto_agrees(ws.root)
        assert verified(ws.root)["warnings"] == []


def test_a_promoted_clashing_version_takes_its_stage_tag_to_the_new_version(alice_and_bob, monkeypatch):
    alice, bob = alice_and_bob
    register_file(as_user(monkeypatch, alice, ALICE), "1.0.0", 0.41)
    alice.promote("det@v1.0.0")
    alice.push()
    register_file(as_user(monkeypatch, bob, BOB), "1.0.0", 0.52)
    bob.promote("det@v1.0.0")
    with pytest.raises(TagCollision) as refused:
        bob.push()
    assert "det@v1.0.0" in refused.value.message and "det#champion#1" in refused.value.message

    done = renumber(bob)
    assert [(d["old"], d["new"]) for d in done] == [("det@v1.0.0", "det@v1.0.1"), ("det#champion#1", "det#champion#2")]
    assert registry_rows(bob.root)["v1.0.1"]["stages"] == ["champion"]   # the stage moved with its version
    verified(bob.root)

    merge_and_push(bob)
    as_user(monkeypatch, alice, ALICE).pull()
    for ws in (alice, bob):
        rows = registry_rows(ws.root)
        assert set(rows) == {"v1.0.0", "v1.0.1"} and rows["v1.0.1"]["stages"] == ["champion"]
        _assert_gto_agrees(ws.root)
        verified(ws.root)
