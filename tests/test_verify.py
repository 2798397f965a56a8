"""`verify [--repair]`: problems found, named with what they affect, and repaired.

Every workspace here is built with the verbs (`register`, `dataset add`, `promote`, `push`);
a test then damages what the verbs produced, which is the attack or accident being detected.
"""
from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import cli, cli_json, git
from nbversion.core.backends import dvc_cache

WEIGHTS = b"fake-weights-" + bytes(range(256)) * 64


def register_weights(ws, name="yolo", version="1.0.0", content=WEIGHTS):
    """`register NAME --version V --from best.pt` of a weights file written outside the workspace."""
    source = ws.root.parent / "weights-src" / f"{name}-{version}" / "best.pt"
    source.parent.mkdir(parents=True, exist_ok=True)
    source.write_bytes(content)
    ws.register(name, version=version, source=str(source))
    return Path(f"registry/{name}/v{version}")


register_fake = register_weights   # the name other test files import


def add_dataset(ws, name="coco", tag="v1", seed=0):
    """`dataset add NAME SRC [--tag T]` of a small plain folder made outside the workspace."""
    source = ws.root.parent / "dataset-src" / f"{name}-{seed}"
    source.mkdir(parents=True, exist_ok=True)
    for i in range(3):
        (source / f"img{i}.txt").write_text(f"{name} {seed} {i}\n" * 50)
    ws.dataset_add(name, source, tags=[tag] if tag else [])


def weights_object(ws, base):
    md5 = hashlib.md5(WEIGHTS).hexdigest()
    return dvc_cache.object_path(ws.root, md5), md5


def flip_byte(path: Path):
    path.chmod(0o644)
    data = bytearray(path.read_bytes())
    data[100] ^= 0xFF
    path.write_bytes(bytes(data))


@pytest.fixture
def registered(ws, tmp_path):
    base = register_weights(ws)
    add_dataset(ws)
    ws.remote_add("team", str(tmp_path / "remote"))
    ws.push()
    return base


def kinds(result):
    return {(p.kind, p.what) for p in result.problems}


def test_clean_workspace_verifies(ws, registered):
    result = ws.verify(check_remote_presence=True)
    assert result.problems == [] and result.exit_code == 0
    assert result.checked["tags"] == 2 and result.checked["objects"] >= 6
    assert cli("verify", check=0).stdout.count("all good") == 1


def test_corrupted_weight_byte_is_found_named_and_repaired(ws, registered):
    cached, md5 = weights_object(ws, registered)
    flip_byte(cached)
    result = ws.verify()
    corrupt = [p for p in result.problems if p.kind == "corrupt"]
    assert [p.what for p in corrupt] == [md5]
    assert "registered yolo@v1.0.0" in corrupt[0].affects
    proc = cli("verify", check=1)
    assert "corrupt" in proc.stdout and "yolo@v1.0.0" in proc.stdout

    repaired = ws.verify(repair=True)
    assert all(p.repaired for p in repaired.problems), repaired
    assert hashlib.md5(cached.read_bytes()).hexdigest() == md5
    weights = ws.root / registered / "files" / "best.pt"
    assert weights.read_bytes() == WEIGHTS          # the working copy is whole again
    assert ws.verify().problems == []


def test_missing_object_is_fetched_by_repair(ws, registered):
    from nbversion.core.backends import pointers
    coco = pointers.parse("datasets/coco.dvc", (ws.root / "datasets/coco.dvc").read_text())[0]
    entries = json.loads(dvc_cache.object_path(ws.root, coco.md5.removesuffix(".dir")).with_suffix(".dir").read_text())
    victim = dvc_cache.object_path(ws.root, entries[0]["md5"])
    victim.chmod(0o644)
    victim.unlink()
    missing = [p for p in ws.verify().problems if p.what == entries[0]["md5"]]
    assert missing and missing[0].kind == "missing"
    assert "dataset coco@v1" in missing[0].affects and "working tree datasets/coco" in missing[0].affects
    data = cli_json("verify", "--repair")
    assert data["problems"] and all(p["repaired"] for p in data["problems"])
    assert victim.exists()


def test_repair_without_remote_copy_reports_it_left(ws, tmp_path):
    register_weights(ws)
    cached, md5 = weights_object(ws, None)
    flip_byte(cached)
    ws.remote_add("empty", str(tmp_path / "empty"))
    result = ws.verify(repair=True)
    assert result.exit_code == 1
    assert any(p.kind in ("corrupt", "missing") and not p.repaired for p in result.problems)


def test_half_registrations_are_reported(ws):
    register_weights(ws)
    register_weights(ws, "other", content=b"other weights")
    git(ws.root, "tag", "-d", "other@v1.0.0")       # what a register killed before its tag leaves
    git(ws.root, "tag", "-a", "yolo@v9.9.9", "-m", "Registering artifact yolo version v9.9.9")
    found = kinds(ws.verify())
    assert ("half registration", "tag yolo@v9.9.9") in found
    assert ("half registration", "registry/other/v1.0.0/manifest.json") in found
    assert not any(what.startswith("manifest of yolo@v1.0.0") for _, what in found)


def test_manifest_changed_after_registration_breaks_immutability(ws):
    base = register_weights(ws)
    assert ws.verify().problems == []
    manifest = json.loads((ws.root / base / "manifest.json").read_text())
    manifest["metrics"]["mAP50"] = 0.99
    # the attack: a real registration's manifest edited afterwards, as verify must detect
    (ws.root / base / "manifest.json").write_text(json.dumps(manifest))
    git(ws.root, "commit", "-qam", "tamper")
    problems = [p for p in ws.verify().problems if p.kind == "immutability"]
    assert problems and problems[0].affects == ["registered yolo@v1.0.0"]


def test_manifest_hash_not_matching_pointer_is_reported(ws):
    base = register_weights(ws, content=b"other")
    assert ws.verify().problems == []
    git(ws.root, "tag", "-d", "yolo@v1.0.0")
    manifest = json.loads((ws.root / base / "manifest.json").read_text())
    assert list(manifest["files"]) == ["files/best.pt"]
    manifest["files"]["files/best.pt"]["md5"] = "0" * 32
    # the attack: a real registration's manifest pointing at other weights
    (ws.root / base / "manifest.json").write_text(json.dumps(manifest))
    git(ws.root, "commit", "-qam", "bad manifest")
    git(ws.root, "tag", "-a", "yolo@v1.0.0", "-m", "Registering artifact yolo version v1.0.0")
    assert ("immutability", "manifest of yolo@v1.0.0") in kinds(ws.verify())


def hold_lock_then_die(root: Path) -> None:
    """A process that dies with SIGKILL while it holds the workspace lock."""
    code = ("import sys, time\nfrom pathlib import Path\nfrom nbversion.core.backends.lock import workspace_lock\n"
            "with workspace_lock(Path(sys.argv[1]), 'commit', 5):\n    print('held', flush=True)\n"
            "    time.sleep(60)\n")
    proc = subprocess.Popen([sys.executable, "-c", code, str(root)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "held"
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()


def test_torn_audit_line_and_stale_lock_are_repaired(ws):
    audit_file = ws.root / ".nbversion/audit.jsonl"
    good = audit_file.read_text()
    with open(audit_file, "a") as fh:
        fh.write('{"action":"torn')
    hold_lock_then_die(ws.root)
    found = {p.kind for p in ws.verify().problems}
    assert {"audit", "lock"} <= found
    result = ws.verify(repair=True)
    assert result.exit_code == 0 and all(p.repaired for p in result.problems)
    assert audit_file.read_text() == good
    assert ws.verify().problems == []


def test_objects_not_on_the_remote_are_named(ws, tmp_path):
    ws.remote_add("team", str(tmp_path / "remote"))
    register_weights(ws)
    problems = [p for p in ws.verify(check_remote_presence=True).problems if p.kind == "not on remote"]
    assert problems and all("registered yolo@v1.0.0" in p.affects for p in problems)
    ws.push()
    assert ws.verify(check_remote_presence=True).problems == []


def test_stage_tag_on_a_commit_without_a_version_is_reported(ws):
    register_weights(ws)
    ws.promote("yolo@v1.0.0", stage="prod")
    assert ws.verify().problems == []
    first = git(ws.root, "rev-list", "--max-parents=0", "HEAD").strip()
    git(ws.root, "tag", "-a", "yolo#champion#9", first, "-m", "Assigning stage champion")
    found = kinds(ws.verify())
    assert ("half registration", "tag yolo#champion#9") in found
    assert not any("yolo#prod" in what for _, what in found)
