"""`gc`: retention by policy that never deletes what a registered, staged or tagged version needs.

The property test builds random histories directly in the documented storage format (cache
objects + `.dvc` pointers + tags), so dozens of commits take seconds, then checks the
invariants after gc under random policies.
"""
from __future__ import annotations

import hashlib
import json
import os
import random
import subprocess
import time
from pathlib import Path

import pytest

from conftest import cli_json, git
from nbversion.core import _dvc
from nbversion.core.gc import cached_objects
from nbversion.core.verify import cache_path, file_md5

DAY = 86400


def put_object(root, content: bytes) -> str:
    md5 = hashlib.md5(content).hexdigest()
    path = _dvc.object_path(root, md5)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return md5


def put_dir(root, files: dict) -> tuple[str, int]:
    """A `.dir` listing object plus its files; returns (md5.dir, total size)."""
    entries = sorted(({"md5": put_object(root, data), "relpath": name} for name, data in files.items()),
                     key=lambda e: e["relpath"])
    listing = json.dumps(entries, sort_keys=True).encode()
    md5 = hashlib.md5(listing).hexdigest() + ".dir"
    path = cache_path(root, md5)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(listing)
    return md5, sum(len(d) for d in files.values())


def write_pointer(root, out_path: str, md5: str, size: int):
    out = Path(out_path)
    dvc_file = Path(root) / out.parent / (out.name + ".dvc")
    dvc_file.parent.mkdir(parents=True, exist_ok=True)
    dvc_file.write_text(f"outs:\n- md5: {md5}\n  size: {size}\n  hash: md5\n  path: {out.name}\n")


def commit_at(root, message: str, when: int):
    env = {**os.environ, "GIT_COMMITTER_DATE": f"@{when} +0000", "GIT_AUTHOR_DATE": f"@{when} +0000"}
    subprocess.run(["git", "add", "-A"], cwd=root, check=True, env=env)
    subprocess.run(["git", "commit", "-qm", message], cwd=root, check=True, env=env)
    return git(root, "rev-parse", "HEAD").strip()


def random_history(ws, rng: random.Random) -> dict:
    """Commits over 60 days on main and an experiment branch, with random tags. Returns the
    md5s that must survive (tagged, staged, branch tips, working tree) and orphans that must go."""
    root = ws.root
    now, when = int(time.time()), int(time.time()) - 60 * DAY
    protected_revs, version = [], 0
    for step in range(rng.randint(6, 12)):
        if step == 4:
            git(root, "checkout", "-qb", "exp/try")
        if step == 8:
            git(root, "checkout", "-q", "main")
        when += rng.randint(1, 5) * DAY
        kind = rng.choice(["dataset", "model", "register"])
        blob = rng.randbytes(rng.randint(10, 200))
        if kind == "dataset":
            md5, size = put_dir(root, {f"img{i}.jpg": blob + bytes([i]) for i in range(rng.randint(1, 3))})
            write_pointer(root, "datasets/coco", md5, size)
        elif kind == "model":
            write_pointer(root, "models/net/best.pt", put_object(root, blob), len(blob))
        else:
            version += 1
            md5, size = put_dir(root, {"best.pt": blob})
            write_pointer(root, f"registry/yolo/v{version}.0.0/files", md5, size)
        sha = commit_at(root, f"step {step} {kind}", min(when, now))
        if kind == "register":
            git(root, "tag", "-a", f"yolo@v{version}.0.0", "-m", f"Registering artifact yolo version v{version}.0.0")
            protected_revs.append((sha, f"registry/yolo/v{version}.0.0/files.dvc"))
            if rng.random() < 0.5:
                git(root, "tag", "-a", f"yolo#champion#{step}", sha, "-m", "Assigning stage champion")
        if kind == "dataset" and rng.random() < 0.5:
            git(root, "tag", "-a", f"dataset/coco/v{step}", "-m", "dataset version")
            protected_revs.append((sha, "datasets/coco.dvc"))
    for branch in ("main", "exp/try"):
        if git(root, "branch", "--list", branch).strip():
            protected_revs.append((branch, None))
    orphans = {put_object(root, rng.randbytes(50)) for _ in range(2)}
    return {"protected": _objects_of(root, protected_revs), "orphans": orphans}


def _objects_of(root, revs) -> set:
    from nbversion.core import pointers

    found = set()
    for rev, dvc_file in revs:
        files = [dvc_file] if dvc_file else [p for p in git(root, "ls-tree", "-r", "--name-only", rev).split()
                                             if p.endswith(".dvc")]
        for f in files:
            for p in pointers.parse(f, git(root, "show", f"{rev}:{f}")):
                found.add(p.md5)
                if p.md5.endswith(".dir"):
                    found |= {e["md5"] for e in json.loads(cache_path(root, p.md5).read_text())}
    return found


@pytest.mark.parametrize("seed", range(6))
def test_gc_never_removes_registered_staged_or_tagged_objects(ws, seed):
    rng = random.Random(seed)
    history = random_history(ws, rng)
    before = cached_objects(ws.root)
    keep_last, older_than = rng.randint(1, 3), rng.choice([0, 5, 20])

    dry = ws.gc(keep_last=keep_last, older_than=older_than, dry_run=True)
    assert cached_objects(ws.root) == before           # a dry run deletes nothing
    result = ws.gc(keep_last=keep_last, older_than=older_than)
    after = cached_objects(ws.root)

    assert dry.objects == result.objects == len(before) - len(after)
    assert dry.bytes == sum(before[m] for m in set(before) - set(after))
    for md5 in history["protected"]:
        assert md5 in after, f"gc removed {md5}, needed by a tag or branch tip"
        assert file_md5(cache_path(ws.root, md5)) == md5.replace(".dir", "")
    assert not history["orphans"] & set(after)        # objects no commit uses do go
    assert not [p for p in ws.verify().problems if p.kind in ("missing", "corrupt")]


def test_keep_last_keeps_the_newest_versions_of_each_path(ws):
    old = int(time.time()) - 100 * DAY
    versions = []
    for step in range(5):
        blob = f"weights {step}".encode()
        versions.append(put_object(ws.root, blob))
        write_pointer(ws.root, "models/net/best.pt", versions[-1], len(blob))
        commit_at(ws.root, f"model {step}", old + step * DAY)
    result = ws.gc(keep_last=2, older_than=30)
    after = cached_objects(ws.root)
    assert set(versions[-2:]) <= set(after)            # the newest two stay
    assert not set(versions[:3]) & set(after)          # the three older ones go
    assert result.objects == 3 and result.bytes == sum(len(f"weights {i}") for i in range(3))


def test_recent_versions_are_kept_whatever_keep_last_says(ws):
    recent = int(time.time()) - DAY
    versions = []
    for step in range(3):
        blob = f"fresh {step}".encode()
        versions.append(put_object(ws.root, blob))
        write_pointer(ws.root, "models/net/best.pt", versions[-1], len(blob))
        commit_at(ws.root, f"model {step}", recent + step)
    assert ws.gc(keep_last=1, older_than=30).objects == 0
    assert set(versions) <= set(cached_objects(ws.root))


def test_dry_run_cli_lists_versions_and_bytes_and_config_sets_the_policy(ws):
    old = int(time.time()) - 100 * DAY
    for step in range(3):
        blob = f"cli {step}".encode() * 10
        write_pointer(ws.root, "models/net/best.pt", put_object(ws.root, blob), len(blob))
        commit_at(ws.root, f"model {step}", old + step)
    from nbversion.core.config import read_toml, write_toml
    config = ws.root / ".nbversion/config.toml"
    write_toml(config, {**read_toml(config), "gc": {"keep_last": 2, "older_than_days": 10}})
    data = cli_json("gc", "--dry-run")
    assert data["dry_run"] is True and data["objects"] == 1 and data["bytes"] == len(b"cli 0" * 10)
    assert data["policy"] == {"keep_last": 2, "older_than_days": 10.0}
    assert data["removed"][0]["version"].startswith("models/net/best.pt@")


def backdated(monkeypatch, when: int) -> None:
    """Commits (and tags) made by the verbs from now on carry this date, as if made back then."""
    for var in ("GIT_COMMITTER_DATE", "GIT_AUTHOR_DATE"):
        monkeypatch.setenv(var, f"@{when} +0000")


def test_gc_on_a_folder_remote_keeps_registered_objects(ws, tmp_path, monkeypatch):
    """Built with the verbs: `register`, then three `model add` versions, all long ago."""
    old = int(time.time()) - 100 * DAY
    weights = tmp_path / "outside" / "best.pt"
    weights.parent.mkdir()
    weights.write_bytes(b"registered weights")
    backdated(monkeypatch, old)
    ws.register("yolo", version="1.0.0", source=str(weights))
    md5 = (ws.root / "registry/yolo/v1.0.0/files.dvc").read_text().split("md5: ")[1].split()[0]
    stale = []
    for step in range(3):
        blob = b"\x80\x02" + f"stale {step}".encode()      # a (legacy pickle) PyTorch file
        (tmp_path / "outside" / "net.pt").write_bytes(blob)
        backdated(monkeypatch, old + (step + 1) * DAY)
        ws.model_add("net", tmp_path / "outside" / "net.pt")
        stale.append(hashlib.md5(blob).hexdigest())
    for var in ("GIT_COMMITTER_DATE", "GIT_AUTHOR_DATE"):
        monkeypatch.delenv(var)
    ws.remote_add("team", str(tmp_path / "remote"))
    ws.push(all_versions=True)
    remote_before = _dvc.remote_objects(ws.root, "team")
    assert set(stale) <= remote_before
    ws.gc(keep_last=1, older_than=30, remote="team")
    remote_after = _dvc.remote_objects(ws.root, "team")
    assert {md5, hashlib.md5(b"registered weights").hexdigest()} <= remote_after
    assert not set(stale[:2]) & remote_after and stale[2] in remote_after
    assert ws.verify().problems == []


def test_gc_of_a_remote_needs_an_admin(ws, tmp_path, monkeypatch):
    from nbversion.errors import PermissionDenied

    ws.remote_add("team", str(tmp_path / "remote"))
    monkeypatch.setenv("NBVERSION_USER", "intern@example.com")     # default role: contributor
    with pytest.raises(PermissionDenied):
        ws.gc(remote="team")
    assert ws.gc(remote="team", dry_run=True).dry_run               # looking is allowed
