"""`model add|list|show|compare`: framework detection, versions, lineage, rollback."""
import json
import pickle
import shutil
import zipfile
from pathlib import Path

import pytest

from nbversion.core.artifacts.frameworks import detect
from nbversion.errors import InvalidInput, UsageError

from conftest import cli, cli_json, git, snapshot

SKLEARN_PICKLE = b"\x80\x04\x95\x00\x00\x00\x00\x00\x00\x00\x00\x8c\x14sklearn.linear_model\x94\x8c\x12LogisticRegression\x94\x93\x94)\x81\x94."


def make_weights(folder: Path) -> dict:
    """One small, well-formed file per supported format (no framework needed to write them)."""
    folder.mkdir(parents=True, exist_ok=True)
    files = {
        "model.onnx": b"\x08\x07\x12\x07pytorch\x1a\x032.1:\x0c\n\x04onnx" + bytes(40),
        "model.h5": b"\x89HDF\r\n\x1a\n" + bytes(100),
        "model.tflite": b"\x1c\x00\x00\x00TFL3" + bytes(100),
        "saved_model.pb": b"\x08\x01\x12\x10" + bytes(60),
        "model.pkl": SKLEARN_PICKLE,
        "booster.json": json.dumps({"learner": {"attributes": {}}, "version": [2, 0, 3]}).encode(),
        "booster.ubj": b"{L\x00\x00\x00\x00\x00\x00\x00\x07learner{}}",
        "lgbm.txt": b"tree\nversion=v4\nnum_class=1\n",
    }
    for name, data in files.items():
        (folder / name).write_bytes(data)
    with zipfile.ZipFile(folder / "model.keras", "w") as archive:
        archive.writestr("config.json", "{}")
        archive.writestr("model.weights.h5", b"\x89HDF\r\n\x1a\n")
    return {p.name: p for p in folder.iterdir()}


def test_frameworks_detected_by_content(tmp_path):
    files = make_weights(tmp_path)
    found = {name: (d.framework, d.format) for name, d in ((n, detect(p)) for n, p in files.items())}
    assert found == {
        "model.onnx": ("onnx", "onnx"), "model.h5": ("keras", "hdf5"), "model.tflite": ("tensorflow", "tflite"),
        "saved_model.pb": ("tensorflow", "protobuf"), "model.pkl": ("scikit-learn", "pickle"),
        "booster.json": ("xgboost", "json"), "booster.ubj": ("xgboost", "ubjson"),
        "lgbm.txt": ("lightgbm", "text"), "model.keras": ("keras", "keras-v3")}


def test_pytorch_state_dict_and_full_checkpoint(tmp_path):
    torch = pytest.importorskip("torch")
    torch.save({"weight": torch.zeros(2, 2), "bias": torch.zeros(2)}, tmp_path / "sd.pt")
    torch.save({"epoch": 3, "state_dict": {"w": torch.ones(1)}}, tmp_path / "ckpt.pth")
    assert (detect(tmp_path / "sd.pt").framework, detect(tmp_path / "sd.pt").format) == ("pytorch", "state_dict")
    assert detect(tmp_path / "ckpt.pth").format == "checkpoint"


@pytest.mark.parametrize("name,data,says", [
    ("fake.onnx", b"PK\x03\x04zip really", "looks like a ZIP archive"),
    ("fake.pt", b"\x89HDF\r\n\x1a\n....", "looks like an HDF5 file"),
    ("fake.h5", b"\x80\x04pickle", "looks like a Python pickle"),
    ("fake.pkl", b"{\"learner\": {}}", "looks like JSON"),
    ("fake.json", b"not json at all", "not a valid XGBoost JSON file"),
    ("fake.txt", b"just some notes", "not a valid LightGBM text model file"),
    ("fake.tflite", b"tree\nversion=v4\n", "looks like a LightGBM text model"),
])
def test_file_that_is_not_what_its_extension_says_is_refused(ws, tmp_path, name, data, says):
    path = tmp_path / name
    path.write_bytes(data)
    before = snapshot(ws.root)
    with pytest.raises(InvalidInput) as info:
        ws.model_add("m", path)
    assert says in info.value.message and name in info.value.message and info.value.hint
    assert snapshot(ws.root) == before and not (ws.root / "models").exists()


def test_model_add_stores_weights_meta_and_commit(ws, tmp_path):
    files = make_weights(tmp_path / "w")
    result = ws.model_add("churn", files["model.onnx"], metrics={"auc": 0.81}, params={"depth": 6})
    root = ws.root
    meta = json.loads((root / "models/churn.meta.json").read_text())
    assert meta["framework"] == "onnx" and meta["file"] == "model.onnx" and meta["size"] == files["model.onnx"].stat().st_size
    import hashlib
    assert meta["md5"] == hashlib.md5(files["model.onnx"].read_bytes()).hexdigest()
    assert meta["metrics"] == {"auc": 0.81} and meta["params"] == {"depth": 6}
    assert meta["lineage"] == {"dataset": None, "run": None} and meta["added_by"] == "tester@example.com"
    assert (root / "models/churn/model.onnx").read_bytes() == files["model.onnx"].read_bytes()
    assert "models/churn.dvc" in git(root, "ls-files") and git(root, "status", "--porcelain") == ""
    assert result.commit == git(root, "rev-parse", "HEAD").strip()
    audit = json.loads((root / ".nbversion/audit.jsonl").read_text().splitlines()[-1])
    assert audit["action"] == "model add" and audit["target"] == "churn"


def test_same_weights_and_metrics_again_is_no_change(ws, tmp_path):
    files = make_weights(tmp_path / "w")
    first = ws.model_add("m", files["model.h5"], metrics={"acc": 0.5})
    before = snapshot(ws.root)
    again = ws.model_add("m", files["model.h5"], metrics={"acc": 0.5})
    assert not again.changed and again.commit == first.commit and snapshot(ws.root) == before


def test_versions_compare_marks_best_and_checkout_rolls_back(ws, tmp_path):
    a, b = tmp_path / "a.onnx", tmp_path / "b.onnx"
    a.write_bytes(b"\x08\x07" + b"A" * 64)
    b.write_bytes(b"\x08\x07" + b"B" * 64)
    ws.model_add("det", a, metrics={"metrics/mAP50(B)": 0.50, "val/box_loss": 1.0}, params={"lr": 0.01})
    ws.model_add("det", b, metrics={"mAP50": 0.70, "val/box_loss": 1.2}, params={"lr": 0.02})
    cmp = ws.model_compare(["det@~1", "det"])
    rows = {r["key"]: r for r in cmp.rows}
    assert rows["mAP50"]["values"] == [0.5, 0.7] and rows["mAP50"]["best"] == 1
    assert rows["val/box_loss"]["best"] == 0          # lower is better for losses
    assert rows["lr"]["values"] == [0.01, 0.02] and rows["lr"]["best"] is None
    table = str(cmp)
    assert "0.7 *" in table and "1 *" in table
    assert "<svg" in cmp._repr_html_() and "mAP50" in cmp._repr_html_()
    listed = ws.model_list().models
    assert [(m["name"], m["versions"], m["framework"]) for m in listed] == [("det", 2, "onnx")]
    assert ws.model_show("det@~1").meta["metrics"]["mAP50"] == 0.5
    # rollback: checkout the old version's weights and metadata
    old = ws.model_show("det@~1").commit
    ws.checkout(old, ["models/det", "models/det.meta.json"])
    assert (ws.root / "models/det/b.onnx").exists() is False
    assert (ws.root / "models/det/a.onnx").read_bytes() == a.read_bytes()
    ws.commit("roll back det to the first version")
    assert ws.model_show("det").meta["md5"] == ws.model_show("det@~2").meta["md5"]


def test_compare_needs_two_refs(ws, tmp_path):
    with pytest.raises(UsageError):
        ws.model_compare(["x"])


def test_lineage_to_a_dataset_version(ws, demo_data, tmp_path):
    ws.dataset_add("shapes", demo_data, tags=["gold"])
    (demo_data / "labels/train/train_00000.txt").write_text("0 0.5 0.5 0.1 0.1\n")
    ws.dataset_add("shapes", demo_data)
    weights = make_weights(tmp_path / "w")["model.onnx"]
    result = ws.model_add("det", weights, dataset="shapes@gold")
    gold = git(ws.root, "rev-list", "-n1", "dataset/shapes/gold").strip()
    gold_meta = json.loads(git(ws.root, "show", f"{gold}:datasets/shapes.meta.json"))
    assert result.meta["lineage"]["dataset"] == {"name": "shapes", "commit": gold, "md5": gold_meta["content_hash"]}
    assert "trained on dataset shapes" in ws.model_show("det").summary()


def test_cli_model_verbs(ws, tmp_path):
    files = make_weights(tmp_path / "w")
    added = cli_json("model", "add", "m", files["model.tflite"], "--metric", "acc=0.9", "--param", "opt=adam")
    assert added["meta"]["framework"] == "tensorflow" and added["meta"]["metrics"] == {"acc": 0.9}
    assert added["meta"]["params"] == {"opt": "adam"}
    cli("model", "add", "m", files["model.tflite"], "--metric", "acc=0.95", check=0)
    assert cli_json("model", "list")["models"][0]["versions"] == 2
    out = cli("model", "compare", "m@~1", "m", check=0).stdout
    assert "0.95 *" in out
    bad = cli("model", "add", "m", files["model.tflite"], "--metric", "acc")
    assert bad.returncode == 2 and "expected key=value" in bad.stderr


def _offline_ultralytics(home: Path, monkeypatch):
    import matplotlib
    config = home / "yolo"
    config.mkdir(parents=True, exist_ok=True)
    font = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"
    for name in ("Arial.ttf", "Arial.Unicode.ttf"):
        shutil.copy(font, config / name)
    monkeypatch.setenv("YOLO_CONFIG_DIR", str(config))


@pytest.mark.slow
def test_real_ultralytics_checkpoint_is_detected(ws, demo_data, tmp_path, monkeypatch, isolated_home):
    _offline_ultralytics(isolated_home, monkeypatch)
    monkeypatch.chdir(demo_data)   # the demo data.yaml says `path: .`, which Ultralytics reads from the cwd
    from ultralytics import YOLO, settings
    settings.update({"sync": False})
    YOLO("yolov8n.yaml").train(data=str(demo_data / "data.yaml"), epochs=1, imgsz=64, batch=4, device="cpu",
                               workers=0, amp=False, project=str(tmp_path / "runs"), plots=False, val=True,
                               nbs=4, mosaic=0, warmup_epochs=0)
    best = next((tmp_path / "runs").rglob("best.pt"))
    found = detect(best)
    assert (found.framework, found.format) == ("ultralytics", "checkpoint")
    assert found.class_names == ["red", "green", "blue"]
    assert {"precision", "recall", "mAP50", "mAP50-95"} <= set(found.metrics)
    assert found.params["epochs"] == 1 and found.params["imgsz"] == 64
    monkeypatch.chdir(ws.root)
    result = ws.model_add("shapes-det", best, metrics={"latency_ms": 3.0})
    assert result.meta["class_names"] == ["red", "green", "blue"] and result.meta["metrics"]["latency_ms"] == 3.0
    # read without importing ultralytics or torch (a fresh process, so nothing is preloaded)
    import subprocess
    import sys
    code = ("import sys; from nbversion.core.artifacts.frameworks import detect; d = detect(sys.argv[1]); "
            "print(d.class_names, 'ultralytics' in sys.modules, 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code, str(best)], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "['red', 'green', 'blue'] False False"


def fake_ultralytics_checkpoint(path: Path, data_yaml: str) -> Path:
    """The shape of an Ultralytics best.pt (a torch zip with data.pkl), without torch."""
    checkpoint = {"date": "2026-01-01", "version": "8.4.0", "model": None,
                  "train_args": {"data": data_yaml, "epochs": 3, "imgsz": 64, "model": "yolov8n.yaml"},
                  "train_metrics": {"metrics/precision(B)": 0.6, "metrics/mAP50-95(B)": 0.3, "val/box_loss": 1.1}}
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("best/data.pkl", pickle.dumps(checkpoint, protocol=2))
        archive.writestr("best/version", "3\n")
    return path


def test_ultralytics_train_args_link_the_workspace_dataset(ws, demo_data, tmp_path):
    ws.dataset_add("shapes", demo_data)
    ckpt = fake_ultralytics_checkpoint(tmp_path / "best.pt", str(ws.root / "datasets/shapes/data.yaml"))
    result = ws.model_add("det", ckpt)
    meta = result.meta
    assert (meta["framework"], meta["format"]) == ("ultralytics", "checkpoint")
    assert meta["metrics"] == {"precision": 0.6, "mAP50-95": 0.3, "val/box_loss": 1.1}
    assert meta["params"]["epochs"] == 3 and meta["params"]["ultralytics_version"] == "8.4.0"
    assert meta["lineage"]["dataset"]["name"] == "shapes"
    assert meta["lineage"]["dataset"]["commit"] == ws.dataset_show("shapes").commit
    # trained on a folder that is not a versioned dataset: no lineage, still added
    other = fake_ultralytics_checkpoint(tmp_path / "other.pt", str(ws.root / "datasets/unknown/data.yaml"))
    assert ws.model_add("det2", other).meta["lineage"]["dataset"] is None


def test_magic_model_add_and_compare_html(ws, tmp_path):
    from IPython.core.interactiveshell import InteractiveShell
    a, b = tmp_path / "a.onnx", tmp_path / "b.onnx"
    a.write_bytes(b"\x08\x07" + b"A" * 32)
    b.write_bytes(b"\x08\x07" + b"B" * 32)
    shell = InteractiveShell.instance()
    try:
        shell.run_cell("%load_ext nbversion")
        assert shell.run_cell(f"%mv_model add det {a} --metric mAP50=0.4").success
        assert shell.run_cell(f"%mv_model add det {b} --metric mAP50=0.6").success
        r = shell.run_cell("%mv_model compare det@~1 det")
        assert r.success and r.result.rows[0]["best"] == 1
        page = r.result._repr_html_()
        assert "<table" in page and "<svg" in page and "0.6 *" in page
        assert not shell.run_cell(f"%mv_model add det {tmp_path / 'missing.pt'}").success
    finally:
        InteractiveShell.clear_instance()
