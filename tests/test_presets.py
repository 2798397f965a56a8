"""Training presets (`train --preset NAME`, `presets list|show`) and `runs list` filters, through
the CLI and the API, with real 1-epoch CPU trainings on the tiny demo dataset."""
from __future__ import annotations

import json
import subprocess

import pytest
import yaml

from conftest import cli, git
from test_training import TINY
from trained import trained, trained_template  # noqa: F401 (fixtures)

TINY_KV = [f"{k}={v}" for k, v in TINY.items()]


def run_ids(*filters, cwd=None) -> list[str]:
    proc = cli("runs", "list", *filters, "--json", cwd=cwd, check=0)
    return [r["id"] for r in json.loads(proc.stdout)["runs"]]


def write_preset(ws, name: str, text: str):
    folder = ws.root / ".nbversion" / "presets"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.yaml").write_text(text)


def test_cli_train_with_fast_preset_flags_and_key_values_override(trained):
    ws, first = trained
    fast = json.loads(cli("presets", "show", "fast", "--json", check=0).stdout)["values"]
    assert fast["epochs"] > 1 and fast["imgsz"] > 64 and "patience" in fast   # so the overrides below show

    cli("train", "--data", "demo", "--preset", "fast", "--epochs", "1", "--batch", "4", "--device", "cpu",
        "imgsz=64", *TINY_KV, check=0)

    [run_id] = [r for r in run_ids() if r != first]
    record = json.loads(cli("runs", "show", run_id, "--json", check=0).stdout)
    params = record["params"]
    assert record["status"] == "done" and len(record["epochs"]) == 1
    assert params["preset"] == "fast" and record["preset"]["source"] == "built-in"
    assert (params["epochs"], params["imgsz"], params["batch"]) == (1, 64, 4)      # what the user gave wins
    assert params["patience"] == fast["patience"] and params["close_mosaic"] == fast["close_mosaic"]
    assert record["preset"]["values"] == fast
    used = yaml.safe_load((ws.root / "runs" / run_id / "args.yaml").read_text())   # what Ultralytics ran with
    assert (used["epochs"], used["imgsz"], used["patience"]) == (1, 64, fast["patience"])


def test_workspace_preset_replaces_the_builtin_and_is_recorded_by_blob(trained):
    ws, first = trained
    write_preset(ws, "fast", "# our own fast\nepochs: 1\nimgsz: 64\nbatch: 4\npatience: 3\n")
    listed = {p["name"]: p for p in json.loads(cli("presets", "list", "--json", check=0).stdout)["presets"]}
    assert listed["fast"]["source"] == "workspace" and listed["fast"]["values"]["patience"] == 3
    assert listed["balanced"]["source"] == "built-in" and listed["accurate"]["source"] == "built-in"

    run = ws.train("demo", preset="fast", device="cpu", extra=dict(TINY), wait=True)

    record = run.record
    assert record["status"] == "done"
    assert (record["params"]["epochs"], record["params"]["imgsz"], record["params"]["patience"]) == (1, 64, 3)
    blob = git(ws.root, "hash-object", ".nbversion/presets/fast.yaml").strip()
    assert record["preset"] == {"name": "fast", "source": "workspace", "file": ".nbversion/presets/fast.yaml",
                                "blob": blob, "values": {"epochs": 1, "imgsz": 64, "batch": 4, "patience": 3}}


@pytest.mark.parametrize("text, line, words", [
    ("epochs: 1\nimgsz: 64\nmosiac: 0\n", 3, "unknown training argument 'mosiac'"),
    ("epochs: 1\n  imgsz: [64\n", 2, "not valid YAML"),
    ("epochs: 1\nhsv_h: 5\n", 2, "hsv_h=5"),
    ("epochs: 1\ndata: other.yaml\n", 2, "set by nbversion"),
    ("epochs: 1\nepochs: 2\n", 2, "set twice"),
    ("- epochs\n- 1\n", 1, "a mapping"),
])
def test_bad_preset_is_refused_with_file_and_line_and_no_run(trained, text, line, words):
    ws, first = trained
    write_preset(ws, "broken", text)
    head = git(ws.root, "rev-parse", "HEAD")

    proc = cli("train", "--data", "demo", "--preset", "broken", "--epochs", "1", "--device", "cpu", *TINY_KV)

    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert f"error: .nbversion/presets/broken.yaml:{line}: " in proc.stderr and words in proc.stderr
    assert run_ids() == [first] and git(ws.root, "rev-parse", "HEAD") == head
    assert sorted(p.name for p in (ws.root / "runs").iterdir()) == [first]
    shown = cli("presets", "show", "broken")
    assert shown.returncode == 1 and f"broken.yaml:{line}: " in shown.stderr


def test_unknown_preset_and_a_bad_preset_name_are_clear_errors(trained):
    ws, first = trained
    missing = cli("train", "--data", "demo", "--preset", "quick", "--epochs", "1", "--device", "cpu")
    assert missing.returncode == 1 and "no preset 'quick'" in missing.stderr
    assert "fast" in missing.stderr and "balanced" in missing.stderr   # the hint names what exists
    escaping = cli("presets", "show", "../config")
    assert escaping.returncode == 2 and "not a preset name" in escaping.stderr
    assert run_ids() == [first]


def test_presets_list_and_show_from_the_cli(ws):
    listed = cli("presets", "list", check=0).stdout
    for name in ("fast", "balanced", "accurate"):
        assert name in listed
    assert "built-in" in listed and "imgsz=320" in listed
    accurate = json.loads(cli("presets", "show", "accurate", "--json", check=0).stdout)
    assert accurate["values"]["imgsz"] == 640 and accurate["values"]["epochs"] > 100
    shown = cli("presets", "show", "fast", check=0).stdout
    assert "imgsz" in shown and "320" in shown and "built-in" in shown


def test_preset_files_no_name_reaches_are_listed_with_why(ws):
    folder = ws.root / ".nbversion" / "presets"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "ok.yml").write_text("epochs: 5\n")
    (folder / "Bad.Name.yaml").write_text("epochs: 5\n")
    listed = {p["name"]: p for p in json.loads(cli("presets", "list", "--json", check=0).stdout)["presets"]}
    assert "rename it to ok.yaml" in listed["ok.yml"]["problem"]
    assert "not a preset name" in listed["Bad.Name.yaml"]["problem"]
    assert "fast" in listed and "problem" not in listed["fast"]


def test_builtin_presets_pass_ultralytics_own_checks(ws):
    from nbversion.training import _yolo

    for preset in ws.presets_list().presets:
        _yolo.check_train_args(dict(preset.values))   # raises on a wrong key type or range
        assert preset.values["imgsz"] % 32 == 0      # Ultralytics would round it otherwise


def test_committed_preset_is_what_a_clone_uses(ws, tmp_path):
    write_preset(ws, "team", "epochs: 40\nimgsz: 416\nlr0: 0.002\n")
    ws.commit("team preset", [".nbversion/presets"])
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(ws.root), str(clone)], check=True)

    there = json.loads(cli("presets", "show", "team", "--json", cwd=clone, check=0).stdout)

    assert there["source"] == "workspace"
    assert there["values"] == {"epochs": 40, "imgsz": 416, "lr0": 0.002}
    assert there["blob"] == git(clone, "rev-parse", "HEAD:.nbversion/presets/team.yaml").strip()


def test_runs_list_filters_by_status_and_dataset(trained, demo_data):
    ws, first = trained
    ws.dataset_add("other", demo_data)

    def crash(trainer):
        raise RuntimeError("injected crash")

    failed = ws.train("other", "yolov8n.yaml", epochs=1, imgsz=64, batch=4, device="cpu", extra=dict(TINY),
                      wait=True, callbacks={"on_train_start": crash})
    assert failed.record["status"] == "failed"

    assert sorted(run_ids()) == sorted([first, failed.run_id])
    assert run_ids("--status", "done") == [first]
    assert run_ids("--status", "failed") == [failed.run_id]
    assert run_ids("--dataset", "demo") == [first]
    assert run_ids("--dataset", "other", "--status", "failed") == [failed.run_id]
    assert run_ids("--dataset", "other", "--status", "done") == []
    text = cli("runs", "list", "--status", "failed", check=0).stdout
    assert failed.run_id in text and first not in text
    none = cli("runs", "list", "--status", "queued", check=0).stdout     # runs exist: not "no runs yet"
    assert "no run matches --status queued" in none and "no runs yet" not in none


def test_magics_list_presets_and_refuse_a_bad_one_without_a_run(trained, capsys):
    from IPython.core.interactiveshell import InteractiveShell

    ws, first = trained
    write_preset(ws, "broken", "epochs: 1\nmosiac: 0\n")
    shell = InteractiveShell.instance()
    try:
        shell.run_cell("%load_ext nbversion")
        listed = shell.run_cell("%mv_presets list")
        assert listed.success
        presets = {p.name: p for p in listed.result.presets}
        assert {"fast", "balanced", "accurate", "broken"} <= set(presets)
        assert "broken.yaml:2: unknown training argument 'mosiac'" in presets["broken"].problem
        assert presets["fast"].values["imgsz"] == 320
        assert "<table" in listed.result._repr_html_()
        capsys.readouterr()
        refused = shell.run_cell("%mv_train --data demo --preset broken --epochs 1 --device cpu")
        assert not refused.success                       # "Run All" stops here
        out = capsys.readouterr()
        assert "error: .nbversion/presets/broken.yaml:2: unknown training argument 'mosiac'" in out.out
        assert "Traceback" not in out.out + out.err
    finally:
        InteractiveShell.clear_instance()
    assert run_ids() == [first]
