"""Issue 16: cost that follows the change. A tracked folder of N small files, one file changed:
`status`, `commit` and `dataset diff` against DVC's own (`dvc data status --granular`, `dvc add`
+ `git commit`) on the same files, in the same run.

    python -m benchmarks.bench_changes [--files 20000] [--kb 2] [--rounds 3]

Both repositories get the same N files, committed; then one file changes in each and the
commands run (best of `rounds`, a different file each round). The first status after a commit
hashes the files the racy-time rule does not trust yet (written within 2 s of the commit), so
both sides wait 2 s before measuring, as a user editing a dataset would.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import time
from pathlib import Path

from ._util import BIN, ours_repo, raw_repo, row, run, scratch

NBV, DVC = str(BIN / "nbversion"), str(BIN / "dvc")


def _files(folder: Path, count: int, kb: int) -> None:
    for i in range(count):
        sub = folder / f"{i // 1000:03d}"
        if i % 1000 == 0:
            sub.mkdir(parents=True)
        (sub / f"{i:07d}.bin").write_bytes(os.urandom(kb * 1024))


def _change(folder: Path, i: int) -> None:
    (folder / f"{i // 1000:03d}" / f"{i:07d}.bin").write_bytes(os.urandom(2048))


def main(argv=None) -> list[dict]:
    parser = argparse.ArgumentParser()
    parser.add_argument("--files", type=int, default=20000)
    parser.add_argument("--kb", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--images", type=int, default=5000, help="images of the YOLO dataset part (0: skip)")
    args = parser.parse_args(argv)
    n = args.files
    times = {k: [] for k in ("status", "commit", "dvc data status", "dvc status", "dvc add+commit")}
    peaks = []
    with scratch("changes") as tmp:
        ours, raw = ours_repo(tmp / "ours"), raw_repo(tmp / "raw")
        for repo in (ours, raw):
            _files(repo / "datasets" / "big", n, args.kb)
        run([NBV, "commit", "-m", "big"], ours)
        run([DVC, "add", "-q", "datasets/big"], raw)
        run(["git", "add", "datasets/big.dvc", "datasets/.gitignore"], raw)
        run(["git", "commit", "-qm", "big"], raw)
        time.sleep(2.1)
        run([NBV, "status"], ours)      # the first look after the commit: racy files checked once
        run([DVC, "data", "status"], raw)
        run([NBV, "status"], ours)
        for verb in (["status"], ["log", "-n", "5"], ["registry"]):   # read-only, nothing changed
            times.setdefault("read " + " ".join(verb), []).extend(run([NBV, *verb], ours) for _ in range(3))
        for r in range(args.rounds):
            for repo in (ours, raw):
                _change(repo / "datasets" / "big", 7 + r * 1777)
            time.sleep(0.05)
            times["status"].append(run([NBV, "status"], ours))
            peaks.append(_peak_mb([NBV, "status"], ours))
            times["dvc data status"].append(run([DVC, "data", "status", "--granular"], raw))
            times["dvc status"].append(_timed([DVC, "status"], raw))
            times["commit"].append(run([NBV, "commit", "-m", f"one file {r}"], ours))
            _change(ours / "datasets" / "big", 11 + r * 1777)
            peaks.append(_peak_mb([NBV, "commit", "-m", f"another file {r}"], ours))
            times["dvc add+commit"].append(run([DVC, "add", "-q", "datasets/big"], raw)
                                           + run(["git", "commit", "-qam", f"one file {r}"], raw))
    best = {k: min(v) for k, v in times.items()}
    reads = [row(f"`nbversion {verb}`, a fresh process, {n} files, nothing changed", best["read " + verb], None,
                 "< 0.15 s")
             for verb in ("status", "log -n 5", "registry")]
    return _dataset_rows(args.images) + reads + [row(f"status, {n} files, 1 changed (vs dvc data status --granular)", best["status"],
                best["dvc data status"], "< 0.3 s at 20,000; ≤ 0.1x at 200,000"),
            row(f"status, {n} files, 1 changed (vs dvc status)", best["status"], best["dvc status"], "ratio < 1"),
            row(f"commit, {n} files, 1 changed (vs dvc add + git commit)", best["commit"], best["dvc add+commit"],
                "< 0.5 s at 20,000; ≤ 0.2x at 200,000"),
            row(f"peak memory of status / commit, {n} files, 1 changed", max(peaks), None, "< 300 MB at 200,000",
                unit="MB")]


def _peak_mb(cmd, cwd) -> float:
    """Peak resident memory of one command (GNU time's %M, in kB)."""
    import tempfile

    from ._util import bench_env

    with tempfile.NamedTemporaryFile("r") as out:
        subprocess.run(["/usr/bin/time", "-f", "%M", "-o", out.name, *cmd], cwd=cwd, env=bench_env(),
                       capture_output=True, check=True)
        return int(out.read().split()[-1]) / 1024


def _dataset_rows(images: int) -> list[dict]:
    """A YOLO dataset of `images` images (and as many labels), one label edited: `commit` (which
    validates the edited dataset) and `dataset diff` against `dvc add` + `git commit` and `dvc diff`."""
    if not images:
        return []
    from nbversion.demo import make_dataset

    with scratch("dataset") as tmp:
        source = make_dataset(tmp / "src", train=images, val=0, size=32)
        ours, raw = ours_repo(tmp / "ours"), raw_repo(tmp / "raw")
        added = run([NBV, "dataset", "add", "big", str(source)], ours)
        copied = _copy_timed(source, raw / "datasets" / "big")   # what `dataset add` does too
        raw_added = copied + run([DVC, "add", "-q", "datasets/big"], raw) \
            + run(["git", "add", "datasets/big.dvc", "datasets/.gitignore"], raw) + run(["git", "commit", "-qm", "big"], raw)
        time.sleep(2.1)
        run([NBV, "status"], ours)
        for repo in (ours, raw):
            label = sorted((repo / "datasets" / "big" / "labels" / "train").glob("*.txt"))[3]
            label.write_text(label.read_text() + "0 0.5 0.5 0.1 0.1\n")
        commit = run([NBV, "commit", "-m", "one more box"], ours)
        raw_commit = run([DVC, "add", "-q", "datasets/big"], raw) + run(["git", "commit", "-qam", "one more box"], raw)
        diff = run([NBV, "dataset", "diff", "big", "HEAD~1", "HEAD"], ours)
        raw_diff = run([DVC, "diff", "HEAD~1", "HEAD"], raw)
    files = 2 * images + 1
    return [row(f"dataset add, {images} images, validated (vs cp -r + dvc add + git commit)", added, raw_added,
                "≤ 0.3x at 100,000 images"),
            row(f"commit of an edited dataset, {images} images ({files} files), 1 label changed "
                "(validated; vs dvc add + git commit)", commit, raw_commit, "< 0.5 s at 20,000 files"),
            row(f"dataset diff, {files} files, 1 label changed (vs dvc diff)", diff, raw_diff, "< 0.3 s at 20,000 files")]


def _copy_timed(source: Path, target: Path) -> float:
    import shutil

    start = time.perf_counter()
    shutil.copytree(source, target)
    return time.perf_counter() - start


def _timed(cmd, cwd) -> float:
    """`dvc status` exits 1 when something changed: time it without failing."""
    from ._util import bench_env

    start = time.perf_counter()
    subprocess.run(cmd, cwd=cwd, env=bench_env(), capture_output=True)
    return time.perf_counter() - start


if __name__ == "__main__":
    from .report import print_rows

    print_rows(main())
