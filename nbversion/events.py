"""Progress events: core reports through ``on_event`` callbacks, never by printing."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Callable, Optional

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Event:
    stage: str            # e.g. "hash", "commit", "validate", "epoch"
    done: int = 0
    total: int = 0
    message: str = ""
    data: Optional[dict] = None


EventCallback = Callable[[Event], None]


def emitter(on_event: Optional[EventCallback]) -> EventCallback:
    """A callback that never raises into the operation it observes."""

    failed = []

    def emit(event: Event) -> None:
        if on_event is None:
            return
        try:
            on_event(event)
        except Exception:  # an observer's bug must not break the work it watches
            if not failed:   # once: a broken progress bar fails on every event
                logger.debug("the progress observer %r failed on %s; its later failures are not logged",
                             on_event, event.stage, exc_info=True)
            failed.append(event)

    return emit


def eta_seconds(event: Event, elapsed: float) -> Optional[float]:
    """Seconds left at the rate of the `elapsed` seconds its stage has run; None until it is known."""
    if event.total and 0 < event.done < event.total and elapsed > 1:
        return elapsed * (event.total - event.done) / event.done
    return None


def progress_text(event: Event, elapsed: float) -> str:
    """`hash: 1200/20000 ETA 14 s datasets/traffic`: one line, as the CLI and the magics show it."""
    count = f"{event.done}/{event.total} " if event.total else ""
    eta = eta_seconds(event, elapsed)
    return f"{event.stage}: {count}{f'ETA {eta:.0f} s ' if eta is not None else ''}{event.message}"
