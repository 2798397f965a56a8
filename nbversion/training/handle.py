"""`Run`: the handle `train` returns at once; it shows the live widget in a notebook.

A queued run's handle waits too: if this process starts it (queue_worker.py), the same handle
gets the training thread and its widget follows it live; if another process does, `wait()`
polls run.json until the run has ended and its commit is made.
"""
from __future__ import annotations

import contextvars
import logging
import threading
import time
from pathlib import Path
from typing import Optional

from ..errors import MissingExtra
from ..core.result import Result
from . import runs

logger = logging.getLogger(__name__)


class Run(Result):
    """A training run: live while its thread trains, then a view of its run.json."""

    def __init__(self, root, run_id: str):
        self.root = Path(root)
        self.run_id = run_id
        self.listeners: list = []          # on_event callbacks: the CLI bar, widgets
        self.observer = None               # progress.RunObserver while training here
        self.thread: Optional[threading.Thread] = None
        self.finished = threading.Event()
        self.note = ""                     # e.g. "stop requested" when it trains elsewhere
        self._shown_in = None              # (cell number now, the cell the magic showed it in)

    def __repr__(self) -> str:
        return f"<nbversion run {self.run_id} {self.status}>"

    # --- live -------------------------------------------------------------------------------
    def emit(self, event) -> None:
        for listener in list(self.listeners):
            try:
                listener(event)
            except Exception:   # a broken display must not stop training
                logger.debug("a listener of run %s failed on %s", self.run_id, getattr(event, "stage", event),
                             exc_info=True)

    def stop(self) -> "Run":
        """Ask this run, training in this process, to stop after the current batch (a run still
        in the queue is cancelled)."""
        if self.observer is None and self.thread is None and self.record.get("waiting"):
            from ..core.workspace import Workspace
            from .queue_verbs import cancel
            cancel(Workspace(self.root), self.run_id)
            return self
        if self.observer is not None:
            self.observer.stop_requested.set()
            self.note = "stop requested: it ends after the current batch"
        return self

    def wait(self, timeout: Optional[float] = None) -> "Run":
        """Block until the run has ended and been committed (a queued run: until it has started,
        here or in another process, and ended). Ctrl-C (or interrupting the kernel) stops the
        training cleanly after the current batch; a second one gives up waiting."""
        deadline = None if timeout is None else time.monotonic() + timeout
        if self.thread is None and not self._wait_elsewhere(deadline):
            return self
        if self.thread is None:
            return self
        timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
        try:
            self._wait_awake(timeout)
        except KeyboardInterrupt:
            from ..events import Event

            self.stop()
            self.emit(Event("train", 0, 0, "interrupted: stopping after the current batch "
                                           "(interrupt again to stop waiting)", {"status": "stopping"}))
            self._wait_awake(timeout)
        return self

    def _wait_elsewhere(self, deadline: Optional[float]) -> bool:
        """While queued or training in another process: poll. True when this process's queue
        worker took the run over (then wait for its thread)."""
        while runs.effective_status(self.record) in runs.LIVE:
            if self.thread is not None:
                return True
            if deadline is not None and time.monotonic() > deadline:
                return False
            time.sleep(0.3)
        if self.thread is not None:
            return True
        from ..core.backends.lock import workspace_lock

        with workspace_lock(self.root, f"wait for run {self.run_id}"):   # its final record is written
            pass                                                        # under the lock it commits in
        return False

    def _wait_awake(self, timeout: Optional[float]) -> None:
        # short waits: the OS may deliver SIGINT to a torch thread, and Python only raises
        # KeyboardInterrupt once the main thread wakes up
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self.finished.wait(0.2):
            if deadline is not None and time.monotonic() > deadline:
                return

    @property
    def record(self) -> dict:
        """The run's run.json, read now: params, device, per-epoch metrics, outcome."""
        return runs.read(self.root, self.run_id)

    @property
    def status(self) -> str:
        """The status `runs list` shows: running, completed, stopped, failed, commit failed..."""
        return runs.effective_status(self.record)

    @property
    def running(self) -> bool:
        """Whether it is training in this process now."""
        return self.thread is not None and not self.finished.is_set()

    # --- rendering ---------------------------------------------------------------------------
    def table(self):
        return runs.RunShow(self.record).table()

    def highlight(self, row) -> bool:
        return row[0] == self.record.get("best_epoch")

    def summary(self) -> str:
        record = self.record
        if runs.effective_status(record) == "queued" and record.get("waiting"):
            from .queue import describe
            return describe(self.root, self.run_id)
        best = record.get("metrics") or {}
        text = (f"run {self.run_id}: {runs.effective_status(record)}, {len(record.get('epochs') or [])}/"
                f"{(record.get('params') or {}).get('epochs')} epochs on {record.get('device')}")
        if best:
            text += f"; best epoch {record.get('best_epoch')}: mAP50-95 {best.get('mAP50-95')}"
        if record.get("error"):
            text += f"; error: {record['error']}"
        if record.get("commit_error"):
            text += f"; commit failed: {record['commit_error']}"
        live = runs.effective_status(record) in ("queued", "running")
        return f"{text}; {self.note}" if self.note and live else text

    def to_dict(self) -> dict:
        record = runs.with_effective_status(self.record)
        if record.get("status") == "queued" and record.get("waiting"):
            from .queue import place
            where = place(self.root, self.run_id)
            if where is not None:
                record = {**record, "position": where.position, "behind": where.behind}
        return record

    def widget(self, render: bool = True, champion: Optional[float] = None):
        """The live chart with its Stop button, subscribed to this run's events."""
        from ..widgets.train_chart import TrainChart

        chart = TrainChart(self, champion=champion, render=render)
        if self.running or self.record.get("waiting"):   # a queued run: follow it once it starts here
            self.listeners.append(chart.on_event)
        return chart

    def show_in_cell(self, cell_now) -> None:
        """Shown by the `%mv_train` magic, assigned or not; `cell_now()` is the running cell's number."""
        self._ipython_display_()
        self._shown_in = (cell_now, cell_now())

    def _ipython_display_(self):
        """The live widget; its bundle also carries the run's table for frontends without
        widgets (nbconvert, nbval), which show the text/html part instead: that part is
        replaced by the final one when the run ends, so a saved notebook shows how it ended."""
        from IPython.display import display

        if self._shown_in is not None and self._shown_in[0]() == self._shown_in[1]:
            return   # the magic showed it in this cell already

        view = {}
        try:
            view = dict(self.widget().box._repr_mimebundle_() or {})
        except (ImportError, MissingExtra):   # no widgets or no matplotlib: the table below
            pass
        shown = display(self._bundle(view), raw=True, display_id=True)
        if self.running and shown is not None:
            self.listeners.append(lambda event: self._show_final(event, shown, view))

    def _bundle(self, view: dict) -> dict:
        return {**view, "text/html": self._repr_html_(), "text/plain": str(self)}

    def _show_final(self, event, shown, view: dict) -> None:
        status = (event.data or {}).get("status") if getattr(event, "stage", None) == "train" else None
        if not status or status in runs.LIVE + ("stopping", "finishing"):
            return   # only the run's last event: its record is final then
        # an empty context: the update goes out under the cell executing now (ipykernel's fallback),
        # not the one that started the run, which nbclient stopped listening to when it ended
        contextvars.Context().run(shown.update, self._bundle(view), raw=True)
