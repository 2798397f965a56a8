"""The live training chart: matplotlib drawn into an `ipywidgets.Image`, plus a Stop button.

No network and no JavaScript of our own: the PNG is rendered here (Agg backend) and the widget
only carries bytes. Drawing happens in a small renderer thread, so neither the training thread
nor the kernel waits for matplotlib; state (`TrainChart.state`) is updated synchronously, one
update per epoch, which is what the tests check. Where widgets cannot be shown (nbconvert,
nbval) the display falls back to `static_chart_html`, a PNG of the same chart.
"""
from __future__ import annotations

import base64
import html
import io
import logging
import os
import threading
import time
from typing import Optional

from ..training.system_sampler import describe_sample

logger = logging.getLogger(__name__)

ENDED = ("done", "stopped", "failed", "commit failed")
TRAINING = ("queued", "running")   # an ETA means something only then
PANELS = (("loss", ("box_loss", "cls_loss", "dfl_loss", "val_box_loss", "val_cls_loss", "val_dfl_loss")),
          ("precision / recall", ("precision", "recall")),
          ("mAP", ("mAP50", "mAP50-95")),
          ("learning rate", ("lr",)))


def _fmt_seconds(seconds) -> str:
    if seconds is None:
        return "?"
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}" if seconds >= 3600 else \
        f"{seconds // 60}:{seconds % 60:02d}"


class ChartFigure:
    """One matplotlib figure kept between epochs: only the line data changes, then one savefig.

    Building a figure, legends and a tight layout costs about a second on a small CPU; updating
    lines costs a tenth of that, which keeps the chart within a second of each epoch end.
    """

    def __init__(self, with_batches: bool = True):
        from matplotlib.figure import Figure

        panels = len(PANELS) + (1 if with_batches else 0)
        # each legend under its panel, the run's name above the panel titles: no text over another
        # text (tests/test_train_widget.py measures it) and none over the curves
        self.figure = Figure(figsize=(2.3 * panels, 2.9), dpi=72)
        self.figure.subplots_adjust(left=0.05, right=0.99, bottom=0.33, top=0.80, wspace=0.35)
        self.axes = self.figure.subplots(1, panels)
        self.lines = {}
        for ax, (name, keys) in zip(self.axes, PANELS):
            for index, key in enumerate(keys):   # a loss and its validation twin: one colour, val dashed
                self.lines[key], = ax.plot([], [], marker="o", markersize=3, label=key.replace("_loss", ""),
                                           color=f"C{index % 3}", linestyle="--" if key.startswith("val_") else "-")
            self._style(ax, name)
            # a fixed legend position: "best" searches for a free spot at every draw
            ax.legend(fontsize=6, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2, frameon=False,
                      handlelength=1.5, columnspacing=1, borderaxespad=0)
        self.champion = self.axes[2].axhline(0, linestyle="--", color="grey", visible=False)
        self.batch_line = None
        if with_batches:
            self.batch_line, = self.axes[-1].plot([], [], linewidth=0.8)
            self._style(self.axes[-1], "loss per batch")

    @staticmethod
    def _style(ax, title: str) -> None:
        from .axes import few_short_ticks

        ax.set_title(title, fontsize=9)
        ax.tick_params(labelsize=7)
        few_short_ticks(ax)

    def png(self, rows: list, batch_loss: Optional[list] = None, champion: Optional[float] = None,
            title: str = "") -> bytes:
        epochs = [r.get("epoch") for r in rows]
        for key, line in self.lines.items():
            points = [(e, r.get(key)) for e, r in zip(epochs, rows) if r.get(key) is not None]
            line.set_data([p[0] for p in points], [p[1] for p in points])
        if champion is not None:
            self.champion.set_ydata([champion, champion])
            self.champion.set_visible(True)
        if self.batch_line is not None and batch_loss:
            self.batch_line.set_data(range(1, len(batch_loss) + 1), batch_loss)
        from .axes import whole_epochs

        for ax in self.axes:
            ax.relim()
            ax.autoscale_view()
            if ax is not (self.axes[-1] if self.batch_line is not None else None):   # that one counts batches
                whole_epochs(ax)
        self.figure.suptitle(title, fontsize=9, x=0.01, y=0.98, ha="left", va="top")
        buffer = io.BytesIO()
        self.figure.savefig(buffer, format="png", pil_kwargs={"compress_level": 1})
        return buffer.getvalue()


def render_png(rows: list, batch_loss: Optional[list] = None, champion: Optional[float] = None,
               title: str = "") -> bytes:
    """The chart as PNG bytes: one panel per metric family, the champion's mAP50-95 dashed."""
    return ChartFigure(with_batches=bool(batch_loss)).png(rows, batch_loss, champion, title)


def run_chart_html(result) -> str:
    """Below `runs show`'s table in a notebook (registered in nbversion/render.py)."""
    return static_chart_html(result.record)


def static_chart_html(record: dict) -> str:
    """The chart of a run record as an inline PNG (no widget frontend needed)."""
    rows = record.get("epochs") or []
    if not rows:
        return ""
    try:
        png = render_png(rows, champion=champion_map(record), title=record.get("id", ""))
    except Exception:   # no matplotlib or a font problem: the table above still says it all
        logger.debug("could not draw the training chart", exc_info=True)
        return ""
    return f"<img alt='training chart' src='data:image/png;base64,{base64.b64encode(png).decode()}'/>"


def champion_map(record: dict) -> Optional[float]:
    """mAP50-95 of the current champion, if the registry has one (read defensively)."""
    try:
        from ..core.registry.summaries import champion_metric

        root = record.get("_root") or os.getcwd()
        return champion_metric(root, "mAP50-95", prefer=(record.get("params") or {}).get("name"))
    except Exception:   # a chart without the champion line is still the chart
        logger.debug("no champion line for run %s", record.get("id"), exc_info=True)
        return None


class TrainChart:
    """Live view of one run; `on_event` is subscribed to the run's events."""

    def __init__(self, run, champion: Optional[float] = None, render: bool = True):
        import ipywidgets as widgets

        from ..extras import require
        from ..training.runs import effective_status

        require("yolo", "the live training chart", ("matplotlib",))

        self.run = run
        record = run.record
        status = record.get("status") if run.running else effective_status(record)   # a dead process: failed
        self.state = {"run": run.run_id, "status": status, "epoch": len(record.get("epochs") or []),
                      "epochs": (record.get("params") or {}).get("epochs"), "rows": list(record.get("epochs") or []),
                      "batch_loss": [], "elapsed_s": None, "eta_s": None, "images_per_s": None,
                      "gpu_mem_gb": None, "batch": 0, "batches": 0, "error": record.get("error"),
                      "commit_error": record.get("commit_error"),
                      "system": (record.get("system") or [None])[-1],
                      "position": run.to_dict().get("position") if status == "queued" else None}
        self.champion = champion if champion is not None else champion_map({**record, "_root": str(run.root)})
        self.updates = 0            # epoch updates received (the tests count them)
        self.renders = 0            # charts drawn
        self.label = widgets.HTML()
        self.image = widgets.Image(format="png", layout=widgets.Layout(max_width="100%"))
        self.stop_button = widgets.Button(description="Stop", icon="stop", button_style="danger",
                                          tooltip="stop after the current batch; weights are kept for resume")
        self.stop_button.on_click(lambda _: self.request_stop())
        # the machine on a line of its own under the status line: the two never overlap
        self.system_label = widgets.HTML(layout=widgets.Layout(margin="0 0 0 4px"))
        self.box = widgets.VBox([widgets.HBox([self.stop_button, self.label]), self.system_label, self.image])
        self._dirty = threading.Event()
        self._drawn = threading.Condition()
        self._wanted = 0
        self._lock = threading.Lock()
        self._refresh_label()
        self._set_running(self.state["status"] in TRAINING and (run.running or status == "queued"))   # Stop cancels a queued run
        if render:
            threading.Thread(target=self._renderer, name=f"nbversion-chart-{run.run_id}", daemon=True).start()
            self._request_render()

    # --- events ---------------------------------------------------------------------------
    def on_event(self, event) -> None:
        data = event.data or {}
        with self._lock:
            if data.get("system"):   # batch and epoch events carry the sampler's latest sample
                self.state["system"] = data["system"]
            if event.stage == "epoch":
                self._on_epoch(event, data)
            elif event.stage == "batch":
                self._on_batch(event, data)
            elif event.stage == "train" and data.get("status"):
                self.state["status"] = data["status"]
                self.state["position"] = data.get("position")
                self.state.update({k: data[k] for k in ("error", "commit_error") if data.get(k)})
                if data["status"] not in TRAINING:
                    self.state["eta_s"] = None
                self._set_running(data["status"] in ("queued", "running", "stopping"))
                if data["status"] not in ("running", "stopping"):
                    self._request_render()
        self._refresh_label()

    def _on_epoch(self, event, data) -> None:
        rows = [r for r in self.state["rows"] if r.get("epoch") != event.done] + [data.get("row", {})]
        stopping = self.state["status"] == "stopping"   # the epoch a Stop cut short still reports
        self.state.update(rows=rows, epoch=event.done, epochs=event.total, status="stopping" if stopping else "running",
                          **{k: data.get(k) for k in ("elapsed_s", "eta_s", "images_per_s", "gpu_mem_gb")})
        if stopping:
            self.state["eta_s"] = None
        self.updates += 1
        self._request_render()

    def _on_batch(self, event, data) -> None:
        loss = data.get("loss") or {}
        total = sum(v for v in loss.values() if isinstance(v, (int, float)))
        if loss:
            self.state["batch_loss"].append(round(total, 5))
        self.state.update(batch=event.done, batches=event.total, epoch_in_progress=data.get("epoch"),
                          epochs=data.get("epochs") or self.state["epochs"])
        if data.get("images_per_s"):
            self.state["images_per_s"] = data["images_per_s"]

    # --- actions --------------------------------------------------------------------------
    def request_stop(self) -> None:
        self.run.stop()
        self.state.update(status="stopping", eta_s=None)
        self.stop_button.disabled = True
        self.stop_button.description = "Stopping…"
        self._refresh_label()

    def _set_running(self, running: bool) -> None:
        if not running:
            self.stop_button.disabled = True
            self.stop_button.description = "Stopped" if self.state["status"] == "stopped" else "Ended"

    # --- drawing --------------------------------------------------------------------------
    def _refresh_label(self) -> None:
        s = self.state
        best = max((r.get("mAP50-95") or 0 for r in s["rows"]), default=None)
        status = f"queued (position {s['position']})" if s["status"] == "queued" and s.get("position") else s["status"]
        parts = [f"<b>{html.escape(s['run'])}</b> · {html.escape(str(status))}",
                 f"epoch {s['epoch']}/{s['epochs']}"]
        if s.get("batches") and s["status"] == "running":
            parts.append(f"batch {s['batch']}/{s['batches']}")
        parts.append(f"elapsed {_fmt_seconds(s['elapsed_s'])}")
        if s["status"] in TRAINING:   # stopping or ended: no time left to estimate
            parts.append(f"ETA {_fmt_seconds(s['eta_s'])}")
        if s.get("images_per_s"):
            parts.append(f"{s['images_per_s']:.0f} img/s")
        if s.get("gpu_mem_gb") is not None:
            parts.append(f"GPU {s['gpu_mem_gb']:.2f} GB")
        if best is not None and s["rows"]:
            parts.append(f"best mAP50-95 {best:.3f}")
        if self.champion is not None:
            parts.append(f"champion {self.champion:.3f}")
        for key, words in (("error", "error"), ("commit_error", "commit failed")):
            if s.get(key):
                parts.append(f"<span style='color:var(--jp-error-color1,#c00)'>{words}: "
                             f"{html.escape(str(s[key])[:300])}</span>")
        self.label.value = " · ".join(parts)
        system = describe_sample(s.get("system"))
        if system and self.system_label.value != f"<small>{html.escape(system)}</small>":
            self.system_label.value = f"<small>{html.escape(system)}</small>"

    def _request_render(self) -> None:
        self._wanted += 1
        self._dirty.set()

    def _renderer(self) -> None:
        try:   # import matplotlib and build the figure now, while Ultralytics sets up
            figure = ChartFigure(with_batches=True)
        except Exception:   # no matplotlib: the widget's table is all there is
            logger.debug("the live training chart is off", exc_info=True)
            return
        while True:
            self._dirty.wait()
            self._dirty.clear()
            wanted = self._wanted
            with self._lock:
                rows, losses = list(self.state["rows"]), list(self.state["batch_loss"])
            try:
                if rows or losses:
                    self.image.value = figure.png(rows, losses, self.champion, self.state["run"])
            except Exception:   # drawing must never disturb the run
                logger.debug("could not redraw the training chart", exc_info=True)
            with self._drawn:
                self.renders = wanted
                self._drawn.notify_all()
            if self.state["status"] in ENDED and self._wanted == wanted:
                return   # the run is over and its last chart drawn: nothing more will come

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until the chart shows everything received so far (tests, --wait)."""
        deadline = time.time() + timeout
        with self._drawn:
            while self.renders < self._wanted and time.time() < deadline:
                self._drawn.wait(deadline - time.time())
        return self.renders >= self._wanted
