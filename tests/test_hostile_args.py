"""Every verb, given hostile arguments, fails cleanly: an `error:` line, exit 1/2/3, no traceback,
and the workspace exactly as it was (HEAD, tags, status, audit log, DVC cache).

The verbs are enumerated from the parser definitions in `nbversion/commands/`, so a new verb is
covered without editing this file: it gets an unknown flag, and each of its required arguments
filled with each hostile value. Hand-written cases add what a generator cannot guess (a corrupt
file, a directory where a file belongs, negative numbers, refs that go too far back).

The CLI runs in-process (`nbversion.cli.main`) for speed; a few cases also run the real console
script, where a traceback or a broken pipe would really show.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import USER, cli, git, snapshot

LONG = "a" * 300
# values that go into every required argument of every verb
HOSTILE = {"garbage-ref": "x@@", "empty": "", "long-name": LONG, "dotdot": "../x", "too-far-back": "HEAD~999",
           "missing-path": "/nonexistent/nbv-hostile", "negative": "-5"}

# (verb, hostile value): the generated call is a legitimate request, not an error
LEGITIMATE = {
    ("init", "x@@"), ("init", "../x"), ("init", "-5"),                         # any new folder can become a workspace
    ("log", "x@@"), ("log", "../x"), ("log", "HEAD~999"), ("log", "-5"),        # paths nobody touched: empty history
    ("log", "/nonexistent/nbv-hostile"), ("log", LONG),
    ("deploys", "x@@"), ("deploys", ""), ("deploys", LONG), ("deploys", "../x"), ("deploys", "HEAD~999"),
    ("deploys", "/nonexistent/nbv-hostile"), ("deploys", "-5"),               # a filter: no deploys match
    ("registry", ""),                                                        # "" = every model
    ("user add", "x@@"), ("user add", "../x"), ("user add", "HEAD~999"),     # any e-mail or hub name
    ("user add", "/nonexistent/nbv-hostile"), ("user add", "-5"),            # is a user id
}


# --- the workspace every case runs against, built by the verbs -------------------------------------
@pytest.fixture(scope="module")
def hostile_env(tmp_path_factory):
    """A workspace with a dataset, a model and a registered champion, plus a folder of bad inputs."""
    base = tmp_path_factory.mktemp("hostile")
    home = base / "home"
    home.mkdir()
    (home / ".gitconfig").write_text(f"[user]\n\temail = {USER}\n\tname = Tester\n[init]\n\tdefaultBranch = main\n")
    with pytest.MonkeyPatch.context() as mp:
        for key, value in {"HOME": str(home), "GIT_CONFIG_GLOBAL": str(home / ".gitconfig"),
                           "GIT_CONFIG_NOSYSTEM": "1", "DVC_NO_ANALYTICS": "1", "YOLO_OFFLINE": "true",
                           "YOLO_CONFIG_DIR": str(home / "yolo"), "YOLO_AUTOINSTALL": "false"}.items():
            mp.setenv(key, value)
        for var in ("NBVERSION_USER", "JUPYTERHUB_USER", "GIT_DIR", "GIT_WORK_TREE"):
            mp.delenv(var, raising=False)
        bad = _bad_inputs(base / "bad")
        import nbversion as nbv
        ws = nbv.init(base / "project")
        mp.chdir(ws.root)
        ws.dataset_add("demo", str(bad / "dataset"))
        ws.model_add("det", str(bad / "good.pt"), metrics={"mAP50": 0.5}, dataset="demo")
        ws.register("det", version="1.0.0", source="det")
        ws.promote("det@v1.0.0")
    pristine = base / "pristine"
    shutil.copytree(ws.root, pristine, symlinks=True)
    return ws.root, bad, pristine, snapshot(ws.root)


def _bad_inputs(folder: Path) -> Path:
    import torch

    from nbversion.demo import make_dataset

    folder.mkdir()
    make_dataset(folder / "dataset", train=4, val=2)
    broken = make_dataset(folder / "broken-dataset", train=4, val=2)
    (broken / "images" / "train" / "train_00000.png").write_bytes(b"hello, not a png\n")
    torch.save({"w": torch.zeros(3)}, folder / "good.pt")
    (folder / "truncated.pt").write_bytes((folder / "good.pt").read_bytes()[:300])
    (folder / "truncated.keras").write_bytes(b"PK\x03\x04" + b"\0" * 60)
    torch.jit.trace(torch.nn.Conv2d(3, 2, 1), torch.zeros(1, 3, 8, 8)).save(str(folder / "torchscript.pt"))
    (folder / "not-an-image.png").write_text("hello\n")
    (folder / "not-a-backup.tar.gz").write_text("not a tar file\n")
    (folder / "a-directory.pt").mkdir()
    (folder / "inf.txt").write_text("x\n")
    return folder


@pytest.fixture
def hostile_ws(hostile_env, monkeypatch):
    """The shared workspace; a case that changed it (a failing one) gets it rebuilt for the next."""
    root, bad, pristine, clean = hostile_env
    monkeypatch.chdir(root)
    monkeypatch.setenv("NBVERSION_BACKUP_PASSPHRASE", "hostile-pass")
    monkeypatch.delenv("NBVERSION_TRACEBACK", raising=False)
    yield root, bad
    monkeypatch.chdir(root.parent)
    if snapshot(root) != clean:
        shutil.rmtree(root)
        shutil.copytree(pristine, root, symlinks=True)


# --- the verbs, from the parser definitions ------------------------------------------------------
def verb_parsers() -> dict[tuple, argparse.ArgumentParser]:
    """(verb,) or (verb, subverb) -> its parser, for every leaf verb the CLI knows."""
    from nbversion.commands import build_cli_parser

    found = {}

    def walk(parser, path):
        subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        if not subs:
            found[path] = parser
            return
        for name, child in subs[0].choices.items():
            walk(child, (*path, name))

    for name, child in next(a for a in build_cli_parser()._actions
                            if isinstance(a, argparse._SubParsersAction)).choices.items():
        walk(child, (name,))
    return found


def generated_argv(parser: argparse.ArgumentParser, value: str) -> list | None:
    """The verb with `value` in every required argument; None when it takes no free-text argument."""
    argv, used = [], False
    for action in parser._actions:
        if action.option_strings or action.dest in ("help", "json"):
            continue
        if action.nargs in (None, "+", 1):
            argv.append(value if action.choices is None else sorted(action.choices)[0])
            used |= action.choices is None
    for action in parser._actions:
        if action.option_strings and action.required:
            argv += [action.option_strings[-1], value if action.choices is None else sorted(action.choices)[0]]
            used |= action.choices is None
    for group in parser._mutually_exclusive_groups:
        if group.required:
            option = group._group_actions[0]
            argv += [option.option_strings[-1], "1.0.0" if option.metavar == "X.Y.Z" else value]
            used = True
    return argv if used else None


def generated_cases() -> list:
    cases = []
    for path, parser in sorted(verb_parsers().items()):
        cases.append(pytest.param([*path, "--no-such-flag"], id=f"{' '.join(path)}:unknown-flag"))
        for label, value in HOSTILE.items():
            argv = generated_argv(parser, value)
            verb = " ".join(path)
            if argv is not None and (verb, value) not in LEGITIMATE:
                cases.append(pytest.param([*path, *argv], id=f"{verb}:{label}"))
    return cases


# cases a generator cannot think of; "{bad}" is the folder of bad inputs
CURATED = [
    ["model", "add", "m2", "{bad}/truncated.pt"],
    ["model", "add", "m2", "{bad}/truncated.keras"],
    ["model", "add", "m2", "{bad}/a-directory.pt"],
    ["model", "add", "m2", "{bad}/good.pt", "--metric", "x=inf"],
    ["model", "add", "m2", "{bad}/good.pt", "--metric", "x=abc"],
    ["model", "add", "m2", "{bad}/good.pt", "--metric", "x=nan"],
    ["model", "add", "m2", "{bad}/good.pt", "--metric", "novalue"],
    ["model", "add", "m2", "{bad}/good.pt", "--dataset", "demo@~99"],
    ["model", "show", "det@~99"],
    ["model", "compare", "det", "det@HEAD~999"],
    ["register", "m2", "--version", "1.0.0", "--from", "{bad}/truncated.pt"],
    ["register", "m2", "--version", "1.0.0", "--from", "{bad}/truncated.keras"],
    ["register", "det", "--version", "1.0.0", "--from", "{bad}/good.pt"],        # exists already
    ["register", "det", "--version", "0.0.1", "--from", "{bad}/good.pt"],        # below the latest
    ["register", "det", "--version", "not-semver", "--from", "{bad}/good.pt"],
    ["register", "det", "--bump", "patch", "--from", "det@~9"],
    ["register", "det", "--bump", "patch", "--from", "{bad}/a-directory.pt"],
    pytest.param(["register", "x.lock", "--version", "1.0.0", "--from", "{bad}/good.pt"], id="register:x.lock"),
    pytest.param(["register", LONG, "--version", "1.0.0", "--from", "{bad}/good.pt"], id="register:long-name"),
    ["dataset", "add", "d2", "{bad}/broken-dataset"],
    ["dataset", "add", "d2", "{bad}/not-a-backup.tar.gz"],
    ["dataset", "add", "d2", "{bad}/good.pt"],
    pytest.param(["dataset", "add", "d3", "{bad}/dataset", "--tag", "a..b"], id="dataset add:--tag a..b"),
    pytest.param(["dataset", "add", "a..b", "{bad}/dataset"], id="dataset add:a..b"),
    pytest.param(["dataset", "add", "x.lock", "{bad}/dataset"], id="dataset add:x.lock"),
    pytest.param(["model", "add", "m" * 250, "{bad}/good.pt"], id="model add:250-char-name"),
    ["dataset", "show", "demo@no-such-tag"],
    ["dataset", "show", "demo@x@@"],
    ["dataset", "show", "demo", "--samples", "-3"],
    ["dataset", "diff", "demo", "HEAD~999"],
    ["dataset", "diff", "demo", "~99", "~0"],
    ["log", "-n", "-5"],
    ["log", "-n", "abc"],
    ["audit", "-n", "-5"],
    ["audit", "--since", "not-a-date"],
    ["checkout", "HEAD~999"],
    ["checkout", "HEAD", "/nonexistent/nbv-hostile"],
    ["checkout", "HEAD", "../outside"],
    ["diff", "HEAD~999", "HEAD"],
    ["commit", "-m", "x", "/nonexistent/nbv-hostile"],
    ["commit", "-m", "x", "../outside"],
    ["commit", "-m", "x", LONG],
    ["promote", "det@v9.9.9"],
    ["promote", "det@vv"],
    ["promote", "det@v1.0.0", "--stage", "x@@"],
    ["demote", "det@v9.9.9"],
    ["resolve", "det@v9.9.9"],
    ["resolve", "det@champion", "--at", "not-a-date"],
    ["resolve", "det@champion", "--at", "1970-01-01"],
    ["predict", "det@champion", "{bad}/not-an-image.png"],
    ["predict", "det@champion", "{bad}/a-directory.pt"],
    ["predict", "{bad}/torchscript.pt", "{bad}/dataset/images/val/val_00000.png"],
    ["predict", "{bad}/truncated.pt", "{bad}/not-an-image.png"],
    ["predict", "{bad}/good.pt", "{bad}/dataset/images/val/val_00000.png"],      # a state_dict, not a YOLO
    ["predict", "det@champion", "{bad}/not-an-image.png", "--conf", "-1"],
    ["predict", "det@champion", "{bad}/not-an-image.png", "--iou", "nan"],
    ["train", "--data", "demo@~99", "--epochs", "1"],
    ["train", "--data", "demo", "--epochs", "-1"],
    ["train", "--data", "demo", "--model", "{bad}/truncated.pt", "--epochs", "1"],
    ["train", "--data", "demo", "--epochs", "1", "no-equals-sign"],
    ["runs", "show", "../x"],
    ["runs", "resume", "../x"],
    ["gc", "--keep-last", "-1"],
    ["gc", "--remote", "no-such-remote"],
    ["verify", "--remote", "no-such-remote", "--check-remote"],
    ["push", "no-such-remote"],
    ["pull", "no-such-remote"],
    ["clone", "/nonexistent/nbv-hostile", "{bad}/clone-target"],
    pytest.param(["remote", "add", "r1", "s3://bucket/prefix"], id="remote add:s3-without-git"),
    pytest.param(["remote", "add", LONG, "{bad}/remote"], id="remote add:long-name"),
    pytest.param(["remote", "add", "x@@", "{bad}/remote"], id="remote add:garbage-name"),
    ["backup", "restore", "{bad}/not-a-backup.tar.gz", "{bad}/restored"],
    ["backup", "restore", "{bad}/a-directory.pt", "{bad}/restored"],
    ["backup", "restore", "{bad}/not-a-backup.tar.gz", "{bad}/dataset"],
    ["backup", "create", "--since", "{bad}/not-a-backup.tar.gz", "--out", "{bad}/b.tar.gz"],
    ["backup", "create", "--out", "{bad}/good.pt/b.tar.gz"],       # a file where a folder belongs
    ["report", "--out", "{bad}/good.pt/r.html"],
    ["report", "--out", "{bad}/a-directory.pt"],                   # a folder where a file belongs
    ["exp", "new", "../x"],
    ["exp", "merge", "no-such-exp"],
    ["exp", "best", "--metric", "no-such-metric"],
    # hostile values in options, on an otherwise valid call
    ["model", "add", "m2", "{bad}/good.pt", "--dataset", "x@@"],
    ["model", "add", "m2", "{bad}/good.pt", "--dataset", "demo@HEAD~999"],
    ["audit", "--since", "x@@"],
    ["promote", "det@v1.0.0", "--stage", ""],
    ["demote", "det@champion", "--stage", "no-such-stage"],
    ["gc", "--older-than", "-1"],
    ["gc", "--older-than", "nan"],
    pytest.param(["remote", "add", "r2", "{bad}/remote", "--keyfile", "/nonexistent/nbv-hostile/key"],
                 id="remote add:keyfile-on-a-folder"),
    ["backup", "create", "--since", "/nonexistent/nbv-hostile.tar.gz", "--out", "{bad}/b.tar.gz"],
    ["train", "--data", "demo", "--device", "x@@", "--epochs", "1"],
    ["train", "--data", "demo", "--batch", "-5", "--epochs", "1"],
    ["predict", "det@champion", "{bad}/dataset/images/val/val_00000.png", "--save", "{bad}/good.pt"],
    ["predict", "det@champion", "{bad}/dataset/images/val/val_00000.png", "--imgsz", "0"],
    ["dataset", "diff", "demo", "~0", "x@@"],
    ["exp", "best", "--metric", ""],
    ["runs", "stop", "x@@"],
    ["-C", "/nonexistent/nbv-hostile", "status"],
    ["-C", "{bad}/good.pt", "status"],                             # a file where the workspace folder belongs
    ["-C", "{bad}", "log"],                                        # a folder that is no workspace
    ["no-such-verb"],
    ["user", "add", "", "--role", "viewer"],
    ["user", "add", LONG, "--role", "viewer"],
    ["user", "add", "two words", "--role", "viewer"],
]


def _curated(case):
    if isinstance(case, list):
        return pytest.param(case, id=" ".join(a if len(a) < 40 else a[:12] + "…" for a in case))
    return case


def run_cli(argv, capsys) -> tuple[int, str, str]:
    from nbversion.cli import main

    capsys.readouterr()
    try:
        code = main(argv)
    except SystemExit as exc:   # a verb must never exit the interpreter behind the CLI's back
        code = f"SystemExit({exc.code})"
    out = capsys.readouterr()
    return code, out.out, out.err


def assert_clean_failure(root, argv, capsys):
    before = snapshot(root)
    code, out, err = run_cli(argv, capsys)
    shown = f"nbversion {' '.join(argv)}\nexit {code}\nstdout:\n{out[-1500:]}\nstderr:\n{err[-1500:]}"
    assert code in (1, 2, 3), shown
    assert any(line.startswith("error: ") for line in err.splitlines()), shown
    assert "Traceback" not in out + err and "internal error" not in err, shown
    assert "object at 0x" not in err, shown          # a Python repr is not a message
    assert snapshot(root) == before, shown


def _fill(argv, bad) -> list:
    return [a.replace("{bad}", str(bad)) for a in argv]


def test_every_verb_is_covered():
    verbs = verb_parsers()
    assert len(verbs) >= 40, sorted(verbs)            # the parser walk found the real CLI
    for expected in [("commit",), ("dataset", "add"), ("model", "add"), ("register",), ("backup", "restore"),
                     ("exp", "merge"), ("remote", "add"), ("runs", "stop"), ("predict",)]:
        assert expected in verbs
    ids = {case.id.split(":")[0] for case in generated_cases()}
    assert ids == {" ".join(v) for v in verbs}


@pytest.mark.parametrize("argv", generated_cases())
def test_generated_hostile_arguments_fail_cleanly(hostile_ws, argv, capsys):
    root, bad = hostile_ws
    assert_clean_failure(root, _fill(argv, bad), capsys)


@pytest.mark.parametrize("argv", [_curated(c) for c in CURATED])
def test_curated_hostile_arguments_fail_cleanly(hostile_ws, argv, capsys):
    root, bad = hostile_ws
    assert_clean_failure(root, _fill(argv, bad), capsys)


# --- the real console script: what a terminal shows -------------------------------------------
@pytest.mark.parametrize("argv", [
    pytest.param(["model", "add", "m2", "{bad}/truncated.pt"], id="truncated-pt"),
    pytest.param(["register", "m2", "--version", "1.0.0", "--from", "{bad}/truncated.keras"], id="truncated-keras"),
    pytest.param(["register", LONG, "--version", "1.0.0", "--from", "{bad}/good.pt"], id="300-char-name"),
    pytest.param(["backup", "restore", "{bad}/not-a-backup.tar.gz", "{bad}/restored"], id="not-an-archive"),
    pytest.param(["predict", "{bad}/torchscript.pt", "{bad}/dataset/images/val/val_00000.png"], id="torchscript-pt"),
    pytest.param(["dataset", "add", "d2", "{bad}/broken-dataset"], id="corrupt-image"),
])
def test_console_script_prints_error_and_hint_not_a_traceback(hostile_ws, argv):
    root, bad = hostile_ws
    before = snapshot(root)
    proc = cli(*_fill(argv, bad), cwd=root)
    assert proc.returncode in (1, 2), proc.stderr    # 2: the name rule refuses a 300-character name up front
    lines = proc.stderr.splitlines()
    assert any(l.startswith("error: ") for l in lines) and any(l.startswith("hint: ") for l in lines), proc.stderr
    assert "Traceback" not in proc.stderr and "object at 0x" not in proc.stderr, proc.stderr
    assert snapshot(root) == before


def test_error_messages_name_the_bad_file(hostile_ws):
    root, bad = hostile_ws
    truncated = cli("model", "add", "m2", bad / "truncated.pt", cwd=root)
    assert "truncated.pt is a damaged or truncated PyTorch file" in truncated.stderr
    image = cli("dataset", "add", "d2", bad / "broken-dataset", cwd=root)
    assert "images/train/train_00000.png: image does not decode: not an image format" in image.stderr
    archive = cli("backup", "restore", bad / "not-a-backup.tar.gz", bad / "restored", cwd=root)
    assert "not-a-backup.tar.gz is not a backup made by `nbversion backup create`" in archive.stderr
    assert not (bad / "restored").exists()
    script = cli("predict", bad / "torchscript.pt", bad / "dataset/images/val/val_00000.png", cwd=root)
    assert "torchscript.pt is a TorchScript export, not an Ultralytics checkpoint" in script.stderr
    long_name = cli("register", LONG, "--version", "1.0.0", "--from", bad / "good.pt", cwd=root)
    assert "long" in long_name.stderr and long_name.stderr.startswith("error: ")
    long_path = cli("commit", "-m", "x", LONG, cwd=root)         # the last line of defence: ENAMETOOLONG
    assert long_path.returncode == 1
    assert long_path.stderr.startswith("error: a name or path is too long for the file system: ")


def test_a_reader_that_goes_away_is_a_quiet_exit(hostile_ws):
    """`nbversion log --json | head`: no BrokenPipeError traceback, no 'Exception ignored' noise."""
    root, _ = hostile_ws
    exe = Path(sys.executable).with_name("nbversion")
    proc = subprocess.Popen([str(exe), "log", "--json"], cwd=root, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()            # the reader is gone before the first byte is written
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 141, err      # 128 + SIGPIPE, what `git log | head` reports
    assert err == "", err
    shell = subprocess.run(f"'{exe}' audit --json | head -c 20; exit ${{PIPESTATUS[0]}}", shell=True, cwd=root,
                           capture_output=True, text=True, executable="/bin/bash")
    assert shell.stdout.startswith("{") and "Traceback" not in shell.stderr and "Exception" not in shell.stderr


def test_an_internal_error_is_one_line_with_a_way_to_see_more(hostile_ws, capsys, monkeypatch):
    """A bug still ends as `error:` + exit 1; NBVERSION_TRACEBACK=1 shows the traceback to report."""
    root, _ = hostile_ws
    from nbversion.core.workspace import Workspace   # ws.log is history.log itself: patch the method

    def broken(*args, **kwargs):
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(Workspace, "log", broken)
    code, _, err = run_cli(["log"], capsys)
    assert code == 1 and err.startswith("error: internal error: ZeroDivisionError: a bug")
    assert "NBVERSION_TRACEBACK=1" in err and "Traceback" not in err
    monkeypatch.setenv("NBVERSION_TRACEBACK", "1")
    with pytest.raises(ZeroDivisionError):
        run_cli(["log"], capsys)


def test_a_damaged_backup_restores_nothing(hostile_ws):
    """A real backup, cut short or with bytes flipped: an `error:`, and no half-restored folder left."""
    root, bad = hostile_ws
    good = bad / "real-backup.tar.gz"
    cli("backup", "create", "--out", good, cwd=root, check=0)
    data = good.read_bytes()
    flipped = bytearray(data)
    for i in range(len(data) // 2, len(data) // 2 + 64):
        flipped[i] ^= 0xFF
    damaged = {"truncated": data[:len(data) // 2], "flipped": bytes(flipped)}
    for label, content in damaged.items():
        archive = bad / f"{label}.tar.gz"
        archive.write_bytes(content)
        target = bad / f"restored-{label}"
        proc = cli("backup", "restore", archive, target, cwd=root)
        assert proc.returncode == 1 and proc.stderr.startswith("error: "), proc.stderr
        assert "hint: " in proc.stderr and "Traceback" not in proc.stderr
        assert not target.exists(), f"{label}: a half-restored workspace was left in {target}"
    assert cli("backup", "restore", good, bad / "restored-good", cwd=root).returncode == 0
