"""`pull` of a branch that diverged from the remote's merges it (issue 14, part 2).

Two clones of one folder remote: work on both sides merges by itself (code by git, the audit
log, metadata and run records by rule), data of the other side arrives byte for byte; what no
rule merges stops the pull with the exact list and changes nothing.
"""
from __future__ import annotations

import json

import pytest

from conftest import cli, git, snapshot
from nbversion.core.audit import chain as audit
from nbversion.demo import make_dataset
from nbversion.errors import MergeConflict, UsageError
from test_team_audit import alice_and_bob, commit_as, diverge   # noqa: F401 (fixture)


def files_of(root, folder: str) -> dict:
    base = root / folder
    return {p.relative_to(base).as_posix(): p.read_bytes() for p in sorted(base.rglob("*")) if p.is_file()}


def add_dataset_as(ws, monkeypatch, user: str, name: str, source, seed: int):
    monkeypatch.setenv("NBVERSION_USER", user)
    return ws.dataset_add(name, make_dataset(source / f"{name}-{seed}", train=4, val=2, seed=seed))


def test_diverged_clones_merge_on_pull_and_push_then_goes_through(alice_and_bob, monkeypatch, tmp_path):
    alice, bob = alice_and_bob
    add_dataset_as(alice, monkeypatch, "alice@example.com", "cats", tmp_path, seed=1)
    commit_as(alice, monkeypatch, "alice@example.com", "alice.txt")
    alice.push()
    add_dataset_as(bob, monkeypatch, "bob@example.com", "dogs", tmp_path, seed=2)
    commit_as(bob, monkeypatch, "bob@example.com", "bob.txt")
    heads_before = sorted(audit.heads(alice.root) + audit.heads(bob.root))

    pulled = bob.pull()
    assert pulled.history.startswith("merged team/main into main")
    assert (bob.root / "alice.txt").read_text() == "alice@example.com\n" and (bob.root / "bob.txt").exists()
    assert files_of(bob.root, "datasets/cats") == files_of(alice.root, "datasets/cats")   # data arrived
    assert {d["name"] for d in bob.dataset_list().datasets} == {"cats", "dogs"}
    merge_entry = [e for _, e in audit.iter_entries(bob.root)][-1]
    assert merge_entry["action"] == "pull merge" and sorted(merge_entry["prev"]) == heads_before
    assert len(git(bob.root, "rev-list", "--parents", "-n", "1", "HEAD").split()) == 3   # a merge commit
    assert cli("audit", "verify", cwd=bob.root).returncode == 0
    assert json.loads(cli("verify", "--json", cwd=bob.root).stdout)["problems"] == []

    bob.push()                                          # refused before the pull; goes through now
    alice.pull()
    assert files_of(alice.root, "datasets/dogs") == files_of(bob.root, "datasets/dogs")
    assert git(alice.root, "rev-parse", "HEAD") == git(bob.root, "rev-parse", "HEAD")
    assert cli("audit", "verify", cwd=alice.root).returncode == 0


def test_a_file_both_sides_edited_stops_the_pull_with_its_name_and_changes_nothing(alice_and_bob, monkeypatch):
    alice, bob = alice_and_bob
    diverge(alice, bob, monkeypatch, "train.py", "train.py")
    before = snapshot(bob.root)
    with pytest.raises(MergeConflict, match="train.py") as refused:
        bob.pull()
    assert refused.value.paths == ["train.py"] and "git merge team/main" in refused.value.hint
    assert snapshot(bob.root) == before
    proc = cli("pull", "--json", cwd=bob.root)
    assert proc.returncode == 1 and json.loads(proc.stdout)["error"]["type"] == "merge_conflict"


def test_the_same_dataset_changed_on_both_sides_is_a_conflict_listed_by_path(alice_and_bob, monkeypatch, tmp_path):
    alice, bob = alice_and_bob
    add_dataset_as(alice, monkeypatch, "alice@example.com", "birds", tmp_path, seed=3)
    alice.push()
    add_dataset_as(bob, monkeypatch, "bob@example.com", "birds", tmp_path, seed=4)
    before = snapshot(bob.root)
    with pytest.raises(MergeConflict) as refused:
        bob.pull()
    assert "datasets/birds.dvc" in refused.value.paths and "same dataset" in refused.value.hint
    assert snapshot(bob.root) == before


def test_pull_abort_undoes_a_merge_started_with_plain_git(alice_and_bob, monkeypatch):
    alice, bob = alice_and_bob
    diverge(alice, bob, monkeypatch, "train.py", "train.py")
    head = git(bob.root, "rev-parse", "HEAD")
    git(bob.root, "fetch", "-q", "team")
    merged = cli("pull", "--abort", cwd=bob.root)
    assert merged.returncode == 2 and "no merge in progress" in merged.stderr
    import subprocess
    subprocess.run(["git", "merge", "team/main"], cwd=bob.root, capture_output=True)   # conflicts: left half-done
    assert (bob.root / ".git/MERGE_HEAD").exists()
    assert cli("pull", "--abort", cwd=bob.root).returncode == 0
    assert not (bob.root / ".git/MERGE_HEAD").exists() and git(bob.root, "rev-parse", "HEAD") == head
    assert (bob.root / "train.py").read_text() == "bob@example.com\n"
