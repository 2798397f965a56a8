"""Smaller defects found on real flows (issue 12), each driven through the verbs a user types."""
from __future__ import annotations

import json
import math

import pytest

from conftest import cli, cli_json, git, snapshot
from nbversion.errors import UsageError


@pytest.fixture
def weights(tmp_path):
    """Three different small PyTorch files, outside the workspace."""
    import torch

    files = {}
    for name, fill in (("w0", 0.0), ("w1", 1.0), ("w2", 2.0)):
        files[name] = tmp_path / f"{name}.pt"
        torch.save({"w": torch.full((4,), fill)}, files[name])
    return files


def model_meta(root, name="det") -> dict:
    return cli_json("model", "show", name, cwd=root)["meta"]


def test_register_from_an_earlier_model_version(ws, weights):
    """`register --from det@~1` takes what `model show det@~1` shows: that version's weights and metrics."""
    cli("model", "add", "det", weights["w0"], "--metric", "mAP50=0.5", check=0)
    cli("model", "add", "det", weights["w1"], "--metric", "mAP50=0.6", check=0)
    shown = cli("model", "show", "det@~1", check=0).stdout
    assert "0.5" in shown
    cli("register", "det", "--version", "1.0.0", "--from", "det@~1", check=0)
    resolved = cli_json("resolve", "det@v1.0.0")
    assert open(resolved["path"], "rb").read() == weights["w0"].read_bytes()
    registry = cli("registry", "det", check=0).stdout
    assert "v1.0.0" in registry and "0.5" in registry
    too_far = cli("register", "det", "--version", "2.0.0", "--from", "det@~5")
    assert too_far.returncode == 1 and "goes back too far" in too_far.stderr


def test_exp_compare_and_best_name_versions_as_their_tags(ws, weights):
    cli("exp", "new", "tune", check=0)
    cli("model", "add", "detector", weights["w0"], "--metric", "mAP50=0.7", check=0)
    cli("register", "detector", "--version", "0.1.0", "--from", "detector", check=0)
    compare = cli("exp", "compare", check=0).stdout
    best = cli("exp", "best", "--metric", "mAP50", check=0).stdout
    for out in (compare, best):
        assert "detector@v0.1.0" in out and "@vv" not in out
    assert git(ws.root, "tag", "--list", "detector@v0.1.0").strip() == "detector@v0.1.0"


def test_exp_merge_never_pairs_metrics_with_other_weights(ws, weights):
    """Metrics measured on w0 on the experiment must not land on w1, which main added meanwhile."""
    cli("model", "add", "det", weights["w0"], "--metric", "mAP50=0.5", check=0)
    cli("exp", "new", "remeasure", check=0)
    cli("model", "add", "det", weights["w0"], "--metric", "mAP50=0.9", check=0)   # same weights, new metric
    cli("checkout", "main", check=0)
    cli("model", "add", "det", weights["w1"], "--metric", "mAP50=0.6", check=0)   # new weights on main
    cli("exp", "merge", "remeasure", check=0)
    meta = model_meta(ws.root)
    stored = (ws.root / "models" / "det" / meta["file"]).read_bytes()
    assert stored == weights["w1"].read_bytes()
    assert meta["metrics"] == {"mAP50": 0.6}, "metrics of w0 attached to w1"


def test_exp_merge_takes_the_experiments_weights_with_their_metrics(ws, weights):
    cli("model", "add", "det", weights["w0"], "--metric", "mAP50=0.5", check=0)
    cli("exp", "new", "retrain", check=0)
    cli("model", "add", "det", weights["w2"], "--metric", "mAP50=0.8", check=0)   # new weights on the experiment
    cli("checkout", "main", check=0)
    cli("model", "add", "det", weights["w0"], "--metric", "mAP50=0.55", check=0)  # main re-measured w0
    cli("exp", "merge", "retrain", check=0)
    meta = model_meta(ws.root)
    assert (ws.root / "models" / "det" / meta["file"]).read_bytes() == weights["w2"].read_bytes()
    assert meta["metrics"] == {"mAP50": 0.8}


@pytest.mark.parametrize("value", ["inf", "-inf", "nan", "abc", "true", ""])
def test_metrics_must_be_finite_numbers(ws, weights, value):
    before = snapshot(ws.root)
    proc = cli("model", "add", "det", weights["w0"], "--metric", f"mAP50={value}")
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stderr.startswith(f"error: --metric mAP50=") and "finite number" in proc.stderr
    assert snapshot(ws.root) == before
    with pytest.raises(UsageError, match="finite number"):
        ws.model_add("det", weights["w0"], metrics={"mAP50": math.inf})
    assert snapshot(ws.root) == before
    cli("model", "add", "det", weights["w0"], "--metric", "mAP50=0.25", check=0)
    assert model_meta(ws.root)["metrics"] == {"mAP50": 0.25}


def test_negative_counts_are_usage_errors(ws):
    for i in range(3):
        (ws.root / f"note{i}.md").write_text(str(i))
        cli("commit", "-m", f"note {i}", check=0)
    assert len(cli_json("log", "-n", "2")["entries"]) == 2
    for argv in (["log", "-n", "-5"], ["audit", "-n", "-5"], ["gc", "--keep-last", "-1"],
                 ["dataset", "show", "x", "--samples", "-1"], ["train", "--data", "x", "--epochs", "0"]):
        proc = cli(*argv)
        assert proc.returncode == 2 and proc.stderr.startswith("error: "), (argv, proc.stderr)
        assert "0 or more" in proc.stderr or "1 or more" in proc.stderr, proc.stderr
    with pytest.raises(UsageError):
        ws.log(-5)
    with pytest.raises(UsageError):
        ws.audit(limit=-5)
    assert len(json.loads(cli("audit", "-n", "1", "--json", check=0).stdout)["entries"]) == 1
