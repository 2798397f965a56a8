"""Interrupted and half-done work always finishes or rolls back; one name rule, checked up front.

Scenarios as a user meets them: a `dataset add` killed (at each step, and by a real timed
kill -9) then run again; `commit` of an edited dataset; temp folders of killed imports; bad
names, tags and remote names refused before anything is written; policy files checked at commit.
"""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from nbversion.demo import make_dataset, make_image, write_label

from conftest import cli, cli_json, cli_stopped_at, git, snapshot

import numpy as np


def nb(*args, kill_at=None, stop_at=None, check=None):
    env = dict(os.environ)
    if kill_at:
        env["NBVERSION_TEST_KILL_AT"] = kill_at
    if stop_at:
        env["NBVERSION_TEST_STOP_AT"] = stop_at
    return cli(*args, env=env, check=check)


def meta(root, name):
    return json.loads((Path(root) / "datasets" / f"{name}.meta.json").read_text())


def pointer_md5(root, name):
    text = (Path(root) / "datasets" / f"{name}.dvc").read_text()
    return next(line.split()[-1] for line in text.splitlines() if "md5:" in line)


def leftover_imports(root):
    tmp = Path(root) / ".nbversion" / "tmp"
    return sorted(p.name for p in tmp.glob("import-*")) if tmp.exists() else []


def assert_recorded(root, name, train_images, val_images=8):
    """What a user checks after the dust settles: clean status, a true catalogue, a clean verify."""
    status = cli_json("status")
    assert status["changes"] == [], status
    m = meta(root, name)
    assert m["splits"]["train"]["images"] == train_images and m["splits"]["val"]["images"] == val_images
    assert m["content_hash"] == pointer_md5(root, name)
    listed = {d["name"]: d for d in cli_json("dataset", "list")["datasets"]}
    assert listed[name]["images"] == train_images + val_images
    assert cli("verify").returncode == 0
    assert leftover_imports(root) == []


@pytest.fixture
def two_versions(tmp_path):
    """Two different sources of the same dataset: 16 and 20 training images."""
    return make_dataset(tmp_path / "v1"), make_dataset(tmp_path / "v2", train=20, seed=7)


# --- 1. a killed `dataset add`, then the same command again -----------------------------------

@pytest.mark.parametrize("kill_at", ["dataset-validated", "dataset-staged", "dataset-swapped-in",
                                     "dataset-after-dvc-add", "dataset-after-audit"])
def test_killed_dataset_add_completes_when_run_again(ws, two_versions, kill_at):
    v1, v2 = two_versions
    nb("dataset", "add", "shapes", v1, check=0)
    killed = nb("dataset", "add", "shapes", v2, kill_at=kill_at)
    assert killed.returncode == -signal.SIGKILL
    again = nb("dataset", "add", "shapes", v2)
    assert again.returncode == 0, again.stderr
    assert "new version" in again.stdout
    assert_recorded(ws.root, "shapes", 20)
    older = cli_json("dataset", "show", "shapes@~1")
    assert older["meta"]["splits"]["train"]["images"] == 16        # the first version is intact


def test_killed_first_import_completes_when_run_again(ws, demo_data):
    killed = nb("dataset", "add", "fresh", demo_data, kill_at="dataset-after-dvc-add")
    assert killed.returncode == -signal.SIGKILL
    assert (ws.root / "datasets" / "fresh").is_dir()          # the files are there, uncommitted
    nb("dataset", "add", "fresh", demo_data, check=0)
    assert_recorded(ws.root, "fresh", 16)


@pytest.mark.parametrize("moment", ["0.2 s into the import", "once the files are in place"])
def test_real_kill_9_during_dataset_add_then_rerun_completes(ws, tmp_path, moment):
    big = make_dataset(tmp_path / "big", train=300, val=60)
    exe = Path(sys.executable).with_name("nbversion")
    proc = subprocess.Popen([str(exe), "dataset", "add", "big", str(big)], cwd=ws.root,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    placed = ws.root / "datasets" / "big"
    ready = (lambda: leftover_imports(ws.root)) if moment.startswith("0.2") else placed.exists
    deadline = time.monotonic() + 120
    while not ready() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    if moment.startswith("0.2"):
        time.sleep(0.2)
    proc.kill()
    proc.communicate()
    assert proc.returncode == -signal.SIGKILL          # killed mid-way, not after it finished
    if not moment.startswith("0.2"):
        assert placed.exists()                         # new files in datasets/big, uncommitted
    again = cli("dataset", "add", "big", big)
    assert again.returncode == 0, again.stderr
    assert_recorded(ws.root, "big", 300, 60)


def test_retry_never_replaces_a_folder_that_holds_other_work(ws, two_versions):
    v1, v2 = two_versions
    nb("dataset", "add", "shapes", v1, check=0)
    assert nb("dataset", "add", "shapes", v2, kill_at="dataset-swapped-in").returncode == -signal.SIGKILL
    label = ws.root / "datasets/shapes/labels/train/train_00000.txt"
    label.write_text(label.read_text() + "1 0.5 0.5 0.2 0.2\n")    # the user edits the half import
    before = snapshot(ws.root)
    refused = nb("dataset", "add", "shapes", v2)
    assert refused.returncode == 1 and "not recorded" in refused.stderr
    assert snapshot(ws.root) == before


# --- commit of an edited dataset folder keeps its metadata true -------------------------------

def test_commit_after_a_killed_import_records_the_new_metadata(ws, two_versions):
    v1, v2 = two_versions
    nb("dataset", "add", "shapes", v1, check=0)
    assert nb("dataset", "add", "shapes", v2, kill_at="dataset-after-dvc-add").returncode == -signal.SIGKILL
    nb("commit", "-m", "keep what the import brought", check=0)
    assert "leftover" in nb("verify").stdout                    # the killed import's temp folder
    nb("verify", "--repair", check=0)
    assert_recorded(ws.root, "shapes", 20)


def test_commit_of_an_edited_dataset_refreshes_its_metadata_or_refuses(ws, demo_data):
    nb("dataset", "add", "shapes", demo_data, check=0)
    folder = ws.root / "datasets" / "shapes"
    rng = np.random.default_rng(5)
    for i in range(3):                                     # images added by hand, in place
        image, lines = make_image(rng, 64)
        image.save(folder / "images" / "train" / f"extra_{i}.png")
        write_label(folder / "labels" / "train" / f"extra_{i}.txt", lines)
    old_instances = meta(ws.root, "shapes")["splits"]["train"]["instances"]
    result = cli_json("commit", "-m", "three more images")
    assert "datasets/shapes.meta.json" in result["git_paths"]
    assert_recorded(ws.root, "shapes", 19)
    assert meta(ws.root, "shapes")["splits"]["train"]["instances"] > old_instances
    assert cli_json("dataset", "show", "shapes@~1")["meta"]["splits"]["train"]["images"] == 16

    (folder / "labels" / "train" / "extra_0.txt").write_text("0 0.5 0.5 0.1\n")   # 4 numbers
    before = snapshot(ws.root)
    refused = nb("commit", "-m", "broken label")
    assert refused.returncode == 1 and "Traceback" not in refused.stderr
    assert "labels/train/extra_0.txt:1" in refused.stderr and "hint:" in refused.stderr
    assert snapshot(ws.root) == before


# --- 2. temp folders of killed imports ---------------------------------------------------------

def _leave_one(root, source, name="shapes"):
    assert nb("dataset", "add", name, source, kill_at="dataset-staged").returncode == -signal.SIGKILL
    left = leftover_imports(root)
    assert len(left) == 1
    return left[0]


def test_leftover_import_folders_go_with_the_next_import_gc_and_verify_repair(ws, two_versions):
    v1, v2 = two_versions
    _leave_one(ws.root, v1)
    checked = nb("verify")
    assert checked.returncode == 1 and "import" in checked.stdout and "leftover" in checked.stdout
    assert nb("verify", "--repair").returncode == 0
    assert leftover_imports(ws.root) == [] and nb("verify").returncode == 0

    _leave_one(ws.root, v1)
    assert "would remove" in nb("gc", "--dry-run", check=0).stdout and len(leftover_imports(ws.root)) == 1
    swept = nb("gc", check=0)
    assert "interrupted dataset imports" in swept.stdout and leftover_imports(ws.root) == []

    _leave_one(ws.root, v1)
    nb("dataset", "add", "other", v2, check=0)                 # the next import sweeps it
    assert leftover_imports(ws.root) == []


def test_a_live_import_folder_is_never_removed(ws, demo_data, tmp_path):
    """An import stopped (alive, SIGSTOP) mid-way keeps its folder through gc, verify --repair
    and another import, then finishes normally."""
    with cli_stopped_at("dataset-validated", "dataset", "add", "slow", demo_data, cwd=ws.root) as live:
        folder = leftover_imports(ws.root)
        assert len(folder) == 1
        nb("gc", check=0)
        nb("verify", "--repair")
        nb("dataset", "add", "other", make_dataset(tmp_path / "o", train=4, val=2), check=0)
        assert leftover_imports(ws.root) == folder
    assert live.returncode == 0, live.err
    assert_recorded(ws.root, "slow", 16)


def leftover_models(root):
    tmp = Path(root) / ".nbversion" / "tmp"
    return sorted(p.name for p in tmp.glob("model-*")) if tmp.exists() else []


def _kill_one_model_add(root, weights, name="det"):
    killed = nb("model", "add", name, weights, kill_at="model-copied")
    assert killed.returncode == -signal.SIGKILL
    left = leftover_models(root)
    assert len(left) == 1 and (Path(root) / ".nbversion/tmp" / left[0] / "new" / weights.name).exists()
    return left[0]


def test_leftover_model_add_folders_go_with_the_next_add_gc_and_verify_repair(ws, weights, demo_data):
    _kill_one_model_add(ws.root, weights)
    checked = nb("verify")
    assert checked.returncode == 1 and "interrupted model add" in checked.stdout, checked.stdout
    assert nb("verify", "--repair").returncode == 0
    assert leftover_models(ws.root) == [] and nb("verify").returncode == 0

    _kill_one_model_add(ws.root, weights)
    assert "interrupted model adds" in nb("gc", "--dry-run", check=0).stdout
    assert len(leftover_models(ws.root)) == 1
    assert "interrupted model adds" in nb("gc", check=0).stdout and leftover_models(ws.root) == []

    _kill_one_model_add(ws.root, weights)
    nb("dataset", "add", "shapes", demo_data, check=0)        # the next import sweeps it
    assert leftover_models(ws.root) == []

    _kill_one_model_add(ws.root, weights)
    nb("model", "add", "det", weights, check=0)               # and so does the retried model add
    assert leftover_models(ws.root) == [] and leftover_imports(ws.root) == []
    assert cli_json("model", "show", "det")["meta"]["file"] == weights.name
    assert cli_json("status")["changes"] == [] and nb("verify").returncode == 0


def test_a_live_model_add_folder_is_never_removed(ws, weights, demo_data):
    """A model add stopped (alive, SIGSTOP, holding the lock) keeps its folder through `verify`
    and another import's sweep, then finishes normally."""
    config = ws.root / ".nbversion" / "config.toml"
    config.write_text(config.read_text().replace("lock_timeout = 120", "lock_timeout = 2"))
    nb("commit", "-m", "wait at most 2 s for the lock", check=0)
    with cli_stopped_at("model-copied", "model", "add", "det", weights, cwd=ws.root) as live:
        folder = leftover_models(ws.root)
        assert len(folder) == 1
        assert "interrupted model add" not in nb("verify").stdout
        blocked = nb("dataset", "add", "shapes", demo_data)      # sweeps, then finds the lock held
        assert blocked.returncode == 1 and "lock" in blocked.stderr, blocked.stderr
        assert leftover_models(ws.root) == folder
    assert live.returncode == 0, live.err
    assert leftover_models(ws.root) == []
    assert cli_json("model", "show", "det")["meta"]["file"] == weights.name
    assert nb("verify").returncode == 0


# --- 3. one name rule, checked before anything is written ---------------------------------------

@pytest.fixture
def weights(tmp_path):
    path = tmp_path / "w" / "model.onnx"
    path.parent.mkdir()
    path.write_bytes(b"\x08\x07\x12\x07pytorch\x1a\x032.1:\x0c\n\x04onnx" + bytes(40))
    return path


@pytest.mark.parametrize("args", [
    ["dataset", "add", "a..b", "{src}", "--tag", "v1"],
    ["dataset", "add", "shapes", "{src}", "--tag", "a..b"],
    ["dataset", "add", "shapes", "{src}", "--tag", "v1.lock"],
    ["dataset", "add", "shapes", "{src}", "--tag", "x" * 260],
    ["dataset", "add", "x.lock", "{src}"],
    ["dataset", "add", "d" * 300, "{src}"],
    ["model", "add", "m" * 250, "{weights}"],
    ["model", "add", "det.v2", "{weights}"],
    ["register", "m" * 250, "--version", "1.0.0", "--from", "{weights}"],
    ["register", "det", "--version", "1.0." + "9" * 300, "--from", "{weights}"],
    ["exp", "new", "a..b"],
    ["remote", "add", "a b", "{tmp}/remote"],
], ids=lambda a: " ".join(a)[:40])
def test_bad_names_and_tags_are_refused_before_anything_is_written(ws, demo_data, weights, tmp_path, args):
    nb("dataset", "add", "shapes", demo_data, "--tag", "first", check=0)
    before = snapshot(ws.root)
    args = [a.format(src=demo_data, weights=weights, tmp=tmp_path) for a in args]
    refused = nb(*args)
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert refused.stderr.startswith("error: ") and "Traceback" not in refused.stderr
    assert "hint:" in refused.stderr
    assert snapshot(ws.root) == before
    assert not (ws.root / "datasets" / "a..b").exists() and not list((ws.root / "datasets").glob("x.lock*"))
    assert cli("verify").returncode == 0


def test_a_name_model_add_accepts_is_one_register_accepts(ws, weights):
    nb("model", "add", "det-v2_small", weights, check=0)
    nb("register", "det-v2_small", "--version", "1.0.0", "--from", "det-v2_small", check=0)
    longest = "m" * 100
    nb("model", "add", longest, weights, check=0)
    nb("register", longest, "--version", "1.0.0", "--from", longest, check=0)
    nb("promote", f"{longest}@v1.0.0", check=0)
    assert cli_json("resolve", f"{longest}@champion")["version"] == "v1.0.0"
    assert {v["name"] for v in cli_json("registry")["versions"]} == {"det-v2_small", longest}


def test_dataset_tags_git_accepts_still_work(ws, demo_data):
    nb("dataset", "add", "shapes", demo_data, "--tag", "v1.0", "--tag", "reviewed_2024-06", check=0)
    assert set(git(ws.root, "tag").split()) >= {"dataset/shapes/v1.0", "dataset/shapes/reviewed_2024-06"}


# --- 4. remote add changes nothing unless it completes ------------------------------------------

def _remote_state(root):
    dvc = root / ".dvc"
    return {"config": (dvc / "config").read_text(),
            "local": (dvc / "config.local").read_text() if (dvc / "config.local").exists() else None,
            "git": git(root, "remote", "-v"), **snapshot(root)}


def test_remote_add_with_bad_name_or_s3_without_git_changes_nothing(ws, tmp_path):
    nb("remote", "add", "team", tmp_path / "remote", check=0)
    before = _remote_state(ws.root)
    for args in (["remote", "add", "bad name", tmp_path / "other"],
                 ["remote", "add", "a..b", tmp_path / "other"],
                 ["remote", "add", "store", "s3://bucket/prefix"]):
        refused = nb(*args)
        assert refused.returncode == 2 and "Traceback" not in refused.stderr, refused.stderr
        assert _remote_state(ws.root) == before
    s3 = nb("remote", "add", "store", "s3://bucket/prefix")
    assert "--git" in s3.stderr
    listing = cli_json("remote", "list")
    assert [(r["name"], r["default"]) for r in listing["remotes"]] == [("team", True)]


def test_remote_add_that_fails_half_way_puts_everything_back(ws, tmp_path, monkeypatch):
    from nbversion.core.storage import remotes
    from nbversion.errors import NbversionError

    ws.remote_add("team", str(tmp_path / "remote"))
    before = _remote_state(ws.root)

    def git_fails(*_args, **_kw):
        raise NbversionError("git remote add failed: simulated")

    monkeypatch.setattr(remotes, "_set_git_remote", git_fails)   # after DVC's config is written
    with pytest.raises(NbversionError, match="simulated"):
        ws.remote_add("second", str(tmp_path / "second"))
    assert _remote_state(ws.root) == before
    assert [r["name"] for r in cli_json("remote", "list")["remotes"] if r["default"]] == ["team"]


# --- 5. policy files are checked at commit ------------------------------------------------------

RULES_OK = '[stages.champion]\nrole = "admin"\ngates = ["metrics.mAP50-95 >= 0.5"]\n'


@pytest.mark.parametrize("rel, text, where", [
    (".nbversion/rules.toml", '[stages.champion]\nrole = "admin\n', "rules.toml:2"),
    (".nbversion/rules.toml", '[stages.champion]\n\nrole = "superuser"\n', "rules.toml:3"),
    (".nbversion/rules.toml", '[stages.champion]\nrole = "admin"\ngates = ["metrics.mAP50 >= high"]\n',
     "rules.toml:3"),
    (".nbversion/rules.toml", '[stages.champion]\nrole = "admin"\n[[stages.champion.gates]]\nmetric = "mAP50"\n'
                              'value = "high"\n', "rules.toml:4"),
    (".nbversion/rules.toml", '[stages.champion]\nrole = "admin"\ngate = ["metrics.mAP50 >= 0.5"]\n',
     "rules.toml:3"),
    (".nbversion/users.toml", '[users]\n"alice@example.com" = "admin"\n"bob@example.com" = "boss"\n',
     "users.toml:3"),
    (".nbversion/users.toml", '[users]\n"tester@example.com" = "contributer"\n', "users.toml:2"),   # oneself
    (".nbversion/config.toml", '[core]\nlarge_file_bytes = 1000000\nlock_timeout = "soon"\n', "config.toml:3"),
    (".nbversion/config.toml", '[gc]\nkeep_last = 0\n', "config.toml:2"),
])
def test_commit_refuses_an_invalid_policy_file_with_file_and_line(ws, rel, text, where):
    path = ws.root / rel
    original = path.read_text() if path.exists() else ""
    path.write_text(text)
    before = snapshot(ws.root)
    refused = nb("commit", "-m", "policy edit")
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert where in refused.stderr and "Traceback" not in refused.stderr and "hint:" in refused.stderr
    assert snapshot(ws.root) == before
    if rel == ".nbversion/rules.toml":
        path.write_text(RULES_OK)                   # a valid edit goes through
        nb("commit", "-m", "policy fixed", check=0)
        assert "rules.toml" in git(ws.root, "show", "--stat", "HEAD")
    else:
        path.write_text(original)
    assert cli_json("status")["changes"] == []
