"""Helpers shared by the benchmarks: timing, isolated repos, the machine description."""
from __future__ import annotations

import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

BIN = Path(sys.executable).parent
# outside any git repository: nbversion refuses to init inside another repo
WORK = Path(os.environ.get("BENCH_DIR", Path(tempfile.gettempdir()) / "nbversion-bench"))


def machine() -> str:
    cpus = os.cpu_count()
    try:
        mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (ValueError, OSError):
        mem = 0
    return f"{platform.system()} {platform.machine()}, {cpus} cores, {mem:.0f} GiB RAM, Python {platform.python_version()}"


def bench_env() -> dict:
    env = dict(os.environ, DVC_NO_ANALYTICS="1", GIT_AUTHOR_NAME="bench", GIT_COMMITTER_NAME="bench",
               GIT_AUTHOR_EMAIL="bench@example.com", GIT_COMMITTER_EMAIL="bench@example.com",
               NBVERSION_USER="bench@example.com")
    env["PATH"] = f"{BIN}:{env.get('PATH', '')}"
    # as on a user's machine, Python caches bytecode: without it every command recompiles the
    # modules it imports (≈ 40 ms here), which no user pays after the first run
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def run(cmd, cwd) -> float:
    """Wall seconds of one command; raises if it fails."""
    start = time.perf_counter()
    subprocess.run(cmd, cwd=cwd, env=bench_env(), check=True, capture_output=True)
    return time.perf_counter() - start


@contextmanager
def scratch(name: str):
    WORK.mkdir(parents=True, exist_ok=True)
    path = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=WORK))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def raw_repo(path: Path) -> Path:
    """A plain git + DVC repo, as a user of the raw tools would make it."""
    path.mkdir(parents=True, exist_ok=True)
    subprocess.run(["git", "init", "-q"], cwd=path, check=True, env=bench_env())
    subprocess.run([str(BIN / "dvc"), "init", "-q"], cwd=path, check=True, env=bench_env())
    subprocess.run(["git", "commit", "-qm", "init"], cwd=path, check=True, env=bench_env())
    return path


def ours_repo(path: Path) -> Path:
    subprocess.run([str(BIN / "nbversion"), "init", str(path)], check=True, env=bench_env(), capture_output=True)
    return path


def row(name: str, ours: float, raw: float | None, goal: str, unit: str = "s") -> dict:
    ratio = ours / raw if raw else None
    return {"benchmark": name, "nbversion": f"{ours:.3f} {unit}", "baseline": f"{raw:.3f} {unit}" if raw else "",
            "ratio": f"{ratio:.2f}x" if ratio else "", "goal": goal}


def drop_caches() -> None:
    """Best effort: flush dirty pages so one run does not pay for the other's writes."""
    subprocess.run(["sync"], check=False)
