"""Signed mode with real ed25519 keys (issue 15): changes signed by git with each user's SSH key,
the identity is the key's principal, and `audit verify` catches every attack a contributor could
try with only their own key: self-promotion by commit, rules.toml injection, a forged audit line,
a spoofed author, an unsigned or under-privileged tag, a stranger's key, an evil merge."""
from __future__ import annotations

import json
import subprocess

import pytest

from conftest import USER, cli, cli_json, git, snapshot
from nbversion.errors import PermissionDenied
from sshd_server import sshd  # noqa: F401 (fixture)
from test_registry import register_run

CONTRIBUTOR, VIEWER = "carol@example.com", "victor@example.com"


def keygen(folder, name: str):
    folder.mkdir(exist_ok=True)
    path = folder / name
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", str(path)], check=True)
    return path


def sign_with(key) -> None:
    """What a user does once: point their git at their own key."""
    subprocess.run(["git", "config", "--global", "user.signingkey", str(key)], check=True)


@pytest.fixture
def keys(tmp_path):
    folder = tmp_path / "keys"
    return {user: keygen(folder, name) for user, name in
            ((USER, "admin"), (CONTRIBUTOR, "contributor"), (VIEWER, "viewer"), ("stranger", "stranger"))}


@pytest.fixture
def signed(ws, keys):
    """A workspace where the admin listed three keys, turned signing on, and registered det@v1.0.0."""
    ws.user_add(USER, "admin", key=f"{keys[USER]}.pub")
    ws.user_add(CONTRIBUTOR, "contributor", key=f"{keys[CONTRIBUTOR]}.pub")
    ws.user_add(VIEWER, "viewer", key=keys[VIEWER].with_suffix(".pub").read_text())   # the key's text works too
    sign_with(keys[USER])
    ws.require_signing()
    register_run(ws, "det", "1.0.0", {"mAP50-95": 0.6})
    return ws


def problems(ws) -> list[str]:
    return [p["message"] for p in ws.audit_verify().problems]


def verified_by_git(ws, rev: str, verb: str = "verify-commit") -> str:
    """git's own verdict, with the workspace's allowed_signers."""
    proc = subprocess.run(["git", "-c", "gpg.ssh.allowedSignersFile=.nbversion/allowed_signers", verb, rev],
                          cwd=ws.root, capture_output=True, text=True)
    return proc.stderr if proc.returncode == 0 else ""


def test_signed_history_verifies_and_git_agrees(signed, monkeypatch):
    result = signed.audit_verify()
    assert result.ok, result.problems
    assert result.checked["signed commits"] >= 2 and result.checked["signed tags"] == 1
    assert f"Good \"git\" signature for {USER}" in verified_by_git(signed, "HEAD")
    assert f"for {USER}" in verified_by_git(signed, "det@v1.0.0", "verify-tag")
    monkeypatch.setenv("NBVERSION_USER", VIEWER)   # in signed mode the environment names nobody
    me = cli_json("whoami")
    assert (me["user"], me["role"], me["mode"], me["key_listed_as"]) == (USER, "admin", "signed (required)", USER)


def test_the_admins_signed_promote_is_accepted(signed):
    signed.promote("det@v1.0.0")
    assert f"for {USER}" in verified_by_git(signed, "det#champion#1", "verify-tag")
    assert problems(signed) == []


def test_each_user_acts_as_their_key_says(signed, keys, monkeypatch):
    sign_with(keys[CONTRIBUTOR])
    monkeypatch.setenv("NBVERSION_USER", USER)        # claiming to be the admin changes nothing
    proc = cli("promote", "det@v1.0.0")
    assert proc.returncode == 3 and f"{CONTRIBUTOR} is a contributor" in proc.stderr
    (signed.root / "notes.md").write_text("a contributor's change\n")
    (signed.root / "params.yaml").write_text("lr: 0.01\n")
    cli("commit", "-m", "params", check=0)
    assert f"for {CONTRIBUTOR}" in verified_by_git(signed, "HEAD")
    last = json.loads((signed.root / ".nbversion/audit.jsonl").read_text().splitlines()[-1])
    assert last["user"] == CONTRIBUTOR
    assert problems(signed) == []


def test_a_user_without_a_listed_key_cannot_change_anything(signed, keys):
    before = snapshot(signed.root)
    sign_with(keys["stranger"])
    (signed.root / "params.yaml").write_text("lr: 0.01\n")
    proc = cli("commit", "-m", "sneak")
    assert proc.returncode == 3 and "not in .nbversion/allowed_signers" in proc.stderr
    subprocess.run(["git", "config", "--global", "--unset", "user.signingkey"], check=True)
    proc = cli("commit", "-m", "sneak")
    assert proc.returncode == 3 and "git has no user.signingkey" in proc.stderr
    (signed.root / "params.yaml").unlink()
    assert snapshot(signed.root) == before


def test_require_signing_is_for_an_admin_whose_key_is_listed(ws, keys, monkeypatch):
    before = snapshot(ws.root)
    with pytest.raises(PermissionDenied, match="signing key is not listed"):
        ws.require_signing()
    assert snapshot(ws.root) == before
    ws.user_add(CONTRIBUTOR, "contributor", key=f"{keys[CONTRIBUTOR]}.pub")
    sign_with(keys[CONTRIBUTOR])
    monkeypatch.setenv("NBVERSION_USER", CONTRIBUTOR)
    proc = cli("security", "require-signing")
    assert proc.returncode == 3 and "needs the admin role" in proc.stderr
    assert cli_json("security", "status")["signing"] == "off"
    proc = cli("user", "add", "x@example.com", "--role", "viewer", "--key", str(keys[USER]))
    assert proc.returncode == 2 and "is a private key" in proc.stderr


# --- attacks by a contributor holding only their own key ----------------------------------------

def test_self_promotion_by_commit_is_caught(signed, keys):
    sign_with(keys[CONTRIBUTOR])
    users = signed.root / ".nbversion/users.toml"
    users.write_text(users.read_text().replace(f'"{CONTRIBUTOR}" = "contributor"', f'"{CONTRIBUTOR}" = "admin"'))
    cli("commit", "-m", "tweak", check=0)
    sha = git(signed.root, "rev-parse", "--short=8", "HEAD").strip()
    assert any(f"commit {sha} by {CONTRIBUTOR} (contributor) changed .nbversion/users.toml" in p
               for p in problems(signed))


def test_rules_injection_is_caught_and_its_deploy_command_never_runs(signed, keys, tmp_path):
    sign_with(keys[CONTRIBUTOR])
    marker = tmp_path / "pwned"
    (signed.root / ".nbversion/rules.toml").write_text(
        f'[stages.champion]\nrole = "contributor"\n[stages.champion.deploy]\ncommand = "touch {marker}"\n')
    cli("commit", "-m", "tweak rules", check=0)
    assert any(f"by {CONTRIBUTOR} (contributor) changed .nbversion/rules.toml" in p for p in problems(signed))
    sign_with(keys[USER])
    with pytest.raises(PermissionDenied, match=f"{CONTRIBUTOR} .contributor., not by an admin"):
        signed.promote("det@v1.0.0")
    assert not marker.exists()


def test_a_forged_audit_line_in_a_signed_commit_is_caught(signed, keys):
    from nbversion.core.audit import chain   # the attacker forges with the product's own code

    sign_with(keys[CONTRIBUTOR])
    chain.append(signed.root, USER, "user add", CONTRIBUTOR, {"role": "admin"})
    git(signed.root, "-c", "gpg.format=ssh", "commit", "-qS", "-am", "routine")
    assert any(f"is signed by {CONTRIBUTOR} but carries an audit entry by {USER}" in p for p in problems(signed))


def test_a_spoofed_author_is_caught_signed_or_not(signed, keys):
    rules = signed.root / ".nbversion/rules.toml"
    rules.write_text('[stages.champion]\nrole = "contributor"\n')
    git(signed.root, "-c", f"user.email={USER}", "commit", "-qam", "rules by the 'admin'")   # unsigned
    unsigned = git(signed.root, "rev-parse", "--short=8", "HEAD").strip()
    assert any(f"commit {unsigned} changes .nbversion/rules.toml but is not signed" in p for p in problems(signed))
    git(signed.root, "reset", "-q", "--hard", "HEAD~1")
    sign_with(keys[CONTRIBUTOR])
    rules.write_text('[stages.champion]\nrole = "contributor"\n')
    git(signed.root, "-c", f"user.email={USER}", "-c", "gpg.format=ssh", "commit", "-qS", "-am", "rules")
    assert any(f"by {CONTRIBUTOR} (contributor) changed .nbversion/rules.toml" in p for p in problems(signed))


def test_a_strangers_signature_is_not_good_enough(signed, keys):
    sign_with(keys["stranger"])
    (signed.root / "registry/det/notes.md").write_text("a stranger's edit\n")
    git(signed.root, "add", "registry/det/notes.md")
    git(signed.root, "-c", "gpg.format=ssh", "commit", "-qS", "-m", "edit")
    assert any("has a signature that is not good for any key in .nbversion/allowed_signers" in p
               for p in problems(signed))


def test_unsigned_and_under_privileged_stage_tags_are_caught(signed, keys):
    version = git(signed.root, "rev-list", "-n1", "det@v1.0.0").strip()
    git(signed.root, "tag", "-a", "det#champion#1", version, "-m", "by hand")
    assert any("tag det#champion#1 is not signed" in p for p in problems(signed))
    git(signed.root, "tag", "-d", "det#champion#1")
    sign_with(keys[VIEWER])
    git(signed.root, "-c", "gpg.format=ssh", "tag", "-s", "det#champion#1", version, "-m", "by a viewer")
    assert any(f"tag det#champion#1 is signed by {VIEWER} (viewer); champion needs admin" in p
               for p in problems(signed))


def test_turning_signing_off_is_a_policy_edit(signed, keys):
    sign_with(keys[CONTRIBUTOR])
    config = signed.root / ".nbversion/config.toml"
    config.write_text(config.read_text().replace('signing = "required"', 'signing = "off"'))
    git(signed.root, "-c", "gpg.format=ssh", "commit", "-qS", "-am", "relax")
    assert any(f"by {CONTRIBUTOR} (contributor) changed .nbversion/config.toml" in p for p in problems(signed))


# --- what needs no signature ---------------------------------------------------------------------

def test_code_commits_and_plain_merges_need_no_signature(signed, keys):
    (signed.root / "train.ipynb").write_text("{}")
    git(signed.root, "add", "train.ipynb")
    git(signed.root, "commit", "-qm", "notebook, unsigned")          # touches no managed file
    git(signed.root, "checkout", "-qb", "side")
    sign_with(keys[CONTRIBUTOR])
    (signed.root / "params.yaml").write_text("lr: 0.02\n")
    cli("commit", "-m", "on a branch", check=0)
    git(signed.root, "checkout", "-q", "main")
    sign_with(keys[USER])
    signed.promote("det@v1.0.0")
    git(signed.root, "merge", "-q", "--no-edit", "side")             # a plain, unsigned merge
    assert len(git(signed.root, "rev-parse", "HEAD^@").split()) == 2
    assert problems(signed) == []


def test_an_unsigned_merge_that_adds_its_own_change_is_caught(signed, keys):
    git(signed.root, "checkout", "-qb", "side")
    sign_with(keys[CONTRIBUTOR])
    (signed.root / "params.yaml").write_text("lr: 0.02\n")
    cli("commit", "-m", "on a branch", check=0)
    git(signed.root, "checkout", "-q", "main")
    git(signed.root, "merge", "-q", "--no-commit", "--no-ff", "side")
    users = signed.root / ".nbversion/users.toml"
    users.write_text(users.read_text().replace(f'"{CONTRIBUTOR}" = "contributor"', f'"{CONTRIBUTOR}" = "admin"'))
    git(signed.root, "commit", "-qam", "merge")                       # an evil merge, unsigned
    sha = git(signed.root, "rev-parse", "--short=8", "HEAD").strip()
    found = problems(signed)
    assert any(f"commit {sha} changes" in p and ".nbversion/users.toml" in p and "but is not signed" in p
               for p in found), found


# --- across clones ---------------------------------------------------------------------------------

def test_two_signed_clones_merge_on_pull_and_a_pushed_self_promotion_is_caught(signed, keys, tmp_path):
    import nbversion as nbv
    from nbversion.core.storage.clone import clone

    signed.remote_add("team", str(tmp_path / "remote"))
    signed.push()
    clone(str(tmp_path / "remote"), str(tmp_path / "carol"))
    carol = nbv.open(tmp_path / "carol")
    git(carol.root, "config", "user.signingkey", str(keys[CONTRIBUTOR]))   # her machine, her key
    (carol.root / "params.yaml").write_text("lr: 0.02\n")
    carol.commit("carol's params")
    signed.promote("det@v1.0.0")
    signed.push()
    assert carol.pull().history.startswith("merged team/main into main")
    assert f"for {CONTRIBUTOR}" in verified_by_git(carol, "HEAD")          # her merge, her signature
    carol.push()
    signed.pull()
    assert problems(signed) == [] and problems(carol) == []

    users = carol.root / ".nbversion/users.toml"
    users.write_text(users.read_text().replace(f'"{CONTRIBUTOR}" = "contributor"', f'"{CONTRIBUTOR}" = "admin"'))
    carol.commit("tweak")
    carol.push()                                   # a folder remote without the guard cannot stop it...
    signed.pull()
    assert any(f"by {CONTRIBUTOR} (contributor) changed .nbversion/users.toml" in p for p in problems(signed))


def test_a_viewers_signed_change_of_managed_files_is_caught(signed, keys):
    sign_with(keys[VIEWER])
    (signed.root / "registry/det/notes.md").write_text("a viewer's edit\n")
    git(signed.root, "add", "registry/det/notes.md")
    git(signed.root, "-c", "gpg.format=ssh", "commit", "-qS", "-m", "notes")
    assert any(f"signed by {VIEWER} (viewer); changes need a contributor" in p for p in problems(signed))


# --- at the shared point: a guarded remote -------------------------------------------------------

def push(folder, *args):
    return subprocess.run(["git", "push", "team", *args], cwd=folder, capture_output=True, text=True)


def guarded_team(signed, keys, url, folder, keyfile=None):
    """The signed workspace on a guarded remote at `url`, and carol's clone with her own key."""
    signed.remote_add("team", url, **({"keyfile": keyfile} if keyfile else {}))
    signed.push()
    assert signed.guard_install("team").state == "installed"
    cli("clone", url, folder, *(["--keyfile", keyfile] if keyfile else []), check=0)
    git(folder, "config", "user.signingkey", str(keys[CONTRIBUTOR]))
    return folder


def refused(carol, bare, what: str, *refs) -> None:
    before = git(bare, "for-each-ref")
    proc = push(carol, *(refs or ("main",)))
    assert proc.returncode != 0 and what in proc.stderr, proc.stderr
    assert git(bare, "for-each-ref") == before, "nothing of a refused push lands"


def test_a_guarded_folder_remote_refuses_each_attack_and_takes_the_admins_signed_work(signed, keys, tmp_path):
    from nbversion.core.audit import chain

    carol = guarded_team(signed, keys, str(tmp_path / "remote"), tmp_path / "carol")
    bare = tmp_path / "remote" / "git"
    users = carol / ".nbversion/users.toml"
    users.write_text(users.read_text().replace(f'"{CONTRIBUTOR}" = "contributor"', f'"{CONTRIBUTOR}" = "admin"'))
    cli("commit", "-m", "tweak", cwd=carol, check=0)                                   # the attack: self-promotion
    refused(carol, bare, f"by {CONTRIBUTOR} (contributor) changed .nbversion/users.toml")
    git(carol, "reset", "-q", "--hard", "HEAD~1")

    chain.append(carol, USER, "user add", CONTRIBUTOR, {"role": "admin"})                # the attack: a forged line
    git(carol, "-c", "gpg.format=ssh", "commit", "-qS", "-am", "routine")
    refused(carol, bare, f"signed by {CONTRIBUTOR} but carries an audit entry by {USER}")
    git(carol, "reset", "-q", "--hard", "HEAD~1")

    (carol / ".nbversion/rules.toml").write_text('[stages.champion]\nrole = "contributor"\n')
    git(carol, "-c", f"user.email={USER}", "commit", "-qam", "rules")                    # the attack: spoofed author
    refused(carol, bare, "changes .nbversion/rules.toml but is not signed")
    git(carol, "reset", "-q", "--hard", "HEAD~1")

    git(carol, "tag", "-a", "det#champion#1", "det@v1.0.0^{}", "-m", "by hand")           # the attack: unsigned tag
    refused(carol, bare, "tag det#champion#1 is not signed", "det#champion#1")
    git(carol, "tag", "-d", "det#champion#1")

    signed.promote("det@v1.0.0")                       # the admin's signed promote goes through
    signed.push()
    assert "det#champion#1" in git(bare, "tag")
    (carol / "params.yaml").write_text("lr: 0.02\n")
    cli("commit", "-m", "carol's params", cwd=carol, check=0)
    cli("pull", cwd=carol, check=0)
    assert push(carol, "main").returncode == 0           # and so does hers
    assert git(bare, "rev-parse", "main").strip() == git(carol, "rev-parse", "HEAD").strip()


def test_a_guarded_ssh_remote_refuses_an_unsigned_policy_edit(signed, keys, sshd, tmp_path):  # noqa: F811
    url = f"ssh://{sshd['user']}@127.0.0.1:{sshd['port']}{tmp_path / 'sshremote'}"
    carol = guarded_team(signed, keys, url, tmp_path / "carol", keyfile=sshd["key"])
    (carol / ".nbversion/rules.toml").write_text('[stages.champion]\nrole = "contributor"\n')
    git(carol, "-c", f"user.email={USER}", "commit", "-qam", "rules")                    # the attack: spoofed author
    refused(carol, tmp_path / "sshremote" / "git", "changes .nbversion/rules.toml but is not signed")
    git(carol, "reset", "-q", "--hard", "HEAD~1")
    (carol / "params.yaml").write_text("lr: 0.02\n")
    cli("commit", "-m", "carol's params", cwd=carol, check=0)
    assert cli("push", cwd=carol).returncode == 0


def test_dataset_tags_are_signed_too(signed, demo_data):
    signed.dataset_add("shapes", demo_data, tags=["golden"])
    tag = git(signed.root, "tag", "--list", "*golden*").strip()
    assert tag and f"for {USER}" in verified_by_git(signed, tag, "verify-tag")
    assert problems(signed) == []
