"""Fault injection for the crash-safety tests: a named point where a test can kill or freeze us.

`NBVERSION_TEST_KILL_AT=<name>` kills the process there (SIGKILL: no clean-up runs), and
`NBVERSION_TEST_STOP_AT=<name>` stops it (SIGSTOP: alive, holding its lock) until SIGCONT. Unset,
a checkpoint is one dictionary lookup.
"""
from __future__ import annotations

import os
import signal


def checkpoint(name: str) -> None:
    """Die or freeze here if a test asked for it (see the module docstring)."""
    if os.environ.get("NBVERSION_TEST_KILL_AT") == name:
        os.kill(os.getpid(), signal.SIGKILL)
    if os.environ.get("NBVERSION_TEST_STOP_AT") == name:
        os.kill(os.getpid(), signal.SIGSTOP)
