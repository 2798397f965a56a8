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
from test_promotion import CHAMPION_RULES

DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
FENCE = re.compile(r"^(\s*)(```+|~~~+)\s*([\w+-]*)")
# README shell lines that are not run here, each with the reason
NOT_RUN = {
    "make demo": "installs .venv and runs examples/quickstart.ipynb, which `make test` runs through nbval",
    "make test": "is the suite this test belongs to",
    "make bench": "minutes of benchmarks; `make bench` is its own CI step",
    "make bench-large": "the big sizes of `make bench` (200,000 files): minutes, run by hand",
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


# --- sample output in the docs is what the verbs print ------------------------------------------
# Each `$ nbversion ...` of a checked ```console block is run in a workspace set up as the prose
# says, and its output must have the documented shape: the same lines, headers and columns, with
# hashes, numbers, dates, run ids and e-mail addresses normalised (they differ run to run).

def console_commands(path: Path) -> list[tuple[int, str, list[str]]]:
    """[(line, command, [output lines])] of every `$ ` line of the ```console blocks."""
    found = []
    for lang, start, text in blocks(path):
        if lang != "console":
            continue
        for offset, line in enumerate(text.splitlines(), 1):
            if line.startswith("$ "):
                found.append((start + offset, line[2:], []))
            elif found and line.strip():
                found[-1][2].append(line)
    return found


def shape(line: str) -> str:
    line = re.sub(r"[\w.+-]+@example\.com", "USER", line)
    line = re.sub(r"\d{4}-\d\d-\d\d(T\d\d:\d\d:\d\d\S*)?", "TIME", line)
    line = re.sub(r"\b\d{8}-\d{6}-[\w-]+", "RUN", line)
    line = re.sub(r"\b[0-9a-f]*\d[0-9a-f]*\b", "N", line)    # sizes, hashes, metrics, version parts
    line = re.sub(r"N(\.N)+", "N", line)
    line = re.sub(r"(?<![\w-])-{2,}(?![\w-])", "---", line)  # a table's separator, any width
    return " ".join(line.split())


def test_shape_ignores_values_but_not_columns():
    assert shape("files/best.pt  6234567  3f1c0d2a9b7e") == shape("files/best.pt  5912  9a8b7c6d5e4f")
    assert shape("detector#champion#2 by alice@example.com") == shape("detector#champion#7 by tester@example.com")
    assert shape("a  b  c") != shape("a  b")
    assert shape("-----  ---") == shape("--  ------")


def run_documented(command: str, cwd: Path, substitute: dict) -> list[str]:
    """The non-blank lines `command` prints (stdout, then stderr), run as a user types it."""
    for placeholder, real in substitute.items():
        command = command.replace(placeholder, real)
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}", NO_COLOR="1")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    proc = subprocess.run(["bash", "-c", command], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    return [l for l in (proc.stdout + proc.stderr).splitlines() if l.strip()]


# what the examples of docs/registry.md need, made with the verbs; run ids and paths stand in
REGISTRY_RULES = CHAMPION_RULES + """[stages.champion.deploy]
command = "echo deployed $NBVERSION_VERSION"
"""
REGISTRY_NOT_RUN = {
    "nbversion deploys detector": "its example shows a webhook answering 500 beside the command hook",
    "nbversion audit verify": "its example shows a log edited by hand (tests/test_audit.py tampers with one)",
}


def check_examples(doc: str, root: Path, *, not_run: dict, before: dict, substitute: dict, shown_root: str,
                   only_with_output: bool = False) -> int:
    """Run the `$ ` lines of `doc` in order (`before[command](root)` first, where given) and
    compare what each prints with the documented output; returns how many were compared."""
    commands = console_commands(REPO / doc)
    listed = {c for _, c, _ in commands}
    assert not_run.keys() <= listed and before.keys() <= listed, "a command the doc no longer shows"
    compared, report = 0, []
    for line, command, documented in commands:
        if command in not_run or (only_with_output and not documented):
            continue
        if command in before:
            before[command](root)
        printed = [l.replace(str(root), shown_root) for l in run_documented(command, root, substitute)]
        if documented:
            compared += 1
            if [shape(l) for l in printed] != [shape(l) for l in documented]:
                report.append(f"{doc}:{line}: $ {command}\n  documented:\n    " + "\n    ".join(documented)
                              + "\n  printed:\n    " + "\n    ".join(printed))
    assert not report, "\n".join(report)
    return compared


def test_registry_md_examples_are_what_the_verbs_print(tmp_path):
    from test_registry import checkpoint_file

    root = tmp_path / "project"
    run_documented(f"nbversion init {root}", tmp_path, {})
    first = checkpoint_file(tmp_path / "run" / "best.pt", {"mAP50-95": 0.42, "mAP50": 0.65, "precision": 0.7,
                                                          "recall": 0.6})
    checkpoint_file(root / "exported" / "best.pt", {"mAP50-95": 0.55, "mAP50": 0.71, "precision": 0.8,
                                                    "recall": 0.66})

    def champion_and_gates(root):
        """The champion to beat, then the gates the example shows (the admin's rules.toml)."""
        run_documented("nbversion promote detector@v1.0.0", root, {})
        (root / ".nbversion" / "rules.toml").write_text(REGISTRY_RULES)
        run_documented("nbversion commit -m rules", root, {})

    compared = check_examples("docs/registry.md", root, not_run=REGISTRY_NOT_RUN,
                              before={"nbversion promote detector@v1.1.0": champion_and_gates},
                              substitute={"20260101-120000-shapes": str(first)}, shown_root="/home/alice/project")
    assert compared >= 6


# what the examples of docs/datasets.md need: the edits its prose describes, made to the files
ONNX = b"\x08\x07\x12\x07pytorch\x1a\x032.1:\x0c\n\x04onnx"     # the head of a real export
DATASETS_NOT_RUN = {
    "nbversion model add shapes-det runs/detect/train/weights/best.pt --dataset shapes@v1 --metric latency_ms=3.1":
        "needs a training; tests/test_models.py adds an Ultralytics checkpoint",
}


def replace_text(path: Path, text: str) -> None:
    """Files under datasets/NAME are read-only links into the DVC cache: replace, never write into."""
    path.unlink()
    path.write_text(text)


def test_datasets_md_examples_are_what_the_verbs_print(tmp_path):
    root = tmp_path / "you"
    run_documented(f"nbversion init {root}", tmp_path, {})
    source = root / "shapes-src"
    bad_line = "1 0.5 0.5 0.2\n"
    label = source / "labels" / "train" / "train_00002.txt"

    def broken_label(root):
        label.write_text(label.read_text() + bad_line)

    def edited_in_the_workspace(root):
        label.write_text(label.read_text().replace(bad_line, ""))
        edited = root / "datasets" / "shapes" / "labels" / "train" / "train_00001.txt"
        replace_text(edited, edited.read_text() + "0 0.5 0.5 0.1\n")

    def discarded(root):
        run_documented("nbversion checkout HEAD datasets/shapes --force", root, {})

    def second_version(root):
        """One image added, one removed, one box relabelled red -> blue, added as a new version."""
        for kind, suffix in (("images", ".png"), ("labels", ".txt")):
            (source / kind / "val" / f"val_00007{suffix}").unlink()
            (source / kind / "train" / f"train_new_000{suffix}").write_bytes(
                (source / kind / "train" / f"train_00003{suffix}").read_bytes())
        first = source / "labels" / "train" / "train_00000.txt"
        first.write_text("2" + first.read_text()[1:])
        run_documented("nbversion dataset add shapes shapes-src", root, {})

    def onnx_versions(root):
        (root / "model.onnx").write_bytes(b"PK\x03\x04" + bytes(40))           # a zip named .onnx
        (root / "a.onnx").write_bytes(ONNX + bytes(42))
        (root / "b.onnx").write_bytes(ONNX + bytes(41) + b"\x01")

    def model_versions(root):
        """The two versions of `det` the list, show and compare examples read (added further down)."""
        run_documented("nbversion model add det a.onnx --metric mAP50=0.5 --metric val/box_loss=1.0 --param lr=0.01"
                       " --dataset shapes@v1", root, {})
        run_documented("nbversion model add det b.onnx --metric mAP50=0.7 --metric val/box_loss=1.2 --param lr=0.02"
                       " --dataset shapes", root, {})

    compared = check_examples(
        "docs/datasets.md", root, not_run=DATASETS_NOT_RUN, only_with_output=True, shown_root="/home/you",
        before={"nbversion dataset add shapes shapes-src --tag v1":
                lambda root: run_documented("python -m nbversion.demo shapes-src", root, {}),
                "nbversion dataset add shapes shapes-src": broken_label,
                "nbversion commit -m \"relabel\"": edited_in_the_workspace,
                "nbversion dataset list": discarded,
                "nbversion dataset diff shapes v1 '~0'": second_version,
                "nbversion model add det model.onnx": onnx_versions,
                "nbversion model list": model_versions},
        substitute={})
    assert compared >= 8
