"""Trust across verbs (issue 12 §2, §4): `verify` agrees with `register`; `resolve` serves only
what was registered and never writes into the working tree; `gc` keeps lineage; `checkout`
neither overwrites untracked files nor starts what it cannot finish. All state is made by verbs.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest

import nbversion as nbv
from conftest import cli, git, snapshot
from nbversion.core.registry import served
from nbversion.errors import DamagedFile, IntegrityError, NotFound, UncommittedChanges

ONNX = b"\x08\x07\x12\x07pytorch\x1a\x032.1:\x0c\n\x04onnx" + bytes(40)


def weights_file(tmp_path: Path, name="best.pt", content=None) -> Path:
    path = tmp_path / "outside" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content if content is not None else bytes(range(256)) * 40)
    return path


def plain_folder(tmp_path: Path, name: str, seed: int) -> Path:
    folder = tmp_path / "sources" / f"{name}-{seed}"
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(3):
        (folder / f"part{i}.txt").write_text(f"{name} {seed} {i}\n" * 40)
    return folder


def all_good(root=None) -> None:
    proc = cli("verify", cwd=root, check=0)
    assert "all good" in proc.stdout, proc.stdout


# --- verify agrees with register, promote, backup restore and clone ----------------------------

def test_register_then_verify_is_clean_from_the_cli(ws, tmp_path):
    best = weights_file(tmp_path)
    cli("register", "m", "--version", "1.0.0", "--from", best, check=0)
    all_good()
    manifest = json.loads((ws.root / "registry/m/v1.0.0/manifest.json").read_text())
    assert manifest["files"]["files/best.pt"]["md5"] == hashlib.md5(best.read_bytes()).hexdigest()


def test_verify_is_clean_after_register_promote_backup_restore_and_clone(ws, tmp_path, demo_data):
    ws.dataset_add("shapes", demo_data, tags=["gold"])
    ws.model_add("det", weights_file(tmp_path, "det.onnx", ONNX), dataset="shapes@gold")
    ws.register("det", version="1.0.0", source="det")
    ws.register("det", bump="minor", source=str(weights_file(tmp_path, "b.pt", b"second weights")))
    ws.promote("det@v1.0.0")
    ws.promote("det@v1.1.0", stage="staging")
    all_good()

    cli("backup", "create", "--out", tmp_path / "b.tar.gz", check=0)
    cli("backup", "restore", tmp_path / "b.tar.gz", tmp_path / "restored", check=0)
    all_good(tmp_path / "restored")

    ws.remote_add("team", str(tmp_path / "remote"))
    ws.push()
    cli("clone", tmp_path / "remote", tmp_path / "clone", check=0)
    all_good(tmp_path / "clone")
    clone = nbv.open(tmp_path / "clone")
    assert Path(clone.resolve("det@champion").path).read_bytes() == ONNX


# --- resolve / load_model check what they serve ----------------------------------------------

@pytest.mark.parametrize("edit", ["append", "truncate", "rewrite"])
def test_resolve_and_load_model_refuse_an_edited_registered_file(ws, tmp_path, edit):
    ws.register("m", version="1.0.0", source=str(weights_file(tmp_path, "m.onnx", ONNX)))
    served_path = Path(ws.resolve("m@v1.0.0").path)
    assert served_path == ws.root / "registry/m/v1.0.0/files/m.onnx"
    if edit == "append":
        with open(served_path, "ab") as fh:
            fh.write(b"tail")
    elif edit == "truncate":
        with open(served_path, "r+b") as fh:
            fh.truncate(10)
    else:
        with open(served_path, "wb") as fh:   # a re-save over the registered file
            fh.write(ONNX[::-1])
    with pytest.raises(IntegrityError) as err:
        ws.resolve("m@v1.0.0")
    assert "registry/m/v1.0.0/files/m.onnx was modified" in err.value.message and err.value.hint
    with pytest.raises(IntegrityError):
        nbv.load_model("m@v1.0.0")
    proc = cli("resolve", "m@v1.0.0", check=1)
    assert "error:" in proc.stderr + proc.stdout and "Traceback" not in proc.stderr
    assert "hint:" in proc.stderr + proc.stdout

    cli("checkout", "HEAD", "registry/m/v1.0.0", "--force", check=0)
    assert Path(ws.resolve("m@v1.0.0").path).read_bytes() == ONNX
    all_good()


def test_resolve_hashes_only_when_the_file_changed(ws, tmp_path, monkeypatch):
    ws.register("m", version="1.0.0", source=str(weights_file(tmp_path)))
    stored = Path(ws.resolve("m@v1.0.0").path)
    hour_ago = stored.stat().st_mtime_ns - 3600 * 10**9   # written long ago: a file written in the
    os.utime(stored, ns=(hour_ago, hour_ago))             # last 2 s is hashed again (racy, see file_prints)
    ws.resolve("m@v1.0.0")                       # first time since: hashed once, fingerprint recorded
    hashed = []
    real = served._md5
    monkeypatch.setattr(served, "_md5", lambda path: hashed.append(path) or real(path))
    for _ in range(3):
        ws.resolve("m@v1.0.0")
    assert hashed == []
    path = Path(ws.resolve("m@v1.0.0").path)
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))   # a new mtime: hash again, same bytes
    ws.resolve("m@v1.0.0")
    assert len(hashed) == 1


def test_resolve_from_another_branch_writes_nothing_a_commit_would_pick_up(ws, tmp_path):
    first = git(ws.root, "rev-parse", "HEAD").strip()
    ws.register("m", version="1.0.0", source=str(weights_file(tmp_path, "m.onnx", ONNX)))
    ws.checkout(first)                            # an older commit: the version is not in this tree
    assert not (ws.root / "registry/m").exists()
    before = snapshot(ws.root)

    result = ws.resolve("m@v1.0.0")
    path = Path(result.path)
    assert path == ws.root / ".nbversion/resolved/m/v1.0.0/files/m.onnx"   # original name kept
    assert path.read_bytes() == ONNX
    with pytest.raises(DamagedFile, match="m.onnx of m@v1.0.0 is not an ONNX model onnxruntime can run"):
        nbv.load_model("m@v1.0.0")                # it loads the served file (these bytes are no real ONNX)
    assert snapshot(ws.root) == before
    assert ws.status().clean
    assert "nothing to commit" in cli("commit", "-m", "after resolve", check=1).stderr

    path.write_bytes(b"spoiled")                 # our private copy: replaced, never served spoiled
    assert Path(ws.resolve("m@v1.0.0").path).read_bytes() == ONNX


def test_resolve_of_a_version_whose_weights_are_nowhere_fails_cleanly(ws, tmp_path, demo_data):
    first = git(ws.root, "rev-parse", "HEAD").strip()
    ws.register("m", version="1.0.0", source=str(weights_file(tmp_path)))
    ws.checkout(first)
    for obj in (ws.root / ".dvc/cache").rglob("*"):
        if obj.is_file():
            obj.chmod(0o644)
            obj.unlink()
    before = snapshot(ws.root)
    with pytest.raises(NotFound) as err:
        ws.resolve("m@v1.0.0")
    assert "not in the local cache" in err.value.message and err.value.hint
    assert snapshot(ws.root) == before
    assert not list((ws.root / ".nbversion/resolved").rglob("*.pt"))


# --- gc keeps lineage ---------------------------------------------------------------------------

def test_gc_keeps_the_dataset_version_a_registered_model_was_trained_on(ws, tmp_path):
    ws.dataset_add("shapes", plain_folder(tmp_path, "shapes", 1))
    trained_on = git(ws.root, "rev-parse", "HEAD").strip()
    ws.model_add("det", weights_file(tmp_path, "det.onnx", ONNX), dataset="shapes")
    ws.register("det", version="1.0.0", source="det")
    ws.promote("det@v1.0.0")
    ws.dataset_add("other", plain_folder(tmp_path, "other", 1))
    other_v1 = git(ws.root, "rev-parse", "HEAD").strip()
    for seed in (2, 3):                          # newer versions of both, neither tagged
        ws.dataset_add("shapes", plain_folder(tmp_path, "shapes", seed))
        ws.dataset_add("other", plain_folder(tmp_path, "other", seed))

    result = ws.gc(keep_last=1, older_than=0)
    removed = {row["version"] for row in result.removed}
    assert f"datasets/other@{other_v1[:8]}" in removed          # the policy did remove old versions
    assert f"datasets/shapes@{trained_on[:8]}" not in removed  # but not det's training data

    ws.checkout(trained_on, ["datasets/shapes"])
    for i in range(3):
        assert (ws.root / f"datasets/shapes/part{i}.txt").read_text() == f"shapes 1 {i}\n" * 40
    ws.commit("back to the data det was trained on")
    all_good()
    with pytest.raises(NotFound):               # the control: an old version outside lineage is gone
        ws.checkout(other_v1, ["datasets/other"])


# --- checkout guards ----------------------------------------------------------------------------

def test_checkout_path_refuses_to_overwrite_an_untracked_file(ws):
    (ws.root / "notes.txt").write_text("committed\n")
    ws.commit("notes", ["notes.txt"])
    git(ws.root, "rm", "-q", "notes.txt")
    ws.commit("drop notes")
    (ws.root / "notes.txt").write_text("my new notes, never committed\n")
    assert [(c.state, c.path) for c in ws.status().changes] == [("new", "notes.txt")]
    before = snapshot(ws.root)

    proc = cli("checkout", "HEAD~1", "notes.txt", check=1)
    assert "notes.txt" in proc.stderr and "--force" in proc.stderr and "Traceback" not in proc.stderr
    with pytest.raises(UncommittedChanges):
        ws.checkout("HEAD~1", ["notes.txt"])
    assert snapshot(ws.root) == before
    assert (ws.root / "notes.txt").read_text() == "my new notes, never committed\n"

    cli("checkout", "HEAD~1", "notes.txt", "--force", check=0)
    assert (ws.root / "notes.txt").read_text() == "committed\n"


def test_checkout_of_data_gone_from_the_cache_fails_before_touching_anything(ws, tmp_path):
    ws.dataset_add("coco", plain_folder(tmp_path, "coco", 1))
    v1 = git(ws.root, "rev-parse", "HEAD").strip()
    ws.dataset_add("coco", plain_folder(tmp_path, "coco", 2))
    ws.gc(keep_last=1, older_than=0)
    before = snapshot(ws.root)
    for args in (["checkout", v1, "datasets/coco"], ["checkout", v1]):
        proc = cli(*args, check=1)
        assert "not available" in proc.stderr and "nothing was changed" in proc.stderr, proc.stderr
        assert "Traceback" not in proc.stderr
        assert snapshot(ws.root) == before
    assert (ws.root / "datasets/coco/part0.txt").read_text().startswith("coco 2 0")


def test_checkout_fetches_missing_data_from_the_default_remote_first(ws, tmp_path):
    ws.remote_add("team", str(tmp_path / "remote"))
    ws.dataset_add("coco", plain_folder(tmp_path, "coco", 1))
    v1 = git(ws.root, "rev-parse", "HEAD").strip()
    ws.push()
    ws.dataset_add("coco", plain_folder(tmp_path, "coco", 2))
    ws.gc(keep_last=1, older_than=0)              # local cache only: the remote still has v1
    ws.checkout(v1, ["datasets/coco"])
    assert (ws.root / "datasets/coco/part0.txt").read_text().startswith("coco 1 0")


def test_a_crafted_manifest_cannot_make_resolve_write_outside_its_folder(ws, tmp_path):
    """The attack: a pushed version whose manifest names `../../x`; resolve refuses it."""
    first = git(ws.root, "rev-parse", "HEAD").strip()
    ws.register("m", version="1.0.0", source=str(weights_file(tmp_path)))
    git(ws.root, "tag", "-d", "m@v1.0.0")
    path = ws.root / "registry/m/v1.0.0/manifest.json"
    manifest = json.loads(path.read_text())
    manifest["files"] = {"../../../../evil.pt": manifest["files"]["files/best.pt"]}
    # the attack: the manifest of a real registration rewritten by hand and re-tagged
    path.write_text(json.dumps(manifest))
    git(ws.root, "commit", "-qam", "crafted")
    git(ws.root, "tag", "-a", "m@v1.0.0", "-m", "Registering artifact m version v1.0.0")
    ws.checkout(first)
    with pytest.raises(IntegrityError, match="unsafe file name"):
        ws.resolve("m@v1.0.0")
    assert not list(tmp_path.rglob("evil.pt"))
