"""Three clones of one remote (alice, bob, ci), on a folder remote and over loopback SSH (issue 14).

Interleaved dataset adds, commits, a real tiny training, registration, promotion, pushes and
pulls, in an order where pushes are refused and pulls must merge. At the end every clone has
every commit, every dataset checks out byte for byte the same, and `audit verify`, `verify`
and `gto show` agree everywhere. Nothing is edited by hand.
"""
from __future__ import annotations

import json

import pytest

import nbversion as nbv
from conftest import cli, git
from nbversion.core.storage.clone import clone
from nbversion.demo import edit_labels, make_dataset
from nbversion.errors import NbversionError, TagCollision
from test_gto_compat import _assert_gto_agrees
from test_remotes import sshd   # noqa: F401 (fixture)
from test_team_tags import register_file
from trained import tiny_train


def files_of(root, folder: str) -> dict:
    """The versioned files of `folder` (not Ultralytics' `labels/*.cache`, which .dvcignore leaves out)."""
    base = root / folder
    return {p.relative_to(base).as_posix(): p.read_bytes() for p in sorted(base.rglob("*"))
            if p.is_file() and p.suffix != ".cache"}


class Member:
    """One clone and the identity that works in it."""

    def __init__(self, ws, user: str, monkeypatch):
        self.ws, self.user, self.mp = ws, user, monkeypatch

    def __enter__(self):
        self.mp.setenv("NBVERSION_USER", self.user)
        self.mp.chdir(self.ws.root)
        return self.ws

    def __exit__(self, *exc):
        return False


@pytest.fixture(params=["folder", "ssh"])
def team(request, ws, tmp_path, monkeypatch):
    keyfile = None
    if request.param == "folder":
        url = str(tmp_path / "remote")
    else:
        server = request.getfixturevalue("sshd")
        url, keyfile = f"ssh://{server['user']}@127.0.0.1:{server['port']}{tmp_path / 'sshremote'}", server["key"]
    ws.user_add("alice@example.com", "admin")          # by the workspace's creator, its first admin
    monkeypatch.setenv("NBVERSION_USER", "alice@example.com")
    ws.remote_add("team", url, keyfile=keyfile)
    ws.push()
    members = {"alice": Member(ws, "alice@example.com", monkeypatch)}
    for name in ("bob", "ci"):
        clone(url, str(tmp_path / name), keyfile=keyfile)
        members[name] = Member(nbv.open(tmp_path / name), f"{name}@example.com", monkeypatch)
    return members


def test_three_clones_interleave_work_and_end_identical(team, tmp_path):
    alice, bob, ci = team["alice"], team["bob"], team["ci"]
    with alice as ws:
        ws.dataset_add("cats", make_dataset(tmp_path / "src-cats", train=4, val=2, seed=1))
        (ws.root / "train.py").write_text("EPOCHS = 1\n")
        ws.commit("alice: training script")
        ws.push()
    with bob as ws:
        ws.dataset_add("dogs", make_dataset(tmp_path / "src-dogs", train=4, val=2, seed=2))
        register_file(ws, "1.0.0", 0.3)                 # det@v1.0.0 from bob's own weights
        with pytest.raises(NbversionError):
            ws.push()                                    # alice pushed first
        assert ws.pull().history.startswith("merged")
        ws.push()
    with ci as ws:
        ws.dataset_add("demo", make_dataset(tmp_path / "src-demo", seed=3))
        run = tiny_train(ws)
        ws.register("det", version="1.0.0", source=run.run_id)   # the same version, other content
        with pytest.raises(TagCollision):
            ws.push()
        history = ws.pull().history                      # re-numbered, then merged
        assert "det@v1.0.0 re-numbered det@v1.0.1" in history and "merged" in history
        ws.push()
    with bob as ws:
        ws.pull()
        edits = {p.relative_to(ws.root).as_posix(): p.read_bytes()
                 for p in edit_labels(ws.root / "datasets/cats", count=1, split="val")}
        ws.commit("bob: relabel a val image")
        ws.push()
    with alice as ws:
        edits.update({p.relative_to(ws.root).as_posix(): p.read_bytes()   # the same dataset, another file
                      for p in edit_labels(ws.root / "datasets/cats", count=1, split="train")})
        (ws.root / "README.md").write_text("# detector\n")
        ws.commit("alice: relabel a train image, readme")
        assert ws.pull().history.startswith("merged")   # cats merged file by file
        ws.promote("det@v1.0.1")                         # an admin promotes what ci registered
        ws.push()
    for member in (bob, ci, alice):
        with member as ws:
            ws.pull()

    heads = {git(m.ws.root, "rev-parse", "HEAD") for m in team.values()}
    assert len(heads) == 1, "every clone has every commit"
    for folder in ("datasets/cats", "datasets/dogs", "datasets/demo", "registry/det/v1.0.0", "registry/det/v1.0.1"):
        contents = [files_of(m.ws.root, folder) for m in team.values()]
        assert contents[0] and all(c == contents[0] for c in contents), folder
    registries = []
    for member in team.values():
        with member as ws:
            assert cli("audit", "verify", cwd=ws.root).returncode == 0
            assert json.loads(cli("verify", "--json", cwd=ws.root).stdout)["problems"] == []
            _assert_gto_agrees(ws.root)
            registries.append(ws.registry().to_dict())
    assert all(r == registries[0] for r in registries)
    champion = [v for v in registries[0]["versions"] if v["champion"]]
    assert [v["version"] for v in champion] == ["v1.0.1"]
    for member in team.values():                         # both relabellings, in every clone
        assert {path: (member.ws.root / path).read_bytes() for path in edits} == edits
