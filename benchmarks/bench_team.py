"""Issue 14: `nbversion pull` of a diverged clone (a merge, then the data) against plain
`git pull` + `dvc pull` on the same history.

    python -m benchmarks.bench_team [--files 200] [--kb 64] [--rounds 2]

Alice adds a dataset and pushes; Bob committed meanwhile. Bob's clone is copied, and the copy
pulls with the raw tools (`git pull --no-rebase --no-edit`: the audit log merges by
`merge=union`; then `dvc pull`), the original with `nbversion pull` (merge by rule, a `pull
merge` audit entry, then the data). Best of `rounds`, a fresh pair each round.
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
from pathlib import Path

from ._util import BIN, bench_env, ours_repo, row, run, scratch

NBV = str(BIN / "nbversion")
DVC = str(BIN / "dvc")


def _files(folder: Path, count: int, kb: int) -> None:
    folder.mkdir(parents=True)
    for i in range(count):
        (folder / f"{i:05d}.bin").write_bytes(os.urandom(kb * 1024))


def _diverged_pair(tmp: Path, files: int, kb: int) -> tuple[Path, Path]:
    """(bob, bob's copy): both one commit ahead of the remote, which has one of alice's on top."""
    alice = ours_repo(tmp / "alice")
    _files(alice / "datasets" / "base", files, kb)
    run([NBV, "commit", "-m", "base data"], alice)
    run([NBV, "remote", "add", "team", str(tmp / "remote")], alice)
    run([NBV, "push"], alice)
    run([NBV, "clone", str(tmp / "remote"), str(tmp / "bob")], tmp)
    _files(alice / "datasets" / "alice", files, kb)
    run([NBV, "commit", "-m", "alice's data"], alice)
    run([NBV, "push"], alice)
    (tmp / "bob" / "notes.md").write_text("bob's notes\n")
    run([NBV, "commit", "-m", "bob's notes"], tmp / "bob")
    shutil.copytree(tmp / "bob", tmp / "bob-raw", symlinks=True)
    return tmp / "bob", tmp / "bob-raw"


def main(argv=None) -> list[dict]:
    parser = argparse.ArgumentParser()
    parser.add_argument("--files", type=int, default=200)
    parser.add_argument("--kb", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args(argv)
    ours, raw = [], []
    for _ in range(args.rounds):
        with scratch("team") as tmp:
            bob, copy = _diverged_pair(tmp, args.files, args.kb)
            branch = subprocess.run(["git", "branch", "--show-current"], cwd=copy, capture_output=True, text=True,
                                    check=True).stdout.strip()
            raw.append(run(["git", "pull", "-q", "--no-rebase", "--no-edit", "team", branch], copy)
                       + run([DVC, "pull", "-q", "-r", "team"], copy))
            ours.append(run([NBV, "pull"], bob))
            merged = subprocess.run(["git", "rev-list", "--parents", "-n", "1", "HEAD"], cwd=bob, capture_output=True,
                                    text=True, check=True).stdout.split()
            assert len(merged) == 3, "nbversion pull made no merge commit"
    return [row(f"pull of a diverged clone: merge + {args.files} files of {args.kb} KB "
                "(vs git pull + dvc pull)", min(ours), min(raw), "ratio ≤ 2")]


if __name__ == "__main__":
    from .report import print_rows

    print_rows(main())
