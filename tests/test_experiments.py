"""Experiments as branches: new, list, compare, best, merge with metadata and audit rules.

Runs come from a real training (one per module, copied per test), versions from `model add` +
`register`, dataset metadata from `dataset add`: nothing the product reads is written by hand.
"""
from __future__ import annotations

import json
import shutil

import pytest

from conftest import cli, cli_json, git, snapshot
from trained import build_trained_workspace, copy_workspace
from nbversion.core.audit import chain as audit
from nbversion.demo import make_dataset
from nbversion.errors import NbversionError, NotFound


@pytest.fixture(scope="module")
def trained_template(tmp_path_factory):
    return build_trained_workspace(tmp_path_factory.mktemp("exp-trained"))


@pytest.fixture
def trained(trained_template, tmp_path, monkeypatch):
    """A copy of the trained workspace (demo dataset + one finished run on main); cwd is its root."""
    root, run_id = trained_template
    ws = copy_workspace(root, tmp_path / "project")
    monkeypatch.chdir(ws.root)
    return ws, run_id


def add_model_version(ws, tmp_path, name, run_id, metrics):
    """`model add` of the run's real weights with the given metrics, then `register NAME --from det`."""
    weights = tmp_path / f"{name}.pt"
    shutil.copyfile(ws.root / "runs" / run_id / "weights" / "best.pt", weights)
    ws.model_add("det", str(weights), metrics=metrics, dataset="demo")
    ws.register(name, version="1.0.0", source="det")


def test_new_branch_is_listed_with_its_runs(trained):
    ws, run_id = trained
    result = ws.exp_new("lr-sweep")
    assert git(ws.root, "branch", "--show-current").strip() == "exp/lr-sweep"
    assert "exp merge lr-sweep" in result.summary()
    listing = cli_json("exp", "list")
    assert listing["rows"][0][0] == "* exp/lr-sweep" and listing["rows"][0][3] == "+1 -0"
    assert listing["rows"][0][4] == 1                          # the run trained on main before the branch
    assert list(audit.iter_entries(ws.root))[-1][1]["action"] == "exp new"
    with pytest.raises(NbversionError, match="already exists"):
        ws.exp_new("lr-sweep")


def test_compare_and_best_across_branches(trained, tmp_path):
    ws, run_id = trained
    run_map = ws.runs_show(run_id).record["metrics"]["mAP50"]   # what the real training measured
    ws.exp_new("bigger")
    add_model_version(ws, tmp_path, "big", run_id, {"mAP50": run_map + 0.5, "val/loss": 1.5})
    git(ws.root, "checkout", "-q", "main")
    ws.exp_new("smaller")
    add_model_version(ws, tmp_path, "small", run_id, {"mAP50": run_map + 0.1, "val/loss": 0.9})

    table = ws.exp_compare(metric="mAP50")
    rows = {(r[0], r[2]): r[4] for r in table.rows}
    assert rows[("main", run_id)] == run_map and rows[("exp/bigger", "big@v1.0.0")] == run_map + 0.5
    assert rows[("exp/smaller", "small@v1.0.0")] == run_map + 0.1
    assert ("exp/bigger", "small@v1.0.0") not in rows           # a version is read from its own branch
    assert table.best["id"] == "big@v1.0.0" and table.best["branch"] == "exp/bigger"

    assert ws.exp_best("mAP50").best["branch"] == "exp/bigger"
    assert ws.exp_best("val/loss").best["id"] == "small@v1.0.0"       # a loss: lower wins
    assert ws.exp_best("val/loss", lower_is_better=False).best["id"] == "big@v1.0.0"
    shown = cli("exp", "best", "--metric", "val/loss", check=0).stdout
    assert "exp/smaller" in shown and "small@v1.0.0" in shown and "@vv" not in shown
    with pytest.raises(NotFound):
        ws.exp_best("no-such-metric")


def _switch_to_main(ws):
    git(ws.root, "checkout", "-q", "main")
    ws.checkout("main", force=True)       # the data of main's pointers back in the working tree


def _meta(ws, rev=None):
    text = git(ws.root, "show", f"{rev}:datasets/coco.meta.json") if rev else \
        (ws.root / "datasets/coco.meta.json").read_text()
    return json.loads(text)


def _assert_audit_verifies(ws, *actions):
    chain = audit.verify_chain(ws.root)
    assert chain.ok, chain.problem
    done = [e["action"] for _, e in audit.iter_entries(ws.root)]
    assert set(actions) <= set(done) and done[-1] == "exp merge"
    proc = cli("audit", "verify")
    assert proc.returncode == 0, proc.stdout


def test_same_data_tagged_on_both_sides_merges_metadata_by_rule(ws, tmp_path):
    source = make_dataset(tmp_path / "coco-src", train=4, val=2, classes=["cat", "dog", "bird"])
    ws.dataset_add("coco", source)
    ws.exp_new("relabel")
    moved = shutil.copytree(source, tmp_path / "coco-moved")
    ws.dataset_add("coco", moved, tags=["relabel"])            # same content, new source, tagged
    theirs = _meta(ws)
    _switch_to_main(ws)
    ws.dataset_add("coco", source, tags=["clean"])
    ours = _meta(ws)
    assert ours["content_hash"] == theirs["content_hash"] and ours["tags"] == ["clean"]

    result = ws.exp_merge("relabel")
    assert "datasets/coco.meta.json" in [r[0] for r in result.rows]
    assert ".nbversion/audit.jsonl" in [r[0] for r in result.rows]
    merged = _meta(ws)
    assert merged["tags"] == ["clean", "relabel"]              # lists: union, ours first
    assert merged["source"] == str(moved)                      # changed on one side: that side's
    assert merged["content_hash"] == ours["content_hash"] and merged["classes"] == ["cat", "dog", "bird"]
    assert len(git(ws.root, "rev-list", "--parents", "-n1", "HEAD").split()) == 3
    assert git(ws.root, "status", "--porcelain", "--untracked-files=no") == ""
    assert {"dataset/coco/relabel", "dataset/coco/clean"} <= set(git(ws.root, "tag").split())
    _assert_audit_verifies(ws, "exp new", "exp merge")


def test_different_data_on_both_sides_keeps_the_experiments_data_with_its_metadata(ws, tmp_path):
    ws.dataset_add("coco", make_dataset(tmp_path / "v0", train=4, val=2, classes=["cat", "dog", "bird"]))
    ws.exp_new("relabel")
    ws.dataset_add("coco", make_dataset(tmp_path / "v1", train=4, val=2, seed=1, classes=["cat", "dog", "fox"]),
                   tags=["relabel"])
    theirs = _meta(ws)
    experiment_label = (ws.root / "datasets/coco/labels/train/train_00000.txt").read_text()
    _switch_to_main(ws)
    ws.dataset_add("coco", make_dataset(tmp_path / "v2", train=4, val=2, seed=2, classes=["cat", "dog", "owl"]),
                   tags=["clean"])
    assert _meta(ws)["content_hash"] != theirs["content_hash"]

    result = ws.exp_merge("relabel")
    assert "datasets/coco.meta.json" in [r[0] for r in result.rows]
    merged = _meta(ws)
    # the experiment's data is kept, so its description comes whole with it: classes, counts, tags
    assert merged == theirs and merged["classes"] == ["cat", "dog", "fox"]
    assert (ws.root / "datasets/coco/labels/train/train_00000.txt").read_text() == experiment_label
    assert git(ws.root, "status", "--porcelain", "--untracked-files=no") == ""
    _assert_audit_verifies(ws, "exp new", "exp merge")


def test_code_conflict_aborts_and_changes_nothing(ws):
    (ws.root / "train.py").write_text("lr = 0.1\n")
    git(ws.root, "add", "train.py")
    git(ws.root, "commit", "-qm", "code")
    ws.exp_new("code")
    (ws.root / "train.py").write_text("lr = 0.2\n")
    git(ws.root, "commit", "-qam", "exp code")
    git(ws.root, "checkout", "-q", "main")
    (ws.root / "train.py").write_text("lr = 0.3\n")
    git(ws.root, "commit", "-qam", "main code")
    before = snapshot(ws.root)
    with pytest.raises(NbversionError, match="train.py"):
        ws.exp_merge("code")
    assert snapshot(ws.root) == before
    assert not (ws.root / ".git/MERGE_HEAD").exists()


def test_exp_merge_keeps_every_entry_as_written_and_names_both_heads(ws, tmp_path):
    """The log is a DAG: merging an experiment rewrites no entry; the merge entry names both tips."""
    (ws.root / "notes.txt").write_text("main\n")
    ws.commit("main before the branch")
    ws.exp_new("trial")
    (ws.root / "trial.txt").write_text("trial\n")
    ws.commit("work on the trial")
    branch_hashes = {e["hash"] for _, e in audit.iter_entries(ws.root)}
    branch_tip = audit.heads(ws.root)
    git(ws.root, "checkout", "-q", "main")
    (ws.root / "main.txt").write_text("main\n")
    ws.commit("work on main meanwhile")
    main_hashes = {e["hash"] for _, e in audit.iter_entries(ws.root)}
    main_tip = audit.heads(ws.root)

    ws.exp_merge("trial")
    entries = [e for _, e in audit.iter_entries(ws.root)]
    assert branch_hashes | main_hashes <= {e["hash"] for e in entries}    # nothing re-hashed
    assert entries[-1]["action"] == "exp merge"
    assert sorted(entries[-1]["prev"]) == sorted(branch_tip + main_tip)   # both heads named
    assert audit.heads(ws.root) == [entries[-1]["hash"]]
    assert cli("audit", "verify").returncode == 0


def test_magics_for_experiments_verify_gc_and_remotes(ws, tmp_path):
    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance()
    try:
        shell.run_cell("%load_ext nbversion")
        r = shell.run_cell("%mv_exp new trial")
        assert r.success and git(ws.root, "branch", "--show-current").strip() == "exp/trial"
        assert "exp/trial" in shell.run_cell("%mv_exp list").result._repr_html_()
        assert shell.run_cell("%mv_verify").result.exit_code == 0
        assert shell.run_cell("%mv_gc --dry-run").result.dry_run
        assert shell.run_cell(f"%mv_remote add team {tmp_path / 'remote'}").success
        assert shell.run_cell("%mv_push").result.remote == "team"
        r = shell.run_cell("%mv_exp merge nope")
        assert not r.success
    finally:
        InteractiveShell.clear_instance()
