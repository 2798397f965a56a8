"""Progress events: core reports through ``on_event`` callbacks, never by printing."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional


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

    def emit(event: Event) -> None:
        if on_event is None:
            return
        try:
            on_event(event)
        except Exception:  # an observer's bug must not break the work it watches
            pass

    return emit
