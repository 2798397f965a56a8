"""Work on many files in parallel batches that a Ctrl-C stops within one file, not one batch.

A thread pool's own `with` block waits for every queued batch on the way out, so a
KeyboardInterrupt raised in the main thread while it waits for results would only end the
operation once all the work was done. Here the pending batches are cancelled and the running
ones stop before their next file; what they finished stays finished (each file's work is
complete or not started: callers write to scratch names and rename).
"""
from __future__ import annotations

import threading
from typing import Callable, Iterable


class _Stopped(Exception):
    """Raised inside a worker once the caller has left; nobody sees it."""


def run_batches(one: Callable, batches: Iterable[list], workers: int, on_batch: Callable) -> None:
    """Call `one(item)` for every item, batches in parallel on `workers` threads; `on_batch`
    gets each batch's `[one(item), ...]` in the main thread, batches in order."""
    from concurrent.futures import ThreadPoolExecutor

    stop = threading.Event()

    def run(batch: list) -> list:
        done = []
        for item in batch:
            if stop.is_set():
                raise _Stopped
            done.append(one(item))
        return done

    pool = ThreadPoolExecutor(workers)
    try:
        for result in pool.map(run, batches):
            on_batch(result)
    except BaseException:   # KeyboardInterrupt above all: stop the workers, then let it through
        stop.set()
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
