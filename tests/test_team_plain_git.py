"""A team member with only git and DVC (no nbversion) works alongside nbversion clones (issue 14).

Carol clones with `git clone` + `dvc pull`, versions her own data with `dvc add` + `git commit`,
and merges with a plain `git pull`: the audit log merges by itself (`merge=union`), her commits
need no audit entry, and the others' `nbversion pull`, `audit verify` and `verify` still pass.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from conftest import cli, git
from nbversion.core.audit import chain as audit
from test_team_audit import alice_and_bob, commit_as   # noqa: F401 (fixture)

DVC = str(Path(sys.executable).with_name("dvc"))


def dvc(root, *args) -> str:
    return subprocess.run([DVC, *args], cwd=root, capture_output=True, text=True, check=True).stdout


def test_a_member_with_only_git_and_dvc_merges_with_plain_git_pull(alice_and_bob, monkeypatch, tmp_path):
    alice, _bob = alice_and_bob
    carol = tmp_path / "carol"
    git(tmp_path, "clone", "-q", str(tmp_path / "remote" / "git"), str(carol))
    dvc(carol, "pull", "-q")
    (carol / "data" / "extra").mkdir(parents=True)
    (carol / "data" / "extra" / "sample.bin").write_bytes(b"carol's data\n" * 1000)
    (carol / "prepare.py").write_text("print('prepare')\n")
    dvc(carol, "add", "-q", "data/extra")
    git(carol, "add", "data/extra.dvc", "data/.gitignore", "prepare.py")
    git(carol, "commit", "-qm", "carol: extra data and a script, with plain git and DVC")
    dvc(carol, "push", "-q")

    commit_as(alice, monkeypatch, "alice@example.com", "alice.txt")   # meanwhile, an audited commit
    alice.push()
    git(carol, "pull", "-q", "--no-rebase", "--no-edit")                 # a plain merge, no conflict
    git(carol, "push", "-q")
    assert not (carol / ".git/MERGE_HEAD").exists()

    pulled = alice.pull()
    assert pulled.history.startswith("fast-forwarded")
    assert (alice.root / "data/extra/sample.bin").read_bytes() == b"carol's data\n" * 1000
    assert (alice.root / "prepare.py").exists()
    entries = [e for _, e in audit.iter_entries(alice.root)]
    assert [e["user"] for e in entries].count("carol") == 0             # her commits needed no entry
    assert cli("audit", "verify", cwd=alice.root).returncode == 0
    assert json.loads(cli("verify", "--json", cwd=alice.root).stdout)["problems"] == []
