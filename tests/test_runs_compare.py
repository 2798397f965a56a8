"""`runs compare`: curves, differing parameters, dataset versions and best epochs of 2-10 runs,
through the CLI, the API and the magic, with a run from an experiment branch."""
from __future__ import annotations

import json
import re

import pytest

from conftest import cli, git
from nbversion.errors import NotFound, UsageError
from test_training import TINY
from trained import build_trained_workspace, copy_workspace, isolated_env, tiny_train

METRICS = ("box_loss", "cls_loss", "dfl_loss", "val_box_loss", "val_cls_loss", "val_dfl_loss",
           "precision", "recall", "mAP50", "mAP50-95", "lr")


@pytest.fixture(scope="module")
def compare_template(tmp_path_factory):
    """main: run A (1 epoch, lr0 0.003) and run B (2 epochs, lr0 0.01); exp/x: run C (1 epoch).
    The workspace is left on main, where C's folder is not in the working tree."""
    import nbversion as nbv

    base = tmp_path_factory.mktemp("compare")
    root, first = build_trained_workspace(base)
    with pytest.MonkeyPatch.context() as mp:
        isolated_env(mp, base / "home")
        mp.chdir(root)
        ws = nbv.open(root)
        second = ws.train("demo", "yolov8n.yaml", epochs=2, imgsz=64, batch=4, device="cpu",
                          extra={**TINY, "lr0": 0.01}, wait=True)
        assert second.record["status"] == "done", second.record
        ws.exp_new("x")
        on_branch = tiny_train(ws)
        assert on_branch.record["status"] == "done", on_branch.record
        ws.checkout("main")
    return root, first, second.run_id, on_branch.run_id


@pytest.fixture
def runs3(ws, compare_template, monkeypatch):
    root, *ids = compare_template
    copied = copy_workspace(root, ws.root)
    monkeypatch.chdir(copied.root)
    return (copied, *ids)


def test_cli_shows_only_differing_params_dataset_versions_and_best_epochs(runs3):
    ws, a, b, _ = runs3
    out = cli("runs", "compare", a, b, check=0).stdout
    header = out.splitlines()[0]
    assert "lr0" in header and "epochs" in header            # the parameters that differ
    for same in ("imgsz", "batch", "optimizer", "mosaic", "data"):   # equal in both runs: not shown
        assert not re.search(rf"\b{same}\b", header), header
    dataset = ws.runs_show(a).record["dataset"]
    commit, content = dataset["commit"][:8], dataset["md5"][:8]   # the ref `dataset show` takes, and the data's hash
    assert out.count(f"demo@{commit}") == 2 and out.count(content) == 2
    assert ws.dataset_show(f"demo@{commit}").meta["content_hash"] == dataset["md5"]
    data = json.loads(cli("runs", "compare", a, b, "--json", check=0).stdout)
    assert data["metric"] == "mAP50-95"
    assert set(data["params"]) == {"epochs", "lr0"}
    assert data["params"]["lr0"] == {a: 0.003, b: 0.01} and data["params"]["epochs"] == {a: 1, b: 2}
    for run, epochs in ((a, 1), (b, 2)):
        series = data["series"][run]
        assert all(len(series[m]) == epochs for m in METRICS), {m: len(series.get(m) or []) for m in METRICS}
        row = next(r for r in data["runs"] if r["id"] == run)
        best = max(series["mAP50-95"])
        assert row["best"] == best and row["best_epoch"] == series["epoch"][series["mAP50-95"].index(best)]
        assert row["dataset"] == f"demo@{commit}" and row["data"] == content and row["where"] == "working tree"
    winner = max(data["runs"], key=lambda r: r["best"])
    assert f"best mAP50-95: {winner['id']}" in out


def test_params_compare_as_trained_defaults_shown_and_numbers_by_value(runs3):
    # run D leaves lr0 to Ultralytics' default and writes mosaic as 0.0 where A wrote 0
    ws, a, _, _ = runs3
    extra = {k: v for k, v in TINY.items() if k != "lr0"} | {"mosaic": 0.0}
    d = ws.train("demo", "yolov8n.yaml", epochs=1, imgsz=64, batch=4, device="cpu", extra=extra, wait=True)
    compared = ws.runs_compare([a, d.run_id])
    assert set(compared.params) == {"lr0"}, compared.params          # mosaic 0 and 0.0: the same
    assert compared.params["lr0"] == {a: 0.003, d.run_id: 0.01}     # the default D trained with


def test_metric_by_stored_or_ultralytics_name_and_losses_lower_is_better(runs3):
    ws, a, b, _ = runs3
    by_loss = ws.runs_compare([a, b], metric="val/box_loss")     # Ultralytics' name of val_box_loss
    assert by_loss.metric == "val_box_loss"
    for row in by_loss.runs:
        losses = by_loss.series[row["id"]]["val_box_loss"]
        assert row["best"] == min(losses)
    long = json.loads(cli("runs", "compare", a, b, "--metric", "metrics/mAP50(B)", "--json", check=0).stdout)
    short = json.loads(cli("runs", "compare", a, b, "--metric", "mAP50", "--json", check=0).stdout)
    assert long["metric"] == short["metric"] == "mAP50" and long["runs"] == short["runs"]
    with pytest.raises(UsageError, match="no-such-metric"):
        ws.runs_compare([a, b], metric="no-such-metric")


def test_a_run_of_an_experiment_branch_compares_from_main(runs3):
    ws, a, b, on_branch = runs3
    assert git(ws.root, "branch", "--show-current").strip() == "main"
    assert not (ws.root / "runs" / on_branch / "run.json").exists()
    data = json.loads(cli("runs", "compare", a, on_branch, "--json", check=0).stdout)
    row = next(r for r in data["runs"] if r["id"] == on_branch)
    assert row["where"] == "exp/x" and row["status"] == "done" and row["best_epoch"] is not None
    assert len(data["series"][on_branch]["mAP50-95"]) == 1
    assert data["params"] == {}      # the same training on two branches: nothing differs
    assert "no parameter differs" in cli("runs", "compare", a, on_branch, check=0).stdout


def test_wrong_number_of_runs_or_unknown_run_is_a_clear_error(runs3):
    ws, a, b, _ = runs3
    one = cli("runs", "compare", a)
    assert one.returncode != 0 and "2 to 10" in one.stderr and "got 1" in one.stderr
    eleven = cli("runs", "compare", *[f"run-{n}" for n in range(11)])
    assert eleven.returncode != 0 and "2 to 10" in eleven.stderr and "got 11" in eleven.stderr
    unknown = cli("runs", "compare", a, "no-such-run")
    assert unknown.returncode != 0 and "no-such-run" in unknown.stderr and "hint:" in unknown.stderr
    with pytest.raises(NotFound, match="no-such-run"):
        ws.runs_compare([a, "no-such-run"])
    with pytest.raises(UsageError, match="got 1"):
        ws.runs_compare([a, a])                  # the same run twice is one run


def test_magic_renders_one_chart_with_a_curve_per_run(runs3):
    from IPython.core.interactiveshell import InteractiveShell

    ws, a, b, on_branch = runs3
    shell = InteractiveShell.instance()
    try:
        shell.run_line_magic("load_ext", "nbversion")
        result = shell.run_line_magic("mv_runs", f"compare {a} {b} {on_branch}")
        page = result._repr_html_()
    finally:
        InteractiveShell.clear_instance()
    assert page.count("<img ") == 1 and "data:image/png;base64," in page
    legend = re.findall(r"class='nbv-curve'.*?</span> ([^<]+)</span>", page)
    assert legend == [a, b, on_branch]
    assert "class=nbv-hl" in page                 # the run with the best mAP50-95 is marked


def test_exp_best_takes_the_stored_name_and_ultralytics_long_name_alike(runs3):
    ws, a, b, on_branch = runs3
    stored = json.loads(cli("exp", "best", "--metric", "mAP50-95", "--json", check=0).stdout)
    long = json.loads(cli("exp", "best", "--metric", "metrics/mAP50-95(B)", "--json", check=0).stdout)
    assert long["best"] == stored["best"] and stored["best"]["id"] in (a, b, on_branch)
    compared = ws.exp_compare(metric="metrics/mAP50-95(B)")
    assert compared.headers[-1] == "mAP50-95" and {a, b, on_branch} <= {row[2] for row in compared.rows}
