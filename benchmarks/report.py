"""Print benchmark rows as a table and write benchmarks/README.md."""
from __future__ import annotations

from pathlib import Path

COLUMNS = ["benchmark", "nbversion", "baseline", "ratio", "goal"]


def markdown(rows: list[dict]) -> str:
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(str(r.get(c, "")) for c in COLUMNS) + " |" for r in rows]
    return "\n".join(lines)


def print_rows(rows: list[dict]) -> None:
    print(markdown(rows))


def write_readme(sections: dict[str, list[dict]], machine: str, when: str) -> Path:
    path = Path(__file__).resolve().parent / "README.md"
    parts = ["# Benchmarks", "",
             "`make bench` runs every benchmark below and rewrites this file. Figures are ratios "
             "against the raw tools in the same run (`dvc add` + `git commit`, `dvc status`, "
             "`dvc push`/`dvc pull`, plain `YOLO(...).train`), never timed assertions in tests.", "",
             f"Last run: {when} on {machine}.", ""]
    for title, rows in sections.items():
        parts += [f"## {title}", "", markdown(rows), ""]
    parts += ["Training figures come from the device the run had (see the training rows). On a GPU "
              "machine: `python -m benchmarks.bench_training --images 3000 --imgsz 320 --batch 32 --device 0`. "
              "Wall times on a shared machine vary by ±30 %.", ""]
    path.write_text("\n".join(parts))
    return path
