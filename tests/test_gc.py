"""`gc`: retention by policy that never deletes what a registered, staged or tagged version needs.

Every history is made with the verbs (`dataset add`, `model add`, `register`, `promote`,
`exp new`), backdated through git's commit date variables; the property test checks the
invariants after gc under random policies, and that what a killed `commit` cached does go.
"""
from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import time
from pathlib import Path

import pytest

from conftest import cli, cli_json, git
from nbversion.core.backends import _dvc, dvc_cache
from nbversion.core.backends.hashing import file_md5

cached_objects = dvc_cache.cached_objects

DAY = 86400


def backdated(monkeypatch, when: int) -> None:
    """Commits (and tags) made by the verbs from now on carry this date, as if made back then."""
    for var in ("GIT_COMMITTER_DATE", "GIT_AUTHOR_DATE"):
        monkeypatch.setenv(var, f"@{when} +0000")


def weights_file(path: Path, blob: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\x80\x02" + blob)            # a (legacy pickle) PyTorch file
    return path


def random_history(ws, rng: random.Random, monkeypatch) -> dict:
    """Versions made with the verbs over 60 days on main and an experiment branch (`dataset add`
    with random tags, `model add`, `register` and sometimes `promote`), each backdated. Returns the
    md5s that must survive (tagged, staged, branch tips, working tree) and orphans that must go."""
    root, outside = ws.root, ws.root.parent / "outside"
    now, when = int(time.time()), int(time.time()) - 60 * DAY
    protected_revs, version = [], 0
    for step in range(rng.randint(6, 12)):
        when += rng.randint(1, 5) * DAY
        backdated(monkeypatch, min(when, now))
        if step == 4:
            ws.exp_new("try")
        if step == 8:
            git(root, "checkout", "-q", "main")
            ws.checkout("main", force=True)
        kind = rng.choice(["dataset", "model", "register"])
        blob = rng.randbytes(rng.randint(10, 200))
        if kind == "dataset":
            source = outside / f"coco-{step}"
            source.mkdir(parents=True)
            for i in range(rng.randint(1, 3)):
                (source / f"img{i}.jpg").write_bytes(blob + bytes([i]))
            tags = [f"v{step}"] if rng.random() < 0.5 else []
            ws.dataset_add("coco", source, tags=tags)
            if tags:
                protected_revs.append((git(root, "rev-parse", "HEAD").strip(), "datasets/coco.dvc"))
        elif kind == "model":
            ws.model_add("net", weights_file(outside / f"net-{step}" / "net.pt", blob))
        else:
            version += 1
            ws.register("yolo", version=f"{version}.0.0", source=str(weights_file(outside / f"yolo-{step}" / "best.pt", blob)))
            protected_revs.append((git(root, "rev-parse", "HEAD").strip(), f"registry/yolo/v{version}.0.0/files.dvc"))
            if rng.random() < 0.5:
                ws.promote(f"yolo@v{version}.0.0")
    for var in ("GIT_COMMITTER_DATE", "GIT_AUTHOR_DATE"):
        monkeypatch.delenv(var)
    for branch in ("main", "exp/try"):
        if git(root, "branch", "--list", branch).strip():
            protected_revs.append((branch, None))
    return {"protected": _objects_of(root, protected_revs), "orphans": orphans_of_a_killed_commit(ws, rng)}


def orphans_of_a_killed_commit(ws, rng: random.Random) -> set:
    """`commit` of a scratch folder killed after DVC cached it, then the scratch folder thrown away:
    cache objects that no commit uses."""
    scratch = ws.root / "models" / "scratch"
    scratch.mkdir(parents=True)
    blobs = [rng.randbytes(50) for _ in range(2)]
    for i, blob in enumerate(blobs):
        (scratch / f"w{i}.bin").write_bytes(blob)
    proc = cli("commit", "-m", "scratch", env={**os.environ, "NBVERSION_TEST_KILL_AT": "after-dvc-add"})
    assert proc.returncode == -9, proc.stdout + proc.stderr
    orphans = {hashlib.md5(blob).hexdigest() for blob in blobs}
    assert orphans <= set(cached_objects(ws.root))
    shutil.rmtree(scratch)
    (ws.root / "models" / "scratch.dvc").unlink(missing_ok=True)
    return orphans


def _objects_of(root, revs) -> set:
    from nbversion.core.backends import pointers

    found = set()
    for rev, dvc_file in revs:
        files = [dvc_file] if dvc_file else [p for p in git(root, "ls-tree", "-r", "--name-only", rev).split()
                                             if p.endswith(".dvc")]
        for f in files:
            for p in pointers.parse(f, git(root, "show", f"{rev}:{f}")):
                found.add(p.md5)
                if p.md5.endswith(".dir"):
                    found |= {e["md5"] for e in json.loads(dvc_cache.object_path(root, p.md5).read_text())}
    return found


@pytest.mark.parametrize("seed", range(6))
def test_gc_never_removes_registered_staged_or_tagged_objects(ws, seed, monkeypatch):
    rng = random.Random(seed)
    history = random_history(ws, rng, monkeypatch)
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
        assert file_md5(dvc_cache.object_path(ws.root, md5)) == md5.replace(".dir", "")
    assert not history["orphans"] & set(after)        # objects no commit uses do go
    assert not [p for p in ws.verify().problems if p.kind in ("missing", "corrupt")]


def model_versions(ws, monkeypatch, contents: list, first: int, spacing: int) -> list:
    """`model add net` of each content, the first at `first`, then every `spacing` seconds; md5s."""
    outside, md5s = ws.root.parent / "outside", []
    for step, blob in enumerate(contents):
        backdated(monkeypatch, first + step * spacing)
        ws.model_add("net", weights_file(outside / f"net-{step}" / "net.pt", blob))
        md5s.append(hashlib.md5(b"\x80\x02" + blob).hexdigest())
    for var in ("GIT_COMMITTER_DATE", "GIT_AUTHOR_DATE"):
        monkeypatch.delenv(var)
    return md5s


def test_keep_last_keeps_the_newest_versions_of_each_path(ws, monkeypatch):
    blobs = [f"weights {step}".encode() for step in range(5)]
    versions = model_versions(ws, monkeypatch, blobs, int(time.time()) - 100 * DAY, DAY)
    before = cached_objects(ws.root)
    assert set(versions) <= set(before)
    result = ws.gc(keep_last=2, older_than=30)
    after = cached_objects(ws.root)
    assert set(versions[-2:]) <= set(after)            # the newest two stay
    assert not set(versions[:3]) & set(after)          # the three older ones go
    # each version of the folder is its listing + its file, reported under that version
    assert [(r["version"].split("@")[0], r["objects"]) for r in result.removed] == [("models/net", 2)] * 3
    assert result.objects == 6 and result.bytes == sum(before[m] for m in set(before) - set(after))
    assert not [p for p in ws.verify().problems if p.kind in ("missing", "corrupt")]


def test_recent_versions_are_kept_whatever_keep_last_says(ws, monkeypatch):
    versions = model_versions(ws, monkeypatch, [f"fresh {step}".encode() for step in range(3)],
                              int(time.time()) - DAY, 1)
    assert ws.gc(keep_last=1, older_than=30).objects == 0
    assert set(versions) <= set(cached_objects(ws.root))


def test_dry_run_cli_lists_versions_and_bytes_and_config_sets_the_policy(ws, monkeypatch):
    model_versions(ws, monkeypatch, [f"cli {step}".encode() * 10 for step in range(3)],
                   int(time.time()) - 100 * DAY, 1)
    from nbversion.core.repo.config import read_toml, write_toml
    config = ws.root / ".nbversion/config.toml"
    write_toml(config, {**read_toml(config), "gc": {"keep_last": 2, "older_than_days": 10}})
    data = cli_json("gc", "--dry-run")
    assert data["dry_run"] is True and data["objects"] == 2        # the oldest version: listing + file
    assert data["policy"] == {"keep_last": 2, "older_than_days": 10.0}
    [row] = data["removed"]
    assert row["version"].startswith("models/net@") and row["objects"] == 2
    assert data["bytes"] == row["bytes"] > len(b"\x80\x02" + b"cli 0" * 10)


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
