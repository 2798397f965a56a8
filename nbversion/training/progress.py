"""Typed progress from Ultralytics callbacks; observing never kills the training it watches.

`trainer_state(trainer)` is the only code that reads trainer attributes: it turns a callback
into a plain dict, so the tests replay recorded dicts through `RunObserver` without torch.
An exception in our own callbacks is written to run.json (`callback_errors`) and swallowed.
"""
from __future__ import annotations

import logging
import threading
import time
import traceback
from typing import Callable, Optional

from ..events import Event
from . import runs

logger = logging.getLogger(__name__)

CALLBACKS = ("on_train_start", "on_train_epoch_start", "on_train_batch_end", "on_fit_epoch_end",
             "on_model_save", "on_train_end")
MAX_LOGGED_ERRORS = 20


def _number(value):
    try:
        return round(float(value), 6)
    except (TypeError, ValueError):
        return None


def trainer_state(event: str, trainer) -> dict:
    """What one callback tells us, as plain JSON-able data (Ultralytics' epoch is 0-based)."""
    state = {"event": event, "time": time.time(), "epoch": int(getattr(trainer, "epoch", 0)) + 1,
             "epochs": int(getattr(trainer, "epochs", 0) or 0)}
    loader = getattr(trainer, "train_loader", None)
    state["batches"] = len(loader) if loader is not None and hasattr(loader, "__len__") else 0
    state["batch_size"] = int(getattr(trainer, "batch_size", 0) or 0)
    tloss = getattr(trainer, "tloss", None)
    if tloss is not None and hasattr(trainer, "label_loss_items"):
        state["loss"] = {k: _number(v) for k, v in trainer.label_loss_items(tloss, prefix="train").items()}
    if event in ("on_fit_epoch_end", "on_train_end"):
        metrics = dict(getattr(trainer, "metrics", None) or {})
        state["metrics"] = {k: _number(v) for k, v in {**metrics, **(getattr(trainer, "lr", None) or {})}.items()}
    device = str(getattr(trainer, "device", "cpu"))
    if device.startswith("cuda") and hasattr(trainer, "_get_memory"):
        state["gpu_mem_gb"] = _number(trainer._get_memory())
    return state


class RunObserver:
    """Receives callback states, keeps the run record current and emits `Event`s.

    Events: "batch" (done = batch in epoch, total = batches) and "epoch" (done = epoch,
    total = epochs, data = the epoch row + elapsed, eta, images_per_s, gpu_mem_gb).
    """

    def __init__(self, root, run_id: str, emit: Callable[[Event], None], first_epoch: int = 1):
        self.root, self.run_id, self.emit = root, run_id, emit
        self.stop_requested = threading.Event()
        self.started = time.time()
        self.first_epoch = first_epoch
        self.batch = 0
        self.current_epoch = None
        self.recorded_epoch = None
        self.images = 0
        self.epoch_started = time.time()
        self.errors: list = []
        self.resumable_saved = False
        self.stop_file = runs.run_dir(root, run_id) / runs.STOP_FILE
        self.sampler = None   # a SystemSampler (runner._start): its samples go with each epoch record

    # --- Ultralytics-facing: one wrapper per callback name --------------------------------
    def callbacks(self, on_state: Optional[Callable] = None) -> dict:
        """{callback name: function(trainer)}; `on_state` also gets each state (recording)."""

        def make(name):
            def callback(trainer):
                try:
                    state = trainer_state(name, trainer)
                    if on_state:
                        on_state(state)
                    self.handle(state, trainer)
                except Exception as exc:   # never let observing kill training
                    self.log_error(name, exc)
            return callback

        return {name: make(name) for name in CALLBACKS}

    def handle(self, state: dict, trainer=None) -> None:
        """Dispatch one state; `trainer` (None when replayed) receives the stop request."""
        getattr(self, "_" + state["event"])(state)
        if state["event"] in ("on_train_batch_end", "on_fit_epoch_end") and self.stop_file.exists():
            self.stop_requested.set()   # `runs stop` from another process
        if trainer is not None and self.stop_requested.is_set():
            trainer.stop = True
            if state["event"] == "on_fit_epoch_end":
                self._keep_resumable(trainer)

    def log_error(self, where: str, exc: BaseException) -> None:
        logger.debug("callback %s of run %s failed; training goes on", where, self.run_id, exc_info=exc)
        self.errors.append({"callback": where, "error": f"{type(exc).__name__}: {exc}",
                            "traceback": traceback.format_exc(limit=3)})
        try:
            runs.update(self.root, self.run_id, callback_errors=self.errors[-MAX_LOGGED_ERRORS:])
        except Exception:   # the run record is best effort here; the training goes on
            logger.debug("could not record the callback error of run %s", self.run_id, exc_info=True)

    # --- per event ------------------------------------------------------------------------
    def _on_train_start(self, state):
        self.started = self.epoch_started = state["time"]
        self.first_epoch = state["epoch"]
        runs.update(self.root, self.run_id, status="running")
        self.emit(Event("train", 0, state["epochs"], "training started", {"status": "running"}))

    def _on_train_epoch_start(self, state):
        self.batch = 0
        self.current_epoch = state["epoch"]
        self.epoch_started = state["time"]

    def _on_train_batch_end(self, state):
        self.batch += 1
        self.images += state.get("batch_size", 0)
        elapsed = max(state["time"] - self.epoch_started, 1e-9)
        data = {"epoch": state["epoch"], "epochs": state["epochs"], "loss": state.get("loss", {}),
                "images_per_s": round(self.batch * state.get("batch_size", 0) / elapsed, 1),
                "system": self.latest_sample()}
        loss = sum(v for v in data["loss"].values() if isinstance(v, (int, float)))
        self.emit(Event("batch", self.batch, state["batches"],
                        f"epoch {state['epoch']}/{state['epochs']} loss {loss:.3f} {data['images_per_s']:.0f} img/s", data))

    def _on_fit_epoch_end(self, state):
        if state["epoch"] != self.current_epoch or state["epoch"] == self.recorded_epoch:
            # Ultralytics' final validation of best.pt calls this again: as epoch + 1, or (8.3,
            # 8.4.0) as the same epoch, whose row must keep that epoch's own metrics
            return
        self.recorded_epoch = state["epoch"]
        row = {"epoch": state["epoch"], **runs.epoch_row({**state.get("loss", {}), **state.get("metrics", {})})}
        self._record_epoch(state, row)

    def _record_epoch(self, state: dict, row: dict) -> None:
        record = runs.read(self.root, self.run_id)
        epochs = [e for e in record.get("epochs") or [] if e.get("epoch") != row["epoch"]] + [row]
        best_epoch, best = runs.best_of(epochs)
        system = {"system": self.sampler.series()} if self.sampler is not None and self.sampler.enabled else {}
        runs.update(self.root, self.run_id, epochs=epochs, best_epoch=best_epoch, metrics=best, **system)
        timing = self._timing(state)
        self.emit(Event("epoch", state["epoch"], state["epochs"], self._epoch_message(row, timing),
                        {"row": row, "at": state["time"], **timing}))

    def _on_model_save(self, state):
        pass

    def _on_train_end(self, state):
        pass

    # --- helpers --------------------------------------------------------------------------
    def _timing(self, state) -> dict:
        elapsed = state["time"] - self.started
        done = state["epoch"] - self.first_epoch + 1
        eta = elapsed / done * (state["epochs"] - state["epoch"]) if done > 0 else None
        return {"elapsed_s": round(elapsed, 2), "eta_s": round(eta, 2) if eta is not None else None,
                "images_per_s": round(self.images / elapsed, 1) if elapsed > 0 else None,
                "gpu_mem_gb": state.get("gpu_mem_gb"), "epochs": state["epochs"], "system": self.latest_sample()}

    def latest_sample(self):
        return self.sampler.latest if self.sampler is not None else None

    @staticmethod
    def _epoch_message(row: dict, timing: dict) -> str:
        parts = [f"{k} {row[k]:.3f}" for k in ("box_loss", "precision", "recall", "mAP50", "mAP50-95")
                 if isinstance(row.get(k), float)]
        parts.append(f"elapsed {timing['elapsed_s']:.0f}s")
        if timing.get("eta_s") is not None:
            parts.append(f"ETA {timing['eta_s']:.0f}s")
        if timing.get("gpu_mem_gb") is not None:
            parts.append(f"GPU {timing['gpu_mem_gb']:.2f}GB")
        return " ".join(parts)

    def _keep_resumable(self, trainer) -> None:
        """Ultralytics strips the optimizer from last.pt when a run ends: keep a copy to resume from."""
        import shutil

        last = getattr(trainer, "last", None)
        if self.resumable_saved or last is None or not last.exists():
            return
        shutil.copyfile(last, last.with_name("resume.pt"))
        self.resumable_saved = True


class ResultsCsvFollower:
    """The live view of DDP runs: Ultralytics trains in worker processes there and never calls
    our callbacks, so we follow the `results.csv` it appends one row to per epoch."""

    def __init__(self, observer: RunObserver, csv_path, epochs: int, interval: float = 1.0):
        self.observer, self.csv_path, self.epochs, self.interval = observer, csv_path, epochs, interval
        self.seen = 0
        self.done = threading.Event()

    def poll(self) -> int:
        """Emit the epochs that appeared since the last poll; returns how many."""
        rows = runs.read_results_csv(self.csv_path)
        new = rows[self.seen:]
        for row in new:
            state = {"event": "on_fit_epoch_end", "time": time.time(), "epoch": row.get("epoch", self.seen + 1),
                     "epochs": self.epochs, "loss": {}, "metrics": {}}
            self.observer.current_epoch = state["epoch"]
            self.observer._record_epoch(state, row)
        self.seen += len(new)
        return len(new)

    def follow(self) -> None:
        while not self.done.wait(self.interval):
            try:
                self.poll()
            except Exception as exc:   # a half-written csv line: try again next time
                self.observer.log_error("results.csv", exc)
        self.poll()
