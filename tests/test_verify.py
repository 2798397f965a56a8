"""`verify [--repair]`: problems found, named with what they affect, and repaired."""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest

from conftest import cli, cli_json, git
from nbversion.core import _dvc

WEIGHTS = b"fake-weights-" + bytes(range(256)) * 64


def register_fake(ws, name="yolo", version="1.0.0", content=WEIGHTS):
    """A registry version in the documented format: DVC files/, manifest.json, GTO tag."""
    base = Path(f"registry/{name}/v{version}")
    (ws.root / base / "files").mkdir(parents=True)
    (ws.root / base / "files" / "best.pt").write_bytes(content)
    _dvc.add(ws.root, [str(base / "files")])
    manifest = {"name": name, "version": version,
                "files": {"best.pt": {"md5": hashlib.md5(content).hexdigest(), "size": len(content)}},
                "metrics": {"mAP50": 0.5}, "params": {}, "lineage": {}, "registered_by": "t",
                "registered_at": "2026-01-01T00:00:00+00:00"}
    (ws.root / base / "manifest.json").write_text(json.dumps(manifest))
    git(ws.root, "add", "-A", str(base), "registry")
    git(ws.root, "commit", "-qm", f"register {name} v{version}")
    git(ws.root, "tag", "-a", f"{name}@v{version}", "-m", f"Registering artifact {name} version v{version}")
    return base


def add_dataset(ws, name="coco", tag="v1", seed=0):
    folder = ws.root / "datasets" / name
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(3):
        (folder / f"img{i}.txt").write_text(f"{name} {seed} {i}\n" * 50)
    _dvc.add(ws.root, [f"datasets/{name}"])
    (ws.root / f"datasets/{name}.meta.json").write_text(json.dumps({"name": name, "seed": seed}))
    git(ws.root, "add", "-A", "datasets")
    git(ws.root, "commit", "-qm", f"dataset {name} {seed}")
    if tag:
        git(ws.root, "tag", "-a", f"dataset/{name}/{tag}", "-m", f"dataset {name} {tag}")


def weights_object(ws, base):
    md5 = hashlib.md5(WEIGHTS).hexdigest()
    return _dvc.object_path(ws.root, md5), md5


def flip_byte(path: Path):
    path.chmod(0o644)
    data = bytearray(path.read_bytes())
    data[100] ^= 0xFF
    path.write_bytes(bytes(data))


@pytest.fixture
def registered(ws, tmp_path):
    base = register_fake(ws)
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
    from nbversion.core import pointers
    coco = pointers.parse("datasets/coco.dvc", (ws.root / "datasets/coco.dvc").read_text())[0]
    entries = json.loads(_dvc.object_path(ws.root, coco.md5.removesuffix(".dir")).with_suffix(".dir").read_text())
    victim = _dvc.object_path(ws.root, entries[0]["md5"])
    victim.chmod(0o644)
    victim.unlink()
    missing = [p for p in ws.verify().problems if p.what == entries[0]["md5"]]
    assert missing and missing[0].kind == "missing"
    assert "dataset coco@v1" in missing[0].affects and "working tree datasets/coco" in missing[0].affects
    data = cli_json("verify", "--repair")
    assert data["problems"] and all(p["repaired"] for p in data["problems"])
    assert victim.exists()


def test_repair_without_remote_copy_reports_it_left(ws, tmp_path):
    register_fake(ws)
    cached, md5 = weights_object(ws, None)
    flip_byte(cached)
    ws.remote_add("empty", str(tmp_path / "empty"))
    result = ws.verify(repair=True)
    assert result.exit_code == 1
    assert any(p.kind in ("corrupt", "missing") and not p.repaired for p in result.problems)


def test_half_registrations_are_reported(ws):
    register_fake(ws)
    git(ws.root, "tag", "-a", "yolo@v9.9.9", "-m", "Registering artifact yolo version v9.9.9")
    (ws.root / "registry/other/v1.0.0").mkdir(parents=True)
    (ws.root / "registry/other/v1.0.0/manifest.json").write_text("{}")
    git(ws.root, "add", "-A")
    git(ws.root, "commit", "-qm", "manifest without tag")
    found = kinds(ws.verify())
    assert ("half registration", "tag yolo@v9.9.9") in found
    assert ("half registration", "registry/other/v1.0.0/manifest.json") in found


def test_manifest_changed_after_registration_breaks_immutability(ws):
    base = register_fake(ws)
    manifest = json.loads((ws.root / base / "manifest.json").read_text())
    manifest["metrics"]["mAP50"] = 0.99
    (ws.root / base / "manifest.json").write_text(json.dumps(manifest))
    git(ws.root, "commit", "-qam", "tamper")
    problems = [p for p in ws.verify().problems if p.kind == "immutability"]
    assert problems and problems[0].affects == ["registered yolo@v1.0.0"]


def test_manifest_hash_not_matching_pointer_is_reported(ws):
    register_fake(ws, content=b"other")
    git(ws.root, "tag", "-d", "yolo@v1.0.0")
    base = Path("registry/yolo/v1.0.0")
    manifest = json.loads((ws.root / base / "manifest.json").read_text())
    manifest["files"]["best.pt"]["md5"] = "0" * 32
    (ws.root / base / "manifest.json").write_text(json.dumps(manifest))
    git(ws.root, "commit", "-qam", "bad manifest")
    git(ws.root, "tag", "-a", "yolo@v1.0.0", "-m", "Registering artifact yolo version v1.0.0")
    assert ("immutability", "manifest of yolo@v1.0.0") in kinds(ws.verify())


def test_torn_audit_line_and_stale_lock_are_repaired(ws):
    audit_file = ws.root / ".nbversion/audit.jsonl"
    good = audit_file.read_text()
    with open(audit_file, "a") as fh:
        fh.write('{"action":"torn')
    lock = ws.root / ".nbversion/tmp/lock"
    lock.write_text(json.dumps({"pid": 999999, "host": "x", "operation": "commit", "since": 0}))
    found = {p.kind for p in ws.verify().problems}
    assert {"audit", "lock"} <= found
    result = ws.verify(repair=True)
    assert result.exit_code == 0 and all(p.repaired for p in result.problems)
    assert audit_file.read_text() == good
    assert ws.verify().problems == []


def test_objects_not_on_the_remote_are_named(ws, tmp_path):
    ws.remote_add("team", str(tmp_path / "remote"))
    register_fake(ws)
    problems = [p for p in ws.verify(check_remote_presence=True).problems if p.kind == "not on remote"]
    assert problems and all("registered yolo@v1.0.0" in p.affects for p in problems)
    ws.push()
    assert ws.verify(check_remote_presence=True).problems == []


def test_stage_tag_on_a_commit_without_a_version_is_reported(ws):
    register_fake(ws)
    first = git(ws.root, "rev-list", "--max-parents=0", "HEAD").strip()
    git(ws.root, "tag", "-a", "yolo#champion#1", first, "-m", "Assigning stage champion")
    git(ws.root, "tag", "-a", "yolo#prod#2", "yolo@v1.0.0^{}", "-m", "Assigning stage prod")
    found = kinds(ws.verify())
    assert ("half registration", "tag yolo#champion#1") in found
    assert ("half registration", "tag yolo#prod#2") not in found
