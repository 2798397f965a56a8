"""Remotes on real servers on loopback: a folder (bare git + DVC folder), sshd, and an S3 server (moto).

Two clones exchange a dataset version and a registered model; plain `git clone` + `dvc pull`
+ `gto show` read everything; kill -9 during push and pull, then a re-run completes and no
object is corrupt.
"""
from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from conftest import cli, git
from sshd_server import free_port, sshd  # noqa: F401 (sshd: a fixture, imported from here by other files too)
from test_verify import WEIGHTS, add_dataset, register_fake
import nbversion as nbv
from nbversion.core.backends import dvc_cache
from nbversion.core.storage.clone import clone
from nbversion.errors import MergeConflict, NbversionError

def corrupt_objects(folder: Path) -> list:
    """Files stored under their md5 whose content does not hash to it."""
    bad = []
    for path in folder.rglob("*"):
        name = path.parent.name + path.name.removesuffix(".dir")
        if path.is_file() and len(name) == 32 and all(c in "0123456789abcdef" for c in name):
            if hashlib.md5(path.read_bytes()).hexdigest() != name:
                bad.append(path)
    return bad


def stored_objects(folder: Path) -> set:
    return {p.parent.name + p.name for p in (folder / "files" / "md5").glob("??/*")
            if not p.name.startswith(".") and "." not in p.name.removesuffix(".dir")}


@pytest.fixture
def shared(ws, tmp_path):
    """Workspace A with a registered model and a tagged dataset, pushed to a folder remote."""
    register_fake(ws)
    add_dataset(ws, "coco", "v1", seed=1)
    ws.remote_add("team", str(tmp_path / "remote"))
    ws.push()
    return ws


# --- folder remote -------------------------------------------------------------------------------

def test_two_clones_exchange_a_dataset_version_and_a_registered_model(shared, tmp_path):
    cloned = clone(str(tmp_path / "remote"), str(tmp_path / "b"))
    b = nbv.open(tmp_path / "b")
    assert cloned.objects > 0 and "yolo@v1.0.0" in git(b.root, "tag")
    assert (b.root / "registry/yolo/v1.0.0/files/best.pt").read_bytes() == WEIGHTS
    assert b.verify().problems == []

    add_dataset(b, "coco", "v2", seed=2)
    register_fake(b, "yolo", "1.1.0", content=b"v1.1 weights")
    b.push()
    pulled = shared.pull()
    assert "fast-forwarded" in pulled.history
    assert "dataset/coco/v2" in git(shared.root, "tag") and "yolo@v1.1.0" in git(shared.root, "tag")
    assert (shared.root / "registry/yolo/v1.1.0/files/best.pt").read_bytes() == b"v1.1 weights"
    assert (shared.root / "datasets/coco/img0.txt").read_text().startswith("coco 2 0")


def test_plain_git_dvc_and_gto_read_a_pushed_workspace(shared, tmp_path):
    plain = tmp_path / "plain"
    subprocess.run(["git", "clone", "-q", str(tmp_path / "remote" / "git"), str(plain)], check=True)
    bin_dir = Path(sys.executable).parent
    subprocess.run([str(bin_dir / "dvc"), "pull", "-q"], cwd=plain, check=True)
    assert (plain / "registry/yolo/v1.0.0/files/best.pt").read_bytes() == WEIGHTS
    assert (plain / "datasets/coco/img0.txt").exists()
    shown = subprocess.run([str(bin_dir / "gto"), "show"], cwd=plain, capture_output=True, text=True, check=True)
    assert "yolo" in shown.stdout and "v1.0.0" in shown.stdout


def test_push_registered_sends_only_registered_data(ws, tmp_path):
    register_fake(ws)
    add_dataset(ws, "coco", "v1")
    ws.remote_add("team", str(tmp_path / "remote"))
    ws.push(registered=True)
    on_remote = stored_objects(tmp_path / "remote" / "data")
    assert hashlib.md5(WEIGHTS).hexdigest() in on_remote
    assert not any(p.kind == "not on remote" and "registered yolo@v1.0.0" in p.affects
                   for p in ws.verify(check_remote_presence=True).problems)
    assert any("dataset coco@v1" in p.affects for p in ws.verify(check_remote_presence=True).problems)


def test_a_tagged_older_dataset_version_travels_with_a_plain_push_and_clone(ws, tmp_path):
    # the tag goes with the history, so its data must too: a clone verifies clean and can diff it
    add_dataset(ws, "coco", "v1", seed=1)
    add_dataset(ws, "coco", None, seed=2)             # HEAD no longer holds v1's files
    ws.remote_add("team", str(tmp_path / "remote"))
    ws.push()
    assert not [p for p in ws.verify(check_remote_presence=True).problems if p.kind == "not on remote"]
    clone(str(tmp_path / "remote"), str(tmp_path / "b"))
    b = nbv.open(tmp_path / "b")
    assert b.verify().problems == []
    assert b.dataset_diff("coco", "v1", "HEAD").other_files   # v1 read from the cache


def test_pull_all_versions_fetches_older_commits_too(shared, tmp_path):
    add_dataset(shared, "coco", None, seed=7)
    shared.push(all_versions=True)
    clone(str(tmp_path / "remote"), str(tmp_path / "b"), all_versions=True)
    b = nbv.open(tmp_path / "b")
    assert b.verify().problems == []
    first = git(b.root, "rev-list", "--max-parents=0", "HEAD").strip()
    assert b.gc(keep_last=100, older_than=1000, dry_run=True).objects == 0   # every version is cached
    assert first


def test_cli_remote_add_list_push_pull_and_clone(ws, tmp_path):
    add_dataset(ws, "coco", "v1")
    cli("remote", "add", "team", tmp_path / "remote", check=0)
    listing = cli("remote", "list", check=0).stdout
    assert "team" in listing and str(tmp_path / "remote" / "git") in listing
    assert "transferred" in cli("push", check=0).stdout
    cli("clone", tmp_path / "remote", tmp_path / "c", cwd=tmp_path, check=0)
    assert (tmp_path / "c/datasets/coco/img0.txt").exists()
    assert "up to date" in cli("pull", "team", cwd=tmp_path / "c", check=0).stdout
    proc = cli("push", "nowhere", check=1)
    assert "unknown remote" in proc.stderr and "hint:" in proc.stderr


def test_the_same_dataset_changed_in_two_clones_stops_the_pull_with_a_hint(shared, tmp_path):
    clone(str(tmp_path / "remote"), str(tmp_path / "b"))
    b = nbv.open(tmp_path / "b")
    add_dataset(b, "coco", None, seed=3)
    b.push()
    add_dataset(shared, "coco", None, seed=4)
    with pytest.raises(MergeConflict, match="datasets/coco/img0.txt") as stopped:   # merged file by file
        shared.pull()
    assert stopped.value.paths == [f"datasets/coco/img{i}.txt" for i in range(3)]
    assert "dataset files" in stopped.value.hint and "git merge team/main" in stopped.value.hint


# --- kill -9 during transfers -------------------------------------------------------------------

@pytest.fixture
def big(ws, tmp_path):
    """`dataset add big` of 800 files of 16 KB made outside the workspace."""
    folder = tmp_path / "big-src"
    folder.mkdir(parents=True)
    rng = os.urandom
    for i in range(800):
        (folder / f"{i:04d}.bin").write_bytes(rng(16 * 1024))
    ws.dataset_add("big", folder)
    ws.remote_add("team", str(tmp_path / "remote"))
    return ws


def kill_when(proc, folder: Path, at_least: int, timeout: float = 120) -> int:
    """kill -9 `proc` once `folder` holds `at_least` objects; returns how many it held."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        count = len(stored_objects(folder)) if (folder / "files").exists() else 0
        if count >= at_least:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            return count
        time.sleep(0.005)
    proc.kill()
    pytest.fail("the transfer finished before it could be interrupted")


def nbversion_process(*args, cwd):
    exe = Path(sys.executable).with_name("nbversion")
    return subprocess.Popen([str(exe), *args], cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def test_kill_9_during_push_then_push_again_completes(big, tmp_path):
    remote = tmp_path / "remote" / "data"
    seen = kill_when(nbversion_process("push", cwd=big.root), remote, 20)
    assert seen < 801
    assert corrupt_objects(remote) == []
    big.push()
    assert len(stored_objects(remote)) == 801 and corrupt_objects(remote) == []
    assert big.verify(check_remote_presence=True).problems == []


def test_kill_9_during_pull_then_pull_again_completes(big, tmp_path):
    big.push()
    subprocess.run(["git", "clone", "-q", str(tmp_path / "remote" / "git"), str(tmp_path / "b")], check=True)
    cache = tmp_path / "b" / ".dvc" / "cache"
    seen = kill_when(nbversion_process("pull", cwd=tmp_path / "b"), cache, 20)
    assert seen < 801
    assert corrupt_objects(cache) == []
    b = nbv.open(tmp_path / "b")
    b.pull()
    assert corrupt_objects(cache) == [] and len(stored_objects(cache)) == 801
    assert b.verify().problems == []
    assert len(list((tmp_path / "b/datasets/big").iterdir())) == 800


# --- SSH ----------------------------------------------------------------------------------------

def test_ssh_remote_push_clone_and_verify(ws, sshd, tmp_path):
    register_fake(ws)
    add_dataset(ws, "coco", "v1")
    url = f"ssh://{sshd['user']}@127.0.0.1:{sshd['port']}{tmp_path / 'sshremote'}"
    ws.remote_add("box", url, keyfile=sshd["key"])
    ws.push()
    assert (tmp_path / "sshremote" / "git" / "HEAD").exists()
    assert hashlib.md5(WEIGHTS).hexdigest() in stored_objects(tmp_path / "sshremote" / "data")
    assert ws.verify(check_remote_presence=True).problems == []

    clone(url, str(tmp_path / "b"), keyfile=sshd["key"])
    b = nbv.open(tmp_path / "b")
    assert (b.root / "registry/yolo/v1.0.0/files/best.pt").read_bytes() == WEIGHTS
    assert git(b.root, "status", "--porcelain", "--untracked-files=no") == ""   # the key file went to config.local only
    add_dataset(b, "coco", "v2", seed=5)
    b.push()
    ws.pull()
    assert "dataset/coco/v2" in git(ws.root, "tag")


# --- S3 (moto server on loopback) ---------------------------------------------------------------

@pytest.fixture
def s3(monkeypatch):
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    for key, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                       "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(key, value)
    import boto3
    endpoint = f"http://127.0.0.1:{port}"
    boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket="models")
    yield endpoint
    server.stop()


def test_s3_remote_with_separate_history_round_trip(ws, s3, tmp_path):
    register_fake(ws)
    add_dataset(ws, "coco", "v1")
    history = tmp_path / "history.git"
    git(tmp_path, "init", "-q", "--bare", str(history))
    ws.remote_add("s3", "s3://models/team", git_url=str(history), endpoint_url=s3)
    pushed = ws.push()
    assert pushed.objects >= 5
    assert ws.verify(check_remote_presence=True).problems == []

    clone(str(history), str(tmp_path / "b"))
    b = nbv.open(tmp_path / "b")
    assert (b.root / "registry/yolo/v1.0.0/files/best.pt").read_bytes() == WEIGHTS
    assert b.verify().problems == []

    victim = dvc_cache.object_path(b.root, hashlib.md5(WEIGHTS).hexdigest())
    victim.chmod(0o644)
    victim.write_bytes(b"rotten")
    repaired = b.verify(repair=True)
    assert repaired.problems and all(p.repaired for p in repaired.problems)
    assert victim.read_bytes() == WEIGHTS


def test_push_and_pull_report_progress_events(ws, tmp_path):
    add_dataset(ws, "coco", "v1")
    ws.remote_add("team", str(tmp_path / "remote"))
    events = []
    ws.push(on_event=events.append)
    stages = [(e.stage, e.done, e.total) for e in events]
    assert ("push", 0, 2) in stages and ("push", 2, 2) in stages
    assert any(e.stage == "transfer" and e.done > 0 for e in events)     # DVC's per-file counter
    clone(str(tmp_path / "remote"), str(tmp_path / "b"))
    events.clear()
    nbv.open(tmp_path / "b").pull(on_event=events.append)
    assert [e.done for e in events if e.stage == "pull"] == [0, 1, 2, 3]


def test_two_pushes_in_threads_each_report_their_own_progress(ws, tmp_path):
    """The server pushes in worker threads: the progress of one push never reaches the other."""
    other = nbv.init(tmp_path / "other")
    pushes = {}
    for name, workspace in (("a", ws), ("b", other)):
        add_dataset(workspace, "coco", "v1", seed=ord(name))
        workspace.remote_add("team", str(tmp_path / f"remote-{name}"))
        pushes[name] = (workspace, [], [])
    start = threading.Barrier(2)

    def push(workspace, events, failures):
        start.wait()
        try:
            workspace.push(on_event=events.append)
        except Exception as exc:   # noqa: BLE001 - reported by the assertion below
            failures.append(exc)

    threads = [threading.Thread(target=push, args=args) for args in pushes.values()]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for name, (workspace, events, failures) in pushes.items():
        mine, theirs = str(tmp_path / f"remote-{name}"), str(tmp_path / f"remote-{'b' if name == 'a' else 'a'}")
        assert failures == [] and ("push", 2, 2) in [(e.stage, e.done, e.total) for e in events], failures
        assert any(e.stage == "transfer" and e.done > 0 for e in events)
        checked = [e.message for e in events if e.stage == "transfer" and "remote-" in e.message]
        assert any(mine in m for m in checked), checked
        assert not any(theirs in m for m in checked), f"push {name} got the other push's progress: {checked}"
        assert stored_objects(Path(mine) / "data") == {p.parent.name + p.name for p in
                                                         (workspace.root / ".dvc/cache/files/md5").glob("??/*")}


def test_a_plain_git_clone_pushes_and_pulls_history_through_origin(shared, tmp_path):
    plain = tmp_path / "plain"
    subprocess.run(["git", "clone", "-q", str(tmp_path / "remote" / "git"), str(plain)], check=True)
    b = nbv.open(plain)
    b.pull()                                             # data via DVC remote `team`, history via origin
    assert (plain / "registry/yolo/v1.0.0/files/best.pt").read_bytes() == WEIGHTS
    add_dataset(b, "coco", "v3", seed=3)
    assert "and tags" in b.push().history
    shared.pull()
    assert "dataset/coco/v3" in git(shared.root, "tag")
