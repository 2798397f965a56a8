"""Push and pull of a folder remote copy objects themselves (issue 16): only what the other side
lacks, in DVC's own layout, so plain `dvc push` / `dvc pull` and nbversion read each other's data;
an interrupted or killed transfer never leaves a partial object at an object's name.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import cli, cli_stopped_at, git
from test_remotes import corrupt_objects, stored_objects
from test_verify import add_dataset
import nbversion as nbv

DVC = str(Path(sys.executable).with_name("dvc"))
FILES = 600   # more than a remote is stat'ed for one by one: its folders are listed instead


def temp_files(folder: Path) -> list:
    return [p for p in (folder / "files" / "md5").glob("??/.*") if p.is_file()]


def plain_clone(tmp_path, name: str) -> Path:
    target = tmp_path / name
    subprocess.run(["git", "clone", "-q", str(tmp_path / "remote" / "git"), str(target)], check=True)
    return target


@pytest.fixture
def dataset(ws, tmp_path):
    """A dataset of FILES photos (tag v1) and a folder remote `team` nothing was pushed to yet."""
    source = tmp_path / "photos"
    source.mkdir()
    for i in range(FILES):
        (source / f"{i:03d}.jpg").write_bytes(os.urandom(300))
    ws.dataset_add("photos", source, tags=["v1"])
    ws.remote_add("team", str(tmp_path / "remote"))
    return ws


def test_nbversion_push_is_complete_for_dvc_and_dvc_push_is_complete_for_nbversion(dataset, tmp_path):
    pushed = dataset.push()
    assert pushed.objects == FILES + 1                                   # the files and the folder's listing
    again = subprocess.run([DVC, "push", "-r", "team"], cwd=dataset.root, capture_output=True, text=True, check=True)
    assert "up to date" in again.stdout.lower()                   # DVC finds nothing missing
    plain = plain_clone(tmp_path, "plain")
    subprocess.run([DVC, "pull", "-q"], cwd=plain, check=True)
    assert sorted(p.name for p in (plain / "datasets/photos").iterdir()) == [f"{i:03d}.jpg" for i in range(FILES)]

    # the reverse: a second dataset sent by plain `dvc push`, then fetched by `nbversion pull`
    add_dataset(dataset, "coco", "v1", seed=9)
    subprocess.run([DVC, "push", "-q", "-r", "team"], cwd=dataset.root, check=True)
    assert dataset.push().objects == 0                            # DVC's objects count as there
    b = nbv.open(plain)
    pulled = b.pull()
    assert pulled.objects == 4                                    # coco's 3 files and its listing
    assert (plain / "datasets/coco/img0.txt").read_text() == "coco 9 0\n" * 50
    assert b.verify().problems == []


def test_a_second_push_copies_nothing_and_touches_nothing(dataset, tmp_path):
    assert dataset.push().objects == FILES + 1
    remote = tmp_path / "remote" / "data"
    before = {p: p.stat().st_mtime_ns for p in (remote / "files" / "md5").glob("??/*")}
    events = []
    assert dataset.push(on_event=events.append).objects == 0
    assert {p: p.stat().st_mtime_ns for p in (remote / "files" / "md5").glob("??/*")} == before
    assert any(e.stage == "transfer" and f"{FILES + 1} of {FILES + 1} object(s) already on" in e.message for e in events)


def test_pull_of_a_version_whose_objects_are_partly_here_fetches_only_the_rest(dataset, tmp_path):
    dataset.push()
    b = nbv.open(plain_clone(tmp_path, "b"))
    assert b.pull().objects == FILES + 1
    changed = tmp_path / "photos-v2"
    changed.mkdir()
    for i in range(FILES):   # v2: the same photos but one
        (changed / f"{i:03d}.jpg").write_bytes((dataset.root / f"datasets/photos/{i:03d}.jpg").read_bytes())
    (changed / "007.jpg").write_bytes(b"retouched")
    dataset.dataset_add("photos", changed, tags=["v2"])
    assert dataset.push().objects == 2                            # the new photo and the new listing
    events = []
    assert b.pull(on_event=events.append).objects == 2
    assert (b.root / "datasets/photos/007.jpg").read_bytes() == b"retouched"
    assert any(e.stage == "transfer" and f"{FILES} of {FILES + 1} object(s) already here" in e.message for e in events)
    assert b.verify().problems == []


def test_progress_counts_objects_up_to_the_total(dataset):
    events = []
    dataset.push(on_event=events.append)
    counted = [e for e in events if e.stage == "transfer" and e.total == FILES + 1]
    assert counted and counted[-1].done == FILES + 1 and "MB to" in counted[-1].message


def test_ctrl_c_during_push_leaves_no_object_half_written_and_push_resumes(dataset, tmp_path):
    remote = tmp_path / "remote" / "data"

    def interrupt(event):
        if event.stage == "transfer" and "MB to" in event.message:
            raise KeyboardInterrupt   # what Ctrl-C / the kernel's interrupt raises

    with pytest.raises(KeyboardInterrupt):
        dataset.push(on_event=interrupt)
    assert temp_files(remote) == [] and corrupt_objects(remote) == []
    assert not any(m.endswith(".dir") for m in stored_objects(remote))   # no listing before its files
    dataset.push()
    assert len(stored_objects(remote)) == FILES + 1 and dataset.verify(check_remote_presence=True).problems == []


def test_ctrl_c_during_pull_leaves_the_cache_whole_and_pull_resumes(dataset, tmp_path):
    dataset.push()
    b = nbv.open(plain_clone(tmp_path, "b"))
    cache = b.root / ".dvc" / "cache"

    def interrupt(event):
        if event.stage == "transfer" and "MB from" in event.message:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        b.pull(on_event=interrupt)
    assert temp_files(cache) == [] and corrupt_objects(cache) == []
    b.pull()
    assert len(stored_objects(cache)) == FILES + 1 and b.verify().problems == []


def test_a_transfer_killed_mid_object_leaves_only_a_temp_file_that_nobody_trips_on(dataset, tmp_path):
    dataset.push()
    remote = tmp_path / "remote" / "data"
    more = tmp_path / "photos-v2"
    more.mkdir()
    for i in range(FILES):
        (more / f"{i:03d}.jpg").write_bytes(os.urandom(300))
    dataset.dataset_add("photos", more, tags=["v2"])
    b = nbv.open(plain_clone(tmp_path, "b"))
    with cli_stopped_at("transfer-temp-written", "push", cwd=dataset.root) as paused:
        assert temp_files(remote) and corrupt_objects(remote) == []
        # meanwhile a colleague pulls v1 from the same remote, and plain DVC checks it
        assert b.pull().objects == FILES + 1
        checked = subprocess.run([DVC, "push", "-r", "team"], cwd=b.root, capture_output=True, text=True, check=True)
        assert "up to date" in checked.stdout.lower()
        paused.send_signal(signal.SIGKILL)   # kill -9 while it holds a temp file
    assert temp_files(remote) and corrupt_objects(remote) == []
    assert "transferred" in cli("push", cwd=dataset.root, check=0).stdout
    assert dataset.verify(check_remote_presence=True).problems == []
    assert b.pull().objects == FILES + 1
    assert (b.root / "datasets/photos/000.jpg").read_bytes() == (more / "000.jpg").read_bytes()
    fresh = plain_clone(tmp_path, "fresh")
    subprocess.run([DVC, "pull", "-q"], cwd=fresh, check=True)
    assert sorted(p.name for p in (fresh / "datasets/photos").iterdir()) == sorted(p.name for p in more.iterdir())


def test_ctrl_c_while_a_new_folder_is_written_leaves_it_whole_or_absent(dataset, tmp_path):
    dataset.push()
    b = nbv.open(plain_clone(tmp_path, "b"))

    def interrupt(event):
        if event.stage == "checkout" and 0 < event.done < event.total:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        b.pull(on_event=interrupt)
    assert not (b.root / "datasets/photos").exists()
    assert git(b.root, "status", "--porcelain", "--untracked-files=all", "--ignored", "datasets") == ""   # no scratch
    b.pull()
    assert len(list((b.root / "datasets/photos").iterdir())) == FILES and b.verify().problems == []
    assert "nothing changed" in cli("status", cwd=b.root, check=0).stdout


def test_a_clone_that_opted_for_hard_links_gets_read_only_links_to_the_cache(dataset, tmp_path):
    from test_storage_links import set_link

    set_link(dataset.root, "hardlink")
    cli("commit", "-m", "hard links, please", cwd=dataset.root, check=0)
    dataset.push()
    b = nbv.open(plain_clone(tmp_path, "b"))
    b.pull()
    photos = sorted((b.root / "datasets/photos").iterdir())
    assert len(photos) == FILES and {p.stat().st_nlink for p in photos} == {2}
    assert not any(p.stat().st_mode & 0o222 for p in photos)
    assert b.verify().problems == []


def test_a_folder_remote_with_options_of_its_own_still_pushes_and_pulls(dataset, tmp_path):
    subprocess.run([DVC, "remote", "modify", "team", "jobs", "2"], cwd=dataset.root, check=True)   # DVC's to honour
    dataset.commit("the remote copies two at a time")
    assert dataset.push().objects == FILES + 1
    b = nbv.open(plain_clone(tmp_path, "b"))
    assert b.pull().objects == FILES + 1
    assert len(list((b.root / "datasets/photos").iterdir())) == FILES and b.verify().problems == []


def test_a_remote_folder_that_cannot_be_written_fails_with_its_path_and_a_hint(dataset, tmp_path):
    (tmp_path / "remote" / "data").write_text("a mount point left behind as a plain file")
    proc = cli("push", cwd=dataset.root, check=1)
    assert str(tmp_path / "remote" / "data") in proc.stderr and "hint:" in proc.stderr
    assert "Traceback" not in proc.stderr
