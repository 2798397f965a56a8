"""What `pip install nbversion` gives a newcomer, tested as they get it (issue 22).

Builds the sdist and the wheel, checks what is in them, installs the wheel WITHOUT extras into a
fresh venv (dependencies from the package index, nothing from this venv), runs the quickstart
notebook there and every verb that needs an extra, which must name the extra and change nothing.
Measures the wheel size and the core install's size and time into
test-artifacts/packaging.json. Installs packages (never model weights or datasets).

The `[yolo,lab]` install with `jupyter labextension list` / `jupyter server extension list` is a
step of .ci/run (torch is gigabytes); see .ci/wheel.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import zipfile
from pathlib import Path

import pytest

from conftest import REPO, snapshot

# building and installing into fresh venvs: minutes on 2 busy cores
pytestmark = [pytest.mark.packaging, pytest.mark.timeout(1800)]
VERSION = "0.1.0"
ARTIFACTS = REPO / "test-artifacts"
# in neither archive: tests, CI, build and editor junk
JUNK = re.compile(r"(^|/)(tests?|\.ci|node_modules|__pycache__|\.venv[^/]*|\.demo|test-artifacts|dist|"
                  r"\.pytest_cache|\.ipynb_checkpoints|benchmarks)(/|$)|\.pyc$|\.tsbuildinfo$|(^|/)\.DS_Store$")
YOLO_VERBS = ("train", "predict", "runs resume")


def run(cmd, cwd=None, env=None, timeout=900, check=True):
    # never the checkout as cwd: `python -c` would import its nbversion instead of the wheel's
    proc = subprocess.run([str(c) for c in cmd], cwd=cwd or tempfile.gettempdir(), env=env, capture_output=True, text=True,
                          timeout=timeout)
    if check:
        assert proc.returncode == 0, f"{cmd}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


def clean_env(venv: Path, home: Path) -> dict:
    """A user's shell in the venv: its bin first, nothing of this checkout on the path."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
    env.update(PATH=f"{venv / 'bin'}{os.pathsep}{env['PATH']}", HOME=str(home), VIRTUAL_ENV=str(venv))
    return env


def record(key: str, value) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / "packaging.json"
    data = json.loads(path.read_text()) if path.exists() else {}
    data[key] = value
    path.write_text(json.dumps(data, indent=2) + "\n")


@pytest.fixture(scope="module")
def dist(tmp_path_factory):
    """sdist + wheel of this checkout, built by PEP 517 `build` with the hatchling backend.

    The sidebar is built once by `make` (nbversion/labextension/); the builder's
    skip-if-exists keeps the wheel build from re-running npm for minutes.
    """
    out = tmp_path_factory.mktemp("dist")
    tools = out / "tools"
    run([sys.executable, "-m", "venv", tools])
    run([tools / "bin" / "pip", "install", "-q", "build", "hatchling>=1.18", "hatch-jupyter-builder>=0.9"])
    # no isolation: jupyterlab, the third build requirement, only matters when npm must run
    run([tools / "bin" / "python", "-m", "build", "--no-isolation", "--skip-dependency-check",
         "--sdist", "--wheel", "--outdir", out, REPO], timeout=1200)
    wheel, sdist = out / f"nbversion-{VERSION}-py3-none-any.whl", out / f"nbversion-{VERSION}.tar.gz"
    assert wheel.exists() and sdist.exists(), sorted(p.name for p in out.iterdir())
    record("wheel_bytes", wheel.stat().st_size)
    record("sdist_bytes", sdist.stat().st_size)
    return {"wheel": wheel, "sdist": sdist}


def test_wheel_holds_the_sidebar_and_server_config_and_no_junk(dist):
    names = zipfile.ZipFile(dist["wheel"]).namelist()
    data = f"nbversion-{VERSION}.data/data/"
    sidebar = f"{data}share/jupyter/labextensions/nbversion-labextension/"
    assert f"{sidebar}package.json" in names
    assert any(re.fullmatch(rf"{re.escape(sidebar)}static/remoteEntry\.\w+\.js", n) for n in names), names
    assert f"{sidebar}static/style.js" in names
    assert f"{data}etc/jupyter/jupyter_server_config.d/nbversion.json" in names
    config = json.loads(zipfile.ZipFile(dist["wheel"]).read(f"{data}etc/jupyter/jupyter_server_config.d/nbversion.json"))
    assert config["ServerApp"]["jpserver_extensions"]["nbversion.server"] is True
    for module in ("nbversion/__init__.py", "nbversion/extras.py", "nbversion/cli.py", "nbversion/server/routes.py"):
        assert module in names
    junk = [n for n in names if JUNK.search(n) or n.startswith(("labextension/", "examples/", "docs/"))]
    assert not junk, junk
    metadata = zipfile.ZipFile(dist["wheel"]).read(f"nbversion-{VERSION}.dist-info/METADATA").decode()
    assert "Requires-Python: >=3.11" in metadata
    for extra in ("yolo", "lab", "remotes"):
        assert f"Provides-Extra: {extra}" in metadata
    assert "nbversion = nbversion.cli:main" in zipfile.ZipFile(dist["wheel"]).read(
        f"nbversion-{VERSION}.dist-info/entry_points.txt").decode()


def test_sdist_holds_the_source_and_the_built_sidebar_and_no_junk(dist):
    with tarfile.open(dist["sdist"]) as tar:
        names = [n.split("/", 1)[1] for n in tar.getnames() if "/" in n]
    for wanted in ("pyproject.toml", "README.md", "nbversion/extras.py", "labextension/package.json",
                   "labextension/package-lock.json", "labextension/src/index.ts",
                   "jupyter-config/jupyter_server_config.d/nbversion.json",
                   "nbversion/labextension/package.json", "nbversion/labextension/static/style.js"):
        assert wanted in names, wanted
    junk = [n for n in names if JUNK.search(n) or n.startswith("labextension/lib/")]
    assert not junk, junk


@pytest.fixture(scope="module")
def core_venv(dist, tmp_path_factory):
    """The wheel installed the way a newcomer does it: `pip install nbversion`, no extras."""
    base = tmp_path_factory.mktemp("core")
    venv, home = base / "venv", base / "home"
    home.mkdir()
    run([sys.executable, "-m", "venv", venv])
    env = clean_env(venv, home)
    started = time.monotonic()
    run([venv / "bin" / "pip", "install", "-q", dist["wheel"]], env=env, timeout=1800)
    seconds = round(time.monotonic() - started, 1)
    size = int(run(["du", "-sb", venv]).stdout.split()[0])
    record("core_install_seconds", seconds)
    record("core_install_bytes", size)
    print(f"\ncore install: {seconds} s, {size / 2**20:.0f} MiB")
    # test tooling, not an extra: a kernel and nbclient to run the quickstart notebook
    run([venv / "bin" / "pip", "install", "-q", "ipykernel", "nbclient", "nbformat"], env=env, timeout=900)
    return venv, env


def absent(venv: Path, env: dict, modules) -> list:
    code = ("import importlib.util as u, sys; "
            "print(' '.join(m for m in sys.argv[1:] if u.find_spec(m) is None))")
    return run([venv / "bin" / "python", "-c", code, *modules], env=env).stdout.split()


def test_core_install_has_no_extra_and_imports_this_wheel(core_venv):
    venv, env = core_venv
    missing = absent(venv, env, ["torch", "ultralytics", "matplotlib", "jupyter_server", "jupyterlab",
                                 "dvc_s3", "dvc_ssh"])
    assert missing == ["torch", "ultralytics", "matplotlib", "jupyter_server", "jupyterlab", "dvc_s3", "dvc_ssh"]
    where = run([venv / "bin" / "python", "-c", "import nbversion; print(nbversion.__file__)"], env=env).stdout
    assert str(venv) in where and str(REPO) not in where
    assert run([venv / "bin" / "nbversion", "--version"], env=env).stdout.strip() == VERSION


def test_quickstart_notebook_runs_in_the_core_install(core_venv, tmp_path):
    venv, env = core_venv
    out = tmp_path / "quickstart.ipynb"
    proc = run([venv / "bin" / "python", REPO / "examples" / "run_notebook.py",
                REPO / "examples" / "quickstart.ipynb", out], env=env, timeout=900, check=False)
    assert proc.returncode == 0, proc.stderr[-4000:]
    outputs = json.dumps(json.loads(out.read_text())["cells"])
    assert "Fix two labels" in outputs and "Traceback" not in outputs


@pytest.fixture
def core_project(core_venv, tmp_path):
    """A workspace with a dataset, made by the core install's own CLI."""
    venv, env = core_venv
    env = dict(env, NBVERSION_BACKUP_PASSPHRASE="a passphrase")
    nbversion = venv / "bin" / "nbversion"
    run([nbversion, "init", "proj"], cwd=tmp_path, env=env)
    root = tmp_path / "proj"
    run([venv / "bin" / "python", "-m", "nbversion.demo", "datasets/shapes"], cwd=root, env=env)
    run([nbversion, "commit", "-m", "shapes"], cwd=root, env=env)
    return venv, env, root


def assert_names_extra(proc, what: str, extra: str):
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert f"error: {what} needs the {extra} extra" in proc.stderr, proc.stderr
    assert f"hint: pip install 'nbversion[{extra}]'" in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr


def test_every_extra_needing_verb_names_its_extra_in_the_core_install(core_project, tmp_path):
    venv, env, root = core_project
    nbversion = venv / "bin" / "nbversion"
    image = sorted((root / "datasets" / "shapes" / "images" / "val").iterdir())[0]
    weights = tmp_path / "best.pt"
    weights.write_bytes(b"PK")   # never read: the check comes first
    verbs = [(["train", "--data", "shapes", "--epochs", "1", "--imgsz", "64"], "train", "yolo"),
             (["predict", weights, image], "predict", "yolo"),
             (["runs", "resume", "20260101-000000-x"], "runs resume", "yolo"),
             (["clone", "ssh://localhost/srv/team", tmp_path / "copy"], "clone", "remotes"),
             (["remote", "add", "team", "ssh://localhost/srv/team"], "remote add", "remotes"),
             (["remote", "add", "team", "s3://bucket/team", "--git", "/srv/team.git"], "remote add", "remotes")]
    if absent(venv, env, ["cryptography"]):   # the core's dependencies may bring it along
        verbs.append((["backup", "create", "--encrypt", "--out", tmp_path / "b.tar.gz"],
                      "backup create --encrypt", "remotes"))
    before = snapshot(root)
    for args, what, extra in verbs:
        assert_names_extra(run([nbversion, *args], cwd=root, env=env, check=False), what, extra)
        as_json = run([nbversion, *args, "--json"], cwd=root, env=env, check=False)
        assert json.loads(as_json.stdout)["error"]["extra"] == extra
    assert snapshot(root) == before
    assert not (root / "runs").exists() and not (tmp_path / "b.tar.gz").exists()
    assert not (tmp_path / "copy").exists()


MAGIC = """
import sys
from IPython.core.interactiveshell import InteractiveShell
shell = InteractiveShell.instance()
shell.run_cell("%load_ext nbversion")
result = shell.run_cell("%mv_train --data shapes --epochs 1")
print("CELL FAILED" if not result.success else "CELL OK")
"""

API = """
import json, nbversion as nbv
from nbversion.server import _load_jupyter_server_extension
for call in (lambda: nbv.load_model("det@v1.0.0"), lambda: _load_jupyter_server_extension(None)):
    try:
        call()
    except nbv.NbversionError as exc:
        print(json.dumps(exc.to_dict()))
"""


def test_magic_api_and_server_extension_name_their_extra_in_the_core_install(core_project, tmp_path):
    venv, env, root = core_project
    proc = run([venv / "bin" / "python", "-c", MAGIC], cwd=root, env=env)
    assert "error: train needs the yolo extra" in proc.stdout and "CELL FAILED" in proc.stdout
    assert "hint: pip install 'nbversion[yolo]'" in proc.stdout and "Traceback" not in proc.stdout + proc.stderr
    # a YOLO checkpoint as training saves it (model + train_args), made by this full venv,
    # registered by the core install
    weights = tmp_path / "det.pt"
    save = ("import sys, torch; from ultralytics import YOLO; m = YOLO('yolov8n.yaml'); "
            "torch.save({'model': m.model, 'train_args': {'imgsz': 64, 'epochs': 1}}, sys.argv[1])")
    run([sys.executable, "-c", save, weights], env=dict(os.environ, YOLO_OFFLINE="true"))
    run([venv / "bin" / "nbversion", "register", "det", "--version", "1.0.0", "--from", weights], cwd=root, env=env)
    errors = [json.loads(line) for line in run([venv / "bin" / "python", "-c", API], cwd=root, env=env)
              .stdout.splitlines()]
    assert [(e["type"], e["extra"]) for e in errors] == [("missing_extra", "yolo"), ("missing_extra", "lab")]
    assert errors[0]["message"].startswith("loading the YOLO weights of det@v1.0.0 needs the yolo extra")
    assert errors[1]["hint"] == "pip install 'nbversion[lab]'"
