"""Per-file fingerprints (issue 16): `status` and `commit` of a tracked folder read only the files
whose (size, mtime, inode) moved, and are never fooled by the classic traps: a change within the
timestamp granularity, a clock in the future, files replaced or swapped by rename. DVC itself is
the referee: after each of our commits, `dvc data status` finds nothing and `dvc add` rewrites
nothing."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import git

DVC = str(Path(sys.executable).with_name("dvc"))
HOUR_NS = 3600 * 10**9


def make_folder(ws, files: dict) -> Path:
    folder = ws.root / "datasets" / "imgs"
    for rel, data in files.items():
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_bytes(data)
    return folder


def age(folder: Path, seconds: int = 3600) -> None:
    """Files written long ago (so their fingerprints are trusted, not racy)."""
    then = time.time_ns() - seconds * 10**9
    for path in folder.rglob("*"):
        if path.is_file():
            os.utime(path, ns=(then, then))


def changed(ws) -> dict:
    return {c.path: c.state for c in ws.status().changes}


def dvc_agrees(ws, out: str = "datasets/imgs") -> None:
    """DVC, asked directly, sees no uncommitted change and would write the same pointer."""
    proc = subprocess.run([DVC, "data", "status", "--granular", "--json"], cwd=ws.root, capture_output=True, text=True)
    assert '"uncommitted"' not in proc.stdout, proc.stdout
    before = (ws.root / f"{out}.dvc").read_text(), (ws.root / out).parent.joinpath(".gitignore").read_text()
    subprocess.run([DVC, "add", "-q", out], cwd=ws.root, check=True, capture_output=True)
    assert ((ws.root / f"{out}.dvc").read_text(), (ws.root / out).parent.joinpath(".gitignore").read_text()) == before


def committed(ws, files: dict) -> Path:
    folder = make_folder(ws, files)
    ws.commit("images")
    age(folder)
    assert ws.status().clean
    return folder


SAMPLE = {"a.txt": b"A" * 100, "b.txt": b"B" * 100, "sub/c.txt": b"c", "sub-x/d.txt": b"d", "sub.txt": b"e",
          "naïve é.txt": b"f"}


def test_status_and_commit_of_a_few_changes_agree_with_dvc(ws):
    folder = committed(ws, SAMPLE)
    (folder / "a.txt").write_bytes(b"Z" * 100)
    (folder / "sub" / "new.txt").write_bytes(b"new")
    (folder / "sub.txt").unlink()
    assert changed(ws) == {"datasets/imgs/a.txt": "modified", "datasets/imgs/sub/new.txt": "new",
                           "datasets/imgs/sub.txt": "deleted"}
    ws.commit("three changes")
    assert ws.status().clean
    dvc_agrees(ws)
    ws.checkout("HEAD~1")                      # the old version comes back whole
    assert (folder / "a.txt").read_bytes() == b"A" * 100 and (folder / "sub.txt").exists()
    assert ws.status().clean


def test_a_change_within_the_timestamp_granularity_is_seen(ws):
    folder = make_folder(ws, SAMPLE)
    ws.commit("images")                        # fingerprints taken right after the files were written
    path = folder / "a.txt"
    st = path.stat()
    with open(path, "r+b") as fh:              # same size, same inode, and the same mtime put back
        fh.write(b"Q" * 100)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert (path.stat().st_size, path.stat().st_ino, path.stat().st_mtime_ns) == (st.st_size, st.st_ino, st.st_mtime_ns)
    assert changed(ws) == {"datasets/imgs/a.txt": "modified"}


def test_a_file_dated_in_the_future_is_never_trusted(ws):
    folder = make_folder(ws, SAMPLE)
    future = time.time_ns() + HOUR_NS          # a clock skewed by an hour (a network share)
    os.utime(folder / "b.txt", ns=(future, future))
    ws.commit("images")
    assert ws.status().clean
    with open(folder / "b.txt", "r+b") as fh:
        fh.write(b"R" * 100)
    os.utime(folder / "b.txt", ns=(future, future))
    assert changed(ws) == {"datasets/imgs/b.txt": "modified"}


def test_files_swapped_or_replaced_by_rename_are_seen(ws):
    folder = committed(ws, SAMPLE)
    a, b = folder / "a.txt", folder / "b.txt"
    os.utime(b, ns=(a.stat().st_atime_ns, a.stat().st_mtime_ns))   # same size and mtime: only inodes differ
    ws.commit("same dates") if not ws.status().clean else None
    os.rename(a, folder / "tmp")
    os.rename(b, a)
    os.rename(folder / "tmp", b)
    assert changed(ws) == {"datasets/imgs/a.txt": "modified", "datasets/imgs/b.txt": "modified"}
    ws.commit("swapped")
    replacement = folder / "sub" / ".c.new"
    replacement.write_bytes(b"C")
    st = (folder / "sub" / "c.txt").stat()
    os.utime(replacement, ns=(st.st_atime_ns, st.st_mtime_ns))
    os.replace(replacement, folder / "sub" / "c.txt")   # an editor's save: same size and date, new inode
    assert changed(ws) == {"datasets/imgs/sub/c.txt": "modified"}
    dvc_agrees(ws) if ws.commit("replaced") else None


def test_lost_fingerprints_and_ignored_files_change_nothing(ws):
    folder = committed(ws, SAMPLE)
    shutil.rmtree(ws.root / ".nbversion" / "tmp")          # a cache: losing it costs one re-hash
    (folder / "labels.cache").write_bytes(b"ultralytics")  # .dvcignore: *.cache
    assert ws.status().clean
    (folder / "b.txt").write_bytes(b"b")
    assert changed(ws) == {"datasets/imgs/b.txt": "modified"}


def test_dvcignore_rules_beyond_bare_names_are_left_to_dvc(ws):
    with open(ws.root / ".dvcignore", "a") as fh:
        fh.write("/datasets/imgs/sub/\n")                # anchored: DVC's own matcher decides
    folder = make_folder(ws, SAMPLE)
    ws.commit("images")
    (folder / "sub" / "c.txt").write_bytes(b"ignored by DVC")
    (folder / "a.txt").write_bytes(b"A")
    assert changed(ws) == {"datasets/imgs/a.txt": "modified"}
    ws.commit("one")
    assert ws.status().clean
    assert "sub/c.txt" not in git(ws.root, "show", "HEAD:datasets/imgs.dvc")


# --- an edited dataset: only the changed files are checked, and a remembered verdict never hides a problem

def test_an_edited_dataset_is_checked_again_where_it_changed(ws, demo_data):
    import pytest
    from nbversion.errors import InvalidInput

    ws.dataset_add("shapes", demo_data)
    dvc_agrees(ws, "datasets/shapes")          # the import wrote what `dvc add` writes
    folder = ws.root / "datasets" / "shapes"
    age(folder)
    image = sorted((folder / "images" / "train").iterdir())[0]
    image.write_bytes(b"not a png at all")
    with pytest.raises(InvalidInput, match=f"images/train/{image.name}: image does not decode"):
        ws.commit("broken image")
    ws.checkout("HEAD", paths=["datasets/shapes"], force=True)
    assert ws.status().clean

    labels = sorted((folder / "labels" / "train").glob("*.txt"))
    top = max(int(line.split()[0]) for p in labels for line in p.read_text().splitlines() if line.strip())
    data = folder / "data.yaml"
    data.write_text("\n".join(line for line in data.read_text().splitlines() if not line.startswith(f"  {top}:")) + "\n")
    with pytest.raises(InvalidInput, match="class"):   # labels parsed fine before, with one class more
        ws.commit("one class less")
    ws.checkout("HEAD", paths=["datasets/shapes"], force=True)

    label = labels[0]
    label.write_text(label.read_text() + "0 0.5 0.5 0.2 0.2\n")
    ws.commit("one more box")
    counts = ws.dataset_show("shapes").meta["class_instances"]
    train_val = sorted((folder / "labels").rglob("*.txt"))
    assert sum(counts.values()) == sum(1 for p in train_val for line in p.read_text().splitlines() if line.strip())


@pytest.mark.parametrize("look", ["one stat per object", "a listing per shard"])
def test_a_commit_stores_objects_the_cache_lost_even_for_unchanged_files(ws, monkeypatch, look):
    import hashlib
    from nbversion.core.backends import dvc_cache

    if look == "a listing per shard":   # what a folder of thousands of files gets
        monkeypatch.setattr(dvc_cache, "LIST_FROM", 1)
    folder = committed(ws, SAMPLE)
    lost = dvc_cache.object_path(ws.root, hashlib.md5(SAMPLE["b.txt"]).hexdigest())
    lost.unlink()                                  # corrupt input: a plain `dvc gc` gone wrong
    (folder / "a.txt").write_bytes(b"changed")
    ws.commit("a changed, b did not")
    assert lost.read_bytes() == SAMPLE["b.txt"]    # stored again from the workspace file
    assert ws.verify().problems == []
