"""Defects a reviewer found on issue 18's flows, each driven through the verbs a user types."""
from __future__ import annotations

from conftest import cli, cli_json


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
