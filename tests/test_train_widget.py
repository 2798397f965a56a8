"""The live chart, fed by a fake trainer that replays recorded Ultralytics callbacks.

tests/data/recorded_callbacks.json comes from a real 3-epoch CPU run
(tests/data/record_callbacks.py): no torch, no training here, each test takes milliseconds.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from nbversion.training import runs
from nbversion.training.handle import Run
from nbversion.training.progress import RunObserver
from trained import trained, trained_template   # noqa: F401 (fixtures)

RECORDED = Path(__file__).parent / "data" / "recorded_callbacks.json"
RUN_ID = "20260101-000000-replay"


class FakeTrainer:
    """Replays recorded callback states like Ultralytics would call them; honours `stop`."""

    def __init__(self, states):
        self.states = states
        self.stop = False

    def replay(self, observer: RunObserver, after=None) -> int:
        calls = 0
        for state in self.states:
            observer.handle({**state, "time": time.time()}, trainer=self)
            calls += 1
            if after:
                after(state)
            if self.stop and state["event"] in ("on_train_batch_end", "on_fit_epoch_end"):
                # Ultralytics breaks out of the batch loop, validates and saves, then ends
                break
        return calls


@pytest.fixture
def states():
    return json.loads(RECORDED.read_text())


@pytest.fixture
def live_run(tmp_path):
    # the fake trainer's own run: widget drawing only (DESIGN "Testing"); real runs: test_training*.py
    runs.write(tmp_path, {"id": RUN_ID, "status": "queued", "params": {"epochs": 3}, "epochs": [],
                          "device": "cpu", "pid": None})
    run = Run(tmp_path, RUN_ID)
    run.observer = RunObserver(tmp_path, RUN_ID, run.emit)
    run.thread = object()   # looks like a training thread: the chart subscribes and offers Stop
    return run


def test_recording_is_a_real_three_epoch_run(states):
    events = [s["event"] for s in states]
    assert events[0] == "on_train_start" and events[-1] == "on_train_end"
    assert events.count("on_train_epoch_start") == 3
    assert {"train/box_loss", "train/cls_loss", "train/dfl_loss"} <= set(states[2]["loss"])


def test_widget_gets_one_update_per_epoch_in_milliseconds(live_run, states):
    chart = live_run.widget(render=False, champion=None)
    started = time.perf_counter()
    FakeTrainer(states).replay(live_run.observer)
    took = time.perf_counter() - started
    assert chart.updates == 3                       # the final validation is not a 4th epoch
    assert [r["epoch"] for r in chart.state["rows"]] == [1, 2, 3]
    assert chart.state["epoch"] == 3 and chart.state["epochs"] == 3
    assert {"box_loss", "precision", "recall", "mAP50", "mAP50-95", "lr"} <= set(chart.state["rows"][-1])
    assert len(chart.state["batch_loss"]) == 12     # 3 epochs x 4 batches: the per-batch loss curve
    assert chart.state["elapsed_s"] is not None and chart.state["images_per_s"]
    assert "epoch 3/3" in chart.label.value and "ETA" in chart.label.value
    assert took < 0.5, f"replaying 24 callbacks took {took:.3f}s"
    record = runs.read(live_run.root, RUN_ID)       # the record follows the epochs too
    assert record["status"] == "running" and len(record["epochs"]) == 3 and record["best_epoch"]


def test_epoch_update_reaches_the_widget_well_within_a_second(live_run, states):
    chart = live_run.widget(render=False, champion=None)
    latencies = []
    seen = {"updates": 0}

    def after(state):
        if state["event"] == "on_fit_epoch_end" and chart.updates > seen["updates"]:
            latencies.append(time.time() - marks[-1])
            seen["updates"] = chart.updates

    marks = []
    trainer = FakeTrainer(states)
    for state in states:
        marks.append(time.time())
        live_run.observer.handle({**state, "time": marks[-1]}, trainer=trainer)
        after(state)
    assert len(latencies) == 3 and max(latencies) < 1.0


def test_stop_button_stops_the_fake_trainer_after_the_current_batch(live_run, states):
    chart = live_run.widget(render=False, champion=None)
    trainer = FakeTrainer(states)

    def click_during_epoch_two(state):
        if state["event"] == "on_train_epoch_start" and state["epoch"] == 2:
            chart.stop_button.click()

    calls = trainer.replay(live_run.observer, after=click_during_epoch_two)
    assert trainer.stop is True and calls < len(states)
    assert chart.stop_button.disabled and chart.state["status"] == "stopping"
    assert chart.updates == 1                       # epoch 2 never finished


def test_chart_draws_png_off_the_training_thread_with_champion_line(live_run, states):
    chart = live_run.widget(render=True, champion=0.5)
    FakeTrainer(states).replay(live_run.observer)
    assert chart.flush(timeout=30)
    assert chart.image.value[:4] == b"\x89PNG"
    assert "champion 0.500" in chart.label.value


def test_no_champion_no_line(live_run):
    from nbversion.widgets.train_chart import champion_map
    assert champion_map({"_root": str(live_run.root)}) is None   # no registry here: no line, no error


def test_broken_callback_is_logged_and_training_goes_on(live_run, states):
    class Exploding:
        stop = False

        @property
        def epoch(self):
            raise RuntimeError("boom in a metric")

    callbacks = live_run.observer.callbacks()
    callbacks["on_fit_epoch_end"](Exploding())      # must not raise
    record = runs.read(live_run.root, RUN_ID)
    assert record["callback_errors"][0]["callback"] == "on_fit_epoch_end"
    assert "boom in a metric" in record["callback_errors"][0]["error"]


def test_display_bundle_has_widget_and_static_fallback(live_run, states, monkeypatch):
    FakeTrainer(states).replay(live_run.observer)
    shown = []
    monkeypatch.setattr("IPython.display.display", lambda obj, raw=False, **kw: shown.append(obj))
    live_run._ipython_display_()
    bundle = shown[0]
    assert "application/vnd.jupyter.widget-view+json" in bundle
    assert "<img" in bundle["text/html"] and "<table" in bundle["text/html"]   # nbconvert / nbval view
    assert RUN_ID in bundle["text/plain"]


def test_ddp_live_view_follows_results_csv(live_run):
    """In DDP runs no callback reaches us: the epochs come from results.csv as it grows."""
    from nbversion.training.progress import ResultsCsvFollower

    chart = live_run.widget(render=False, champion=None)
    csv = live_run.root / "runs" / RUN_ID / "results.csv"
    header = "epoch,time,train/box_loss,train/cls_loss,train/dfl_loss,metrics/precision(B),metrics/recall(B)," \
             "metrics/mAP50(B),metrics/mAP50-95(B),val/box_loss,val/cls_loss,val/dfl_loss,lr/pg0,lr/pg1,lr/pg2\n"
    line = "{e},1.5,1.4,1.1,0.8,0.{e},0.2,0.3,0.1{e},1.6,2.3,0.9,0.003,0.003,0.003\n"
    # the lines stand in for Ultralytics' DDP workers (no multi-GPU machine here): the fake trainer's input
    follower = ResultsCsvFollower(live_run.observer, csv, epochs=3)
    assert follower.poll() == 0                     # not written yet
    csv.write_text(header + line.format(e=1))
    assert follower.poll() == 1 and chart.updates == 1
    csv.write_text(header + line.format(e=1) + line.format(e=2))
    assert follower.poll() == 1 and chart.updates == 2 and follower.poll() == 0
    record = runs.read(live_run.root, RUN_ID)
    assert [e["epoch"] for e in record["epochs"]] == [1, 2] and record["best_epoch"] == 2
    assert record["epochs"][1]["precision"] == 0.2 and record["epochs"][1]["mAP50-95"] == 0.12


# A run left running by a dead process shows `failed`: built for real (a CLI training killed
# with SIGKILL) in test_training_commits.py::test_a_killed_training_shows_failed_then_a_commit_and_resume_finish_it
# and test_server.py::test_progress_shows_a_run_of_a_dead_process_as_failed.


def test_after_stop_the_widget_shows_no_eta(live_run, states):
    from nbversion.events import Event

    chart = live_run.widget(render=False, champion=None)
    trainer = FakeTrainer(states)
    seen = {}

    def click_after_epoch_one(state):
        if state["event"] == "on_fit_epoch_end" and state["epoch"] == 1:
            seen["before"] = chart.label.value
            chart.stop_button.click()
            seen["clicked"] = chart.label.value

    trainer.replay(live_run.observer, after=click_after_epoch_one)
    assert "ETA" in seen["before"] and chart.state["epoch"] == 1
    assert "ETA" not in seen["clicked"] and chart.state["eta_s"] is None
    # the runner's last word once the stopped run is committed
    live_run.emit(Event("train", 1, 3, f"run {RUN_ID} stopped", {"status": "stopped"}))
    assert chart.state["status"] == "stopped" and chart.state["eta_s"] is None
    assert "ETA" not in chart.label.value and "stopped" in chart.label.value
    assert chart.stop_button.disabled and chart.stop_button.description == "Stopped"


def test_a_stop_during_an_epoch_keeps_the_eta_off_when_that_epoch_reports(live_run, states):
    chart = live_run.widget(render=False, champion=None)

    def click_during_epoch_two(state):
        if state["event"] == "on_train_batch_end" and state["epoch"] == 2 and not chart.stop_button.disabled:
            chart.stop_button.click()

    for state in states:   # no trainer to stop: the epochs a slow stop still reports keep coming
        live_run.observer.handle({**state, "time": time.time()}, trainer=None)
        click_during_epoch_two(state)
    assert chart.updates == 3 and chart.state["status"] == "stopping"
    assert chart.state["eta_s"] is None and "ETA" not in chart.label.value


def test_a_run_whose_commit_failed_says_so_in_the_widget(live_run, states):
    from nbversion.events import Event

    chart = live_run.widget(render=False, champion=None)
    FakeTrainer(states).replay(live_run.observer)
    live_run.emit(Event("train", 3, 3, f"run {RUN_ID} commit failed",
                        {"status": "commit failed", "error": None,
                         "commit_error": "WorkspaceLocked: the workspace is busy: dataset add by pid 7"}))
    assert chart.state["status"] == "commit failed" and chart.state["eta_s"] is None
    assert "commit failed: WorkspaceLocked: the workspace is busy" in chart.label.value
    assert "ETA" not in chart.label.value and chart.stop_button.disabled


def test_the_chart_of_a_run_draws_the_registered_champions_map(trained):
    """The dashed line is the champion's mAP50-95 as registered, read from the registry's tags."""
    ws, run_id = trained
    assert ws.runs_show(run_id).to_dict() and Run(ws.root, run_id).widget(render=False).champion is None
    ws.register("det", version="1.0.0", source=run_id)
    ws.promote("det@v1.0.0")
    registered = ws.registry("det").versions[0]["metrics"]["mAP50-95"]
    assert Run(ws.root, run_id).widget(render=False).champion == pytest.approx(float(registered))


@pytest.mark.parametrize("live", [True, False], ids=["live widget", "runs show"])
def test_no_text_of_the_chart_overlaps_another(live_run, states, live):
    """Titles, legends and tick labels of every panel, measured at the size the PNG is shown."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    from nbversion.widgets.train_chart import ChartFigure

    chart = live_run.widget(render=False, champion=None)
    FakeTrainer(states).replay(live_run.observer)
    figure = ChartFigure(with_batches=live)
    figure.png(chart.state["rows"], chart.state["batch_loss"] if live else None, 0.01, RUN_ID)
    renderer = FigureCanvasAgg(figure.figure).get_renderer()   # the one savefig draws the PNG with
    texts = [("title", figure.figure._suptitle)]
    for ax in figure.axes:
        texts.append((f"{ax.get_title()!r} title", ax.title))
        if ax.get_legend() is not None:
            texts.append((f"{ax.get_title()!r} legend", ax.get_legend()))
        (x0, x1), (y0, y1) = sorted(ax.get_xlim()), sorted(ax.get_ylim())   # ticks outside are not drawn
        labels = [t for t in ax.get_xticklabels() if x0 <= t.get_position()[0] <= x1] + \
            [t for t in ax.get_yticklabels() if y0 <= t.get_position()[1] <= y1] + [ax.xaxis.offsetText, ax.yaxis.offsetText]
        texts += [(f"{ax.get_title()!r} tick {t.get_text()}", t) for t in labels if t.get_visible() and t.get_text()]
    boxes = [(name, artist.get_window_extent(renderer)) for name, artist in texts]
    whole = figure.figure.bbox
    assert [name for name, box in boxes if not (whole.x0 <= box.x0 and box.x1 <= whole.x1 + 1
                                                and whole.y0 <= box.y0 and box.y1 <= whole.y1 + 1)] == []
    overlapping = [(a, b) for i, (a, box_a) in enumerate(boxes) for b, box_b in boxes[i + 1:] if box_a.overlaps(box_b)]
    assert overlapping == []


def test_the_magics_progress_line_drops_its_eta_once_a_stop_is_asked(monkeypatch):
    """`%mv_train --wait`, Ctrl-C: the batches of the epoch being finished show no ETA."""
    from nbversion.events import Event
    from nbversion.widgets import progress

    clock, shown = iter([0.0, 0.0, 10.0, 11.0, 12.0, 20.0]), []
    monkeypatch.setattr(progress.time, "monotonic", lambda: next(clock))   # a fake clock, not a timing
    monkeypatch.setattr("IPython.display.display", lambda line, **kw: shown.append(line) or _Handle(shown))
    line = progress.NotebookProgress()
    line.SHOW_AFTER = line.EVERY = 0
    line(Event("batch", 1, 10, "epoch 1/3"))
    line(Event("batch", 5, 10, "epoch 1/3"))
    assert "ETA" in repr(shown[-1])
    line(Event("train", 0, 0, "interrupted: stopping after the current batch", {"status": "stopping"}))
    line(Event("batch", 6, 10, "epoch 1/3"))
    line(Event("batch", 7, 10, "epoch 1/3"))   # 8 s into this stage: a rate, but no time left to estimate
    assert repr(shown[-1]) == "batch: 7/10 epoch 1/3"


class _Handle:
    def __init__(self, shown):
        self.shown = shown

    def update(self, line):
        self.shown.append(line)
