"""Verbs that need an optional extra say which one, exit 1 and change nothing when it is missing.

The extras are installed in the test venv; a missing one is simulated the way Python itself sees
a missing module: `sys.modules[name] = None` makes both `import name` and `find_spec(name)` fail.
For the CLI that happens in a `sitecustomize.py` of the spawned process. The real thing, a wheel
installed without extras, is tests/test_packaging.py.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from conftest import REPO, cli, snapshot

YOLO = ("ultralytics", "torch", "torchvision", "matplotlib")


def hiding(tmp_path, modules) -> dict:
    """An environment whose Python processes cannot import `modules`."""
    folder = tmp_path / "hide"
    folder.mkdir(exist_ok=True)
    (folder / "sitecustomize.py").write_text(
        "import sys\nfor name in %r:\n    sys.modules[name] = None\n" % (tuple(modules),))
    path = os.pathsep.join([str(folder), str(REPO), os.environ.get("PYTHONPATH", "")])
    return dict(os.environ, PYTHONPATH=path.rstrip(os.pathsep))


@pytest.fixture
def project(tmp_path, demo_data):
    root = tmp_path / "proj"
    cli("init", root, check=0)
    cli("dataset", "add", "shapes", demo_data, cwd=root, check=0)
    weights = tmp_path / "model.pt"
    weights.write_bytes(b"not really weights")
    return root


def assert_missing(proc, verb: str, extra: str):
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert f"error: {verb} needs the {extra} extra" in proc.stderr, proc.stderr
    assert f"hint: pip install 'nbversion[{extra}]'" in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize("args, verb, extra, hidden", [
    (["train", "--data", "shapes", "--epochs", "1"], "train", "yolo", YOLO),
    (["train", "--data", "shapes", "--epochs", "1"], "train", "yolo", ("matplotlib",)),   # issue 22
    (["predict", "../model.pt", "datasets/shapes/images/val"], "predict", "yolo", YOLO),
    (["runs", "resume", "20260101-000000-x"], "runs resume", "yolo", YOLO),
    (["clone", "ssh://localhost/srv/team", "../copy"], "clone", "remotes", ("dvc_ssh",)),
    (["remote", "add", "team", "ssh://localhost/srv/team"], "remote add", "remotes", ("dvc_ssh",)),
    (["remote", "add", "team", "s3://bucket/team", "--git", "/srv/team.git"], "remote add", "remotes", ("dvc_s3",)),
    (["backup", "create", "--encrypt", "--out", "../b.tar.gz"], "backup create --encrypt", "remotes",
     ("cryptography",)),
])
def test_cli_names_the_missing_extra_and_changes_nothing(project, tmp_path, args, verb, extra, hidden):
    env = hiding(tmp_path, hidden)
    env["NBVERSION_BACKUP_PASSPHRASE"] = "a passphrase"
    before = snapshot(project)
    assert_missing(cli(*args, cwd=project, env=env), verb, extra)
    assert snapshot(project) == before
    assert not (project / "runs").exists() and not (tmp_path / "b.tar.gz").exists()
    assert not (tmp_path / "copy").exists()
    json_out = cli(*args, "--json", cwd=project, env=env)
    assert '"type": "missing_extra"' in json_out.stdout and '"extra": "%s"' % extra in json_out.stdout


def test_a_folder_remote_needs_no_extra(project, tmp_path):
    env = hiding(tmp_path, ("dvc_ssh", "dvc_s3", "cryptography"))
    cli("remote", "add", "team", tmp_path / "team", cwd=project, env=env, check=0)
    cli("push", cwd=project, env=env, check=0)
    assert cli("status", cwd=project, env=env, check=0).stdout


def test_push_to_an_ssh_remote_without_the_plugin(project, tmp_path):
    """Added where the plug-in is installed, pushed from where it is not (a colleague's venv)."""
    cli("remote", "add", "team", "ssh://localhost/srv/team", "--git", tmp_path / "git", cwd=project, check=0)
    env = hiding(tmp_path, ("dvc_ssh",))
    before = snapshot(project)
    assert_missing(cli("push", cwd=project, env=env), "push", "remotes")
    assert_missing(cli("pull", cwd=project, env=env), "pull", "remotes")
    assert snapshot(project) == before


def test_magic_shows_the_red_line_and_fails_the_cell(project, monkeypatch, capsys):
    from IPython.core.interactiveshell import InteractiveShell

    for name in YOLO:
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.chdir(project)
    shell = InteractiveShell.instance()
    try:
        shell.run_cell("%load_ext nbversion")
        before = snapshot(project)
        result = shell.run_cell("%mv_train --data shapes --epochs 1")
        assert not result.success                      # "Run All" stops here
        out = capsys.readouterr()
        assert "error: train needs the yolo extra" in out.out
        assert "hint: pip install 'nbversion[yolo]'" in out.out
        assert "Traceback" not in out.out + out.err
        assert snapshot(project) == before
    finally:
        InteractiveShell.clear_instance()


def test_load_model_of_non_yolo_weights_needs_no_extra(tmp_path, monkeypatch):
    import nbversion as nbv

    for name in YOLO:
        monkeypatch.setitem(sys.modules, name, None)
    root = tmp_path / "serve"
    ws = nbv.init(root)
    onnx = tmp_path / "m.onnx"
    onnx.write_bytes(b"onnx bytes")
    ws.register("plain", version="1.0.0", source=str(onnx))
    assert Path(nbv.load_model("plain@v1.0.0", root)).read_bytes() == b"onnx bytes"
