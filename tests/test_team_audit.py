"""Two clones of one remote that each append to the audit log merge with plain git (issue 14, part 1).

The log is a hash DAG with `merge=union` in the committed `.gitattributes`: a colleague's
`git pull` combines both sides' entries without a conflict and without rewriting one, `audit
verify` accepts the two heads, and the next entry nbversion writes names them both.
"""
from __future__ import annotations

import json

import pytest

import nbversion as nbv
from conftest import cli, git
from nbversion.core.audit import chain as audit
from nbversion.core.storage.clone import clone


def entries(ws) -> list[dict]:
    return [e for _, e in audit.iter_entries(ws.root)]


def commit_as(ws, monkeypatch, user: str, name: str):
    monkeypatch.setenv("NBVERSION_USER", user)
    (ws.root / name).write_text(f"{user}\n")
    return ws.commit(f"{user} adds {name}")


def diverge(alice, bob, monkeypatch, alice_file: str, bob_file: str) -> None:
    """Alice commits and pushes; Bob, not having pulled, commits too: two diverged clones."""
    commit_as(alice, monkeypatch, "alice@example.com", alice_file)
    alice.push()
    commit_as(bob, monkeypatch, "bob@example.com", bob_file)


@pytest.fixture
def alice_and_bob(ws, tmp_path, monkeypatch):
    monkeypatch.setenv("NBVERSION_USER", "alice@example.com")
    ws.remote_add("team", str(tmp_path / "remote"))
    ws.push()
    clone(str(tmp_path / "remote"), str(tmp_path / "bob"))
    return ws, nbv.open(tmp_path / "bob")


def test_a_plain_git_pull_merges_two_clones_logs_and_the_next_entry_names_both_heads(alice_and_bob, monkeypatch):
    alice, bob = alice_and_bob
    diverge(alice, bob, monkeypatch, "alice.txt", "bob.txt")
    before = {e["hash"]: e for e in entries(alice) + entries(bob)}

    # what the refused push's hint tells bob to do, with only git
    git(bob.root, "pull", "--no-rebase", "--no-edit", "team", "main")
    merged = entries(bob)
    assert not (bob.root / ".git/MERGE_HEAD").exists()                 # no conflict to resolve
    assert {e["hash"]: e for e in merged} == before                    # both sides, nothing rewritten
    assert len(audit.heads(bob.root)) == 2
    verified = cli("audit", "verify", "--json", cwd=bob.root)
    assert verified.returncode == 0, verified.stdout
    assert json.loads(verified.stdout)["ok"]

    commit_as(bob, monkeypatch, "bob@example.com", "after-merge.txt")
    last = entries(bob)[-1]
    assert sorted(last["prev"]) == sorted({e["hash"] for e in merged} - {p for e in merged for p in audit.parents_of(e)})
    assert audit.heads(bob.root) == [last["hash"]]
    assert cli("audit", "verify", cwd=bob.root).returncode == 0

    bob.push()
    alice.pull()                                                       # a fast-forward for alice
    assert entries(alice) == entries(bob)
    assert cli("audit", "verify", cwd=alice.root).returncode == 0


def test_an_entry_before_a_parent_it_names_is_found_at_its_line(alice_and_bob, monkeypatch):
    alice, bob = alice_and_bob
    diverge(alice, bob, monkeypatch, "alice.txt", "bob.txt")
    git(bob.root, "pull", "--no-rebase", "--no-edit", "team", "main")
    commit_as(bob, monkeypatch, "bob@example.com", "after-merge.txt")
    path = bob.root / audit.AUDIT_FILE
    lines = path.read_text().splitlines(keepends=True)
    # the attack: the merge entry moved above one of the heads it names
    lines.insert(len(lines) - 2, lines.pop())
    path.write_text("".join(lines))
    check = audit.verify_chain(bob.root)
    assert not check.ok and check.line == len(lines) - 1 and "not an earlier line" in check.problem
    assert cli("audit", "verify", cwd=bob.root).returncode == 1


def test_a_workspace_made_before_merge_union_gets_it_with_its_next_commit(ws, monkeypatch):
    assert audit.MERGE_ATTRIBUTE in (ws.root / ".gitattributes").read_text().splitlines()
    git(ws.root, "rm", "-q", ".gitattributes")                        # as an older nbversion made it
    git(ws.root, "commit", "-qm", "an older workspace")
    commit_as(ws, monkeypatch, "alice@example.com", "notes.txt")
    assert audit.MERGE_ATTRIBUTE in git(ws.root, "show", "HEAD:.gitattributes").splitlines()
    assert git(ws.root, "check-attr", "merge", str(audit.AUDIT_FILE)).strip().endswith("merge: union")
