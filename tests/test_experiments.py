"""Experiments as branches: new, list, compare, best, merge with metadata and audit rules."""
from __future__ import annotations

import json

import pytest

from conftest import cli, cli_json, git, snapshot
from test_verify import add_dataset, register_fake
from nbversion.core import audit, merge_rules
from nbversion.errors import NbversionError, NotFound


def write_run(ws, run_id, metrics):
    run = ws.root / "runs" / run_id
    run.mkdir(parents=True)
    (run / "run.json").write_text(json.dumps({"status": "finished", "metrics": metrics}))
    git(ws.root, "add", "runs")
    git(ws.root, "commit", "-qm", f"run {run_id}")


def audited_change(ws, path, text, action="note"):
    """A change committed the nbversion way: audit entry + commit in one transaction."""
    (ws.root / path).write_text(text)
    with ws.transaction(action) as tx:
        tx.audit(action, path)
        tx.commit(f"{action} {path}", [path])


def test_new_branch_is_listed_with_its_runs(ws):
    result = ws.exp_new("lr-sweep")
    assert git(ws.root, "branch", "--show-current").strip() == "exp/lr-sweep"
    assert "exp merge lr-sweep" in result.summary()
    write_run(ws, "r1", {"mAP50": 0.4})
    listing = cli_json("exp", "list")
    assert listing["rows"][0][0] == "* exp/lr-sweep" and listing["rows"][0][3] == "+2 -0"
    assert listing["rows"][0][4] == 1
    assert list(audit.iter_entries(ws.root))[-1][1]["action"] == "exp new"
    with pytest.raises(NbversionError, match="already exists"):
        ws.exp_new("lr-sweep")


def test_compare_and_best_across_branches(ws):
    write_run(ws, "base-run", {"mAP50": 0.40, "val/loss": 1.2})
    ws.exp_new("bigger")
    write_run(ws, "big-run", {"mAP50": 0.55, "val/loss": 1.5})
    register_fake(ws, "yolo", "1.0.0")
    git(ws.root, "checkout", "-q", "main")
    ws.exp_new("smaller")
    write_run(ws, "small-run", {"mAP50": 0.30, "val/loss": 0.9})

    table = ws.exp_compare(metric="mAP50")
    rows = {(r[0], r[2]): r[4] for r in table.rows}
    assert rows[("main", "base-run")] == 0.40 and rows[("exp/bigger", "big-run")] == 0.55
    assert ("exp/bigger", "yolo@v1.0.0") in rows
    assert table.best["id"] == "big-run"

    assert ws.exp_best("mAP50").best["branch"] == "exp/bigger"
    assert ws.exp_best("val/loss").best["id"] == "small-run"          # a loss: lower wins
    assert ws.exp_best("val/loss", lower_is_better=False).best["id"] == "big-run"
    assert "exp/smaller" in cli("exp", "best", "--metric", "val/loss", check=0).stdout
    with pytest.raises(NotFound):
        ws.exp_best("no-such-metric")


def test_conflicting_metadata_and_audit_merge_cleanly_and_audit_verifies(ws, tmp_path):
    add_dataset(ws, "coco", tag=None, seed=0)
    meta = {"name": "coco", "classes": ["cat"], "source": "v0", "splits": {"train": 10}}
    audited_change(ws, "datasets/coco.meta.json", json.dumps(meta))
    ws.exp_new("relabel")
    add_dataset(ws, "coco", tag=None, seed=1)
    theirs = {**meta, "classes": ["cat", "dog"], "source": "relabelled", "splits": {"train": 10, "val": 3}}
    audited_change(ws, "datasets/coco.meta.json", json.dumps(theirs), "relabel")
    experiment_data = (ws.root / "datasets/coco/img0.txt").read_text()
    git(ws.root, "checkout", "-q", "main")
    ws.checkout("main", force=True)
    add_dataset(ws, "coco", tag=None, seed=2)
    ours = {**meta, "classes": ["cat", "bird"], "source": "cleaned", "owner": "ana"}
    audited_change(ws, "datasets/coco.meta.json", json.dumps(ours), "clean")

    result = ws.exp_merge("relabel")
    assert "datasets/coco.meta.json" in [r[0] for r in result.rows]
    assert ".nbversion/audit.jsonl" in [r[0] for r in result.rows]
    merged = json.loads((ws.root / "datasets/coco.meta.json").read_text())
    assert merged["classes"] == ["cat", "bird", "dog"]        # lists: union
    assert merged["source"] == "relabelled"                    # scalar changed on both: the experiment's
    assert merged["owner"] == "ana" and merged["splits"] == {"train": 10, "val": 3}
    assert (ws.root / "datasets/coco/img0.txt").read_text() == experiment_data   # its data pointer won
    assert len(git(ws.root, "rev-list", "--parents", "-n1", "HEAD").split()) == 3
    assert git(ws.root, "status", "--porcelain", "--untracked-files=no") == ""

    chain = audit.verify_chain(ws.root)
    assert chain.ok, chain.problem
    actions = [e["action"] for _, e in audit.iter_entries(ws.root)]
    assert {"relabel", "clean"} <= set(actions) and actions[-1] == "exp merge"
    proc = cli("audit", "verify")
    assert proc.returncode == 0, proc.stdout


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


def test_merge_audit_rechains_by_time():
    def entry(time, action, prev):
        e = {"time": time, "user": "u", "action": action, "target": "", "details": {}, "prev": prev}
        e["hash"] = audit.entry_hash(e)
        return e

    first = entry("2026-01-01T00:00:00", "init", audit.GENESIS)
    ours = [first, entry("2026-01-03T00:00:00", "ours", first["hash"])]
    theirs = [first, entry("2026-01-02T00:00:00", "theirs", first["hash"])]
    dump = lambda es: "".join(json.dumps(e, sort_keys=True, separators=(",", ":")) + "\n" for e in es).encode()
    merged = [json.loads(line) for line in merge_rules.merge_audit(dump([first]), dump(ours), dump(theirs)).splitlines()]
    assert [e["action"] for e in merged] == ["init", "theirs", "ours"]
    assert merged[0] == first
    for before, after in zip(merged, merged[1:]):
        assert after["prev"] == before["hash"] and after["hash"] == audit.entry_hash(after)


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
