"""`make bench`: every benchmark module's `main()`, one table each, written to benchmarks/README.md."""
from __future__ import annotations

import importlib
import sys
import traceback
from datetime import datetime, timezone

from ._util import machine
from .report import print_rows, write_readme

SUITES = [
    ("Workspace (issue 4)", "bench_workspace"),
    ("Datasets (issue 5)", "bench_datasets"),
    ("Registry and audit (issue 6)", "bench_registry"),
    ("Training (issue 7)", "bench_training"),
    ("Server and sidebar (issue 8)", "bench_server"),
    ("Remotes and integrity (issue 9)", "bench_remotes"),
    ("Storage: copies, not links (issue 12)", "bench_storage"),
    ("Team: pull of a diverged clone (issue 14)", "bench_team"),
    ("Signed history: audit verify (issue 15)", "bench_signed"),
    ("Cost that follows the change: one file of a big folder (issue 16)", "bench_changes"),
    ("Export: ONNX and TorchScript, inference per image (issue 17)", "bench_export"),
]


def main() -> int:
    only = set(sys.argv[1:])
    sections, failed = {}, False
    print(machine())
    for title, module in SUITES:
        if only and module not in only:
            continue
        print(f"\n## {title}", flush=True)
        try:
            rows = importlib.import_module(f"benchmarks.{module}").main([])
        except Exception:
            traceback.print_exc()
            rows, failed = [{"benchmark": f"{module} failed (see make bench output)"}], True
        print_rows(rows)
        sections[title] = rows
    path = write_readme(sections, machine(), datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"))
    print(f"\nwritten to {path}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
