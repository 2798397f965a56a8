"""Issue 18 part 2: the machine sampled during a training (run.json `system`, `runs show`, the live
widget) and Ultralytics' console output kept in runs/<id>/train.log, committed with the run."""
from __future__ import annotations

import json
import threading

import pytest

from conftest import cli, git
from trained import held_training, tiny_train

INTERVAL = 0.5   # seconds: a tiny training lasts a few seconds only


def sampler_threads() -> list:
    return [t for t in threading.enumerate() if t.name.startswith("nbversion-system-")]


@pytest.fixture
def data_ws(ws, demo_data, monkeypatch):
    monkeypatch.setenv("NBVERSION_SYSTEM_INTERVAL", str(INTERVAL))
    ws.dataset_add("demo", demo_data)
    return ws


def test_a_training_keeps_system_samples_its_log_and_the_samplers_cost(data_ws, capfd):
    events = []
    run = tiny_train(data_ws, epochs=2, on_event=events.append)
    printed = capfd.readouterr()
    assert "Starting training" not in printed.out + printed.err   # the log file has it, the cell not
    record = run.record
    assert record["status"] == "done", record

    samples = record["system"]
    assert samples, record
    for sample in samples:
        for key in ("t", "cpu", "cpu_machine", "ram_mb", "ram_machine_mb", "disk_free_gb"):
            assert isinstance(sample[key], (int, float)), sample
        assert sample["ram_mb"] > 0 and sample["disk_free_gb"] > 0
        assert not [k for k in sample if k.startswith("gpu")], sample   # a CPU training: no GPU fields
    assert [s["t"] for s in samples] == sorted(s["t"] for s in samples)

    cost = record["system_cost"]
    assert cost["cpu_s"] > 0 and cost["wall_s"] > 0 and 0 < cost["share"] < 1, cost
    assert cost["samples"] == len(samples) and cost["interval_s"] == INTERVAL
    expected = cost["wall_s"] / INTERVAL   # one per interval, plus one at the end
    assert 0.3 * expected <= len(samples) <= expected + 2, (len(samples), cost)

    # the live view got the latest sample with the training's progress
    assert any((e.data or {}).get("system") for e in events if e.stage in ("batch", "epoch"))

    assert not sampler_threads()

    log = (data_ws.root / "runs" / run.run_id / "train.log").read_text()
    assert "Starting training for 2 epochs" in log
    assert "1/2" in log and "2/2" in log                 # the epoch lines
    assert "mAP50-95" in log and "all" in log            # the validation results table
    assert "epochs completed" in log
    assert f"runs/{run.run_id}/train.log" in git(data_ws.root, "ls-files", f"runs/{run.run_id}")
    assert json.loads(cli("status", "--json", check=0).stdout)["changes"] == []   # nothing of the run left over
    assert git(data_ws.root, "status", "--porcelain") == ""

    shown = cli("runs", "show", run.run_id, check=0).stdout
    assert f"system ({len(samples)} sample" in shown and "min / avg / max" in shown
    assert "CPU of the training" in shown and "disk free (workspace)" in shown
    assert "sampler's own CPU" in shown
    assert "GPU utilisation" not in shown

    chart = run.widget(render=False)   # the widget of a finished run shows its last sample
    assert "CPU" in chart.system_label.value and "disk free" in chart.system_label.value


def test_a_stopped_run_stops_its_sampler_and_keeps_its_samples(data_ws):
    with held_training(data_ws, epochs=3) as live:
        assert len(sampler_threads()) == 1
        run_id = live.run_id
        during = live.record()
        assert isinstance(during["system"], list), during   # written with the first epoch's record
    record = data_ws.runs_show(run_id).record
    assert record["status"] == "stopped", record
    assert record["system"] and len(record["system"]) >= len(during["system"])
    assert record["system_cost"]["cpu_s"] > 0
    assert not sampler_threads()
    log = data_ws.root / "runs" / run_id / "train.log"
    before = log.read_text()
    assert "Starting training for 3 epochs" in before

    resumed = data_ws.runs_resume(run_id, wait=True)   # the log and the series go on
    assert resumed.status == "done", resumed.record
    assert log.read_text().startswith(before) and "Resuming training" in log.read_text()
    series = resumed.record["system"]
    assert series[:len(record["system"])] == record["system"] and len(series) > len(record["system"])
    assert [s["t"] for s in series] == sorted(s["t"] for s in series)
    assert not sampler_threads()


def test_no_sampling_when_the_interval_is_zero(data_ws, monkeypatch):
    monkeypatch.setenv("NBVERSION_SYSTEM_INTERVAL", "0")
    run = tiny_train(data_ws, epochs=1)
    assert run.record["status"] == "done"
    assert "system" not in run.record and "system_cost" not in run.record
    assert not sampler_threads()


@pytest.mark.gpu
def test_a_gpu_training_samples_the_gpu(data_ws):
    from nbversion.training import _yolo

    if not _yolo.cuda_devices():
        pytest.skip("no CUDA GPU")
    pytest.importorskip("pynvml", reason="nvidia-ml-py is not installed")
    run = data_ws.train("demo", "yolov8n.yaml", epochs=2, imgsz=64, batch=4, device="0", wait=True)
    assert run.status == "done", run.record
    sample = run.record["system"][-1]
    assert sample["gpu_mem_total_mb"] > 0 and sample["gpu_mem_mb"] > 0, sample
    assert 0 <= sample["gpu_util"] <= 100 and sample["gpu_temp"] > 0, sample
    assert "GPU utilisation" in cli("runs", "show", run.run_id, check=0).stdout
