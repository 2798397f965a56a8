"""Issue 15: `audit verify` of a signed history against git's own batch check of the same
signatures (`git log --format=%G?`, one ssh-keygen per commit), cold and with the cache.

    python -m benchmarks.bench_signed [--commits 1000]

The history: `nbversion init`, a key listed with `user add --key`, `security require-signing`,
then N signed commits, each changing a managed file (`.nbversion/bench.txt`), so each needs its
signature checked. The commits are made with git plumbing (fast-import for the trees, then
`git commit-tree -S` for each), which takes ≈ 10 ms a commit here.
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import time
from pathlib import Path

from ._util import BIN, bench_env, ours_repo, row, run, scratch

NBV = str(BIN / "nbversion")


def _git(args, cwd, stdin=None) -> str:
    return subprocess.run(["git", *args], cwd=cwd, env=bench_env(), input=stdin, capture_output=True, text=True,
                          check=True).stdout


def _signed_history(tmp: Path, commits: int) -> Path:
    repo = ours_repo(tmp / "ws")
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp / "key")], check=True)
    _git(["config", "user.signingkey", str(tmp / "key")], repo)
    run([NBV, "user", "add", "bench@example.com", "--role", "admin", "--key", str(tmp / "key.pub")], repo)
    run([NBV, "security", "require-signing"], repo)
    base = _git(["rev-parse", "HEAD"], repo).strip()
    stream = []
    for i in range(commits):   # the trees, fast: one fast-import of unsigned commits
        data = f"{i}\n"
        stream.append(f"commit refs/bench/plain\ncommitter bench <bench@example.com> {1_700_000_000 + i} +0000\n"
                      f"data 2\nc\n{'from ' + base if i == 0 else ''}\n"
                      f"M 100644 inline .nbversion/bench.txt\ndata {len(data)}\n{data}\n")
    _git(["fast-import", "--quiet"], repo, "".join(stream))
    trees = _git(["log", "--reverse", "--format=%T", "refs/bench/plain", f"^{base}"], repo).split()
    parent = base
    for i, tree in enumerate(trees):   # then each signed, on top of the last
        parent = _git(["-c", "gpg.format=ssh", "commit-tree", "-S", tree, "-p", parent, "-m", f"bench {i}"], repo).strip()
    _git(["update-ref", "-d", "refs/bench/plain"], repo)
    _git(["reset", "-q", "--hard", parent], repo)
    return repo


def main(argv=None) -> list[dict]:
    parser = argparse.ArgumentParser()
    parser.add_argument("--commits", type=int, default=1000)
    args = parser.parse_args(argv)
    with scratch("signed") as tmp:
        started = time.perf_counter()
        repo = _signed_history(tmp, args.commits)
        made = time.perf_counter() - started
        raw = run(["git", "-c", "gpg.format=ssh", "-c", "gpg.ssh.allowedSignersFile=.nbversion/allowed_signers",
                   "log", "--format=%H %G? %GS"], repo)
        sample = _git(["rev-list", "-n", "30", "HEAD"], repo).split()
        each = statistics.median(run(["git", "-c", "gpg.ssh.allowedSignersFile=.nbversion/allowed_signers",
                                      "verify-commit", sha], repo) for sha in sample)
        cache = repo / ".nbversion" / "tmp" / "signatures.json"
        cache.unlink(missing_ok=True)
        cold = run([NBV, "audit", "verify"], repo)
        warm = run([NBV, "audit", "verify"], repo)
    n = args.commits
    print(f"(made {n} signed commits in {made:.1f} s; one git verify-commit: {each * 1000:.1f} ms, "
          f"so {n} one by one ≈ {each * n:.1f} s)")
    return [row(f"audit verify, {n} signed commits, cold (vs git log --format=%G?, {os.cpu_count()} CPUs)",
                cold, raw, "ratio ≤ 1.5"),
            row(f"audit verify, {n} signed commits, cached (vs git log --format=%G?)", warm, raw, "ratio ≤ 0.2")]


if __name__ == "__main__":
    from .report import print_rows

    print_rows(main())
