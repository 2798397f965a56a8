"""Issue 6: `registry` listing with 10,000 versions, `resolve` warm, `audit verify` of 1,000,000 lines.

    python -m benchmarks.bench_registry [--versions 10000] [--lines 1000000]

The 10,000 versions are written the way `register` leaves them (a manifest each, an annotated
GTO tag each), in one commit and one `git fast-import`, so the setup takes seconds, not hours.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

from ._util import BIN, bench_env, ours_repo, scratch

NBV = str(BIN / "nbversion")


def _git(root, *args, stdin=None) -> str:
    return subprocess.run(["git", *args], cwd=root, env=bench_env(), input=stdin, check=True,
                          capture_output=True, text=True).stdout


def make_versions(root: Path, name: str, count: int) -> None:
    # no background `gc --auto` (10,000 new loose objects would start one) racing the timings
    _git(root, "config", "gc.auto", "0")
    for i in range(count):
        version = f"v{i // 100}.{i % 100}.0"
        folder = root / "registry" / name / version
        folder.mkdir(parents=True)
        manifest = {"name": name, "version": version, "files": {}, "metrics": {"mAP50-95": round(i / count, 4),
                    "mAP50": 0.5, "precision": 0.6, "recall": 0.7}, "params": {}, "lineage": {"dataset": None,
                    "run": None, "cell": None}, "source": "bench", "registered_by": "bench@example.com",
                    "registered_at": "2026-01-01T00:00:00+00:00", "message": ""}
        (folder / "manifest.json").write_text(json.dumps(manifest))
    _git(root, "add", "registry")
    _git(root, "commit", "-qm", f"{count} versions")
    head = _git(root, "rev-parse", "HEAD").strip()
    stream = []
    for i in range(count):
        tag, message = f"{name}@v{i // 100}.{i % 100}.0", f"Registering artifact {name} version v{i // 100}.{i % 100}.0"
        stream.append(f"tag {tag}\nfrom {head}\ntagger bench <bench@example.com> {1767225600 + i} +0000\n"
                      f"data {len(message)}\n{message}\n")
    _git(root, "fast-import", "--quiet", stdin="".join(stream))
    # 10,000 registrations would have run `git gc --auto` (commit does) which packs refs; a clone
    # gets them packed too. Loose, 10,000 tag files add about 0.2 s to every ref listing.
    _git(root, "pack-refs", "--all")


def timed(cmd, cwd) -> tuple[float, float]:
    """(wall, CPU) seconds of one command. CPU time is what a shared, busy machine cannot inflate."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(cmd, cwd=cwd, env=bench_env(), check=True, capture_output=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


# CPU seconds of this process and the git commands it ran (for the API figures)
CPU = ("import resource; cpu = lambda: sum(getattr(resource.getrusage(who), field) for who in "
       "(resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN) for field in ('ru_utime', 'ru_stime'))\n")


def in_process(root: Path, code: str) -> tuple[float, float]:
    """(wall, CPU) seconds printed by `code` in a fresh interpreter (the API, after a warm-up call)."""
    out = subprocess.run([sys.executable, "-c", CPU + code, str(root)], env=bench_env(), check=True,
                         capture_output=True, text=True).stdout
    wall, cpu = out.split()[-2:]
    return float(wall), float(cpu)


def timing_row(name: str, wall_cpu: tuple[float, float], goal: str) -> dict:
    wall, cpu = wall_cpu
    return {"benchmark": name, "nbversion": f"{wall:.3f} s (CPU {cpu:.3f} s)", "goal": goal}


def best(samples: list) -> tuple[float, float]:
    return min(samples)


def median(samples: list) -> tuple[float, float]:
    return sorted(samples)[len(samples) // 2]


def bench_registry_listing(root: Path, count: int) -> list[dict]:
    make_versions(root, "bench", count)
    cli = best([timed([NBV, "registry", "--json"], root) for _ in range(3)])
    api = in_process(root, "import sys, time, nbversion as nbv; ws = nbv.open(sys.argv[1]); ws.registry(); "
                           "t, c = time.perf_counter(), cpu(); r = ws.registry(); "
                           "assert len(r.versions) >= %d; "
                           "print(time.perf_counter() - t, cpu() - c)" % count)
    return [timing_row(f"registry listing, {count} versions (CLI process, best of 3)", cli, "< 1 s"),
            timing_row(f"registry listing, {count} versions (API, warm)", api, "< 1 s")]


def bench_resolve(root: Path) -> list[dict]:
    weights = root.parent / "weights.bin"
    weights.write_bytes(os.urandom(1 << 20))
    subprocess.run([NBV, "register", "real", "--version", "1.0.0", "--from", str(weights)], cwd=root,
                   env=bench_env(), check=True, capture_output=True)
    subprocess.run([NBV, "promote", "real@v1.0.0"], cwd=root, env=bench_env(), check=True, capture_output=True)
    api = in_process(root, "import sys, time, nbversion as nbv; ws = nbv.open(sys.argv[1]); ws.resolve('real@champion'); "
                           "ts = []\nfor _ in range(20):\n    t, c = time.perf_counter(), cpu(); "
                           "ws.resolve('real@champion'); ts.append((time.perf_counter() - t, cpu() - c))\n"
                           "print(*sorted(ts)[10])")
    cli = median([timed([NBV, "resolve", "real@champion"], root) for _ in range(5)])
    return [timing_row("resolve NAME@champion (API, warm, median of 20)", api, "< 0.2 s"),
            timing_row("resolve NAME@champion (CLI process, median of 5)", cli, "")]


def write_audit_lines(root: Path, count: int) -> None:
    """Append `count` chained lines after the workspace's own, exactly as `audit.append` writes them."""
    path = root / ".nbversion" / "audit.jsonl"
    prev = json.loads(path.read_text().splitlines()[-1])["hash"]
    with open(path, "a", encoding="utf-8") as fh:
        for i in range(count):
            entry = {"action": "commit", "details": {"paths": [f"data/{i}.csv"]}, "prev": prev,
                     "target": f"data/{i}.csv", "time": f"2026-01-01T00:00:00.{i % 1000000:06d}+00:00",
                     "user": "bench@example.com"}
            body = json.dumps(entry, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
            prev = hashlib.sha256(body.encode()).hexdigest()
            entry["hash"] = prev
            fh.write(json.dumps(entry, sort_keys=True, separators=(",", ":"), ensure_ascii=False) + "\n")


def bench_audit_verify(root: Path, lines: int) -> list[dict]:
    write_audit_lines(root, lines)
    seconds = timed([NBV, "audit", "verify"], root)
    size_mb = (root / ".nbversion" / "audit.jsonl").stat().st_size / 2**20
    return [timing_row(f"audit verify, {lines} lines / {size_mb:.0f} MB (CLI process)", seconds, "< 10 s"),
            {"benchmark": f"audit verify peak memory, {lines} lines", "nbversion": f"{peak_rss_mb(root):.0f} MB",
             "goal": "constant"}]


def peak_rss_mb(root: Path) -> float:
    """Max RSS of `nbversion audit verify` alone, measured by a parent that runs nothing else."""
    code = ("import resource, subprocess, sys; subprocess.run([sys.argv[1], 'audit', 'verify'], cwd=sys.argv[2], "
            "capture_output=True); print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")
    out = subprocess.run([sys.executable, "-c", code, NBV, str(root)], env=bench_env(), check=True,
                         capture_output=True, text=True).stdout
    return int(out) / 1024


def main(argv=None) -> list[dict]:
    parser = argparse.ArgumentParser()
    parser.add_argument("--versions", type=int, default=int(os.environ.get("BENCH_VERSIONS", 10000)))
    parser.add_argument("--lines", type=int, default=int(os.environ.get("BENCH_AUDIT_LINES", 1000000)))
    args = parser.parse_args(argv)
    rows = []
    with scratch("registry") as tmp:
        root = ours_repo(tmp / "ws")
        rows += bench_registry_listing(root, args.versions)
        rows += bench_resolve(root)
    with scratch("audit") as tmp:
        root = ours_repo(tmp / "ws")
        rows += bench_audit_verify(root, args.lines)
    return rows


if __name__ == "__main__":
    from ._util import machine
    from .report import print_rows
    print(machine())
    print_rows(main(sys.argv[1:]))
