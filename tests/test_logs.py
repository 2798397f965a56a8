"""Debug logs: `nbversion -v`, `--log-file`, NBVERSION_LOG_FILE, `[core] log_file`; swallowed failures are logged."""
from __future__ import annotations

import logging
import os

from conftest import cli, git


def test_verbose_shows_nbversion_debug_lines_on_stderr_only(ws):
    quiet = cli("status", check=0)
    loud = cli("-v", "status", check=0)
    assert loud.stdout == quiet.stdout and quiet.stderr == ""
    assert "DEBUG nbversion.cli" in loud.stderr and "status done in" in loud.stderr
    assert "git status" in loud.stderr, "each git command line is nbversion's own log"
    (ws.root / "datasets" / "extra").mkdir(parents=True)
    (ws.root / "datasets" / "extra" / "a.txt").write_text("a\n")   # a new folder: `dvc add` runs
    loud = cli("-v", "commit", "-m", "extra", check=0)
    own_only = {line.split(" DEBUG ")[1].split()[0] for line in loud.stderr.splitlines() if " DEBUG " in line}
    assert own_only and all(name.startswith("nbversion") for name in own_only), "-v is nbversion's log only"
    (ws.root / "datasets" / "more").mkdir()
    (ws.root / "datasets" / "more" / "b.txt").write_text("b\n")
    noisy = cli("-vv", "commit", "-m", "more", check=0)
    assert any(" DEBUG dvc" in line or " DEBUG dulwich" in line for line in noisy.stderr.splitlines()), \
        "-vv adds DVC's (and its git library's) debug output"


def test_log_file_keeps_the_cause_of_a_wrapped_git_error(ws, tmp_path):
    log = tmp_path / "logs" / "nbversion.log"
    proc = cli("--log-file", log, "checkout", "no-such-rev")
    assert proc.returncode == 1 and "unknown revision 'no-such-rev'" in proc.stderr
    assert "Traceback" not in proc.stderr, "the terminal gets one line; the log file the whole story"
    text = log.read_text()
    assert "checkout failed" in text and "RefNotFound: unknown revision" in text
    assert "GitCommandError" in text, "git's own error is kept as the cause"


def test_log_file_from_the_environment_or_the_workspace_config(ws, tmp_path):
    from_env = tmp_path / "env.log"
    cli("status", env={**os.environ, "NBVERSION_LOG_FILE": str(from_env)}, check=0)
    assert "status done in" in from_env.read_text()
    config = ws.root / ".nbversion" / "config.toml"
    config.write_text(config.read_text().replace("[core]\n", '[core]\nlog_file = ".nbversion/tmp/nbversion.log"\n', 1))
    cli("status", check=0)
    assert "status done in" in (ws.root / ".nbversion" / "tmp" / "nbversion.log").read_text()
    assert "nbversion.log" not in cli("status", check=0).stdout, "the log file is not workspace content"
    wrong = config.read_text().replace('log_file = ".nbversion/tmp/nbversion.log"', "log_file = 3")
    config.write_text(wrong)
    proc = cli("commit", "-m", "a log file setting that is not a path")
    assert proc.returncode == 1 and "config.toml" in proc.stderr and "log_file" in proc.stderr


def test_a_broken_progress_observer_is_logged_and_the_commit_still_happens(ws, caplog):
    (ws.root / "notes.txt").write_text("hello\n")

    def broken(event):
        raise RuntimeError("the progress bar is broken")

    with caplog.at_level(logging.DEBUG, logger="nbversion"):
        result = ws.commit("notes", on_event=broken)
    assert result.commit and git(ws.root, "log", "-1", "--format=%s").strip() == "notes"
    failures = [r for r in caplog.records if r.exc_info and "progress observer" in r.getMessage()]
    assert len(failures) == 1, "logged once, not on every event"
    assert "the progress bar is broken" in str(failures[0].exc_info[1])


def test_verbose_commit_says_what_went_to_dvc_and_to_git_and_the_commit(ws, demo_data):
    import shutil

    shutil.copytree(demo_data, ws.root / "datasets" / "shapes")
    (ws.root / "notes.txt").write_text("hello\n")
    quiet_status = cli("status", check=0)
    proc = cli("-v", "commit", "-m", "shapes and notes", check=0)
    sha = git(ws.root, "rev-parse", "HEAD").strip()
    plan = next(line for line in proc.stderr.splitlines() if "commit plan" in line)
    assert "datasets/shapes" in plan.split("to git")[0] and "notes.txt" in plan.split("to git")[1], plan
    assert f"committed {sha}" in proc.stderr
    assert "dvc add" in proc.stderr, "each DVC operation is logged with its duration"
    assert "git commit" in proc.stderr and "git status" in proc.stderr, "each git command line is logged"
    assert proc.stdout.strip() and "DEBUG" not in proc.stdout, "the logs go to stderr; stdout is the result"
    assert "DEBUG" not in quiet_status.stderr + cli("status", check=0).stderr, "without -v nothing is logged"
    asked = cli("-v", "status", check=0).stderr
    # just committed, the files are racy (written within 2 s): looked at one by one, still without DVC
    assert ("the stat cache answered" in asked or "hashed" in asked) and "dvc data_status" not in asked, \
        "DVC is not asked when nothing moved"


def test_verbose_push_to_a_folder_remote_says_how_many_objects(ws, demo_data, tmp_path):
    ws.dataset_add("shapes", demo_data)
    cli("remote", "add", "team", tmp_path / "remote", check=0)
    proc = cli("-v", "push", check=0)
    pushed = int(proc.stderr.split("pushed ")[1].split(" object")[0])
    assert pushed == len([p for p in (tmp_path / "remote" / "data").rglob("*") if p.is_file()]) > 20
    line = next(line for line in proc.stderr.splitlines() if f"pushed {pushed} object" in line)
    assert "team" in line and "branch" in line, "the remote and what happened to history"


def test_log_file_has_the_values_of_the_gate_that_refused_a_promotion(ws, tmp_path):
    from test_promotion import CHAMPION_RULES, set_rules
    from test_registry import register_run

    set_rules(ws, CHAMPION_RULES)
    register_run(ws, "det", "1.0.0", {"mAP50-95": 0.42})
    log = tmp_path / "promote.log"
    proc = cli("--log-file", log, "promote", "det@v1.0.0")
    assert proc.returncode == 1 and "DEBUG" not in proc.stderr
    text = log.read_text()
    gate = next(line for line in text.splitlines() if "gate metrics.mAP50-95 >= 0.5" in line)
    assert "FAIL" in gate and "0.42" in gate and "det@v1.0.0" in gate, gate
    assert "refused" in text and "GateFailed" in text
