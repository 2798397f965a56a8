"""The same verbs from the CLI (a real subprocess) and the magics (a real IPython shell)."""
import json
import subprocess
import sys

import pytest

from conftest import cli, cli_json, git


@pytest.fixture
def cli_ws(tmp_path):
    root = tmp_path / "proj"
    cli("init", root, check=0)
    return root


def test_cli_full_cycle(cli_ws):
    root = cli_ws
    (root / "datasets" / "d").mkdir(parents=True)
    (root / "datasets" / "d" / "x.bin").write_bytes(b"\0" * 1000)
    status = cli_json("status", cwd=root)
    assert status["changes"][0]["path"] == "datasets/d" and status["changes"][0]["tracked_by"] == "dvc"
    out = cli("commit", "-m", "add d", cwd=root, check=0).stdout
    assert "add d" in out and "datasets/d" in out
    (root / "datasets" / "d" / "x.bin").unlink()
    (root / "datasets" / "d" / "x.bin").write_bytes(b"\1" * 1000)
    cli("commit", "-m", "change d", cwd=root, check=0)
    log = cli_json("log", "-n", "5", cwd=root)
    assert [e["message"].splitlines()[0] for e in log["entries"][:2]] == ["change d", "add d"]
    diff = cli_json("diff", "HEAD~1", "HEAD", cwd=root)
    assert diff["files"] == [{"change": "modified", "path": "datasets/d/x.bin", "tracked_by": "dvc",
                              "size_before": 1000, "size_after": 1000}]
    cli("checkout", "HEAD~1", cwd=root, check=0)
    assert (root / "datasets" / "d" / "x.bin").read_bytes() == b"\0" * 1000
    who = cli_json("whoami", cwd=root)
    assert who["role"] == "admin" and who["mode"] == "advisory (unsigned)"   # no keys: it says so
    assert "advisory (unsigned)" in cli("whoami", cwd=root, check=0).stdout


def test_cli_exit_codes_and_error_format(cli_ws, tmp_path):
    bad = cli("checkout", "no-such-rev", cwd=cli_ws)
    assert bad.returncode == 1
    assert bad.stderr.startswith("error: unknown revision") and "\nhint: " in bad.stderr
    usage = cli("commit", cwd=cli_ws)             # -m is required
    assert usage.returncode == 2 and "error:" in usage.stderr
    outside = cli("status", cwd=tmp_path)
    assert outside.returncode == 1 and "not inside an nbversion workspace" in outside.stderr
    nothing = cli("commit", "-m", "x", cwd=cli_ws)
    assert nothing.returncode == 1 and "nothing to commit" in nothing.stderr
    import os
    env = dict(os.environ, NBVERSION_USER="stranger")
    cli("user", "add", "viewer1", "--role", "viewer", cwd=cli_ws, check=0)
    env["NBVERSION_USER"] = "viewer1"
    (cli_ws / "f.md").write_text("x")
    denied = cli("commit", "-m", "x", cwd=cli_ws, env=env)
    assert denied.returncode == 3 and "needs the contributor role" in denied.stderr


def test_cli_help_lists_verbs():
    out = cli("--help", check=0).stdout
    for verb in ("init", "status", "commit", "log", "diff", "checkout", "whoami"):
        assert verb in out
    assert "--message" in cli("commit", "--help", check=0).stdout


@pytest.fixture
def shell(tmp_path, monkeypatch):
    from IPython.core.interactiveshell import InteractiveShell
    monkeypatch.chdir(tmp_path)
    sh = InteractiveShell.instance()
    sh.run_cell("%load_ext nbversion")
    yield sh
    InteractiveShell.clear_instance()


def test_no_verb_option_is_taken_by_a_top_level_option(cli_ws):
    """`export --register N --version 1.2.3` once printed nbversion's own version and exported nothing:
    a verb's option stored under the same name as a top-level one is read as the top-level one."""
    import argparse
    from nbversion.commands import build_cli_parser

    top = build_cli_parser()
    top_level = {a.dest for a in top._actions} - {"help", "json", "verb"}

    def verb_parsers(parser):
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for child in action.choices.values():
                    yield child
                    yield from verb_parsers(child)

    clashes = {(p.prog, a.dest) for p in verb_parsers(top) for a in p._actions if a.dest in top_level}
    assert clashes == set()
    done = cli("export", "nope@v1.0.0", "--register", "x", "--version", "0.0.2", cwd=cli_ws, check=None)
    assert done.returncode != 0 and done.stdout.strip() != "0.1.0"   # the verb ran (and refused the ref)


def test_magics_cycle_and_html(shell, tmp_path, capsys):
    r = shell.run_cell("%mv_init proj")
    assert r.success and r.result.created
    shell.run_cell("import os; os.chdir('proj')")
    (tmp_path / "proj" / "notes.md").write_text("hello")
    r = shell.run_cell('%mv_commit -m "first note"')
    assert r.success and r.result.git_paths == ["notes.md"]
    body = git(tmp_path / "proj", "log", "-1", "--format=%B")
    assert "Nbversion-Cell: " in body                   # the cell is recorded
    r = shell.run_cell("%mv_log -n 1")
    assert "<table" in r.result._repr_html_() and "first note" in r.result._repr_html_()
    assert shell.run_cell("%mv_status").result.clean
    assert shell.run_cell("%mv_whoami").result.role == "admin"
    assert shell.run_cell("%mv_diff HEAD~1 HEAD").result.files[0].path == "notes.md"


def test_a_commit_from_a_real_kernel_records_the_cells_in_number(tmp_path):
    # ipykernel has already counted the next cell while one runs: the record must say In[4]
    import nbclient
    import nbformat

    cells = ["%load_ext nbversion", f"%mv_init {tmp_path / 'proj'}",
             f"import os; os.chdir({str(tmp_path / 'proj')!r}); open('notes.md', 'w').write('hi')",
             "%mv_commit -m note"]
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    nbclient.NotebookClient(notebook, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    assert notebook.cells[3].execution_count == 4
    body = git(tmp_path / "proj", "log", "-1", "--format=%B")
    assert "Nbversion-Cell: 4 " in body, body


def test_magic_errors_are_short_and_fail_the_cell(shell, tmp_path, capsys):
    shell.run_cell("%mv_init proj")
    shell.run_cell("import os; os.chdir('proj')")
    r = shell.run_cell("%mv_checkout nope")
    assert not r.success                                # "Run All" stops here
    out = capsys.readouterr()
    assert "error: unknown revision 'nope'" in out.out
    assert "Traceback" not in out.out + out.err
    r = shell.run_cell("%mv_commit")                    # usage error, not a dead kernel
    assert not r.success
    assert "required" in capsys.readouterr().out


def test_a_bug_in_a_magic_is_one_red_line_and_fails_the_cell(shell, capsys, monkeypatch):
    """An unexpected exception: the CLI's `internal error` line, no traceback; the user's own code keeps its."""
    from nbversion.core.workspace import Workspace   # ws.log is history.log itself: patch the method

    shell.run_cell("%mv_init proj")
    shell.run_cell("import os; os.chdir('proj')")
    capsys.readouterr()
    monkeypatch.delenv("NBVERSION_TRACEBACK", raising=False)

    def broken(*args, **kwargs):
        raise ZeroDivisionError("a bug")

    original = Workspace.log
    monkeypatch.setattr(Workspace, "log", broken)
    r = shell.run_cell("%mv_log -n 1")
    assert not r.success                                # "Run All" still stops here
    out = capsys.readouterr()
    assert "error: internal error: ZeroDivisionError: a bug" in out.out
    assert "NBVERSION_TRACEBACK=1" in out.out
    assert "Traceback" not in out.out + out.err
    r = shell.run_cell("1 / 0")                         # not a magic: a normal traceback
    assert not r.success and "Traceback" in capsys.readouterr().out
    monkeypatch.setenv("NBVERSION_TRACEBACK", "1")      # to report the bug
    r = shell.run_cell("%mv_log -n 1")
    out = capsys.readouterr().out
    assert not r.success and "Traceback" in out and "a bug" in out
    monkeypatch.delenv("NBVERSION_TRACEBACK")
    monkeypatch.setattr(Workspace, "log", original)
    assert shell.run_cell("%mv_log -n 1").success       # the shell is fine afterwards


def test_magic_help_does_not_fail(shell, capsys):
    r = shell.run_cell("%mv_commit --help")
    assert r.success and "--message" in capsys.readouterr().out


def test_load_ext_imports_neither_git_dvc_nor_torch():
    # its speed is measured in benchmarks/ (make bench); here: what it must not import
    code = ("import sys; from IPython.core.interactiveshell import InteractiveShell; "
            "sh = InteractiveShell.instance(); sh.run_line_magic('load_ext', 'nbversion'); "
            "print(sorted(m for m in ('git', 'dvc', 'torch', 'ultralytics', 'yaml') if m in sys.modules), "
            "'mv_commit' in sh.magics_manager.magics['line'])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[] True"
