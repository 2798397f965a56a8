"""Issue 12 part 1: working-tree files are never hard links into the DVC cache (unless opted in).

Every flow edits data in place the way a user does (append, truncate, `open(path, "wb")`) after a
verb stored it, then checks the stored version is intact: it checks out byte-identical and
`verify` is clean. Link counts are asserted, not assumed.
"""
from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import uuid
from pathlib import Path

import pytest

from conftest import cli, cli_json, git, snapshot

ONNX = b"\x08\x07\x12\x07pytorch\x1a\x032.1:\x0c\n\x04onnx" + bytes(40)


def files_under(folder: Path) -> dict:
    return {p.relative_to(folder).as_posix(): p for p in sorted(folder.rglob("*")) if p.is_file()}


def contents(folder: Path) -> dict:
    return {rel: p.read_bytes() for rel, p in files_under(folder).items()}


def link_counts(folder: Path) -> set:
    return {p.stat().st_nlink for p in files_under(folder).values()}


def edit_three_ways(paths: list, rewrite: bytes = b"rewritten in place\n") -> None:
    """The edits the issue saw destroy stored versions: append, truncate, rewrite."""
    with open(paths[0], "ab") as fh:
        fh.write(b"0 0.5 0.5 0.1 0.1\n")
    os.truncate(paths[1], 0)
    with open(paths[2], "wb") as fh:
        fh.write(rewrite)


def verify_problems(cwd=None) -> list:
    proc = cli("verify", "--json", cwd=cwd)
    return json.loads(proc.stdout)["problems"]


def label_files(root: Path, name: str) -> list:
    return sorted((root / "datasets" / name / "labels").rglob("*.txt"))[:3]


# --- copy (default) ------------------------------------------------------------------------

def test_new_workspace_copies_and_tells_dvc_the_same(ws):
    config = (ws.root / ".nbversion" / "config.toml").read_text()
    assert 'link = "copy"' in config
    dvc_config = (ws.root / ".dvc" / "config").read_text()
    assert "reflink,copy" in dvc_config and "hardlink" not in dvc_config


def test_edit_in_place_after_dataset_add_keeps_the_stored_version(ws, demo_data):
    cli("dataset", "add", "shapes", demo_data, check=0)
    folder = ws.root / "datasets" / "shapes"
    assert link_counts(folder) == {1}
    assert all(p.stat().st_mode & stat.S_IWUSR for p in files_under(folder).values())
    before = contents(folder)
    edit_three_ways(label_files(ws.root, "shapes"))
    # the cache still holds every original byte: discarding the edits restores them exactly
    cli("checkout", "HEAD", "datasets/shapes", "--force", check=0)
    assert contents(folder) == before
    assert link_counts(folder) == {1}
    assert verify_problems() == []


def test_commit_edited_dataset_then_previous_version_checks_out_identical(ws, demo_data):
    cli("dataset", "add", "shapes", demo_data, check=0)
    folder = ws.root / "datasets" / "shapes"
    before = contents(folder)
    edit_three_ways(label_files(ws.root, "shapes"), rewrite=b"0 0.4 0.4 0.2 0.2\n")   # labels a commit accepts
    cli("commit", "-m", "fix labels", check=0)
    edited = contents(folder)
    assert link_counts(folder) == {1}
    edit_three_ways(label_files(ws.root, "shapes"))    # and again, over the committed edit
    cli("checkout", "HEAD~1", "datasets/shapes", "--force", check=0)
    assert contents(folder) == before
    cli("checkout", "HEAD", "datasets/shapes", "--force", check=0)
    assert contents(folder) == edited
    assert verify_problems() == []


def test_commit_of_a_new_data_folder_leaves_private_files(ws):
    folder = ws.root / "datasets" / "raw"
    folder.mkdir(parents=True)
    for n in range(3):
        (folder / f"part{n}.csv").write_bytes(b"a,b\n" + os.urandom(2000))
    before = contents(folder)
    cli("commit", "-m", "raw data", check=0)
    assert link_counts(folder) == {1}
    edit_three_ways(sorted(folder.iterdir()))
    cli("commit", "-m", "edited", check=0)
    cli("checkout", "HEAD~1", "datasets/raw", "--force", check=0)
    assert contents(folder) == before
    assert verify_problems() == []


def test_resaving_weights_after_model_add_and_register_keeps_both_versions(ws, tmp_path):
    weights = tmp_path / "det.onnx"
    weights.write_bytes(ONNX)
    cli("model", "add", "det", weights, check=0)
    model_file = ws.root / "models" / "det" / "det.onnx"
    assert model_file.stat().st_nlink == 1
    cli("register", "det", "--version", "1.0.0", "--from", weights, check=0)
    registered = next((ws.root / "registry" / "det" / "v1.0.0" / "files").iterdir())
    assert registered.stat().st_nlink == 1
    for path in (model_file, registered):           # `torch.save(model, path)` over the file
        with open(path, "wb") as fh:
            fh.write(ONNX + b"retrained")
    cli("checkout", "HEAD", "models/det", "registry/det/v1.0.0/files", "--force", check=0)
    assert model_file.read_bytes() == ONNX and registered.read_bytes() == ONNX
    assert verify_problems() == []


def test_big_single_file_is_a_copy_and_leaves_no_orphan(ws):
    big = ws.root / "models" / "big"
    big.mkdir(parents=True)
    data = os.urandom(1 << 20) * 65                  # 65 MB: the size the old code hard-linked
    (big / "weights.bin").write_bytes(data)
    cli("commit", "-m", "big weights", check=0)
    assert (big / "weights.bin").stat().st_nlink == 1
    cache = ws.root / ".dvc" / "cache" / "files" / "md5"
    assert not (cache / "files").exists()            # no second copy under files/md5/files/md5
    with open(big / "weights.bin", "r+b") as fh:
        fh.write(b"edited")
    cli("checkout", "HEAD", "models/big", "--force", check=0)
    assert (big / "weights.bin").read_bytes() == data


def test_cache_dir_set_with_dvc_is_where_objects_go(ws, tmp_path):
    """`dvc cache dir` moves the cache: objects go there (once), nothing under .dvc/cache."""
    import sys

    shared = tmp_path / "shared-cache"
    subprocess.run([str(Path(sys.executable).with_name("dvc")), "cache", "dir", str(shared)],
                   cwd=ws.root, check=True, capture_output=True)
    cli("commit", "-m", "cache elsewhere", check=0)
    folder = ws.root / "models" / "big"
    folder.mkdir(parents=True)
    data = os.urandom(1 << 20) * 65
    (folder / "weights.bin").write_bytes(data)
    cli("commit", "-m", "big weights", check=0)
    assert (folder / "weights.bin").stat().st_nlink == 1
    objects = [p for p in (shared / "files" / "md5").rglob("*") if p.is_file() and p.suffix != ".dir"]
    assert sum(p.stat().st_size for p in objects) == len(data)    # one copy, no orphan
    assert not (ws.root / ".dvc" / "cache" / "files").exists()
    with open(folder / "weights.bin", "r+b") as fh:
        fh.write(b"edited")
    cli("checkout", "HEAD", "models/big", "--force", check=0)
    assert (folder / "weights.bin").read_bytes() == data
    assert verify_problems() == []


# --- hardlink (opt-in) ----------------------------------------------------------------------

def set_link(root: Path, mode: str) -> None:
    path = root / ".nbversion" / "config.toml"
    text = path.read_text()
    path.write_text(text.replace('link = "copy"', f'link = "{mode}"').replace('link = "hardlink"', f'link = "{mode}"'))


def test_hardlink_opt_in_is_read_only_and_unprotect_keeps_the_stored_version(ws, demo_data):
    set_link(ws.root, "hardlink")
    cli("commit", "-m", "hard links, please", check=0)
    assert "hardlink" in (ws.root / ".dvc" / "config").read_text()     # core.link owns DVC's setting
    cli("dataset", "add", "shapes", demo_data, check=0)
    folder = ws.root / "datasets" / "shapes"
    assert link_counts(folder) == {2}
    assert not any(p.stat().st_mode & 0o222 for p in files_under(folder).values())
    before = contents(folder)
    label = label_files(ws.root, "shapes")[0]
    proc = cli("unprotect", label.relative_to(ws.root), check=0)
    assert "1 file(s)" in proc.stdout
    assert label.stat().st_nlink == 1 and label.stat().st_mode & stat.S_IWUSR
    assert "nothing changed" in cli("status", check=0).stdout        # same bytes, nothing to commit
    with open(label, "ab") as fh:
        fh.write(b"0 0.5 0.5 0.1 0.1\n")
    cli("checkout", "HEAD", "datasets/shapes", "--force", check=0)
    assert contents(folder) == before
    assert verify_problems() == []


def test_scratch_of_a_killed_add_goes_with_the_next_add(ws):
    folder = ws.root / "datasets" / "raw"
    folder.mkdir(parents=True)
    for n in range(3):
        (folder / f"part{n}.csv").write_bytes(b"a,b\n" + os.urandom(2000))
    killed = cli("commit", "-m", "raw", env=dict(os.environ, NBVERSION_TEST_KILL_AT="store-before-cleanup"))
    assert killed.returncode == -9
    assert "orphan objects" in {p["kind"] for p in verify_problems()}
    cli("commit", "-m", "raw", check=0)
    assert verify_problems() == [] and link_counts(folder) == {1}


def test_a_rerun_import_clears_the_scratch_even_when_every_object_is_stored(ws, demo_data):
    # killed after its last object was stored but before its scratch went: the rerun finds
    # nothing left to store, and must still leave a workspace verify accepts
    killed = cli("dataset", "add", "shapes", demo_data,
                 env=dict(os.environ, NBVERSION_TEST_KILL_AT="store-before-cleanup"))
    assert killed.returncode == -9
    assert "orphan objects" in {p["kind"] for p in verify_problems()}
    cli("dataset", "add", "shapes", demo_data, check=0)
    assert verify_problems() == [] and cli_json("status")["changes"] == []


def test_unprotect_touches_only_tracked_data(ws, demo_data):
    cli("dataset", "add", "shapes", demo_data, check=0)
    for path in (".", "", ".git", ".dvc/cache", ".nbversion"):
        before = snapshot(ws.root)
        proc = cli("unprotect", path, check=1)
        assert "not tracked data" in proc.stderr and "Traceback" not in proc.stderr
        assert snapshot(ws.root) == before
    # a folder holding tracked data is fine: its files are private copies already (core.link = copy)
    done = json.loads(cli("unprotect", "datasets", "--json", check=0).stdout)
    assert done["paths"] == [] and done["already"] == len(files_under(ws.root / "datasets" / "shapes"))


def test_unprotect_of_a_missing_path_is_an_error(ws):
    proc = cli("unprotect", "datasets/nothing", check=1)
    assert "error:" in proc.stderr and "no such file" in proc.stderr and "Traceback" not in proc.stderr


def test_verify_finds_and_repairs_a_hard_linked_workspace(ws, demo_data):
    """An old workspace: data linked into the cache, `.dvc/config` allowing hard links."""
    set_link(ws.root, "hardlink")
    cli("commit", "-m", "old-style workspace", check=0)
    cli("dataset", "add", "shapes", demo_data, check=0)
    folder = ws.root / "datasets" / "shapes"
    before = contents(folder)
    set_link(ws.root, "copy")                          # the new default, as after an upgrade
    git(ws.root, "commit", "-qam", "upgrade: core.link = copy")
    proc = cli("verify", check=1)
    assert "an edit in place would change the stored version" in proc.stdout
    kinds = {p["kind"] for p in verify_problems()}
    assert kinds == {"hard link", "link setting"}
    proc = cli("verify", "--repair", check=0)
    assert link_counts(folder) == {1}
    assert "reflink,copy" in (ws.root / ".dvc" / "config").read_text()
    assert git(ws.root, "status", "--porcelain") == ""              # the repair was committed
    assert "nothing changed" in cli("status", check=0).stdout
    edit_three_ways(label_files(ws.root, "shapes"))
    cli("checkout", "HEAD", "datasets/shapes", "--force", check=0)
    assert contents(folder) == before
    assert verify_problems() == []


def test_orphans_under_files_md5_files_md5_are_reported_and_removed(ws):
    """What an older nbversion left for every big commit (it appended files/md5 twice)."""
    nested = ws.root / ".dvc" / "cache" / "files" / "md5" / "files" / "md5" / "ab"
    nested.mkdir(parents=True)
    (nested / ("c" * 30)).write_bytes(os.urandom(4096))
    problems = verify_problems()
    assert [p["kind"] for p in problems] == ["orphan objects"]
    proc = cli("gc", "--dry-run", check=0)
    assert "(orphan objects)" in proc.stdout and (nested / ("c" * 30)).exists()
    cli("gc", check=0)
    assert not (ws.root / ".dvc" / "cache" / "files" / "md5" / "files").exists()
    nested.mkdir(parents=True)
    (nested / ("d" * 30)).write_bytes(b"x")
    cli("verify", "--repair", check=0)
    assert not (ws.root / ".dvc" / "cache" / "files" / "md5" / "files").exists()


def test_invalid_link_setting_is_refused_before_anything_is_written(ws, tmp_path):
    set_link(ws.root, "symlink")
    weights = tmp_path / "det.onnx"
    weights.write_bytes(ONNX)
    head = git(ws.root, "rev-parse", "HEAD")
    proc = cli("model", "add", "det", weights, check=1)
    assert "link" in proc.stderr and "symlink" in proc.stderr and "Traceback" not in proc.stderr
    assert git(ws.root, "rev-parse", "HEAD") == head and not (ws.root / "models" / "det").exists()


# --- reflinks, for real, on XFS ---------------------------------------------------------------

@pytest.fixture
def xfs(tmp_path):
    """A loop-mounted XFS with reflink=1 (needs root and xfsprogs, both present in CI)."""
    if os.geteuid() != 0 or not shutil.which("mkfs.xfs"):
        pytest.fail("the reflink test needs root and mkfs.xfs (apt-get install xfsprogs)")
    image, mount = tmp_path / "xfs.img", tmp_path / f"xfs-{uuid.uuid4().hex[:6]}"
    mount.mkdir()
    subprocess.run(["truncate", "-s", "600M", str(image)], check=True)
    subprocess.run(["mkfs.xfs", "-q", "-m", "reflink=1", str(image)], check=True)
    subprocess.run(["mount", "-o", "loop", str(image), str(mount)], check=True)
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)
        image.unlink(missing_ok=True)


def shared_extents(path: Path) -> bool:
    out = subprocess.run(["filefrag", "-v", str(path)], capture_output=True, text=True, check=True).stdout
    return "shared" in out


def test_reflink_filesystem_shares_extents_but_not_the_inode(xfs, monkeypatch):
    import nbversion as nbv

    root = xfs / "project"
    nbv.init(root)
    monkeypatch.chdir(root)
    big = root / "models" / "big"
    big.mkdir(parents=True)
    data = os.urandom(1 << 20) * 64
    (big / "weights.bin").write_bytes(data)
    free_before = shutil.disk_usage(xfs).free
    cli("commit", "-m", "big weights", check=0)
    path = big / "weights.bin"
    assert path.stat().st_nlink == 1
    assert shared_extents(path)                                   # the cache object is a reflink
    assert free_before - shutil.disk_usage(xfs).free < 16 << 20   # 64 MB stored without 64 MB more disk
    with open(path, "r+b") as fh:                                 # copy-on-write: the object keeps its bytes
        fh.write(b"edited")
    cli("checkout", "HEAD", "models/big", "--force", check=0)
    assert path.read_bytes() == data and path.stat().st_nlink == 1
    assert verify_problems() == []


def test_training_exports_and_weights_are_private_copies(ws, demo_data):
    """Training's final commit stores weights the same way (`YOLO.save()` over best.pt is safe),
    and an older dataset version exported into the run folder is a copy, not links into the cache."""
    from nbversion.demo import edit_labels

    ws.dataset_add("demo", demo_data)
    first = contents(ws.root / "datasets" / "demo")
    edit_labels(ws.root / "datasets" / "demo")
    ws.dataset_add("demo", ws.root / "datasets" / "demo")
    run = ws.train("demo@~1", "yolov8n.yaml", epochs=1, imgsz=64, batch=4, device="cpu", wait=True,
                   extra={"nbs": 4, "warmup_epochs": 0, "mosaic": 0, "plots": False})
    exported = ws.root / "runs" / run.run_id / "data"
    assert files_under(exported) and link_counts(exported) == {1}
    weights = ws.root / "runs" / run.run_id / "weights"
    assert link_counts(weights) == {1}
    assert link_counts(ws.root / "datasets" / "demo") == {1}
    edit_three_ways(sorted((exported / "labels").rglob("*.txt"))[:3])   # an edit in the export...
    cli("checkout", "HEAD~2", "datasets/demo", "--force", check=0)       # ...never reaches that version
    assert contents(ws.root / "datasets" / "demo") == first
    cli("checkout", "HEAD", "datasets/demo", "--force", check=0)
    before = contents(weights)
    with open(weights / "best.pt", "wb") as fh:
        fh.write(b"re-saved over the committed weights")
    os.truncate(weights / "last.pt", 10)
    cli("checkout", "HEAD", f"runs/{run.run_id}/weights", "--force", check=0)
    assert contents(weights) == before
    assert verify_problems() == []


def test_verify_repairs_a_run_export_hard_linked_into_the_cache(ws, demo_data):
    """Older versions exported a dataset version into runs/<id>/data/ as hard links: found, repaired."""
    from nbversion.demo import edit_labels

    set_link(ws.root, "hardlink")
    cli("commit", "-m", "old-style workspace", check=0)
    ws.dataset_add("demo", demo_data)
    cli("unprotect", "datasets/demo", check=0)
    edit_labels(ws.root / "datasets" / "demo")
    ws.dataset_add("demo", ws.root / "datasets" / "demo")
    run = ws.train("demo@~1", "yolov8n.yaml", epochs=1, imgsz=64, batch=4, device="cpu", wait=True,
                   extra={"nbs": 4, "warmup_epochs": 0, "mosaic": 0, "plots": False})
    exported = ws.root / "runs" / run.run_id / "data"
    assert 2 in link_counts(exported)
    set_link(ws.root, "copy")
    git(ws.root, "commit", "-qam", "upgrade: core.link = copy")
    linked = {p["what"] for p in verify_problems() if p["kind"] == "hard link"}
    assert any(w.startswith(f"runs/{run.run_id}/data/") for w in linked)
    assert any(w.startswith("datasets/demo/") for w in linked)
    cli("verify", "--repair", check=0)
    assert link_counts(exported) == {1} and link_counts(ws.root / "datasets" / "demo") == {1}
    assert verify_problems() == []
