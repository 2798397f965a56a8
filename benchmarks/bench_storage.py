"""Issue 12: `nbversion commit` of data (core.link = copy, the default) against raw `dvc add` +
`git commit` in DVC's default mode, in the same run, with the working tree's link counts.

    python -m benchmarks.bench_storage [--big-mb 1024] [--mid-files 2000] [--mid-kb 500] [--small-files 10000]

Each case writes the same bytes into a raw git + DVC repo and an nbversion workspace, then times
the commit of each. "links" is the set of st_nlink values of the committed working-tree files:
{1} means an edit in place cannot reach the cache.
"""
from __future__ import annotations

import argparse
import os
import subprocess
from pathlib import Path

from ._util import BIN, drop_caches, ours_repo, raw_repo, row, run, scratch

NBV = str(BIN / "nbversion")
DVC = str(BIN / "dvc")


def _write(folder: Path, count: int, size: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    block = os.urandom(min(size, 1 << 20))
    for i in range(count):
        with open(folder / f"{i:05d}.bin", "wb") as fh:
            fh.write(i.to_bytes(8, "little"))          # every file distinct, as real data is
            left = size - 8
            while left > 0:
                fh.write(block[:left])
                left -= len(block[:left])


def _links(folder: Path) -> str:
    counts = sorted({p.stat().st_nlink for p in folder.rglob("*") if p.is_file()})
    return "{" + ",".join(map(str, counts)) + "}"


def _once(count: int, size: int, ours_first: bool) -> tuple[float, float, str, str]:
    with scratch("storage") as tmp:
        raw, ours = raw_repo(tmp / "raw"), ours_repo(tmp / "ours")
        _write(raw / "data", count, size)
        (ours / "datasets").mkdir()
        subprocess.run(["cp", "-a", str(raw / "data"), str(ours / "datasets" / "data")], check=True)

        def time_raw():
            drop_caches()
            return run([DVC, "add", "-q", "data"], raw) + run(["git", "add", "-A"], raw) \
                + run(["git", "commit", "-qm", "data"], raw)

        def time_ours():
            drop_caches()
            return run([NBV, "commit", "-m", "data"], ours)

        if ours_first:
            t_ours, t_raw = time_ours(), time_raw()
        else:
            t_raw, t_ours = time_raw(), time_ours()
        return t_ours, t_raw, _links(ours / "datasets" / "data"), _links(raw / "data")


def bench_case(label: str, count: int, size: int, goal: str, repeat: int = 2) -> dict:
    """Best of `repeat` fresh runs of each side, in both orders (the machine is shared: the best
    run is the least disturbed one)."""
    runs = [_once(count, size, ours_first=bool(n % 2)) for n in range(repeat)]   # either order once
    t_ours, t_raw = min(r[0] for r in runs), min(r[1] for r in runs)
    result = row(f"commit {label}, best of {repeat}", t_ours, t_raw, goal)
    result["nbversion"] += f", links {runs[-1][2]}"
    result["baseline"] += f", links {runs[-1][3]}"
    return result


def main(argv=None) -> list[dict]:
    parser = argparse.ArgumentParser()
    parser.add_argument("--big-mb", type=int, default=1024)
    parser.add_argument("--mid-files", type=int, default=2000)
    parser.add_argument("--mid-kb", type=int, default=500)
    parser.add_argument("--small-files", type=int, default=10000)
    args = parser.parse_args(argv)
    return [
        bench_case(f"one {args.big_mb} MB file", 1, args.big_mb << 20, "<= 0.5x"),
        bench_case(f"{args.mid_files} files of {args.mid_kb} KB", args.mid_files, args.mid_kb << 10, "<= 0.5x"),
        bench_case(f"{args.small_files} files of 4 KB", args.small_files, 4096, "<= 1.0x"),
    ]


if __name__ == "__main__":
    from .report import print_rows

    print_rows(main())
