"""Issue 4: commit and status against raw `dvc add` + `git commit`, `%load_ext` and import time.

    python -m benchmarks.bench_workspace [--big-mb 1024] [--files 10000]
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

from ._util import BIN, bench_env, drop_caches, ours_repo, raw_repo, row, run, scratch

NBV = str(BIN / "nbversion")
DVC = str(BIN / "dvc")


def _write_big(path, megabytes: int) -> None:
    chunk = os.urandom(1 << 20)
    with open(path, "wb") as fh:
        for _ in range(megabytes):
            fh.write(chunk)


def _write_many(folder, count: int) -> None:
    folder.mkdir(parents=True)
    for i in range(count):
        (folder / f"{i:05d}.bin").write_bytes(os.urandom(4096))


def bench_big_file(megabytes: int) -> dict:
    with scratch("big") as tmp:
        raw, ours = raw_repo(tmp / "raw"), ours_repo(tmp / "ours")
        _write_big(raw / "big.bin", megabytes)
        (ours / "models").mkdir()
        subprocess.run(["cp", str(raw / "big.bin"), str(ours / "models" / "big.bin")], check=True)
        drop_caches()
        t_raw = run([DVC, "add", "-q", "big.bin"], raw) + run(["git", "add", "-A"], raw) \
            + run(["git", "commit", "-qm", "big"], raw)
        drop_caches()
        t_ours = run([NBV, "commit", "-m", "big"], ours)
    return row(f"commit one {megabytes} MB file", t_ours, t_raw, "<= 0.5x")


def bench_many_files(count: int) -> tuple[dict, dict]:
    with scratch("many") as tmp:
        raw, ours = raw_repo(tmp / "raw"), ours_repo(tmp / "ours")
        _write_many(raw / "many", count)
        (ours / "datasets").mkdir()
        subprocess.run(["cp", "-a", str(raw / "many"), str(ours / "datasets" / "many")], check=True)
        drop_caches()
        t_raw = run([DVC, "add", "-q", "many"], raw) + run(["git", "add", "-A"], raw) \
            + run(["git", "commit", "-qm", "many"], raw)
        t_ours = run([NBV, "commit", "-m", "many"], ours)
        commit_row = row(f"commit {count} files of 4 KB", t_ours, t_raw, "<= 1.0x")
        t_dvc_status = min(run([DVC, "status", "-q"], raw) for _ in range(3))
        t_cli = min(run([NBV, "status"], ours) for _ in range(3))
        code = ("import sys, time, nbversion as nbv; ws = nbv.open(sys.argv[1]); ws.status(); "
                "t = time.perf_counter(); r = ws.status(); print(time.perf_counter() - t, r.clean)")
        out = subprocess.run([sys.executable, "-c", code, str(ours)], env=bench_env(), check=True,
                             capture_output=True, text=True).stdout.split()
        assert out[1] == "True", "benchmark workspace should be clean"
        status_row = row(f"status, unchanged {count}-file workspace (API)", float(out[0]), t_dvc_status, "< 0.3 s")
        cli_row = row(f"status, unchanged {count}-file workspace (CLI process)", t_cli, t_dvc_status, "")
    return commit_row, status_row, cli_row


def import_ms(module: str) -> float:
    """Cumulative import time of `module` in a fresh interpreter, as `python -X importtime` reports it."""
    err = subprocess.run([sys.executable, "-X", "importtime", "-c", f"import {module}"],
                         capture_output=True, text=True, check=True).stderr
    line = next(l for l in reversed(err.splitlines()) if l.rstrip().endswith(f"| {module}"))
    return int(line.split("|")[1]) / 1e6


def bench_import_workspace() -> dict:
    # every Workspace verb is imported into the class body: this is the price of a typed API
    times = sorted(import_ms("nbversion.core.workspace") for _ in range(5))
    return row("import nbversion.core.workspace (-X importtime, median of 5)", times[2], None, "< 0.06 s")


def bench_load_ext() -> dict:
    code = ("import time; t0 = time.perf_counter(); from IPython.core.interactiveshell import InteractiveShell; "
            "sh = InteractiveShell.instance(); t = time.perf_counter(); sh.run_line_magic('load_ext', 'nbversion'); "
            "print(time.perf_counter() - t)")
    times = [float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout)
             for _ in range(5)]
    return row("%load_ext nbversion (median of 5)", sorted(times)[2], None, "< 0.1 s")


def main(argv=None) -> list[dict]:
    parser = argparse.ArgumentParser()
    parser.add_argument("--big-mb", type=int, default=int(os.environ.get("BENCH_BIG_MB", 1024)))
    parser.add_argument("--files", type=int, default=int(os.environ.get("BENCH_FILES", 10000)))
    args = parser.parse_args(argv)
    rows = [bench_import_workspace(), bench_load_ext(), bench_big_file(args.big_mb), *bench_many_files(args.files)]
    return rows


if __name__ == "__main__":
    from ._util import machine
    from .report import print_rows
    print(machine())
    print_rows(main())
