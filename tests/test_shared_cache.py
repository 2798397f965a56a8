"""A DVC cache outside the workspace (`dvc cache dir`, common on GPU servers): every verb that
reads or removes objects finds them there, whichever way the cache dir was set.

The cache dir is set with DVC's own CLI, as a user would; the datasets are made with the verbs.
"""
from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import git
from test_datasets import add_images


def dvc_cli(root: Path, *args: str) -> None:
    subprocess.run([str(Path(sys.executable).with_name("dvc")), *args], cwd=root, check=True, capture_output=True)


def objects_in(cache: Path) -> set:
    """md5s (`.dir` listings with their suffix) stored under a DVC 3 cache dir."""
    base = cache / "files" / "md5"
    return {p.parent.name + p.name for p in base.glob("??/*") if p.is_file()} if base.exists() else set()


def move_cache(ws, cache: Path, how: str) -> Path:
    """Move the workspace's cache outside it: an absolute path in `.dvc/config`, a relative one
    (DVC resolves it against `.dvc/`), or an absolute one in the uncommitted `.dvc/config.local`."""
    if how == "absolute":
        dvc_cli(ws.root, "cache", "dir", str(cache))
    elif how == "relative":
        dvc_cli(ws.root, "cache", "dir", os.path.relpath(cache, ws.root))
    else:
        dvc_cli(ws.root, "cache", "dir", "--local", str(cache))
    if how != "local":
        ws.commit("cache on the shared disk")
    return cache


@pytest.fixture(params=["absolute", "relative", "local"])
def shared(request, ws, tmp_path):
    return move_cache(ws, tmp_path / "shared-cache", request.param)


@pytest.fixture
def two_versions(ws, shared, demo_data):
    """shapes@v1 and shapes@v2 (3 images more, one label rewritten), stored in the shared cache."""
    ws.dataset_add("shapes", demo_data, tags=["v1"])
    first_label = sorted((demo_data / "labels/train").glob("*.txt"))[0]
    first_label.write_text("1 0.5 0.5 0.25 0.25\n")
    add_images(demo_data, 3)
    ws.dataset_add("shapes", demo_data, tags=["v2"])
    return hashlib.md5(b"1 0.5 0.5 0.25 0.25\n").hexdigest()


def test_objects_go_to_the_shared_cache_and_verify_is_clean(ws, shared, two_versions):
    assert two_versions in objects_in(shared)
    assert not objects_in(ws.root / ".dvc" / "cache")
    assert ws.verify().problems == []


def test_gc_removes_unneeded_objects_from_the_shared_cache(ws, shared, demo_data):
    ws.dataset_add("shapes", demo_data)
    label = sorted((demo_data / "labels/train").glob("*.txt"))[0]
    old_md5 = hashlib.md5(label.read_bytes()).hexdigest()
    label.write_text("2 0.5 0.5 0.25 0.25\n")
    ws.dataset_add("shapes", demo_data)       # the old label is now in no tagged or kept version
    assert old_md5 in objects_in(shared)
    result = ws.gc(keep_last=1, older_than=0)
    assert result.objects >= 2                # the old listing and the old label
    assert old_md5 not in objects_in(shared)
    assert ws.verify().problems == []


def test_backup_finds_every_object_in_the_shared_cache(ws, shared, two_versions, tmp_path):
    result = ws.backup_create(out=str(tmp_path / "backup.tar.gz"))
    assert result.missing == []
    assert result.objects == len(objects_in(shared))


def test_dataset_show_and_diff_read_the_shared_cache(ws, shared, two_versions):
    shown = ws.dataset_show("shapes@v1")
    assert shown._repr_html_().count("data:image/png;base64,") == 6 + 1   # 6 samples, the statistics figure
    diff = ws.dataset_diff("shapes", "v1", "v2")
    assert len(diff.images_added) == 3 and len(diff.labels_changed) == 1


def test_checkout_of_an_old_version_links_from_the_shared_cache(ws, shared, two_versions):
    ws.checkout("dataset/shapes/v1", force=True)
    assert len(list((ws.root / "datasets/shapes/images/train").glob("*.png"))) == 16
    assert git(ws.root, "status", "--porcelain") == ""


def test_training_exports_an_older_version_from_the_shared_cache(ws, demo_data, tmp_path):
    cache = move_cache(ws, tmp_path / "gpu-server-cache", "absolute")
    ws.dataset_add("shapes", demo_data, tags=["v1"])
    old_label = (demo_data / "labels/train/train_00000.txt").read_text()
    (ws.root / "datasets/shapes/labels/train/train_00000.txt").write_text("1 0.5 0.5 0.25 0.25\n")
    ws.dataset_add("shapes", ws.root / "datasets/shapes")
    assert objects_in(cache)
    run = ws.train("shapes@v1", "yolov8n.yaml", epochs=1, imgsz=64, batch=4, device="cpu",
                   extra={"nbs": 4, "warmup_epochs": 0, "mosaic": 0, "plots": False}, wait=True)
    exported = ws.root / "runs" / run.run_id / "data"
    assert (exported / "labels/train/train_00000.txt").read_text() == old_label


def test_a_cache_on_another_filesystem_gets_every_object_of_an_import(ws, demo_data):
    """An import writes objects beside its temp folder and renames them in; a cache on another
    filesystem (here the tmpfs /dev/shm, where a rename cannot reach) is written by copy instead."""
    import tempfile

    cache = Path(tempfile.mkdtemp(dir="/dev/shm", prefix="nbversion-test-cache-"))
    try:
        move_cache(ws, cache, "absolute")
        ws.dataset_add("shapes", demo_data)
        files = [p for p in (ws.root / "datasets" / "shapes").rglob("*") if p.is_file()]
        stored = objects_in(cache)
        assert {hashlib.md5(p.read_bytes()).hexdigest() for p in files} <= stored
        assert not objects_in(ws.root / ".dvc" / "cache")
        assert ws.verify().problems == [] and ws.status().clean
    finally:
        import shutil

        shutil.rmtree(cache, ignore_errors=True)
