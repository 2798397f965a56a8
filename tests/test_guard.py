"""`guard install REMOTE`: the shared remote refuses a push that fails `audit verify`.

A workspace is pushed to a folder remote (and to an SSH server on loopback) and guarded; a
contributor works in a clone of it. What each test does with plain git or a hand edit of
users.toml IS the attack the guard must stop (marked `# the attack:`); nothing sets up state.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import nbversion as nbv
from conftest import USER, cli, git
from nbversion.errors import NbversionError
from sshd_server import running_sshd, sshd  # noqa: F401 (sshd: fixture)
from test_promotion import set_rules
from test_registry import checkpoint_file

CAROL = "carol@example.com"
USERS = ".nbversion/users.toml"
SELF_PROMOTION = "roles, keys, rules and security settings may only be changed by an admin"


def register(ws, version: str, score: float) -> None:
    weights = checkpoint_file(ws.root.parent / f"w{version}" / "best.pt", {"mAP50-95": score})
    ws.register("det", version=version, source=str(weights))


@pytest.fixture
def team(ws, tmp_path):
    """An admin's workspace with a registered version and a contributor, pushed to a guarded folder remote."""
    register(ws, "1.0.0", 0.4)
    ws.promote("det@v1.0.0")
    ws.user_add(CAROL, "contributor")
    ws.remote_add("team", str(tmp_path / "remote"))
    ws.push()
    result = ws.guard_install("team")
    assert result.state == "installed" and "guard pre-receive" in result.command
    return ws


def as_carol(env=None) -> dict:
    return {**(env or os.environ), "NBVERSION_USER": CAROL}


def carol_clone(url, folder, keyfile=None):
    cli("clone", url, folder, *(["--keyfile", keyfile] if keyfile else []), check=0)
    git(folder, "config", "user.email", CAROL)
    return folder


def remote_head(bare) -> str:
    return git(bare, "rev-parse", "refs/heads/main").strip()


def plain_push(folder, *args):
    return subprocess.run(["git", "push", *args], cwd=folder, capture_output=True, text=True)


def self_promote(folder) -> str:
    """The attack of issue 15: a contributor makes herself admin and commits it with nbversion."""
    users = folder / USERS
    users.write_text(users.read_text().replace(f'"{CAROL}" = "contributor"', f'"{CAROL}" = "admin"'))
    cli("commit", "-m", "tweak", cwd=folder, env=as_carol(), check=0)
    return git(folder, "rev-parse", "HEAD").strip()


def test_a_self_promotion_commit_is_refused_and_a_normal_commit_accepted(team, tmp_path):
    bare = tmp_path / "remote" / "git"
    before = remote_head(bare)
    mine = carol_clone(tmp_path / "remote", tmp_path / "carol")
    sha = self_promote(mine)   # the attack

    proc = cli("push", cwd=mine, env=as_carol())
    assert proc.returncode == 1
    assert f"remote:   main at {sha[:8]}: roles: commit {sha[:8]} by {CAROL} (contributor) changed {USERS}" \
        in proc.stderr and SELF_PROMOTION in proc.stderr
    plain = plain_push(mine, "team", "main")   # the same with plain git
    assert plain.returncode != 0 and f"commit {sha[:8]} by {CAROL}" in plain.stderr
    assert "pre-receive hook declined" in plain.stderr
    assert remote_head(bare) == before

    git(mine, "reset", "-q", "--hard", "HEAD~1")
    (mine / "notes.md").write_text("a normal change\n")
    cli("commit", "-m", "notes", cwd=mine, env=as_carol(), check=0)
    proc = cli("push", cwd=mine, env=as_carol(), check=0)
    assert remote_head(bare) == git(mine, "rev-parse", "HEAD").strip()


def test_a_hand_made_stage_tag_passes_only_by_someone_the_rules_allow(team, tmp_path):
    bare = tmp_path / "remote" / "git"
    mine = carol_clone(tmp_path / "remote", tmp_path / "carol")
    # the attack: a contributor assigns champion with plain git
    git(mine, "tag", "-a", "det#champion#2", "det@v1.0.0^{}", "-m", "Assigning stage champion to artifact det")
    proc = plain_push(mine, "team", "det#champion#2")
    assert proc.returncode != 0
    assert f"stage tag det#champion#2 was made by hand by {CAROL} (contributor); champion needs admin" in proc.stderr
    assert "det#champion#2" not in git(bare, "tag")

    # the admin may (a warning: not in the audit log), and the guard lets it through
    git(team.root, "tag", "-a", "det#champion#2", "det@v1.0.0^{}", "-m", "Assigning stage champion to artifact det")
    proc = plain_push(team.root, "team", "det#champion#2")
    assert proc.returncode == 0, proc.stderr
    assert f"det#champion#2 by {USER} is not in the audit log" in proc.stderr
    assert "det#champion#2" in git(bare, "tag")

    # rules that let contributors assign `staging`: her hand-made staging tag then passes
    set_rules(team, '[stages.champion]\nrole = "admin"\n[stages.staging]\nrole = "contributor"\n')
    team.push()
    git(mine, "tag", "-d", "det#champion#2")
    cli("pull", cwd=mine, env=as_carol(), check=0)
    git(mine, "tag", "-a", "det#staging#3", "det@v1.0.0^{}", "-m", "Assigning stage staging to artifact det")
    proc = plain_push(mine, "team", "det#staging#3")
    assert proc.returncode == 0, proc.stderr
    assert "det#staging#3" in git(bare, "tag")


def test_registry_tags_cannot_be_deleted_or_moved_but_branches_can_be_deleted(team, tmp_path):
    bare = tmp_path / "remote" / "git"
    tagged = git(bare, "rev-parse", "det@v1.0.0").strip()
    # the attack: rewrite the registry on the shared remote
    proc = plain_push(team.root, "team", ":refs/tags/det@v1.0.0")
    assert proc.returncode != 0
    assert "deletes registry tag det@v1.0.0; registered versions and stage assignments are immutable" in proc.stderr
    git(team.root, "tag", "-f", "-a", "det@v1.0.0", "HEAD", "-m", "moved")
    proc = plain_push(team.root, "-f", "team", "det@v1.0.0")
    assert proc.returncode != 0 and "moves registry tag det@v1.0.0" in proc.stderr
    assert git(bare, "rev-parse", "det@v1.0.0").strip() == tagged

    git(team.root, "branch", "scratch")
    assert plain_push(team.root, "team", "scratch").returncode == 0
    assert plain_push(team.root, "team", ":scratch").returncode == 0
    assert "scratch" not in git(bare, "branch")


def test_guard_status_remove_and_who_may_install(team, tmp_path):
    status = cli("guard", "status", "team", "--json", check=0)
    assert '"state": "installed"' in status.stdout and "guard pre-receive" in status.stdout
    assert cli("guard", "install", "team", env=as_carol()).returncode == 3   # admins only
    cli("guard", "remove", "team", check=0)
    assert team.guard_status("team").state == "not installed"
    assert not (tmp_path / "remote" / "git" / "hooks" / "pre-receive").exists()

    # a pre-receive hook someone else wrote is never overwritten
    hook = tmp_path / "remote" / "git" / "hooks" / "pre-receive"
    hook.write_text("#!/bin/sh\nexit 0\n")
    with pytest.raises(NbversionError, match="a pre-receive hook nbversion did not write"):
        team.guard_install("team")
    assert hook.read_text() == "#!/bin/sh\nexit 0\n"

    # hosted git takes no hook: the error points to the CI recipe
    team.remote_add("hub", str(tmp_path / "hubdata"), git_url="https://git.example.com/org/det.git", default=False)
    proc = cli("guard", "install", "hub")
    assert proc.returncode == 2 and "cannot put a hook there" in proc.stderr and "docs/guard.md" in proc.stderr


# --- over SSH ---------------------------------------------------------------------------------

def test_the_same_self_promotion_is_refused_by_a_guarded_ssh_remote(ws, sshd, tmp_path):  # noqa: F811
    register(ws, "1.0.0", 0.4)
    ws.user_add(CAROL, "contributor")
    url = f"ssh://{sshd['user']}@127.0.0.1:{sshd['port']}{tmp_path / 'sshremote'}"
    ws.remote_add("box", url, keyfile=sshd["key"])
    ws.push()
    result = ws.guard_install("box")
    # the hook calls the nbversion an ssh session on the host finds, by its absolute path
    assert result.state == "installed" and result.command == f"{Path(sys.executable).parent}/nbversion guard pre-receive"
    assert ws.guard_status("box").state == "installed"
    bare = tmp_path / "sshremote" / "git"
    before = remote_head(bare)

    mine = carol_clone(url, tmp_path / "carol", keyfile=sshd["key"])
    sha = self_promote(mine)   # the attack
    proc = cli("push", cwd=mine, env=as_carol())
    assert proc.returncode == 1
    assert f"commit {sha[:8]} by {CAROL} (contributor) changed {USERS}" in proc.stderr and SELF_PROMOTION in proc.stderr
    assert remote_head(bare) == before


def test_guard_install_over_ssh_names_a_host_without_nbversion(ws, tmp_path):
    with running_sshd(tmp_path / "sshkeys", nbversion=False) as bare_host:
        url = f"ssh://{bare_host['user']}@127.0.0.1:{bare_host['port']}{tmp_path / 'sshremote'}"
        ws.remote_add("box", url, keyfile=bare_host["key"])
        proc = cli("guard", "install", "box")
        assert proc.returncode == 1
        assert "the remote host has no nbversion; install it there: pip install nbversion" in proc.stderr
        assert not (tmp_path / "sshremote" / "git" / "hooks" / "pre-receive").exists()
        assert nbv.open(ws.root).guard_status("box").state == "not installed"
