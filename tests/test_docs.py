"""README.md and docs/*.md render and say true things.

Every Markdown table is one table (no blank line cutting it, a header separator, the same number
of cells in every row), every code fence is closed, every ```python block compiles (IPython
syntax: magics), ```toml/```json/```yaml blocks parse, and the shell commands of the README run.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

from conftest import REPO

DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
FENCE = re.compile(r"^(\s*)(```+|~~~+)\s*([\w+-]*)")
# README shell lines that are not run here, each with the reason
NOT_RUN = {
    "make demo": "installs .venv and runs examples/quickstart.ipynb, which `make test` runs through nbval",
    "make test": "is the suite this test belongs to",
    "make bench": "minutes of benchmarks; `make bench` is its own CI step",
    "pip install nbversion": "tests/test_packaging.py installs the built wheel into a fresh venv",
    "pip install 'nbversion[yolo]'": "the extras' venvs are built by tests/test_packaging.py and .ci/",
    "pip install 'nbversion[lab]'": "the extras' venvs are built by tests/test_packaging.py and .ci/",
    "pip install 'nbversion[remotes]'": "the extras' venvs are built by tests/test_packaging.py and .ci/",
    ".venv/bin/pytest tests -k status -q": "runs part of this very suite",
}


def doc_id(path: Path) -> str:
    return str(path.relative_to(REPO)) if path.is_relative_to(REPO) else path.name


def blocks(path: Path):
    """[(language, first line number, text)] of the fenced code blocks; asserts every fence closes."""
    found, lang, start, body, fence = [], None, 0, [], None
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        match = FENCE.match(line)
        if fence is None and match:
            fence, lang, start, body = match.group(2), match.group(3), number, []
        elif fence is not None and line.strip() == fence:
            found.append((lang, start, "\n".join(body)))
            fence = None
        elif fence is not None:
            body.append(line)
    assert fence is None, f"{doc_id(path)}:{start}: code block opened with {fence} is never closed"
    return found


def prose_lines(path: Path):
    """(line number, text) outside code blocks."""
    inside = None
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        match = FENCE.match(line)
        if inside is None and match:
            inside = match.group(2)
        elif inside is not None and line.strip() == inside:
            inside = None
        elif inside is None:
            yield number, line


def cells(row: str) -> int:
    """The cells of a table row as GitHub counts them: `\\|` is a literal pipe, even in code."""
    row = row.strip().replace("\\|", "")
    return len(row.strip("|").split("|"))


def tables(path: Path):
    """[(first line number, [(line number, row)])]: runs of consecutive `|` lines."""
    found, current, last = [], [], None
    for number, line in prose_lines(path):
        if line.lstrip().startswith("|"):
            if last is not None and number == last + 1 and current:
                current.append((number, line))
            else:
                current = [(number, line)]
                found.append(current)
            last = number
    return found


@pytest.mark.parametrize("path", DOCS, ids=doc_id)
def test_every_table_is_whole(path):
    problems = []
    tables_found = tables(path)
    for rows in tables_found:
        first, header = rows[0]
        separator = rows[1][1] if len(rows) > 1 else ""
        if not re.fullmatch(r"\s*\|?(\s*:?-{3,}:?\s*\|)+\s*:?-*:?\s*\|?\s*", separator):
            problems.append(f"{doc_id(path)}:{first}: table without a header separator line "
                            "(`|---|---|`) under its first row, or a blank line cut a table in two")
            continue
        width = cells(header)
        for number, row in rows:
            if cells(row) != width:
                problems.append(f"{doc_id(path)}:{number}: {cells(row)} cells, the header has {width}")
    assert not problems, "\n".join(problems)


def test_the_table_checker_catches_a_cut_table(tmp_path):
    """The README's verb table was cut in two by a blank line (issue 22): the second half lost
    its header and rendered as plain text."""
    cut = tmp_path / "cut.md"
    cut.write_text("| a | b |\n|---|---|\n| 1 | 2 |\n\n| 3 | 4 |\n")
    assert [r[0][0] for r in tables(cut)] == [1, 5]
    with pytest.raises(AssertionError, match=r"cut.md:5: table without a header separator"):
        test_every_table_is_whole(cut)


@pytest.mark.parametrize("path", DOCS, ids=doc_id)
def test_code_blocks_are_closed_and_parse(path):
    from IPython.core.inputtransformer2 import TransformerManager

    transform = TransformerManager().transform_cell
    problems = []
    for lang, line, text in blocks(path):
        where = f"{doc_id(path)}:{line}"
        try:
            if lang == "python":
                compile(transform(text + "\n"), where, "exec")
            elif lang == "toml":
                tomllib.loads(text)
            elif lang == "json":
                json.loads(text)
            elif lang == "yaml":
                yaml.safe_load(text)
        except Exception as exc:   # noqa: BLE001 - every failure is a finding to list
            problems.append(f"{where}: ```{lang} block does not parse: {exc}")
    assert not problems, "\n".join(problems)


def readme_shell_blocks():
    return [(line, text) for lang, line, text in blocks(REPO / "README.md") if lang in ("bash", "sh", "shell")]


def command(line: str) -> str:
    return line.split(" #")[0].strip()


def test_every_readme_shell_line_runs_or_says_why_not():
    """A new command in the README is either run below or listed in NOT_RUN with its reason."""
    shown = {command(l) for _, text in readme_shell_blocks() for l in text.splitlines() if command(l)}
    skipped = {c for c in shown if c in NOT_RUN}
    assert set(NOT_RUN) <= shown, f"NOT_RUN lists commands the README no longer shows: {set(NOT_RUN) - shown}"
    runnable = [text for _, text in readme_shell_blocks()
                if any(command(l) and command(l) not in NOT_RUN for l in text.splitlines())]
    assert runnable and skipped


def test_readme_shell_blocks_run(tmp_path):
    """The "same from the shell" block, line by line as a user types it, in a fresh folder."""
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    ran = 0
    for line, text in readme_shell_blocks():
        lines = [l for l in text.splitlines() if command(l) and command(l) not in NOT_RUN]
        if not lines:
            continue
        script = "set -euo pipefail\n" + "\n".join(lines) + "\n"
        proc = subprocess.run(["bash", "-c", script], cwd=tmp_path, env=env, capture_output=True,
                              text=True, timeout=300)
        assert proc.returncode == 0, f"README.md:{line}: block failed\n{script}\n{proc.stdout}\n{proc.stderr}"
        ran += len(lines)
    assert ran >= 6
    # what the block promised: a workspace with the dataset committed and then rolled back
    log = subprocess.run(["git", "log", "--format=%s"], cwd=tmp_path / "myproject", capture_output=True,
                         text=True, check=True).stdout
    assert "Add the shapes dataset" in log
    assert (tmp_path / "myproject" / "datasets" / "shapes" / "labels" / "train" / "train_00000.txt").exists()


def test_readme_missing_extra_example_is_what_the_cli_prints(tmp_path):
    """The ```text block after "Python ≥ 3.11 and git." is real output, here without the yolo extra."""
    text = next(t for lang, _, t in blocks(REPO / "README.md") if lang == "text" and "needs the yolo extra" in t)
    shown = text.splitlines()
    assert shown[0].startswith("$ nbversion ")
    hide = tmp_path / "hide"
    hide.mkdir()
    (hide / "sitecustomize.py").write_text(
        "import sys\nfor m in ('ultralytics', 'torch', 'torchvision', 'matplotlib'):\n    sys.modules[m] = None\n")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(hide), str(REPO)]))
    nbversion = str(Path(sys.executable).with_name("nbversion"))
    subprocess.run([nbversion, "init", "p"], cwd=tmp_path, env=env, check=True, capture_output=True)
    args = shown[0].split()[2:]
    proc = subprocess.run([nbversion, *args], cwd=tmp_path / "p", env=env, capture_output=True, text=True)
    assert proc.returncode == 1
    assert proc.stderr.splitlines() == shown[1:]
