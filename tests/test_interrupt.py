"""Ctrl-C in a long operation leaves nothing half-written, and says what it left.

Each test runs the real console script, freezes it at a checkpoint inside its long phase
(NBVERSION_TEST_STOP_AT: between two stored or hashed batches, between two removed or archived
objects), sends SIGINT and then SIGCONT, exactly as a user's Ctrl-C lands there. Then: exit 130
and one `error: interrupted...` line, no traceback, the lock released, no cache object at its
final name with partial content, `status` and `verify` accept the workspace, and the same
command run again succeeds. And the progress of a long operation reaches a terminal with its total.
"""
from __future__ import annotations

import hashlib
import json
import os
import pty
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import cli, cli_json, cli_stopped_at, git
from nbversion.demo import make_dataset

FILES = 150   # more than one hashing batch's threshold (64), a few store batches


def data_folder(folder: Path, count: int = FILES, seed: int = 0) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        (folder / f"f{i:04d}.bin").write_bytes(hashlib.sha256(f"{seed}-{i}".encode()).digest() * 64)
    return folder


def interrupted(checkpoint: str, *args, cwd=None):
    """The command, stopped at `checkpoint`, given Ctrl-C there; returns the finished process."""
    with cli_stopped_at(checkpoint, *args, cwd=cwd) as proc:
        os.kill(proc.pid, signal.SIGINT)   # pending while stopped: raised as soon as it resumes
    assert proc.returncode == 130, proc.out + proc.err
    assert "Traceback" not in proc.err
    [line] = [ln for ln in proc.err.splitlines() if ln.strip()]
    assert line.startswith("error: interrupted"), proc.err
    return proc


def cache_is_whole(root: Path) -> None:
    """Every object in the DVC cache holds exactly what its name says; no scratch left behind."""
    cache = root / ".dvc" / "cache" / "files" / "md5"
    for obj in cache.glob("??/*"):
        if obj.is_file():
            assert hashlib.md5(obj.read_bytes()).hexdigest() == obj.parent.name + obj.name.removesuffix(".dir"), obj
    assert not list(cache.glob(".nbv-tmp/*/*")), "scratch of the interrupted store was left behind"


def accepted(root: Path) -> dict:
    """`status` and `verify` accept the workspace (and so the lock is free); status as JSON."""
    status = cli_json("status", cwd=root)
    assert cli("verify", cwd=root).returncode == 0
    cache_is_whole(root)
    return status


# --- commit -------------------------------------------------------------------------------------

@pytest.mark.parametrize("checkpoint", ["store-batch", "after-audit"])
def test_interrupted_commit_of_a_new_folder_commits_nothing_and_a_retry_does(ws, checkpoint):
    data_folder(ws.root / "datasets" / "big")
    head, log = git(ws.root, "rev-parse", "HEAD"), (ws.root / ".nbversion" / "audit.jsonl").read_text()
    proc = interrupted(checkpoint, "commit", "-m", "big folder")
    assert "commit committed nothing" in proc.err
    assert git(ws.root, "rev-parse", "HEAD") == head
    assert (ws.root / ".nbversion" / "audit.jsonl").read_text() == log   # no audit line of a commit that never came
    status = accepted(ws.root)
    assert any(c["path"].startswith("datasets/big") for c in status["changes"])
    cli("commit", "-m", "big folder", check=0)
    assert cli_json("status")["changes"] == []
    assert cli("verify").returncode == 0 and cli("audit", "verify").returncode == 0


def test_interrupted_commit_of_an_edited_folder_while_hashing(ws):
    data_folder(ws.root / "datasets" / "big")
    cli("commit", "-m", "v1", check=0)
    data_folder(ws.root / "datasets" / "big", seed=1)          # every file edited: all hashed again
    head = git(ws.root, "rev-parse", "HEAD")
    proc = interrupted("hash-batch", "commit", "-m", "v2")
    assert "commit committed nothing" in proc.err and git(ws.root, "rev-parse", "HEAD") == head
    assert any(c["path"].startswith("datasets/big") for c in accepted(ws.root)["changes"])
    cli("commit", "-m", "v2", check=0)
    assert cli_json("status")["changes"] == []
    cli("checkout", "HEAD~1", "--", "datasets/big", check=0)       # both versions are whole in the cache
    assert (ws.root / "datasets/big/f0000.bin").read_bytes() == hashlib.sha256(b"0-0").digest() * 64


def test_interrupted_after_its_commit_says_the_commit_is_kept(ws):
    (ws.root / "notes.md").write_text("kept")
    proc = interrupted("after-commit", "commit", "-m", "notes", "--json")
    sha = git(ws.root, "rev-parse", "HEAD").strip()
    assert f"committed {sha[:8]}: that change is kept" in proc.err
    error = json.loads(proc.out)["error"]                  # a script tells it apart by its type
    assert error["type"] == "interrupted" and sha[:8] in error["message"]
    assert accepted(ws.root)["changes"] == []
    assert cli("audit", "verify").returncode == 0


# --- dataset add --------------------------------------------------------------------------------

def test_interrupted_dataset_add_leaves_no_dataset_and_a_retry_imports_it(ws, demo_data):
    proc = interrupted("store-batch", "dataset", "add", "shapes", demo_data)
    assert "dataset add committed nothing" in proc.err
    assert not (ws.root / "datasets" / "shapes").exists()            # the half import is taken back
    assert accepted(ws.root)["changes"] == []
    assert cli_json("dataset", "list")["datasets"] == []
    cli("dataset", "add", "shapes", demo_data, check=0)
    assert [d["name"] for d in cli_json("dataset", "list")["datasets"]] == ["shapes"]
    assert cli_json("status")["changes"] == [] and cli("verify").returncode == 0


# --- checkout -----------------------------------------------------------------------------------

def test_interrupted_checkout_says_what_moved_and_the_same_checkout_finishes(ws):
    data_folder(ws.root / "datasets" / "big")
    cli("commit", "-m", "v1", check=0)
    data_folder(ws.root / "datasets" / "big", seed=1)
    cli("commit", "-m", "v2", check=0)
    proc = interrupted("checkout-git-done", "checkout", "HEAD~1", "--", "datasets/big")
    assert "run the same checkout again with --force" in proc.err
    accepted(ws.root)
    cli("checkout", "--force", "HEAD~1", "--", "datasets/big", check=0)
    assert (ws.root / "datasets/big/f0000.bin").read_bytes() == hashlib.sha256(b"0-0").digest() * 64
    assert cli("verify").returncode == 0


# --- pull ---------------------------------------------------------------------------------------

def test_interrupted_pull_says_the_history_is_merged_and_pull_again_brings_the_data(ws, tmp_path):
    from test_verify import add_dataset

    add_dataset(ws, "coco", "v1", seed=1)
    cli("remote", "add", "team", tmp_path / "remote", check=0)
    cli("push", check=0)
    cli("clone", tmp_path / "remote", tmp_path / "b", check=0)
    add_dataset(ws, "coco", "v2", seed=2)
    cli("push", check=0)
    b = tmp_path / "b"
    proc = interrupted("pull-history-merged", "pull", cwd=b)
    assert "is merged in; run pull again for its data" in proc.err
    assert cli("status", cwd=b).returncode == 0
    cache_is_whole(b)
    cli("pull", cwd=b, check=0)
    assert cli_json("status", cwd=b)["changes"] == [] and cli("verify", cwd=b).returncode == 0
    assert (b / "datasets/coco/img0.txt").read_text().startswith("coco 2 0")


# --- exp merge ----------------------------------------------------------------------------------

def test_interrupted_exp_merge_leaves_no_merge_half_done_and_a_retry_merges(ws):
    (ws.root / "notes.txt").write_text("main\n")
    ws.commit("main before the branch")
    ws.exp_new("trial")
    (ws.root / "trial.txt").write_text("trial\n")
    ws.commit("work on the trial")
    git(ws.root, "checkout", "-q", "main")
    (ws.root / "main.txt").write_text("main\n")
    ws.commit("work on main meanwhile")
    head = git(ws.root, "rev-parse", "HEAD")
    proc = interrupted("exp-merge-staged", "exp", "merge", "trial")
    assert "exp merge committed nothing" in proc.err
    assert git(ws.root, "rev-parse", "HEAD") == head
    assert git(ws.root, "status", "--porcelain") == ""                 # no merge in progress, no audit line
    assert not (ws.root / "trial.txt").exists()
    assert accepted(ws.root)["changes"] == []
    cli("exp", "merge", "trial", check=0)
    assert (ws.root / "trial.txt").exists() and cli("audit", "verify").returncode == 0


# --- gc and backup ------------------------------------------------------------------------------

def test_interrupted_gc_keeps_what_the_policy_keeps_and_a_retry_finishes(ws, monkeypatch):
    from test_gc import DAY, model_versions
    from nbversion.core.backends.dvc_cache import cached_objects

    versions = model_versions(ws, monkeypatch, [f"weights {n}".encode() * 100 for n in range(4)],
                              int(time.time()) - 100 * DAY, DAY)
    proc = interrupted("gc-removed-one", "gc", "--keep-last", "1", "--older-than", "30")
    assert "run gc again to finish" in proc.err
    assert versions[-1] in cached_objects(ws.root)
    assert accepted(ws.root)["changes"] == []
    result = cli_json("gc", "--keep-last", "1", "--older-than", "30")
    assert result["objects"] > 0
    assert not set(versions[:-1]) & set(cached_objects(ws.root)) and versions[-1] in cached_objects(ws.root)
    assert cli("verify").returncode == 0 and cli("audit", "verify").returncode == 0


def test_interrupted_backup_writes_no_archive_and_a_retry_does(ws, demo_data, tmp_path):
    cli("dataset", "add", "shapes", demo_data, "--tag", "v1", check=0)
    out = tmp_path / "backups" / "b.tar.gz"
    out.parent.mkdir()
    interrupted("backup-added-one", "backup", "create", "--out", out)
    assert list(out.parent.iterdir()) == []                      # no archive, no temp folder
    accepted(ws.root)
    cli("backup", "create", "--out", out, check=0)
    restored = cli("backup", "restore", out, tmp_path / "restored")
    assert restored.returncode == 0, restored.stderr
    assert cli("verify", cwd=tmp_path / "restored").returncode == 0


# --- progress on a terminal ---------------------------------------------------------------------

def test_a_long_operation_shows_its_progress_with_a_total_on_a_terminal(ws):
    data_folder(ws.root / "datasets" / "big")
    exe = Path(sys.executable).with_name("nbversion")
    terminal, their_end = pty.openpty()
    proc = subprocess.Popen([str(exe), "commit", "-m", "big"], cwd=ws.root, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=their_end)
    os.close(their_end)
    shown = b""
    while True:
        try:
            chunk = os.read(terminal, 65536)
        except OSError:   # the other end closed: the command is done
            break
        if not chunk:
            break
        shown += chunk
    os.close(terminal)
    assert proc.wait(timeout=600) == 0
    text = shown.decode(errors="replace")
    # the files stored, counted up to their total, on one line rewritten in place
    assert re.search(rf"store: {FILES}/{FILES}\b", text), text
    assert "\r\x1b[K" in text
    assert text.endswith("\r\x1b[K")   # the line is cleared before the result is printed on stdout
    assert "big" in proc.stdout.read().decode()


def test_piped_output_carries_no_progress(ws):
    data_folder(ws.root / "datasets" / "big")
    proc = cli("commit", "-m", "big", check=0)
    assert "store:" not in proc.stderr and "\r" not in proc.stderr


# --- the notebook -------------------------------------------------------------------------------

from test_cli_magics import shell  # noqa: E402,F401 - a real IPython shell with the extension loaded


def test_an_interrupted_magic_says_one_line_fails_the_cell_and_changes_nothing(shell, tmp_path, capsys, monkeypatch):
    from nbversion.core.storage import linking

    shell.run_cell("%mv_init proj")
    shell.run_cell("import os; os.chdir('proj')")
    root = tmp_path / "proj"
    data_folder(root / "datasets" / "big")
    head = git(root, "rev-parse", "HEAD")
    capsys.readouterr()

    def kernel_interrupt_between_batches(name):   # where the kernel's SIGINT lands in a long store
        if name == "store-batch":
            raise KeyboardInterrupt

    original = linking.checkpoint
    monkeypatch.setattr(linking, "checkpoint", kernel_interrupt_between_batches)
    r = shell.run_cell('%mv_commit -m "big folder"')
    assert not r.success                                          # "Run All" stops here
    out = capsys.readouterr()
    assert "error: interrupted: commit committed nothing" in out.out
    assert "Traceback" not in out.out + out.err and "KeyboardInterrupt" not in out.out + out.err
    assert git(root, "rev-parse", "HEAD") == head
    monkeypatch.setattr(linking, "checkpoint", original)
    assert shell.run_cell('%mv_commit -m "big folder"').success   # the lock was released
    assert shell.run_cell("%mv_status").result.clean


def test_a_magic_shows_the_progress_of_a_long_operation_with_its_total(shell, tmp_path, capsys, monkeypatch):
    from nbversion.widgets.progress import NotebookProgress

    shell.run_cell("%mv_init proj")
    shell.run_cell("import os; os.chdir('proj')")
    data_folder(tmp_path / "proj" / "datasets" / "big")
    capsys.readouterr()
    monkeypatch.setattr(NotebookProgress, "SHOW_AFTER", 0)   # as if the commit took long: show every stage
    r = shell.run_cell('%mv_commit -m "big folder"')
    assert r.success and r.result.dvc_paths == ["datasets/big"]
    shown = capsys.readouterr().out
    assert f"store: {FILES}/{FILES} " in shown                  # the display, updated in place in Jupyter
