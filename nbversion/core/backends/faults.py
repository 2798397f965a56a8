"""Fault injection for the crash-safety tests: a named point where a test can kill or freeze us.

`NBVERSION_TEST_KILL_AT=<name>` kills the process there (SIGKILL: no clean-up runs), and
`NBVERSION_TEST_STOP_AT=<name>` stops it (SIGSTOP: alive, holding its lock) until SIGCONT. Unset,
a checkpoint is one dictionary lookup.
"""
from __future__ import annotations

import os
import signal
import threading


def checkpoint(name: str) -> None:
    """Die or freeze here if a test asked for it (see the module docstring).

    The signal goes to the calling thread (it stops or dies the whole process all the same): one
    sent to the process may be taken by another thread, and this one would run on a few
    instructions (a rename, in a copy worker) before the stop reached it."""
    if os.environ.get("NBVERSION_TEST_KILL_AT") == name:
        signal.pthread_kill(threading.get_ident(), signal.SIGKILL)
    if os.environ.get("NBVERSION_TEST_STOP_AT") == name:
        signal.pthread_kill(threading.get_ident(), signal.SIGSTOP)
