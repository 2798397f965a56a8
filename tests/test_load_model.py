"""`nbv.load_model` for every framework the registry detects, and `predict` on YOLO exports.

Every model file is written by its own library (in a fresh process, as a user's training
script would), registered with the verbs, and loaded back with `nbv.load_model`; each loaded
object must predict what the original predicted.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import cli
from trained import isolated_env

# Writes one model per format into argv[1] and what each predicts on X into expected.json.
MAKE_MODELS = r"""
import json, pickle, sys
from pathlib import Path
import numpy as np

out = Path(sys.argv[1])
X = np.random.RandomState(0).rand(40, 4).astype("float32")
y = (X[:, 0] + X[:, 1] > 1).astype(int)
expected = {"X": X[:5].tolist()}

import joblib
from sklearn.linear_model import LogisticRegression
logistic = LogisticRegression().fit(X, y)
joblib.dump(logistic, out / "risk.joblib")
(out / "risk.pkl").write_bytes(pickle.dumps(logistic))
expected["sklearn"] = logistic.predict_proba(X[:5]).tolist()

import xgboost
boosted = xgboost.XGBClassifier(n_estimators=3, max_depth=2).fit(X, y)
boosted.save_model(out / "boost.json")
boosted.save_model(out / "boost.ubj")
(out / "xgb.pkl").write_bytes(pickle.dumps(boosted))
expected["xgboost"] = boosted.predict_proba(X[:5])[:, 1].tolist()

import lightgbm
light = lightgbm.LGBMClassifier(n_estimators=3, num_leaves=4, min_child_samples=2, verbose=-1).fit(X, y)
light.booster_.save_model(out / "light.txt")
(out / "lgbm.pkl").write_bytes(pickle.dumps(light))
expected["lightgbm"] = light.predict_proba(X[:5])[:, 1].tolist()

import keras   # KERAS_BACKEND=torch: no TensorFlow here
net = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="relu"), keras.layers.Dense(1)])
net.compile(loss="mse")
net.save(out / "net.keras")
net.save(out / "net.h5")
expected["keras"] = net.predict(X[:5], verbose=0).tolist()

import torch
class Scale(torch.nn.Module):
    def forward(self, x):
        return x * 2.0 + 1.0
torch.jit.script(Scale()).save(str(out / "scripted.pt"))

import onnx
from onnx import TensorProto, helper
graph = helper.make_graph(
    [helper.make_node("MatMul", ["X", "W"], ["XW"]), helper.make_node("Add", ["XW", "B"], ["Y"])], "affine",
    [helper.make_tensor_value_info("X", TensorProto.FLOAT, [None, 4])],
    [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [None, 2])],
    [helper.make_tensor("W", TensorProto.FLOAT, [4, 2], [1, 0, 0, 1, 1, 0, 0, 1]),
     helper.make_tensor("B", TensorProto.FLOAT, [2], [0.5, -0.5])])
model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
model.ir_version = 9
onnx.save(model, out / "affine.onnx")

from nbversion.training import _yolo
_yolo.prepare()
from ultralytics import YOLO
YOLO("yolov8n.yaml").save(out / "yolo.pt")
for fmt in ("onnx", "torchscript"):
    YOLO(out / "yolo.pt").export(format=fmt, imgsz=64)
(out / "expected.json").write_text(json.dumps(expected))
"""

REGISTERED = {"risk": "risk.joblib", "risk-pickle": "risk.pkl", "boost": "boost.json", "boost-ubj": "boost.ubj",
              "boost-pickle": "xgb.pkl", "light": "light.txt", "light-pickle": "lgbm.pkl", "net": "net.keras",
              "net-h5": "net.h5", "scripted": "scripted.pt", "affine": "affine.onnx", "yolo": "yolo.pt",
              "yolo-onnx": "yolo.onnx", "yolo-torchscript": "yolo.torchscript"}


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """A workspace with one registered version per format: (root, folder of the files, expected outputs)."""
    import nbversion as nbv

    base = tmp_path_factory.mktemp("load-model")
    files = base / "files"
    files.mkdir()
    with pytest.MonkeyPatch.context() as mp:
        isolated_env(mp, base / "home")
        env = {**os.environ, "KERAS_BACKEND": "torch"}
        script = base / "make_models.py"   # a file, not -c: torch.jit.script reads the module's source
        script.write_text(MAKE_MODELS)
        proc = subprocess.run([sys.executable, str(script), str(files)], env=env, cwd=files,
                              capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, proc.stderr[-3000:]
        ws = nbv.init(base / "project")
        mp.chdir(ws.root)
        cli("register", "risk", "--version", "1.0.0", "--from", files / "risk.joblib", check=0)
        for name, filename in REGISTERED.items():
            if name != "risk":
                ws.register(name, version="1.0.0", source=str(files / filename))
        ws.promote("yolo-onnx@v1.0.0")
    return ws.root, files, json.loads((files / "expected.json").read_text())


@pytest.fixture
def at_root(served, monkeypatch):
    monkeypatch.chdir(served[0])
    return served


@pytest.fixture
def bus():
    import ultralytics
    return Path(ultralytics.__file__).parent / "assets" / "bus.jpg"


def test_yolo_exports_are_recognised_as_ultralytics_with_their_classes(at_root):
    root, files, _ = at_root
    for name, fmt in (("yolo-onnx", "onnx"), ("yolo-torchscript", "torchscript")):
        shown = json.loads(cli("model", "add", name, files / REGISTERED[name], "--json", check=0).stdout)
        assert (shown["meta"]["framework"], shown["meta"]["format"]) == ("ultralytics", fmt)
        assert shown["meta"]["class_names"][:3] == ["0", "1", "2"] and len(shown["meta"]["class_names"]) == 80
        assert shown["meta"]["params"]["task"] == "detect" and shown["meta"]["params"]["imgsz"] == 64
    plain = json.loads(cli("model", "add", "affine", files / "affine.onnx", "--json", check=0).stdout)
    assert (plain["meta"]["framework"], plain["meta"]["format"]) == ("onnx", "onnx")


@pytest.mark.parametrize("name", ["yolo", "yolo-onnx", "yolo-torchscript"])
def test_yolo_weights_in_any_format_load_as_an_ultralytics_yolo(at_root, bus, name):
    import nbversion as nbv

    model = nbv.load_model(f"{name}@v1.0.0")
    assert type(model).__name__ == "YOLO" and model.task == "detect"
    results = model.predict(str(bus), imgsz=64, conf=0.25, device="cpu", verbose=False)
    assert len(results) == 1 and results[0].orig_shape == (1080, 810) and results[0].names[0] == "0"


def test_an_onnx_model_without_ultralytics_metadata_is_an_onnxruntime_session(at_root, monkeypatch):
    import nbversion as nbv

    session = nbv.load_model("affine@v1.0.0")
    x = np.array([[1, 2, 3, 4]], dtype="float32")
    (y,) = session.run(None, {"X": x})
    assert y.tolist() == [[4.5, 5.5]]   # X @ W + B
    monkeypatch.setitem(sys.modules, "onnxruntime", None)   # an install without it
    with pytest.raises(nbv.NbversionError) as err:
        nbv.load_model("affine@v1.0.0")
    assert "needs onnxruntime" in err.value.message and "pip install onnxruntime" in err.value.hint


def test_a_torchscript_module_is_loaded_with_torch_jit(at_root):
    import torch

    import nbversion as nbv

    module = nbv.load_model("scripted@v1.0.0")
    assert module(torch.tensor([1.0, 2.0])).tolist() == [3.0, 5.0]


def test_xgboost_and_lightgbm_model_files_hold_no_code_and_load_without_trust(at_root, monkeypatch):
    import lightgbm
    import xgboost

    import nbversion as nbv

    _, _, expected = at_root
    x = np.array(expected["X"], dtype="float32")
    for name in ("boost", "boost-ubj"):
        booster = nbv.load_model(f"{name}@v1.0.0")
        assert isinstance(booster, xgboost.Booster)
        assert np.allclose(booster.predict(xgboost.DMatrix(x)), expected["xgboost"], atol=1e-6)
    monkeypatch.setenv("MODEL_VERSION", "v1.0.0")   # a bare name, as a serving script writes it
    light = nbv.load_model("light")
    assert isinstance(light, lightgbm.Booster) and np.allclose(light.predict(x), expected["lightgbm"], atol=1e-6)


@pytest.mark.parametrize("name,filename,library", [
    ("risk", "risk.joblib", "scikit-learn"), ("risk-pickle", "risk.pkl", "scikit-learn"),
    ("boost-pickle", "xgb.pkl", "xgboost"), ("light-pickle", "lgbm.pkl", "lightgbm")])
def test_pickles_load_only_when_trusted(at_root, name, filename, library):
    import nbversion as nbv

    _, _, expected = at_root
    with pytest.raises(nbv.NbversionError) as err:
        nbv.load_model(f"{name}@v1.0.0")
    assert filename in err.value.message and library in err.value.message
    assert "would run the code inside it" in err.value.message
    assert f"nbv.load_model('{name}@v1.0.0', trust=True)" in err.value.hint

    estimator = nbv.load_model(f"{name}@v1.0.0", trust=True)
    probabilities = estimator.predict_proba(np.array(expected["X"], dtype="float32"))
    wanted = expected["sklearn"] if library == "scikit-learn" else [[1 - p, p] for p in expected[library]]
    assert np.allclose(probabilities, wanted, atol=1e-6)


LOAD_KERAS = """
import json, os, sys
import numpy as np
import nbversion as nbv
x = np.array(json.loads(sys.argv[1]), dtype="float32")
for name in ("net", "net-h5"):
    model = nbv.load_model(name + "@v1.0.0")
    print(json.dumps([name, type(model).__name__, model.predict(x, verbose=0).tolist()]))
print(os.environ.get("KERAS_BACKEND"))
"""


def test_keras_files_load_on_torch_when_no_backend_is_set(at_root):
    root, _, expected = at_root
    env = {k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"}   # a serving script that set nothing
    proc = subprocess.run([sys.executable, "-c", LOAD_KERAS, json.dumps(expected["X"])], cwd=root, env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    *models, backend = proc.stdout.strip().splitlines()
    assert backend == "torch"
    for line in models:
        name, kind, predicted = json.loads(line)
        assert kind == "Sequential" and np.allclose(predicted, expected["keras"], atol=1e-5), name


def test_without_keras_a_keras_file_is_a_clear_error(at_root, monkeypatch):
    import nbversion as nbv

    monkeypatch.setitem(sys.modules, "keras", None)
    with pytest.raises(nbv.NbversionError) as err:
        nbv.load_model("net@v1.0.0")
    assert "needs keras and a backend" in err.value.message and "net@v1.0.0" in err.value.message
    assert "pip install keras" in err.value.hint


def test_predict_runs_a_registered_onnx_yolo_and_refuses_a_sklearn_model(at_root, bus):
    root, files, _ = at_root
    out = json.loads(cli("predict", "yolo-onnx@champion", bus, "--imgsz", "64", "--json", check=0).stdout)
    assert out["weights"].endswith("yolo-onnx/v1.0.0/files/yolo.onnx")
    assert [Path(i["image"]).name for i in out["images"]] == ["bus.jpg"] and out["images"][0]["ms"] > 0
    scripted = json.loads(cli("predict", files / "yolo.torchscript", bus, "--json", check=0).stdout)
    assert scripted["weights"].endswith("yolo.torchscript") and len(scripted["images"]) == 1

    refused = cli("predict", "risk@v1.0.0", bus)
    assert refused.returncode == 1 and "Traceback" not in refused.stderr
    assert "error: risk.joblib is a scikit-learn model, not an Ultralytics checkpoint or export " \
           "(framework scikit-learn, format pickle)" in refused.stderr
    assert "predict runs YOLO models only" in refused.stderr and "hint: " in refused.stderr
    foreign = cli("predict", "affine@v1.0.0", bus)
    assert foreign.returncode == 1 and "affine.onnx is an ONNX model without Ultralytics metadata" in foreign.stderr
