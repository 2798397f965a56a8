"""Defects a reviewer found on issue 18's flows, each driven through the verbs a user types."""
from __future__ import annotations

from conftest import cli, cli_json
from test_training import TINY
from trained import trained, trained_template  # noqa: F401  (fixtures)


def tiny_train_from(ws, model: str):
    run = ws.train("demo", model, epochs=1, imgsz=64, batch=4, device="cpu", extra=dict(TINY), wait=True)
    assert run.record["status"] == "done", run.record
    return run


def test_commit_of_an_older_dataset_version_says_its_data_changed(ws, demo_data):
    """The pointer moved back: that is a data change, even though DVC stores nothing new."""
    cli("dataset", "add", "shapes", demo_data, check=0)
    (ws.root / "datasets" / "shapes" / "labels" / "train").iterdir().__next__().write_text("0 0.4 0.4 0.2 0.2\n")
    cli("commit", "-m", "fix a label", check=0)
    cli("checkout", "HEAD~1", "datasets/shapes", check=0)
    out = cli("commit", "-m", "back to the first labels", check=0).stdout
    assert "1 data path(s) changed" in out and "0 data path(s)" not in out, out


def test_forced_checkout_of_head_that_leaves_nothing_changed_says_nothing_to_commit(ws, demo_data):
    cli("dataset", "add", "shapes", demo_data, check=0)
    label = next((ws.root / "datasets" / "shapes" / "labels" / "train").iterdir())
    label.write_text("0 0.1 0.1 0.1 0.1\n")
    out = cli("checkout", "HEAD", "datasets/shapes", "--force", check=0)
    text = out.stdout + out.stderr
    assert "records them as a new version" not in text, text
    assert "nothing to commit" in text, text


def test_runs_list_shows_the_version_a_champion_ref_named_when_the_run_started(trained):
    ws, run_id = trained
    ws.register("det", version="1.0.0", source=run_id)
    ws.promote("det@v1.0.0")
    from_champion = tiny_train_from(ws, "det@champion")
    ws.register("det", version="2.0.0", source=from_champion.run_id)
    ws.promote("det@v2.0.0", force=True)                 # the champion moves on
    rows = [line for line in cli("runs", "list", check=0).stdout.splitlines() if from_champion.run_id in line]
    assert len(rows) == 1 and "det@champion (v1.0.0)" in rows[0], rows
    listed = {r["id"]: r for r in cli_json("runs", "list")["runs"]}
    assert listed[from_champion.run_id]["base_model"]["version"] == "v1.0.0"
