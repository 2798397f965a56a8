"""Workspace verbs through the Python API, on real git + DVC."""
import json
import os
from pathlib import Path

import pytest

import nbversion as nbv
from nbversion.core.audit import chain as audit
from nbversion.errors import (NbversionError, NotAWorkspace, NotFound, NothingToCommit,
                              UncommittedChanges)

from conftest import USER, git, snapshot


def test_init_creates_workspace_with_one_commit(ws):
    root = ws.root
    for name in ("config.toml", "users.toml", "rules.toml", "audit.jsonl"):
        assert (root / ".nbversion" / name).exists(), name
    assert (root / ".dvc").is_dir()
    assert "*.cache" in (root / ".dvcignore").read_text()
    assert git(root, "rev-list", "--count", "HEAD").strip() == "1"
    assert git(root, "status", "--porcelain") == ""
    assert f'"{USER}" = "admin"' in (root / ".nbversion" / "users.toml").read_text()


def test_init_twice_says_it_exists(ws):
    again = nbv.init(ws.root)
    from nbversion.core.repo.init import init
    result = init(ws.root)
    assert not result.created and "already" in result.summary()
    assert git(again.root, "rev-list", "--count", "HEAD").strip() == "1"


def test_init_inside_existing_repo_keeps_history_and_staged_work(tmp_path):
    root = tmp_path / "existing"
    root.mkdir()
    git(root, "init", "-q")
    (root / "train.py").write_text("print('hi')\n")
    git(root, "add", "train.py")
    git(root, "commit", "-qm", "user's own commit")
    (root / "wip.py").write_text("x = 1\n")
    git(root, "add", "wip.py")          # staged by the user, not ours to commit
    nbv.init(root)
    log = git(root, "log", "--format=%s")
    assert "user's own commit" in log and "initialise" in log
    assert "A  wip.py" in git(root, "status", "--porcelain")
    assert "wip.py" not in git(root, "show", "--name-only", "HEAD")


def test_commit_routes_data_to_dvc_and_code_to_git(ws, demo_data):
    import shutil
    shutil.copytree(demo_data, ws.root / "datasets" / "shapes")
    (ws.root / "train.py").write_text("print('train')\n")
    (ws.root / "big.bin").write_bytes(os.urandom(1_200_000))
    result = ws.commit("data and code")
    assert sorted(result.dvc_paths) == ["big.bin", "datasets/shapes"]
    assert result.git_paths == ["datasets/shapes.meta.json", "train.py"]   # a YOLO folder is a dataset: its metadata
    tracked = git(ws.root, "ls-files").split()
    assert "datasets/shapes.dvc" in tracked and "big.bin.dvc" in tracked and "train.py" in tracked
    assert not any(p.startswith("datasets/shapes/") for p in tracked)
    assert ws.status().clean


def test_commit_and_checkout_round_trip_byte_for_byte(ws):
    data = ws.root / "datasets" / "blob"
    data.mkdir(parents=True)
    first = os.urandom(300_000)
    (data / "weights.bin").write_bytes(first)
    (data / "sub").mkdir()
    (data / "sub" / "a.txt").write_text("one\n")
    ws.commit("v1")
    second = os.urandom(300_000)
    (data / "weights.bin").unlink()
    (data / "weights.bin").write_bytes(second)
    (data / "sub" / "b.txt").write_text("two\n")
    ws.commit("v2")
    ws.checkout("HEAD~1")
    assert (data / "weights.bin").read_bytes() == first
    assert not (data / "sub" / "b.txt").exists()
    assert ws.status().clean
    ws.checkout("main")
    assert (data / "weights.bin").read_bytes() == second
    assert (data / "sub" / "b.txt").read_text() == "two\n"


def test_checkout_paths_restores_only_those_as_a_change(ws):
    (ws.root / "notes.md").write_text("v1\n")
    (ws.root / "other.md").write_text("a\n")
    ws.commit("v1")
    (ws.root / "notes.md").write_text("v2\n")
    (ws.root / "other.md").write_text("b\n")
    ws.commit("v2")
    result = ws.checkout("HEAD~1", ["notes.md"])
    assert (ws.root / "notes.md").read_text() == "v1\n"
    assert (ws.root / "other.md").read_text() == "b\n"
    assert result.branch == "main"
    assert [c.path for c in ws.status().changes] == ["notes.md"]


def test_status_reports_new_modified_deleted_for_git_and_dvc(ws, demo_data):
    import shutil
    shutil.copytree(demo_data, ws.root / "datasets" / "shapes")
    (ws.root / "a.md").write_text("a\n")
    (ws.root / "b.md").write_text("b\n")
    ws.commit("start")
    labels = ws.root / "datasets/shapes/labels/train"
    (labels / "train_00000.txt").unlink()
    (labels / "train_00001.txt").unlink()
    (labels / "train_00001.txt").write_text("0 0.5 0.5 0.1 0.1\n")
    (labels / "extra.txt").write_text("1 0.5 0.5 0.2 0.2\n")
    (ws.root / "a.md").write_text("changed\n")
    (ws.root / "b.md").unlink()
    (ws.root / "c.md").write_text("new\n")
    rows = {(c.state, c.path, c.tracked_by) for c in ws.status().changes}
    assert rows == {
        ("deleted", "datasets/shapes/labels/train/train_00000.txt", "dvc"),
        ("modified", "datasets/shapes/labels/train/train_00001.txt", "dvc"),
        ("new", "datasets/shapes/labels/train/extra.txt", "dvc"),
        ("modified", "a.md", "git"), ("deleted", "b.md", "git"), ("new", "c.md", "git"),
    }


def test_diff_includes_files_inside_dvc_folders_with_sizes(ws, demo_data):
    import shutil
    shutil.copytree(demo_data, ws.root / "datasets" / "shapes")
    ws.commit("v1")
    from nbversion.demo import edit_labels
    edit_labels(ws.root / "datasets" / "shapes", count=2)
    (ws.root / "datasets/shapes/labels/val/val_00000.txt").unlink()
    ws.commit("v2")
    result = ws.diff("HEAD~1", "HEAD")
    changes = {(f.change, f.path) for f in result.files}
    assert changes == {
        ("modified", "datasets/shapes/labels/train/train_00000.txt"),
        ("modified", "datasets/shapes/labels/train/train_00001.txt"),
        ("removed", "datasets/shapes/labels/val/val_00000.txt"),
        ("modified", "datasets/shapes.meta.json"),            # the dataset's counts follow its files
    }
    removed = next(f for f in result.files if f.change == "removed")
    assert removed.size_before > 0 and removed.size_after is None


def test_log_shows_changes_and_cell_trailers(ws):
    from nbversion.core.repo.cell import CellContext, current_cell
    (ws.root / "a.md").write_text("a\n")
    token = current_cell.set(CellContext.from_source("analysis.ipynb", 7, "%mv_commit -m x"))
    try:
        ws.commit("from a cell")
    finally:
        current_cell.reset(token)
    entry = ws.log(1).entries[0]
    assert entry.message.startswith("from a cell")
    assert entry.notebook == "analysis.ipynb" and entry.cell == "7"
    assert "added a.md" in entry.changes
    body = git(ws.root, "log", "-1", "--format=%B")
    assert "Nbversion-Notebook: analysis.ipynb" in body and "Nbversion-Cell: 7 sha256:" in body


def test_nothing_to_commit_is_an_error_and_changes_nothing(ws):
    before = snapshot(ws.root)
    with pytest.raises(NothingToCommit) as err:
        ws.commit("empty")
    assert err.value.hint
    assert snapshot(ws.root) == before


def test_outside_a_workspace_is_a_clear_error(tmp_path):
    with pytest.raises(NotAWorkspace) as err:
        nbv.open(tmp_path)
    assert "nbversion init" in err.value.hint


def test_unknown_revision_changes_nothing(ws):
    before = snapshot(ws.root)
    with pytest.raises(NotFound, match="unknown revision 'nope'"):
        ws.checkout("nope")
    with pytest.raises(NotFound):
        ws.diff("nope")
    assert snapshot(ws.root) == before


def test_path_outside_workspace_is_refused(ws, tmp_path):
    outside = tmp_path / "elsewhere.txt"
    outside.write_text("x")
    before = snapshot(ws.root)
    with pytest.raises(NbversionError, match="outside the workspace"):
        ws.commit("sneaky", [outside])
    assert snapshot(ws.root) == before


def test_checkout_refuses_to_lose_uncommitted_changes(ws):
    (ws.root / "notes.md").write_text("v1\n")
    ws.commit("v1")
    (ws.root / "notes.md").write_text("v2\n")
    ws.commit("v2")
    (ws.root / "notes.md").write_text("unsaved work\n")
    before = snapshot(ws.root)
    with pytest.raises(UncommittedChanges) as err:
        ws.checkout("HEAD~1")
    assert "notes.md" in err.value.message and "--force" in err.value.hint
    assert snapshot(ws.root) == before
    ws.checkout("HEAD~1", force=True)
    assert (ws.root / "notes.md").read_text() == "v1\n"


def test_audit_chain_links_every_line(ws):
    for i in range(3):
        (ws.root / f"f{i}.md").write_text(str(i))
        ws.commit(f"c{i}")
    lines = [json.loads(l) for l in (ws.root / ".nbversion/audit.jsonl").read_text().splitlines()]
    assert [l["action"] for l in lines] == ["init", "commit", "commit", "commit"]
    assert lines[0]["prev"] == audit.GENESIS
    for before, after in zip(lines, lines[1:]):
        assert after["prev"] == before["hash"]
    for line in lines:
        assert audit.entry_hash(line) == line["hash"]
        assert set(line) >= {"time", "user", "action", "target", "details", "prev", "hash"}
    assert audit.verify_chain(ws.root).ok


def test_identity_order_and_whoami(ws, monkeypatch):
    assert ws.whoami().user == USER and ws.whoami().role == "admin"
    monkeypatch.setenv("JUPYTERHUB_USER", "hubuser")
    assert ws.whoami().user == "hubuser" and ws.whoami().role == "contributor"
    monkeypatch.setenv("NBVERSION_USER", "alice")
    assert ws.whoami().user == "alice" and ws.whoami().source == "NBVERSION_USER"


def test_viewer_cannot_commit_and_refusal_is_audited(ws, monkeypatch):
    from nbversion.errors import PermissionDenied
    ws.user_add("viewer@example.com", "viewer")
    monkeypatch.setenv("NBVERSION_USER", "viewer@example.com")
    (ws.root / "a.md").write_text("a")
    with pytest.raises(PermissionDenied) as err:
        ws.commit("not allowed")
    assert err.value.exit_code == 3 and "contributor" in err.value.message
    last = json.loads((ws.root / ".nbversion/audit.jsonl").read_text().splitlines()[-1])
    assert last["action"] == "denied" and last["user"] == "viewer@example.com"


def test_deleted_dataset_is_one_row_and_commit_untracks_it(ws, demo_data):
    import shutil
    shutil.copytree(demo_data, ws.root / "datasets" / "shapes")
    ws.commit("add")
    shutil.rmtree(ws.root / "datasets" / "shapes")
    changes = ws.status().changes
    assert [(c.state, c.path, c.tracked_by) for c in changes] == [("deleted", "datasets/shapes", "dvc")]
    result = ws.commit("drop shapes")
    assert result.dvc_paths == ["datasets/shapes"]
    assert "datasets/shapes.dvc" not in git(ws.root, "ls-files")
    assert ws.status().clean


def test_checkout_before_a_dataset_existed_removes_it_and_back_restores(ws, demo_data):
    import shutil
    (ws.root / "a.md").write_text("a")
    ws.commit("before data")
    shutil.copytree(demo_data, ws.root / "datasets" / "shapes")
    ws.commit("data")
    ws.checkout("HEAD~1")
    assert not (ws.root / "datasets" / "shapes").exists()
    assert ws.status().clean
    ws.checkout("main")
    assert (ws.root / "datasets" / "shapes" / "data.yaml").exists()
    assert ws.status().clean and ws.status().branch == "main"
