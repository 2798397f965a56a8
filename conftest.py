"""Hooks for every pytest run of the repository: `tests/` and the notebooks (`--nbval-lax examples`).

Here, at the root, rather than in tests/conftest.py: `make test` runs pytest twice, and the
notebook run does not load tests/conftest.py, so a skipped notebook cell would pass CI.
"""
from __future__ import annotations

import os

# --- CI fails on a skip that is not `gpu` ------------------------------------------------------------
# A missing chromium, sshd or unbuilt sidebar in CI is a broken CI, not a pass (DESIGN.md, Testing).
_NON_GPU_SKIPS: list = []


def pytest_runtest_logreport(report):
    if report.skipped and not hasattr(report, "wasxfail") and "gpu" not in report.keywords:
        reason = report.longrepr[-1] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        _NON_GPU_SKIPS.append(f"{report.nodeid}: {reason}")


def _strict_skips() -> bool:
    return bool(os.environ.get("CI") or os.environ.get("NBVERSION_STRICT_SKIPS"))


def pytest_terminal_summary(terminalreporter):
    if _NON_GPU_SKIPS and _strict_skips():
        terminalreporter.write_line(f"{len(_NON_GPU_SKIPS)} test(s) skipped for a reason other than gpu "
                                    "(CI treats that as a failure):", red=True)
        for line in _NON_GPU_SKIPS:
            terminalreporter.write_line(f"  {line}", red=True)


def pytest_sessionfinish(session, exitstatus):
    if _NON_GPU_SKIPS and _strict_skips() and session.exitstatus == 0:
        session.exitstatus = 1
