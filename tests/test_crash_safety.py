"""A process killed at any point of `commit` leaves a workspace that status accepts and a
later commit completes; four processes committing at once all succeed."""
import os
import subprocess
import sys
import textwrap

import pytest

import nbversion as nbv
from nbversion.core.audit import chain as audit

from conftest import git

COMMIT_SCRIPT = textwrap.dedent("""
    import sys
    import nbversion as nbv
    ws = nbv.open(sys.argv[1])
    ws.commit(sys.argv[2], sys.argv[3:])
""")


def _commit_in_subprocess(root, message, *paths, kill_at=None):
    env = dict(os.environ)
    if kill_at:
        env["NBVERSION_TEST_KILL_AT"] = kill_at
    return subprocess.run([sys.executable, "-c", COMMIT_SCRIPT, str(root), message, *map(str, paths)],
                          env=env, capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("kill_at", ["after-dvc-add", "after-git-add", "after-audit", "after-commit"])
def test_sigkill_inside_commit_is_recoverable(ws, kill_at):
    data = ws.root / "datasets" / "d"
    data.mkdir(parents=True)
    (data / "w.bin").write_bytes(os.urandom(50_000))
    (ws.root / "code.py").write_text("x = 1\n")
    proc = _commit_in_subprocess(ws.root, "killed", kill_at=kill_at)
    assert proc.returncode == -9, proc.stderr
    status = ws.status()                                # sane, no exception
    assert audit.verify_chain(ws.root).ok
    if kill_at == "after-commit":
        assert status.clean
        return
    assert {c.path for c in status.changes} >= {"code.py"}
    result = ws.commit("completed")
    assert "datasets/d" in result.dvc_paths or "datasets/d.dvc" in git(ws.root, "ls-files")
    assert ws.status().clean
    assert "datasets/d.dvc" in git(ws.root, "ls-files") and "code.py" in git(ws.root, "ls-files")
    assert audit.verify_chain(ws.root).ok
    ws.checkout("HEAD")                                 # DVC agrees the data is all there


def test_four_processes_commit_different_files_at_once(ws):
    for i in range(4):
        d = ws.root / "datasets" / f"part{i}"
        d.mkdir(parents=True)
        (d / "data.bin").write_bytes(os.urandom(20_000))
    procs = [subprocess.Popen([sys.executable, "-c", COMMIT_SCRIPT, str(ws.root), f"part {i}",
                               f"datasets/part{i}"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, cwd=ws.root) for i in range(4)]
    results = [p.communicate(timeout=300) + (p.returncode,) for p in procs]
    for out, err, code in results:
        assert code == 0, err
        assert "lock" not in err.lower()
    tracked = git(ws.root, "ls-files")
    for i in range(4):
        assert f"datasets/part{i}.dvc" in tracked
    assert ws.status().clean
    assert audit.verify_chain(ws.root).ok
    messages = git(ws.root, "log", "--format=%s").split("\n")
    assert sorted(m for m in messages if m.startswith("part")) == [f"part {i}" for i in range(4)]


def test_lock_of_a_dead_process_is_taken_over(ws):
    script = textwrap.dedent("""
        import os, sys, signal
        from nbversion.core.backends.lock import workspace_lock
        with workspace_lock(sys.argv[1], "stuck"):
            os.kill(os.getpid(), signal.SIGKILL)
    """)
    proc = subprocess.run([sys.executable, "-c", script, str(ws.root)], capture_output=True)
    assert proc.returncode == -9
    (ws.root / "a.md").write_text("a")
    assert ws.commit("after a dead lock holder").commit


def test_lock_held_by_live_process_reports_who(ws):
    from nbversion.core.backends.lock import workspace_lock
    from nbversion.errors import WorkspaceLocked
    script = textwrap.dedent("""
        import sys, time
        from nbversion.core.backends.lock import workspace_lock
        with workspace_lock(sys.argv[1], "long job"):
            print("held", flush=True)
            time.sleep(30)
    """)
    holder = subprocess.Popen([sys.executable, "-c", script, str(ws.root)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(WorkspaceLocked) as err:
            with workspace_lock(ws.root, "test", timeout=0.3):
                pass
        assert "long job" in err.value.message and str(holder.pid) in err.value.message
    finally:
        holder.kill()
        holder.wait()
