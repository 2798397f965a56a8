"""One rule each, whichever verb applies it: how sizes are printed, which names are valid."""
from __future__ import annotations

import os

import pytest

from conftest import cli, git


def test_dataset_list_and_diff_print_the_same_size_the_same_way(ws, tmp_path):
    source = tmp_path / "src"
    source.mkdir()
    (source / "big.bin").write_bytes(os.urandom(1_500_000))   # 1.5 MB, 1.4 MiB: the two rules differ
    cli("dataset", "add", "blobs", source, check=0)
    listed = cli("dataset", "list", check=0).stdout
    diffed = cli("diff", "HEAD~1", "HEAD", check=0).stdout
    listed_row = next(line for line in listed.splitlines() if line.startswith("blobs"))
    diffed_row = next(line for line in diffed.splitlines() if "datasets/blobs/big.bin" in line)
    assert "1.5 MB" in listed_row and "1.5 MB" in diffed_row


@pytest.mark.parametrize("name", ["a.b", "a b", "a_", "x/y"])
def test_model_add_and_register_refuse_the_same_names_up_front(ws, tmp_path, name):
    weights = tmp_path / "best.pt"
    weights.write_bytes(b"\x80\x02weights")
    head = git(ws.root, "rev-parse", "HEAD")
    added = cli("model", "add", name, weights)
    registered = cli("register", name, "--version", "1.0.0", "--from", weights)
    assert added.returncode != 0 and registered.returncode != 0
    for proc in (added, registered):
        assert "invalid" in proc.stderr and "letters, digits" in proc.stderr
    assert git(ws.root, "rev-parse", "HEAD") == head and git(ws.root, "tag") == ""


def test_model_add_and_register_accept_the_same_name(ws, tmp_path):
    weights = tmp_path / "best.pt"
    weights.write_bytes(b"\x80\x02weights")
    cli("model", "add", "yolo-v8_small", weights, check=0)
    cli("register", "yolo-v8_small", "--version", "1.0.0", "--from", weights, check=0)
    assert "yolo-v8_small@v1.0.0" in git(ws.root, "tag")
