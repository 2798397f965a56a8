"""Real Ultralytics training on the CPU (2 epochs, 64 px, tiny demo dataset) through the API,
the CLI and the magic; stop / crash / resume; lineage, DVC and audit; clear input errors."""
from __future__ import annotations

import hashlib
import json
import os

import pytest

from conftest import cli, git, snapshot
from nbversion.errors import NbversionError, NotFound, UsageError

TINY = {"nbs": 4, "warmup_epochs": 0, "optimizer": "AdamW", "lr0": 0.003, "mosaic": 0, "plots": False}
TINY_ARGS = ["--imgsz", "64", "--batch", "4", "--device", "cpu", *[f"{k}={v}" for k, v in TINY.items()]]


@pytest.fixture
def data_ws(ws, demo_data):
    ws.dataset_add("demo", demo_data)
    return ws


def tiny_train(ws, epochs=2, wait=True, **kw):
    return ws.train("demo", "yolov8n.yaml", epochs=epochs, imgsz=64, batch=4, device="cpu",
                    extra=dict(TINY), wait=wait, **kw)


def audit_lines(root):
    return [json.loads(line) for line in (root / ".nbversion/audit.jsonl").read_text().splitlines()]


def assert_committed_run(ws, run_id, status, epochs):
    folder = ws.root / "runs" / run_id
    record = json.loads((folder / "run.json").read_text())
    assert record["status"] == status and len(record["epochs"]) == epochs
    header = (folder / "results.csv").read_text().splitlines()[0]
    assert "metrics/mAP50-95(B)" in header
    tracked = git(ws.root, "ls-files", f"runs/{run_id}").split()
    assert {f"runs/{run_id}/run.json", f"runs/{run_id}/results.csv", f"runs/{run_id}/weights.dvc"} <= set(tracked)
    assert not any("/weights/" in t for t in tracked)        # weights go to DVC, not git
    from nbversion.core.backends import dvc_cache
    pointer = (folder / "weights.dvc").read_text()
    listing = dvc_cache.read_dir_manifest(ws.root, pointer.split("md5: ")[1].split()[0])
    assert {"best.pt", "last.pt"} <= {e["relpath"] for e in listing}
    assert all(dvc_cache.object_path(ws.root, e["md5"]).exists() for e in listing)   # in the DVC cache
    assert git(ws.root, "status", "--porcelain") == ""
    entry = audit_lines(ws.root)[-1]
    assert entry["action"] == "train" and entry["target"] == run_id and entry["details"]["status"] == status
    return record


def test_api_training_records_run_lineage_weights_and_audit(data_ws):
    ws = data_ws
    dataset_commit = git(ws.root, "rev-parse", "HEAD").strip()
    events = []
    run = tiny_train(ws, on_event=events.append)
    record = assert_committed_run(ws, run.run_id, "done", 2)
    assert record["device"] == "cpu" and record["ultralytics_version"]
    assert record["params"]["epochs"] == 2 and record["params"]["lr0"] == 0.003
    assert record["dataset"]["name"] == "demo" and record["dataset"]["commit"] == dataset_commit
    assert record["dataset"]["md5"].endswith(".dir")
    assert record["best_epoch"] in (1, 2) and set(record["metrics"]) == {"precision", "recall", "mAP50", "mAP50-95"}
    assert {"box_loss", "cls_loss", "dfl_loss", "val_box_loss", "mAP50", "mAP50-95", "lr"} <= set(record["epochs"][0])
    assert record["started_at"] and record["ended_at"] and record["error"] is None
    weights = ws.root / record["weights"]["best"]
    assert weights.is_file() and (ws.root / record["weights"]["last"]).is_file()
    pointer = (ws.root / "runs" / run.run_id / "weights.dvc").read_text()
    assert ".dir" in pointer and "nfiles: 2" in pointer       # best.pt + last.pt, nothing else
    assert [e.done for e in events if e.stage == "epoch"] == [1, 2]
    assert git(ws.root, "log", "-1", "--format=%s").startswith(f"train {run.run_id}: done")
    listed = ws.runs_list()
    assert [r["id"] for r in listed.runs] == [run.run_id] and listed.table()[1][0][1] == "done"
    shown = ws.runs_show(run.run_id)
    assert len(shown.table()[1]) == 2 and f"runs/{run.run_id}/weights/best.pt" in shown.files
    assert "<img" in shown._repr_html_()                      # the per-epoch chart


def test_cli_train_waits_and_prints_json(data_ws):
    proc = cli("train", "--data", "demo", "--epochs", "2", "--name", "cli", *TINY_ARGS, "--json")
    assert proc.returncode == 0, proc.stderr
    record = json.loads(proc.stdout)
    assert record["status"] == "done" and record["id"].endswith("-cli") and len(record["epochs"]) == 2
    assert_committed_run(data_ws, record["id"], "done", 2)
    listed = cli("runs", "list", check=0).stdout
    assert record["id"] in listed and "done" in listed
    assert "mAP50-95" in cli("runs", "show", record["id"], check=0).stdout


def test_magic_returns_at_once_then_wait_blocks(data_ws):
    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance()
    try:
        shell.run_cell("%load_ext nbversion")
        line = f"%mv_train --data demo --epochs 2 --name magic {' '.join(TINY_ARGS)}"
        result = shell.run_cell(line)
        assert result.success, result.error_in_exec
        run = result.result
        assert run.running                                   # the cell returned while training goes on
        assert shell.run_cell("1 + 1").result == 2           # other cells keep running
        run.wait(timeout=300)
        record = assert_committed_run(data_ws, run.run_id, "done", 2)
        assert record["cell"]["execution_count"] is not None   # the cell survives into the thread
        assert "Nbversion-Cell:" in git(data_ws.root, "log", "-1", "--format=%B")
        waited = shell.run_cell(f"%mv_train --data demo --epochs 1 --name magic2 --wait {' '.join(TINY_ARGS)}")
        assert waited.success and not waited.result.running and waited.result.status == "done"
        assert shell.run_cell(f"%mv_runs show {run.run_id}").result.record["status"] == "done"
    finally:
        InteractiveShell.clear_instance()


def test_stop_mid_run_keeps_last_checkpoint_and_resume_completes(data_ws):
    ws = data_ws
    holder = {}

    def stop_after_first_epoch(trainer):
        if trainer.epoch == 0:
            ws.runs_stop(holder["id"])

    run = tiny_train(ws, epochs=3, wait=False, callbacks={"on_fit_epoch_end": stop_after_first_epoch})
    holder["id"] = run.run_id
    run.wait(timeout=300)
    record = assert_committed_run(ws, run.run_id, "stopped", 1)
    weights = ws.root / "runs" / run.run_id / "weights"
    assert (weights / "last.pt").is_file() and (weights / "resume.pt").is_file()
    with pytest.raises(UsageError, match="not running"):
        ws.runs_stop(run.run_id)
    resumed = ws.runs_resume(run.run_id, wait=True)
    record = assert_committed_run(ws, resumed.run_id, "done", 3)
    assert [e["epoch"] for e in record["epochs"]] == [1, 2, 3]
    assert not (weights / "resume.pt").exists()
    with pytest.raises(UsageError, match="is done"):
        ws.runs_resume(run.run_id)


def test_exception_in_trainer_fails_the_run_and_resume_finishes_it(data_ws):
    ws = data_ws

    def crash_in_epoch_two(trainer):
        if trainer.epoch == 1:
            raise RuntimeError("CUDA out of memory (simulated)")

    run = tiny_train(ws, epochs=2, callbacks={"on_train_epoch_start": crash_in_epoch_two})
    record = assert_committed_run(ws, run.run_id, "failed", 1)
    assert "CUDA out of memory (simulated)" in record["error"]
    assert (ws.root / "runs" / run.run_id / "weights" / "last.pt").is_file()
    resumed = ws.runs_resume(run.run_id, wait=True)
    record = assert_committed_run(ws, resumed.run_id, "done", 2)
    assert record["error"] is None


def test_an_interrupt_that_reaches_the_training_thread_is_a_stop_not_a_failure(data_ws):
    # a Ctrl-C can land in the thread that trains (seen once in CI): the user asked to stop,
    # so the run is stopped with its weights kept for resume, not failed
    def interrupt_in_epoch_two(trainer):
        if trainer.epoch == 1:
            raise KeyboardInterrupt

    run = tiny_train(data_ws, epochs=2, callbacks={"on_train_epoch_start": interrupt_in_epoch_two})
    record = assert_committed_run(data_ws, run.run_id, "stopped", 1)
    assert record["error"] is None
    assert (data_ws.root / "runs" / run.run_id / "weights" / "last.pt").is_file()   # optimizer state kept
    resumed = data_ws.runs_resume(run.run_id, wait=True)
    assert_committed_run(data_ws, resumed.run_id, "done", 2)


def test_a_broken_observer_never_kills_training(data_ws, monkeypatch):
    from nbversion.training import progress

    def broken(*args, **kwargs):
        raise ValueError("observer bug")

    monkeypatch.setattr(progress.RunObserver, "_on_train_batch_end", broken)
    run = tiny_train(data_ws, epochs=1, on_event=lambda e: 1 / 0)   # a crashing listener too
    record = assert_committed_run(data_ws, run.run_id, "done", 1)
    assert any("observer bug" in e["error"] for e in record["callback_errors"])


def test_second_training_on_the_same_device_is_refused_without_the_queue(data_ws):
    ws = data_ws
    first = tiny_train(ws, epochs=3, wait=False)
    try:
        with pytest.raises(NbversionError, match=f"run {first.run_id} is already training on device cpu"):
            tiny_train(ws, epochs=1, queue=False)
        assert [p.name for p in (ws.root / "runs").iterdir()] == [first.run_id]   # the refused run left nothing
    finally:
        first.stop().wait(timeout=300)
    assert first.status in ("stopped", "done")


def test_older_dataset_version_is_exported_into_the_run(data_ws, demo_data):
    from nbversion.demo import edit_labels

    ws = data_ws
    first_commit = git(ws.root, "rev-parse", "HEAD").strip()
    edit_labels(ws.root / "datasets" / "demo")
    ws.dataset_add("demo", ws.root / "datasets" / "demo")
    run = ws.train("demo@~1", "yolov8n.yaml", epochs=1, imgsz=64, batch=4, device="cpu", extra=TINY, wait=True)
    record = assert_committed_run(ws, run.run_id, "done", 1)
    assert record["dataset"]["commit"] == first_commit and record["dataset"]["rev"] == "~1"
    exported = ws.root / "runs" / run.run_id / "data"
    assert (exported / "labels" / "train" / "train_00000.txt").read_text() == \
        (demo_data / "labels" / "train" / "train_00000.txt").read_text()   # the old labels, not the edit


@pytest.mark.parametrize("args, error, words", [
    (["--data", "nope"], NotFound, ["no dataset named 'nope'", "dataset list"]),
    (["--data", "demo", "--model", "missing.pt"], NotFound, ["missing.pt: no such file", "not a name Ultralytics publishes"]),
    (["--data", "demo", "--model", "detector"], UsageError, ["not a config, a file or a registry ref"]),
    (["--data", "demo", "bogus_key=1"], UsageError, ["unknown training argument(s): bogus_key", "lr0"]),
    (["--data", "demo", "name=x"], UsageError, ["set by nbversion"]),
    # wrong values of known keys: Ultralytics' own checks, before a run record exists
    (["--data", "demo", "--model", "yolov8n.yaml", "imgsz=abc", "--wait"], UsageError,
     ["training argument imgsz=abc", "not a valid image size"]),
    (["--data", "demo", "hsv_h=5"], UsageError, ["training argument hsv_h=5", "between 0.0 and 1.0"]),
    (["--data", "demo", "epochs=abc"], UsageError, ["training argument epochs=abc", "must be an int"]),
    (["--data", "demo", "mosaic=yes"], UsageError, ["training argument mosaic=yes"]),
])
def test_bad_input_is_a_clear_error_and_changes_nothing(data_ws, args, error, words):
    before = snapshot(data_ws.root)
    proc = cli("train", *args, "--epochs", "1", "--device", "cpu")
    assert proc.returncode in (1, 2) and "error:" in proc.stderr and "hint:" in proc.stderr
    for word in words:
        assert word in proc.stderr
    assert snapshot(data_ws.root) == before
    assert not (data_ws.root / "runs").exists() or not any((data_ws.root / "runs").iterdir())


def test_device_auto_says_cpu_without_cuda(data_ws):
    from nbversion.training import _yolo
    if _yolo.cuda_devices():
        pytest.skip("this machine has a GPU")
    events = []
    run = data_ws.train("demo", "yolov8n.yaml", epochs=1, imgsz=64, batch=4, device="auto", extra=TINY,
                        wait=True, on_event=events.append)
    assert run.record["device"] == "cpu"
    assert any("no CUDA GPU found: training on the CPU" in e.message for e in events)
    with pytest.raises(UsageError, match="CUDA GPU"):
        data_ws.train("demo", "yolov8n.yaml", epochs=1, device="0")


@pytest.mark.gpu
def test_gpu_training_reports_memory(data_ws):
    from nbversion.training import _yolo
    if not _yolo.cuda_devices():
        pytest.skip("no CUDA GPU")
    events = []
    run = data_ws.train("demo", "yolov8n.yaml", epochs=2, imgsz=64, batch=4, device="auto", extra=TINY,
                        wait=True, on_event=events.append)
    assert run.record["device"] == "0" and run.status == "done"
    epoch_events = [e for e in events if e.stage == "epoch"]
    assert epoch_events and epoch_events[-1].data["gpu_mem_gb"] is not None


def test_stop_from_another_process_through_the_cli(data_ws):
    import subprocess
    import sys
    import time
    from pathlib import Path

    exe = Path(sys.executable).with_name("nbversion")
    trainer = subprocess.Popen([str(exe), "train", "--data", "demo", "--epochs", "30", "--name", "far", *TINY_ARGS],
                               cwd=data_ws.root, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 240
        record = {}
        while time.time() < deadline and not record.get("epochs"):
            time.sleep(0.5)
            found = list((data_ws.root / "runs").glob("*-far/run.json")) if (data_ws.root / "runs").exists() else []
            record = json.loads(found[0].read_text()) if found else {}
        assert record.get("status") == "running", record
        stop = cli("runs", "stop", record["id"], check=0)
        assert record["id"] in stop.stdout
        out, err = trainer.communicate(timeout=240)
    finally:
        trainer.kill()
    assert trainer.returncode == 0, err
    stopped = assert_committed_run(data_ws, record["id"], "stopped", len(json.loads(
        (data_ws.root / "runs" / record["id"] / "run.json").read_text())["epochs"]))
    assert len(stopped["epochs"]) < 30 and not (data_ws.root / "runs" / record["id"] / "STOP").exists()
    assert "stopped" in cli("runs", "list", check=0).stdout


def test_fine_tune_from_the_registry_champion_with_its_line_in_the_chart(data_ws):
    ws = data_ws
    first = tiny_train(ws, epochs=1)
    ws.register("det", version="1.0.0", source=first.run_id)
    ws.promote("det@v1.0.0")
    assert ws.verify().problems == []      # verify agrees with a register from a real run
    run = ws.train("demo", "det@champion", epochs=1, imgsz=64, batch=4, device="cpu", extra=TINY, wait=True,
                   name="finetune")
    record = assert_committed_run(ws, run.run_id, "done", 1)
    base = record["base_model"]
    assert {k: base[k] for k in ("kind", "ref", "version")} == {"kind": "registry", "ref": "det@champion",
                                                                 "version": "v1.0.0"}
    registered = (ws.root / "runs" / first.run_id / "weights" / "best.pt").read_bytes()
    assert base["md5"] == hashlib.md5(registered).hexdigest()
    from nbversion.widgets.train_chart import champion_map
    assert champion_map({**record, "_root": str(ws.root)}) == first.record["metrics"]["mAP50-95"]
    with pytest.raises(NbversionError, match="no registered model named .other."):
        ws.train("demo", "other@champion", epochs=1, device="cpu")
    assert len(list((ws.root / "runs").iterdir())) == 2   # the refused run left nothing


def test_ctrl_c_in_the_cli_stops_cleanly_and_commits_a_stopped_run(data_ws):
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path

    exe = Path(sys.executable).with_name("nbversion")
    trainer = subprocess.Popen([str(exe), "train", "--data", "demo", "--epochs", "30", "--name", "ctrlc", *TINY_ARGS,
                                "--json"], cwd=data_ws.root, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               # a shell that started us in the background may ignore SIGINT: undo that
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        deadline, record = time.time() + 240, {}
        while time.time() < deadline and not record.get("epochs"):
            time.sleep(0.5)
            found = list((data_ws.root / "runs").glob("*-ctrlc/run.json")) if (data_ws.root / "runs").exists() else []
            record = json.loads(found[0].read_text()) if found else {}
        trainer.send_signal(signal.SIGINT)
        out, err = trainer.communicate(timeout=240)
    finally:
        trainer.kill()
    assert trainer.returncode == 0, err
    final = json.loads(out)
    assert final["status"] == "stopped" and 1 <= len(final["epochs"]) < 30
    assert_committed_run(data_ws, final["id"], "stopped", len(final["epochs"]))
    assert (data_ws.root / "runs" / final["id"] / "weights" / "resume.pt").is_file()
