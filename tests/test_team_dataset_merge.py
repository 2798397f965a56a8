"""`pull` merges a dataset both clones changed, file by file (issue 14, part 2, the content merge).

Images and labels added on either side are kept, an edit made on one side is taken byte for
byte, and the merged version is re-tracked with metadata that counts it; a label file both
sides changed differently stops the pull, named by file, with nothing changed.
"""
from __future__ import annotations

import json
import shutil
from collections import Counter

import pytest

from conftest import cli, snapshot
from nbversion.core.repo.merge_rules import merge_listings
from nbversion.core.audit import chain as audit
from nbversion.demo import edit_labels, make_dataset
from nbversion.errors import InvalidInput, MergeConflict
from test_team_audit import alice_and_bob   # noqa: F401 (fixture)
from test_team_pull import add_dataset_as, files_of

LABEL = "labels/train/train_00000.txt"


def test_each_file_takes_the_side_that_changed_it_and_both_sides_changing_it_is_a_conflict():
    base = {"a": "1", "b": "2", "c": "3", "d": "4", "e": "5"}
    ours = {"a": "1", "b": "2x", "c": "3", "e": "5y", "new-ours": "7", "both-same": "8", "both-diff": "9"}
    theirs = {"a": "1", "b": "2", "c": "3z", "d": "4", "new-theirs": "6", "both-same": "8", "both-diff": "10"}
    merged, conflicts = merge_listings(base, ours, theirs)
    assert merged == {"a": "1", "b": "2x", "c": "3z", "new-ours": "7", "new-theirs": "6", "both-same": "8"}
    # "d" removed by ours only: gone; "e" changed by ours, removed by theirs: conflict
    assert conflicts == ["both-diff", "e"]
    assert merge_listings(base, {**base, "b": "x"}, {**base, "b": "y"}) == ({k: v for k, v in base.items() if k != "b"}, ["b"])
    assert merge_listings({}, {}, {}) == ({}, [])


def add_samples(folder, source, prefix: str, seed: int) -> dict:
    """Copy `count` new image+label pairs into the dataset's train split; returns them by relpath."""
    extra = make_dataset(source / f"{prefix}-{seed}", train=2, val=0, seed=seed)
    added = {}
    for kind, ext in (("images", "png"), ("labels", "txt")):
        for i in range(2):
            rel = f"{kind}/train/{prefix}_{i:05d}.{ext}"
            shutil.copyfile(extra / kind / "train" / f"train_{i:05d}.{ext}", folder / rel)
            added[rel] = (folder / rel).read_bytes()
    return added


def shapes_on_both_sides(alice, bob, monkeypatch, tmp_path):
    add_dataset_as(alice, monkeypatch, "alice@example.com", "shapes", tmp_path, seed=5)
    alice.push()
    bob.pull()
    return alice.root / "datasets/shapes", bob.root / "datasets/shapes"


def commit_as(ws, monkeypatch, user: str, message: str):
    monkeypatch.setenv("NBVERSION_USER", user)
    return ws.commit(message)


def test_images_and_labels_added_on_both_sides_and_an_edit_on_one_merge_on_pull(alice_and_bob, monkeypatch, tmp_path):
    alice, bob = alice_and_bob
    alice_folder, bob_folder = shapes_on_both_sides(alice, bob, monkeypatch, tmp_path)
    alice_added = add_samples(alice_folder, tmp_path, "alice", seed=11)
    commit_as(alice, monkeypatch, "alice@example.com", "alice adds two samples")
    alice.push()
    edited = edit_labels(bob_folder, count=1)[0].relative_to(bob_folder).as_posix()
    bob_added = add_samples(bob_folder, tmp_path, "bob", seed=12)
    assert edited == LABEL
    commit_as(bob, monkeypatch, "bob@example.com", "bob adds two samples and fixes a box")
    expected = {**files_of(alice.root, "datasets/shapes"), **bob_added, edited: (bob_folder / edited).read_bytes()}
    assert expected[edited] != files_of(alice.root, "datasets/shapes")[edited]

    pulled = bob.pull()
    assert pulled.history.startswith("merged team/main into main")
    assert files_of(bob.root, "datasets/shapes") == expected
    assert all(expected[rel] == data for rel, data in alice_added.items())
    meta = bob.dataset_show("shapes").meta
    instances = Counter(line.split()[0] for rel, data in expected.items() if rel.startswith("labels/")
                        for line in data.decode().splitlines() if line.strip())
    assert meta["files"] == len(expected) == 21 and meta["content_hash"] != alice.dataset_show("shapes").meta["content_hash"]
    assert meta["splits"]["train"]["images"] == meta["splits"]["train"]["labels"] == 8   # 4 + 2 + 2
    assert meta["class_instances"] == {meta["classes"][int(c)]: n for c, n in instances.items()}
    merge_entry = [e for _, e in audit.iter_entries(bob.root)][-1]
    assert merge_entry["action"] == "pull merge" and merge_entry["details"]["content_merged"] == ["datasets/shapes"]
    assert bob.status().clean   # the merged folder is what the merge commit tracks
    assert cli("audit", "verify", cwd=bob.root).returncode == 0
    assert json.loads(cli("verify", "--json", cwd=bob.root).stdout)["problems"] == []

    bob.push()
    alice.pull()
    assert files_of(alice.root, "datasets/shapes") == expected
    assert alice.dataset_show("shapes").meta["content_hash"] == meta["content_hash"] and alice.status().clean
    assert cli("audit", "verify", cwd=alice.root).returncode == 0


def test_a_label_file_both_sides_changed_stops_the_pull_naming_it_and_changes_nothing(alice_and_bob, monkeypatch, tmp_path):
    alice, bob = alice_and_bob
    alice_folder, bob_folder = shapes_on_both_sides(alice, bob, monkeypatch, tmp_path)
    edit_labels(alice_folder, count=1)
    add_samples(alice_folder, tmp_path, "alice", seed=11)
    commit_as(alice, monkeypatch, "alice@example.com", "alice moves a box")
    alice.push()
    (bob_folder / LABEL).write_text("0 0.500000 0.500000 0.200000 0.200000\n")
    commit_as(bob, monkeypatch, "bob@example.com", "bob redraws the box")
    before, folder_before = snapshot(bob.root), files_of(bob.root, "datasets/shapes")

    with pytest.raises(MergeConflict) as refused:
        bob.pull()
    assert refused.value.paths == [f"datasets/shapes/{LABEL}"]
    assert "dataset files" in refused.value.hint
    assert snapshot(bob.root) == before and files_of(bob.root, "datasets/shapes") == folder_before


def test_a_merge_that_is_no_longer_a_valid_dataset_stops_and_puts_the_folder_back(alice_and_bob, monkeypatch, tmp_path):
    alice, bob = alice_and_bob
    alice_folder, bob_folder = shapes_on_both_sides(alice, bob, monkeypatch, tmp_path)
    yaml = (alice_folder / "data.yaml").read_text()          # alice drops the third class, relabelling its boxes
    (alice_folder / "data.yaml").write_text("\n".join(l for l in yaml.splitlines() if not l.startswith("  2:")) + "\n")
    for label in (alice_folder / "labels").rglob("*.txt"):
        lines = label.read_text().splitlines()
        if any(line.startswith("2 ") for line in lines):
            label.write_text("".join(("0" + line[1:] if line.startswith("2 ") else line) + "\n" for line in lines))
    commit_as(alice, monkeypatch, "alice@example.com", "alice merges blue into red")
    alice.push()
    add_samples(bob_folder, tmp_path, "bob", seed=12)
    (bob_folder / "labels/train/bob_00000.txt").write_text("2 0.500000 0.500000 0.200000 0.200000\n")   # a blue box
    commit_as(bob, monkeypatch, "bob@example.com", "bob adds samples with a blue box")
    before, folder_before = snapshot(bob.root), files_of(bob.root, "datasets/shapes")

    with pytest.raises(InvalidInput, match="bob_00000.txt") as refused:
        bob.pull()
    assert "pull stopped" in refused.value.message and "pull again" in refused.value.hint
    after = snapshot(bob.root)
    # the remote version's files fetched for the merge stay in the cache, as after any pull
    assert {k: v for k, v in after.items() if k != "cache"} == {k: v for k, v in before.items() if k != "cache"}
    assert set(before["cache"]) <= set(after["cache"])
    assert files_of(bob.root, "datasets/shapes") == folder_before and bob.status().clean
