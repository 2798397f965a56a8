"""A magic's progress in the notebook: one output line, updated in place, then removed.

It draws nothing for a verb that ends within `SHOW_AFTER` seconds (most do), redraws at most
every `EVERY` seconds, and in a terminal IPython (no in-place display updates there) it falls
back to the CLI's rewritten stderr line.
"""
from __future__ import annotations

import html
import time

from ..events import Event, progress_text


class _Line:
    """What the display shows: an HTML progress bar in Jupyter, the text elsewhere."""

    def __init__(self, text: str, done: int = 0, total: int = 0):
        self.text, self.done, self.total = text, done, total

    def __repr__(self) -> str:
        return self.text

    def _repr_html_(self) -> str:
        if not self.text:
            return ""
        bar = f"<progress value='{self.done}' max='{self.total}' style='width:12em'></progress> " if self.total else ""
        return f"<div style='font-family:var(--jp-code-font-family,monospace)'>{bar}{html.escape(self.text)}</div>"


class NotebookProgress:
    """An `on_event` callback for a magic; call `close()` when the verb ends, however it ends."""

    SHOW_AFTER = 0.5
    EVERY = 0.25

    def __init__(self):
        self.started = time.monotonic()
        self.stage, self.since, self.drawn = None, self.started, 0.0
        self.handle = None
        self.stopping = False   # a training asked to stop: no time left to estimate

    def __call__(self, event: Event) -> None:
        now = time.monotonic()
        if event.stage == "train" and (event.data or {}).get("status") not in (None, "queued", "running"):
            self.stopping = True
        if event.stage != self.stage:   # a new stage: its rate (and so its ETA) starts afresh
            self.stage, self.since = event.stage, now
        elif now - self.drawn < self.EVERY and not 0 < event.total <= event.done:
            return
        if now - self.started < self.SHOW_AFTER:
            return
        self.drawn = now
        elapsed = 0.0 if self.stopping else now - self.since   # no elapsed time, no ETA
        self._show(_Line(progress_text(event, elapsed), event.done, event.total))

    def _show(self, line: _Line) -> None:
        from IPython.display import display

        if self.handle is None:
            self.handle = display(line, display_id=True)
        else:
            self.handle.update(line)

    def close(self) -> None:
        if self.handle is not None:   # the result (or the error) is what stays in the output
            self.handle.update(_Line(""))
            self.handle = None


def for_shell(shell):
    """The progress display that fits where the magic runs: Jupyter, or a terminal IPython."""
    if type(shell).__name__.startswith("TerminalInteractiveShell"):
        from ..cli import _Progress

        return _Progress()
    return NotebookProgress()
