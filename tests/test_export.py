"""`nbversion export`: a trained model exported with Ultralytics' exporter into a new model or
registry version, checked against its .pt on its own training images (real Ultralytics, 64 px)."""
from __future__ import annotations

import hashlib
import json
import os
import signal
import sys
from pathlib import Path

import pytest

from conftest import cli, cli_stopped_at, git, snapshot
from nbversion.errors import MissingExtra, NotFound, UsageError
from trained import trained, trained_template   # noqa: F401 (fixtures)

BUS = Path(__import__("ultralytics").__file__).parent / "assets" / "bus.jpg"


def files_under(folder: Path) -> dict:
    return {p.relative_to(folder).as_posix(): p.stat().st_mtime_ns for p in folder.rglob("*") if p.is_file()}


def leftover_exports(root: Path) -> list:
    tmp = root / ".nbversion" / "tmp"
    return [p.name for p in tmp.iterdir() if p.name.startswith("export-")] if tmp.exists() else []


def assert_close_to_the_pt(check: dict):
    assert len(check["images"]) == 4 and check["conf"] == 0.001 and check["imgsz"] == 64
    assert check["boxes_pt"] > 0, check                     # the training images give the model something to find
    assert check["matched"] >= 0.9 * min(check["boxes_pt"], check["boxes_export"]), check
    assert check["max_iou_diff"] < 0.05, check
    unmatched = check["boxes_pt"] - check["matched"], check["boxes_export"] - check["matched"]
    assert (check["unmatched_pt"], check["unmatched_export"]) == unmatched, check
    assert check["agrees"] == (unmatched == (0, 0) and check["max_iou_diff"] <= 0.01), check
    assert check["ms_pt"] > 0 and check["ms_export"] > 0


def test_cli_export_to_onnx_and_torchscript_make_model_versions_with_parent_lineage_and_check(trained):
    ws, run_id = trained
    weights = ws.root / "runs" / run_id / "weights"
    before = files_under(weights)
    best_md5 = hashlib.md5((weights / "best.pt").read_bytes()).hexdigest()

    proc = cli("export", run_id, "--format", "onnx", "--imgsz", "64", check=0)
    assert "exported" in proc.stdout and "max IoU difference" in proc.stdout
    meta = json.loads(cli("model", "show", "yolov8n-onnx", "--json", check=0).stdout)["meta"]
    assert meta["file"] == "best.onnx" and meta["format"] == "onnx" and meta["framework"] == "ultralytics"
    assert meta["parent"]["ref"] == run_id and meta["parent"]["kind"] == "run" and meta["parent"]["md5"] == best_md5
    assert meta["parent"]["commit"] == git(ws.root, "log", "-n1", "--format=%H", "--", f"runs/{run_id}/run.json").strip()
    assert meta["lineage"]["dataset"]["name"] == "demo" and meta["lineage"]["run"] == run_id
    assert meta["lineage"]["base"] == {"kind": "config", "ref": "yolov8n.yaml"}   # the run's whole lineage
    assert meta["export"]["format"] == "onnx" and meta["export"]["imgsz"] == 64
    assert f"exported from {run_id} (run" in cli("model", "show", "yolov8n-onnx", check=0).stdout
    assert meta["export"]["half"] is False and meta["export"]["dynamic"] is False and meta["export"]["ultralytics"]
    assert_close_to_the_pt(meta["export_check"])

    from IPython.core.interactiveshell import InteractiveShell
    shell = InteractiveShell.instance()
    try:
        shell.run_cell("%load_ext nbversion")
        cell = shell.run_cell(f"%mv_export {run_id} --format torchscript --imgsz 64 --name det-ts")
        assert cell.success, cell.error_in_exec
        result = cell.result
    finally:
        InteractiveShell.clear_instance()
    shown = ws.model_show("det-ts").meta
    assert shown["file"] == "best.torchscript" and shown["export"]["format"] == "torchscript"
    assert_close_to_the_pt(shown["export_check"])
    assert "det-ts@" in result.summary() and "ms/image" in result.summary()

    by_path = ws.export(str(weights / "best.pt"), format="onnx", imgsz=33, name="by-path", check=False)
    assert by_path.parent["kind"] == "run" and by_path.parent["version"] == run_id   # the run's file is the run
    assert by_path.export["imgsz"] == 64 and by_path.export["imgsz_asked"] == 33    # what the file has

    events = []
    ws.export(run_id, format="onnx", imgsz=64, name="det-onnx-2", on_event=events.append)
    stages = [e.stage for e in events]
    assert stages.index("export") < stages.index("check") < stages.index("add")
    assert files_under(weights) == before                   # nothing written beside the source weights
    assert leftover_exports(ws.root) == []
    assert cli("verify").returncode == 0 and cli("audit", "verify").returncode == 0


def test_register_export_leaves_the_source_version_untouched_and_serves(trained):
    ws, run_id = trained
    ws.register("det", version="1.0.0", source=run_id)
    source_dir = ws.root / "registry" / "det" / "v1.0.0"
    manifest, files = (source_dir / "manifest.json").read_text(), files_under(source_dir)
    tags_before = git(ws.root, "show-ref", "--tags", "-d")

    proc = cli("export", "det@v1.0.0", "--format", "ONNX", "--imgsz", "64", "--register", "det-onnx",
               "--bump", "patch", "--json", check=0)
    out = json.loads(proc.stdout)
    assert out["registered"] and out["name"] == "det-onnx" and out["file"] == "best.onnx"
    assert (source_dir / "manifest.json").read_text() == manifest and files_under(source_dir) == files
    assert set(tags_before.splitlines()) <= set(git(ws.root, "show-ref", "--tags", "-d").splitlines())
    assert cli("verify").returncode == 0 and cli("audit", "verify").returncode == 0

    resolved = ws.resolve(f"det-onnx@{out['version']}")
    assert resolved.path.endswith("best.onnx")
    registered = json.loads((ws.root / "registry" / "det-onnx" / out["version"] / "manifest.json").read_text())
    assert registered["parent"]["kind"] == "registry" and registered["parent"]["version"] == "v1.0.0"
    assert registered["lineage"]["dataset"]["name"] == "demo" and registered["framework"] == "ultralytics"
    assert_close_to_the_pt(registered["export_check"])

    import nbversion as nbv
    loaded = nbv.load_model(f"det-onnx@{out['version']}")
    assert type(loaded).__name__ == "YOLO" and str(loaded.ckpt_path or loaded.model_name).endswith("best.onnx")
    exported_boxes = len(loaded.predict(str(BUS), conf=0.001, imgsz=64, verbose=False)[0].boxes)
    original_boxes = len(ws.predict(run_id, [BUS], conf=0.001, imgsz=64).images[0]["boxes"])
    assert original_boxes > 0               # at Ultralytics' validation confidence even a young model finds some
    assert abs(exported_boxes - original_boxes) <= max(1, 0.1 * original_boxes), (exported_boxes, original_boxes)

    fixed = cli("predict", f"det-onnx@{out['version']}", BUS, "--imgsz", "320", check=2)   # exported at 64 px
    assert "fixed at 64 px" in fixed.stderr and "--dynamic" in fixed.stderr

    # an explicit registry version (the CLI's --version once printed nbversion's own version instead)
    again = cli("export", "det@v1.0.0", "--format", "torchscript", "--register", "det-onnx", "--version", "0.0.5",
                "--no-check", "--json", check=0)
    assert json.loads(again.stdout)["version"] == "v0.0.5" and ws.resolve("det-onnx@v0.0.5").path.endswith(".torchscript")
    refused = cli("export", "det-onnx@v0.0.5", "--format", "onnx", check=1)   # an export of an export
    assert "an export: only a .pt checkpoint can be exported" in refused.stderr and "parent" in refused.stderr
    before = snapshot(ws.root)                     # training from an export: refused before a run is written
    refused = cli("train", "--data", "demo", "--model", "det-onnx@v0.0.5", "--epochs", "1")
    assert refused.returncode != 0 and "not a .pt checkpoint" in refused.stderr and "Traceback" not in refused.stderr
    assert snapshot(ws.root) == before


def test_unknown_format_bad_ref_and_flag_mixes_are_clear_errors(trained, tmp_path):
    ws, run_id = trained
    before = snapshot(ws.root)
    proc = cli("export", run_id, "--format", "nope")
    assert proc.returncode != 0 and "'nope' is not an export format" in proc.stderr and "torchscript" in proc.stderr
    with pytest.raises(NotFound, match="'no-such-model' is not a run, a model, a registry ref or a weights file"):
        ws.export("no-such-model")
    with pytest.raises(UsageError, match="--bump and --version go with --register"):
        ws.export(run_id, bump="patch")
    import torch
    torch.save({"w": torch.zeros(3)}, tmp_path / "plain.pt")     # PyTorch, but no Ultralytics checkpoint
    proc = cli("export", tmp_path / "plain.pt", "--format", "torchscript")
    assert proc.returncode == 1 and "error: export of plain.pt to torchscript failed" in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr and "hint:" in proc.stderr
    assert snapshot(ws.root) == before and leftover_exports(ws.root) == []


def test_a_missing_converter_is_a_clear_error_before_anything_is_written(trained, monkeypatch):
    ws, run_id = trained
    before = snapshot(ws.root)
    monkeypatch.setitem(sys.modules, "onnx", None)   # as if the export extra were not installed
    with pytest.raises(MissingExtra, match="onnx") as caught:
        ws.export(run_id, format="onnx")
    assert "nbversion[export]" in caught.value.hint
    proc = cli("export", run_id, "--format", "openvino")   # not installed here
    assert proc.returncode != 0 and "openvino" in proc.stderr and "pip install openvino" in proc.stderr
    assert snapshot(ws.root) == before and leftover_exports(ws.root) == []


def test_ctrl_c_during_the_export_leaves_nothing(trained):
    ws, run_id = trained
    before = snapshot(ws.root)
    with cli_stopped_at("export-written", "export", run_id, "--format", "torchscript", "--imgsz", "64",
                        cwd=ws.root) as live:
        assert len(leftover_exports(ws.root)) == 1          # the export written, nothing versioned yet
        os.kill(live.pid, signal.SIGINT)                     # Ctrl-C, taken when it resumes
    assert live.returncode != 0 and "interrupted" in live.err, live.err
    assert "Traceback" not in live.err
    assert snapshot(ws.root) == before and leftover_exports(ws.root) == []


def test_a_model_add_ed_model_and_a_bare_pt_file_export_with_and_without_a_check(trained, tmp_path):
    ws, run_id = trained
    best = ws.root / "runs" / run_id / "weights" / "best.pt"
    added = ws.model_add("det", best, dataset="demo")
    result = ws.export("det", format="torchscript", imgsz=64)
    meta = ws.model_show("det-torchscript").meta
    assert result.name == "det-torchscript" and meta["parent"]["kind"] == "model"
    assert meta["parent"]["commit"] == added.commit and meta["lineage"]["dataset"]["name"] == "demo"
    assert_close_to_the_pt(meta["export_check"])

    outside = tmp_path / "elsewhere.pt"       # weights from outside: no dataset version to check on
    outside.write_bytes(best.read_bytes())
    result = ws.export(str(outside), format="torchscript", imgsz=64)
    meta = ws.model_show("elsewhere-torchscript").meta
    assert meta["parent"]["kind"] == "file" and "no dataset lineage" in meta["export_check"]["skipped"]
    assert "check skipped: the source has no dataset lineage" in result.summary()


def test_a_killed_export_leaves_a_temp_folder_that_verify_reports_and_gc_removes(trained):
    ws, run_id = trained
    before = snapshot(ws.root)
    killed = cli("export", run_id, "--format", "torchscript", "--imgsz", "64",
                 env={**os.environ, "NBVERSION_TEST_KILL_AT": "export-written"})
    assert killed.returncode == -signal.SIGKILL
    assert len(leftover_exports(ws.root)) == 1 and snapshot(ws.root)["head"] == before["head"]
    checked = cli("verify")
    assert checked.returncode == 1 and "interrupted export" in checked.stdout, checked.stdout
    assert "interrupted exports" in cli("gc", check=0).stdout and leftover_exports(ws.root) == []
    cli("export", run_id, "--format", "torchscript", "--imgsz", "64", check=0)   # done again, whole
    assert ws.model_show("yolov8n-torchscript").meta["export"]["format"] == "torchscript"
    assert cli("verify").returncode == 0
