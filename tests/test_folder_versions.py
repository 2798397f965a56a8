"""A version is a folder (issue 17, part 3, and the sklearn serving test of part 5).

`register --from DIR|FILE...` and `model add NAME DIR|FILE...` keep every file of a version (the
model, its signature, metrics.json), pick the model file by one rule, read metrics.json, and every
immutability check covers every file. The registry table shows each model's own metrics and a
rules.toml gate can be scoped to one model. All state is made by the verbs.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import nbversion as nbv
from conftest import cli, cli_json, git, snapshot
from trained import trained, trained_template   # noqa: F401 (fixtures)

SIGNATURE = {"inputs": [{"name": "age", "type": "double"}, {"name": "income", "type": "double"}],
             "outputs": [{"name": "risk", "type": "long"}]}
METRICS = {"f1": 0.81, "roc_auc": 0.9, "threshold_note": "tuned on val", "val": {"f1": 0.78}}


def sklearn_folder(base: Path, metrics_text: str | None = None, model_name: str = "model_v1.joblib") -> Path:
    """What a scikit-learn training script leaves: a real fitted LogisticRegression, its
    signature and its metrics, in `artifacts/`."""
    import joblib
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    folder = base / "artifacts"
    folder.mkdir(parents=True, exist_ok=True)
    rows = np.random.RandomState(0).randn(80, 2)
    labels = (rows[:, 0] + rows[:, 1] > 0).astype(int)
    joblib.dump(LogisticRegression().fit(rows, labels), folder / model_name)
    (folder / "model_signature.json").write_text(json.dumps(SIGNATURE, indent=2))
    (folder / "metrics.json").write_text(metrics_text if metrics_text is not None else json.dumps(METRICS, indent=2))
    return folder


def all_good(root=None) -> None:
    proc = cli("verify", cwd=root, check=0)
    assert "all good" in proc.stdout, proc.stdout


STORED = ["files/metrics.json", "files/model.joblib", "files/model_signature.json"]


def test_sklearn_folder_registers_normalised_with_its_metrics_and_serves_by_model_version(ws, tmp_path):
    artifacts = sklearn_folder(tmp_path)
    cli("register", "risk", "--version", "1.2.0", "--from", artifacts, "--rename", check=0)

    shown = cli_json("registry", "risk")["versions"][0]
    assert shown["metrics"] == {"f1": 0.81, "roc_auc": 0.9, "val/f1": 0.78}   # text left out, nested flattened
    resolved = cli_json("resolve", "risk@v1.2.0")
    folder = ws.root / "registry/risk/v1.2.0"
    assert sorted(Path(p).relative_to(folder).as_posix() for p in resolved["files"]) == STORED
    assert resolved["path"] == str(folder / "files/model.joblib")     # model_v1.joblib, normalised
    assert json.loads((folder / "files/model_signature.json").read_text()) == SIGNATURE   # name kept

    env = dict(os.environ, MODEL_VERSION="v1.2.0")    # how serving code picks the version
    cli("register", "risk", "--bump", "patch", "--from", artifacts, "--rename", check=0)
    served = cli("resolve", "risk", "--json", env=env, check=0)
    assert json.loads(served.stdout)["version"] == "v1.2.0"
    # the serving process: a bare name, the version from MODEL_VERSION, the estimator (a pickle: trust=True)
    serve = ("import nbversion as nbv; model = nbv.load_model('risk', trust=True); "
             "print(type(model).__name__, model.predict([[2.0, 2.0], [-2.0, -2.0]]).tolist())")
    served_model = subprocess.run([sys.executable, "-c", serve], cwd=ws.root, env=env, capture_output=True, text=True)
    assert served_model.stdout.split() == ["LogisticRegression", "[1,", "0]"], served_model.stderr
    all_good()
    assert cli_json("status")["changes"] == []


def test_editing_a_side_file_after_registering_is_found_by_verify_and_refused_by_resolve(ws, tmp_path):
    cli("register", "risk", "--version", "1.2.0", "--from", sklearn_folder(tmp_path), "--rename", check=0)
    signature = ws.root / "registry/risk/v1.2.0/files/model_signature.json"
    signature.write_text(json.dumps({"inputs": []}))

    found = cli("verify", check=1)
    assert "registry/risk/v1.2.0/files/model_signature.json" in found.stdout and "edited after registration" in found.stdout
    refused = cli("resolve", "risk@v1.2.0", check=1)
    assert "model_signature.json was modified after risk@v1.2.0 was registered" in refused.stderr
    assert "hint:" in refused.stderr and "Traceback" not in refused.stderr

    cli("checkout", "HEAD", "registry/risk/v1.2.0", "--force", check=0)
    assert json.loads(signature.read_text()) == SIGNATURE
    all_good()


def test_a_clone_pulls_every_file_and_resolve_materialises_them_when_not_checked_out(ws, tmp_path):
    ws.remote_add("team", str(tmp_path / "remote"))
    ws.push()
    cli("clone", tmp_path / "remote", tmp_path / "elsewhere", check=0)
    artifacts = sklearn_folder(tmp_path)
    cli("register", "risk", "--version", "1.2.0", "--from", artifacts, "--rename", check=0)
    ws.push()
    registered = {Path(p).name: Path(p).read_bytes() for p in cli_json("resolve", "risk@v1.2.0")["files"]}

    elsewhere = tmp_path / "elsewhere"
    cli("pull", cwd=elsewhere, check=0)
    pulled = cli_json("resolve", "risk@v1.2.0", cwd=elsewhere)
    assert {Path(p).name: Path(p).read_bytes() for p in pulled["files"]} == registered
    all_good(elsewhere)

    first = git(elsewhere, "rev-list", "--max-parents=0", "HEAD").strip()
    cli("checkout", first, cwd=elsewhere, check=0)            # the version is not in this tree
    assert not (elsewhere / "registry/risk").exists()
    before = snapshot(elsewhere)
    materialised = cli_json("resolve", "risk@v1.2.0", cwd=elsewhere)
    assert Path(materialised["path"]) == elsewhere / ".nbversion/resolved/risk/v1.2.0/files/model.joblib"
    assert {Path(p).name: Path(p).read_bytes() for p in materialised["files"]} == registered
    assert snapshot(elsewhere) == before


def test_model_add_of_a_folder_and_of_several_files_then_register_from_the_model(ws, tmp_path):
    artifacts = sklearn_folder(tmp_path)
    added = cli_json("model", "add", "risk-model", artifacts, "--rename", "--metric", "f1=0.83")
    assert added["meta"]["file"] == "model.joblib" and added["meta"]["framework"] == "scikit-learn"
    assert sorted(f["path"] for f in added["meta"]["files"]) == ["metrics.json", "model.joblib", "model_signature.json"]
    assert added["meta"]["metrics"] == {"f1": 0.83, "roc_auc": 0.9, "val/f1": 0.78}   # --metric wins
    assert sorted(p.name for p in (ws.root / "models/risk-model").iterdir()) == ["metrics.json", "model.joblib",
                                                                               "model_signature.json"]
    again = cli_json("model", "add", "risk-model", artifacts, "--rename", "--metric", "f1=0.83")
    assert again["changed"] is False

    several = cli_json("model", "add", "risk-small", artifacts / "model_v1.joblib", artifacts / "metrics.json")
    assert several["meta"]["file"] == "model_v1.joblib"                  # names kept without --rename
    assert sorted(f["path"] for f in several["meta"]["files"]) == ["metrics.json", "model_v1.joblib"]
    assert several["meta"]["metrics"]["roc_auc"] == 0.9

    registered = ws.register("risk", version="1.0.0", source="risk-model")
    assert sorted(registered.files) == STORED and registered.model_file == "files/model.joblib"
    assert registered.metrics["f1"] == 0.83
    assert Path(ws.resolve("risk@v1.0.0").path).name == "model.joblib"
    all_good()


def test_openvino_export_folder_keeps_its_sub_path_and_xml_and_bin_together_when_renamed(ws, tmp_path):
    export = tmp_path / "release" / "best_openvino_model"
    export.mkdir(parents=True)
    (export / "best.xml").write_text('<?xml version="1.0"?>\n<net name="torch_jit" version="11"><layers/></net>\n')
    (export / "best.bin").write_bytes(os.urandom(512))
    (export / "metadata.yaml").write_text("task: detect\nimgsz: [64, 64]\nnames: {0: square}\n")
    (export.parent / "README.md").write_text("# detector release\n")
    (export.parent / ".ipynb_checkpoints").mkdir()
    (export.parent / ".ipynb_checkpoints" / "README-checkpoint.md").write_text("old\n")
    first = git(ws.root, "rev-parse", "HEAD").strip()

    result = ws.register("det-ov", version="1.0.0", source=str(export.parent), rename=True)
    assert sorted(result.files) == ["files/README.md", "files/best_openvino_model/metadata.yaml",
                                    "files/best_openvino_model/model.bin", "files/best_openvino_model/model.xml"]
    assert result.model_file == "files/best_openvino_model/model.xml"
    assert Path(ws.resolve("det-ov@v1.0.0").path).relative_to(ws.root).as_posix() == \
        "registry/det-ov/v1.0.0/files/best_openvino_model/model.xml"
    all_good()

    ws.checkout(first)                                    # not checked out: materialised, sub-paths kept
    served = ws.resolve("det-ov@v1.0.0")
    assert Path(served.path) == ws.root / ".nbversion/resolved/det-ov/v1.0.0/files/best_openvino_model/model.xml"
    assert (Path(served.path).parent / "model.bin").read_bytes() == (export / "best.bin").read_bytes()
    assert len(served.files) == 4


def test_a_folder_of_many_files_without_a_model_is_one_short_error(ws, tmp_path):
    folder = tmp_path / "images"
    folder.mkdir()
    for n in range(48):
        (folder / f"img{n:02d}.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes([n]) * 40)
    (folder / "notes.txt").write_text("no model here")
    before = snapshot(ws.root)
    refused = cli("register", "risk", "--bump", "patch", "--from", tmp_path / "images" / ".." / "images", check=1)
    message = refused.stderr.split("hint:")[0]
    assert "no model file in" in message and "49 file(s)" in message and "and 44 more" in message
    assert str(folder) in message and ".." not in message          # the folder, normalised
    assert "img47.png" not in message and "Traceback" not in refused.stderr
    assert snapshot(ws.root) == before


def test_more_than_one_model_file_is_refused_with_the_candidates_until_model_file_says_which(ws, tmp_path):
    artifacts = sklearn_folder(tmp_path)
    sklearn_folder(tmp_path, model_name="model_v2.joblib")
    before = snapshot(ws.root)
    refused = cli("register", "risk", "--version", "1.0.0", "--from", artifacts, check=2)   # a usage error
    assert "more than one model file" in refused.stderr
    assert "model_v1.joblib" in refused.stderr and "model_v2.joblib" in refused.stderr
    assert "--model-file" in refused.stderr and "Traceback" not in refused.stderr
    assert "model_signature.json" not in refused.stderr.split("hint:")[0]    # metadata is never a candidate
    assert "more than one model file" in cli("model", "add", "risk", artifacts, check=2).stderr
    for lone in ("model_signature.json", "metrics.json"):   # a side file alone: a version with no model
        for command in (["register", "risk", "--version", "1.0.0", "--from"], ["model", "add", "risk"]):
            refused = cli(*command, artifacts / lone, check=1)
            assert f"{lone}: not a model file" in refused.stderr and "--from DIR" in refused.stderr
    assert snapshot(ws.root) == before

    cli("register", "risk", "--version", "1.0.0", "--from", artifacts, "--model-file", "model_v2.joblib",
        "--rename", check=0)
    files = cli_json("resolve", "risk@v1.0.0")["files"]
    assert sorted(Path(p).name for p in files) == ["metrics.json", "model.joblib", "model_signature.json",
                                                   "model_v1.joblib"]


def test_a_broken_metrics_json_names_file_and_line_and_writes_nothing(ws, tmp_path):
    artifacts = sklearn_folder(tmp_path, metrics_text='{\n  "f1": 0.81,\n  "roc_auc": 0.9\n  "pr_auc": 0.7\n}\n')
    before = snapshot(ws.root)
    for command in (["register", "risk", "--version", "1.0.0", "--from", artifacts, "--rename"],
                    ["model", "add", "risk", artifacts]):
        refused = cli(*command, check=1)
        assert f"{artifacts / 'metrics.json'}:4: not valid JSON" in refused.stderr, refused.stderr
        assert "hint:" in refused.stderr and "Traceback" not in refused.stderr
        assert snapshot(ws.root) == before
    assert git(ws.root, "status", "--porcelain") == ""


def test_registry_table_shows_each_models_own_metrics(trained, tmp_path):
    ws, run_id = trained
    ws.register("det", version="1.0.0", source=run_id)
    cli("register", "risk", "--version", "1.2.0", "--from", sklearn_folder(tmp_path), "--rename", check=0)

    one = cli("registry", "risk", check=0).stdout.splitlines()
    assert one[0].split()[4:7] == ["f1", "roc_auc", "val/f1"] and "mAP50" not in one[0]
    det = cli("registry", "det", check=0).stdout.splitlines()[0]
    assert "mAP50-95" in det and "f1" not in det.split()
    both = {line.split()[0]: line for line in cli("registry", check=0).stdout.splitlines()[2:4]}
    assert "f1=0.81" in both["risk"] and "roc_auc=0.9" in both["risk"] and "mAP" not in both["risk"]
    assert "mAP50-95=" in both["det"] and "f1=" not in both["det"]
    listed = {v["name"]: v["metrics"] for v in cli_json("registry")["versions"]}
    assert listed["risk"]["val/f1"] == 0.78 and "mAP50" in listed["det"]   # --json keeps every metric
    html = ws.registry()._repr_html_()
    assert "f1=0.81" in html and "mAP50-95=" in html


SCOPED_RULES = """
[stages.champion]
gates = ["metrics.mAP50 >= 0.99"]

[models.risk.stages.champion]
gates = ["metrics.f1 >= 0.8", "metrics.val/f1 >= 0.7"]   # a nested metrics.json key: val/f1
"""


def test_a_model_scoped_gate_replaces_the_stage_gates_for_that_model_only(trained, tmp_path):
    ws, run_id = trained
    ws.register("det", version="1.0.0", source=run_id)
    cli("register", "risk", "--version", "1.2.0", "--from", sklearn_folder(tmp_path), "--rename", check=0)
    (ws.root / ".nbversion/rules.toml").write_text(SCOPED_RULES)
    cli("commit", "-m", "gates: mAP for detectors, f1 for risk", check=0)

    promoted = cli("promote", "risk@v1.2.0", check=0)
    assert "metrics.f1 >= 0.8" in promoted.stdout and "mAP50" not in promoted.stdout
    gated = cli("promote", "det@v1.0.0", check=1)
    assert "FAIL  metrics.mAP50 >= 0.99" in gated.stderr and "f1" not in gated.stderr
    assert cli_json("resolve", "risk@champion")["version"] == "v1.2.0"
    assert "audit log OK" in cli("audit", "verify", check=0).stdout

    (ws.root / ".nbversion/rules.toml").write_text(SCOPED_RULES + '\n[models.risk.stages.staging]\ngate = "f1 > 0.5"\n')
    refused = cli("commit", "-m", "a typo", check=1)
    assert "rules.toml:9: unknown setting 'gate' in stage staging of model risk" in refused.stderr
    (ws.root / ".nbversion/rules.toml").write_text(SCOPED_RULES + '\n[models.risk]\nrole = "admin"\n')
    refused = cli("commit", "-m", "a misplaced key", check=1)
    assert "rules.toml:9: unknown setting 'role' for model risk" in refused.stderr and "hint:" in refused.stderr


def test_a_folder_register_killed_before_its_tag_is_finished_only_by_the_same_files(ws, tmp_path):
    artifacts = sklearn_folder(tmp_path)
    env = {**os.environ, "NBVERSION_TEST_KILL_AT": "register-committed"}
    killed = cli("register", "risk", "--version", "1.2.0", "--from", artifacts, "--rename", env=env)
    assert killed.returncode == -9 and not git(ws.root, "tag", "-l", "risk@v1.2.0").strip()

    (artifacts / "model_signature.json").write_text(json.dumps({"inputs": []}))   # one side file differs
    before = snapshot(ws.root)
    refused = cli("register", "risk", "--version", "1.2.0", "--from", artifacts, "--rename", check=1)
    assert "committed but has no tag" in refused.stderr and snapshot(ws.root) == before

    (artifacts / "model_signature.json").write_text(json.dumps(SIGNATURE, indent=2))
    cli("register", "risk", "--version", "1.2.0", "--from", artifacts, "--rename", check=0)
    assert sorted(Path(p).name for p in cli_json("resolve", "risk@v1.2.0")["files"]) == \
        ["metrics.json", "model.joblib", "model_signature.json"]
    all_good()
