"""The Python API as a notebook user and an IDE see it: real signatures, docstrings, docs/api.md."""
from __future__ import annotations

import inspect
import subprocess
import sys

import pytest

import nbversion as nbv
from conftest import REPO

HEAVY = ("git", "dvc", "dvc_data", "PIL", "numpy", "torch", "ultralytics", "ipywidgets")


def _public_methods(ws) -> dict:
    from nbversion.apidoc import workspace_members

    return {name: getattr(ws, name) for name, member in workspace_members() if inspect.isfunction(member)}


@pytest.mark.parametrize("verb, parameters", [
    ("register", ["name", "version", "bump", "source", "message", "on_event", "rename", "model_file", "provenance"]),
    ("dataset_add", ["name", "src", "tags", "message", "dry_run", "on_event", "classes", "strict"]),
    ("promote", ["ref", "stage", "force", "on_event"]),
    ("train", ["data", "model", "epochs", "imgsz", "batch", "device", "name", "extra", "wait", "on_event",
               "callbacks", "preset", "queue", "on"]),
    ("gc", ["keep_last", "older_than", "dry_run", "remote", "on_event"]),
    ("exp_best", ["metric", "lower_is_better"]),
])
def test_help_shows_the_real_parameters_of_a_verb(ws, verb, parameters):
    signature = inspect.signature(getattr(ws, verb))
    assert list(signature.parameters) == parameters
    assert signature.return_annotation is not inspect.Signature.empty


def test_no_verb_hides_behind_args_and_kwargs(ws):
    methods = _public_methods(ws)
    assert len(methods) >= 45                       # 43 verbs + rel + transaction
    for name, method in methods.items():
        kinds = {p.kind for p in inspect.signature(method).parameters.values()}
        assert not kinds & {inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD}, name


def test_a_method_is_its_operation_function_so_tracebacks_name_it(ws):
    from nbversion.core.registry import versions

    assert ws.register.__func__ is versions.register
    assert "source" in (ws.register.__doc__ or "") and "bump" in ws.register.__doc__


def test_every_docstring_names_its_parameters_and_has_an_example(ws):
    missing = []
    for name, method in _public_methods(ws).items():
        doc = inspect.getdoc(method) or ""
        params = list(inspect.signature(method).parameters)
        if "Example:" not in doc or "Returns:" not in doc:
            missing.append(f"{name}: no Returns/Example section")
        if params and "Args:" not in doc:
            missing.append(f"{name}: no Args section")
        missing += [f"{name}: parameter {p} undocumented" for p in params if f"    {p}: " not in doc]
    for func in (nbv.open, nbv.init, nbv.load_model):
        if "Example:" not in (func.__doc__ or ""):
            missing.append(f"nbv.{func.__name__}: no example")
    assert missing == []


def test_docs_api_md_matches_the_docstrings():
    from nbversion.apidoc import COMMAND, render

    page = REPO / "docs" / "api.md"
    assert page.exists() and page.read_text() == render(), f"docs/api.md is stale: run `{COMMAND}` to update it"


def test_docs_api_md_documents_every_verb_and_its_result():
    text = (REPO / "docs" / "api.md").read_text()
    for name in ("register", "dataset_add", "runs_resume", "backup_create", "exp_merge", "audit_verify"):
        assert f"### `ws.{name}(" in text
    for name in ("nbv.open(", "nbv.init(", "nbv.load_model(", "### `RegisterResult`", "### `Run`"):
        assert name in text


@pytest.mark.parametrize("code", [
    "import nbversion.core.workspace",
    "import nbversion as nbv; nbv.open",
    "from IPython.core.interactiveshell import InteractiveShell; "
    "InteractiveShell.instance().run_line_magic('load_ext', 'nbversion')",
])
def test_start_up_imports_no_heavy_library(code):
    # how fast is measured by benchmarks/ (make bench); here: what start-up must not import
    check = f"{code}\nimport sys\nprint(sorted(m for m in {HEAVY!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
