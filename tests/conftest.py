"""Shared fixtures: every test runs in a throw-away repo with an isolated HOME and git identity."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
USER = "tester@example.com"


@pytest.fixture(autouse=True)
def isolated_home(tmp_path_factory, monkeypatch):
    """Nothing touches the developer's own git / DVC / Ultralytics config."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(home / ".gitconfig"))
    (home / ".gitconfig").write_text(f"[user]\n\temail = {USER}\n\tname = Tester\n"
                                     "[init]\n\tdefaultBranch = main\n")
    for var in ("NBVERSION_USER", "JUPYTERHUB_USER", "GIT_DIR", "GIT_WORK_TREE", "GIT_AUTHOR_NAME",
                "GIT_AUTHOR_EMAIL", "GIT_COMMITTER_NAME", "GIT_COMMITTER_EMAIL"):   # a developer's own identity
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("DVC_NO_ANALYTICS", "1")
    monkeypatch.setenv("YOLO_CONFIG_DIR", str(home / "yolo"))
    monkeypatch.setenv("YOLO_OFFLINE", "true")
    monkeypatch.setenv("YOLO_AUTOINSTALL", "false")
    return home


@pytest.fixture
def ws(tmp_path, monkeypatch):
    """An initialised workspace; the test's cwd is its root."""
    import nbversion as nbv

    root = tmp_path / "project"
    workspace = nbv.init(root)
    monkeypatch.chdir(root)
    return workspace


@pytest.fixture
def demo_data(tmp_path):
    """A generated YOLO dataset outside the workspace (16 train + 8 val, 64 px)."""
    from nbversion.demo import make_dataset

    return make_dataset(tmp_path / "demo-src")


def cli(*args, cwd=None, env=None, check=None):
    """Run the real `nbversion` console script; returns CompletedProcess (text)."""
    exe = Path(sys.executable).with_name("nbversion")
    proc = subprocess.run([str(exe), *map(str, args)], cwd=cwd, env=env or os.environ.copy(),
                          capture_output=True, text=True, timeout=600)
    if check is not None:
        assert proc.returncode == check, proc.stdout + proc.stderr
    return proc


def cli_json(*args, cwd=None):
    proc = cli(*args, "--json", cwd=cwd, check=0)
    return json.loads(proc.stdout)


def git(root, *args) -> str:
    return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, check=True).stdout


def snapshot(root) -> dict:
    """What a failed command must leave unchanged: git status, HEAD, audit log, DVC cache."""
    root = Path(root)
    cache = root / ".dvc" / "cache"
    objects = sorted(str(p.relative_to(cache)) for p in cache.rglob("*") if p.is_file()) if cache.exists() else []
    audit = root / ".nbversion" / "audit.jsonl"
    return {"status": git(root, "status", "--porcelain", "--untracked-files=all"),
            "head": git(root, "rev-parse", "HEAD"), "tags": git(root, "tag"),
            "audit": audit.read_text() if audit.exists() else "", "cache": objects}


# --- other processes, as a user's other kernels and terminals ----------------------------------------

import contextlib  # noqa: E402
import time  # noqa: E402


@contextlib.contextmanager
def workspace_lock_held(root, action: str = "commit (another kernel)", seconds: int = 600):
    """Another process holding the workspace lock (a long import in another kernel, a CLI commit)."""
    code = ("import sys, time; from pathlib import Path; from nbversion.core.backends.lock import workspace_lock\n"
            "with workspace_lock(Path(sys.argv[1]), sys.argv[2]):\n"
            "    print('held', flush=True); time.sleep(float(sys.argv[3]))\n")
    holder = subprocess.Popen([sys.executable, "-c", code, str(root), action, str(seconds)],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        yield holder
    finally:
        holder.kill()
        holder.wait()


@contextlib.contextmanager
def cli_stopped_at(checkpoint: str, *args, cwd=None):
    """The real console script paused (SIGSTOP, alive, holding what it holds) at a fault-injection
    point of the product (NBVERSION_TEST_STOP_AT); resumed (SIGCONT) and awaited on exit, its
    output then in `.out` / `.err`."""
    exe = Path(sys.executable).with_name("nbversion")
    env = dict(os.environ, NBVERSION_TEST_STOP_AT=checkpoint)
    proc = subprocess.Popen([str(exe), *map(str, args)], cwd=cwd, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while Path(f"/proc/{proc.pid}/stat").read_text().split(") ")[1][0] != "T":
            assert time.monotonic() < deadline and proc.poll() is None, "the command never reached " + checkpoint
            time.sleep(0.05)
        yield proc
    except BaseException:
        proc.kill()   # a failed test: resumed, the command would only stop at its next checkpoint
        raise
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, 18)   # SIGCONT
        proc.out, proc.err = proc.communicate(timeout=600)
