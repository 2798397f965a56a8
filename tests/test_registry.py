"""Registry: register / registry / resolve / load_model, immutability, kill -9 during register."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from conftest import USER, cli, cli_json, git, snapshot


# --- helpers shared by the registry, promotion, audit and gto test files -------------------
def pt_weights(size: int = 2048) -> bytes:
    """Bytes `model add` reads as a PyTorch file (a legacy pickle starts with 0x80)."""
    return b"\x80\x02" + os.urandom(size - 2)


def checkpoint_file(path: Path, metrics: dict) -> Path:
    """A file shaped like an Ultralytics best.pt (a torch zip with data.pkl) that carries these
    metrics, so `register --from FILE` records them (the same reading `model add` does)."""
    import pickle
    import zipfile

    checkpoint = {"date": "2026-01-01", "version": "8.4.0", "model": None, "nonce": os.urandom(8).hex(),
                  "train_args": {"epochs": 2, "imgsz": 64, "model": "yolov8n.yaml"},
                  "train_metrics": {f"metrics/{k}(B)": v for k, v in metrics.items()}}
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("best/data.pkl", pickle.dumps(checkpoint, protocol=2))
        archive.writestr("best/version", "3\n")
    return path


def add_model_version(ws, name: str, metrics: dict, weights: bytes = b"", dataset=None, params=None) -> str:
    """`model add NAME best.pt --metric k=v ... [--dataset D]`: a source for `register --from NAME`."""
    source = ws.root.parent / "weights-src" / name / "best.pt"
    source.parent.mkdir(parents=True, exist_ok=True)
    source.write_bytes(weights or pt_weights())
    ws.model_add(name, source, metrics=metrics, params=params, dataset=dataset)
    return name


def register_version(ws, name: str, version: str, metrics: dict, **kw):
    """`register NAME --version V --from MODEL` of a fresh model version with these metrics
    (real training runs are registered in test_training; a run record is never written here)."""
    return ws.register(name, version=version, source=add_model_version(ws, f"{name}-candidate", metrics, **kw))


register_run = register_version    # the name other test files import


def as_user(monkeypatch, user: str) -> None:
    monkeypatch.setenv("NBVERSION_USER", user)


# --- register --------------------------------------------------------------------------------
def test_register_promote_resolve_round_trip(ws, demo_data):
    ws.dataset_add("shapes", demo_data)
    weights = pt_weights(4096)
    add_model_version(ws, "r1", {"precision": 0.7, "recall": 0.6, "mAP50": 0.65, "mAP50-95": 0.42}, weights,
                      dataset="shapes", params={"imgsz": 64})
    result = ws.register("detector", version="1.0.0", source="r1", message="first")
    assert result.version == "v1.0.0"
    folder = ws.root / "registry" / "detector" / "v1.0.0"
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["metrics"]["mAP50-95"] == 0.42 and manifest["params"] == {"imgsz": 64}
    shapes = json.loads((ws.root / "datasets/shapes.meta.json").read_text())
    assert manifest["lineage"]["dataset"]["name"] == "shapes"
    assert manifest["lineage"]["dataset"]["md5"] == shapes["content_hash"]
    assert manifest["registered_by"] == USER and manifest["message"] == "first"
    assert manifest["files"]["files/best.pt"]["size"] == 4096
    assert (folder / "files.dvc").exists(), "weights must be tracked by DVC"
    assert "registry/detector/v1.0.0/files/best.pt" not in git(ws.root, "ls-files")
    # annotated tag in GTO's format on the registering commit
    assert git(ws.root, "cat-file", "-t", "detector@v1.0.0").strip() == "tag"
    assert "Registering artifact detector version v1.0.0" in git(ws.root, "cat-file", "-p", "detector@v1.0.0")
    assert git(ws.root, "rev-parse", "detector@v1.0.0^{}") == git(ws.root, "rev-parse", "HEAD")
    assert git(ws.root, "status", "--porcelain", "--", "registry") == ""

    ws.promote("detector@v1.0.0")
    resolved = ws.resolve("detector@champion")
    assert resolved.version == "v1.0.0"
    assert Path(resolved.path).read_bytes() == weights
    assert ws.resolve("detector@latest").version == "v1.0.0"


def test_cli_register_bump_and_registry_listing(ws):
    add_model_version(ws, "r1", {"mAP50-95": 0.3})
    add_model_version(ws, "r2", {"mAP50-95": 0.5})
    cli("register", "det", "--version", "1.0.0", "--from", "r1", check=0)
    out = cli("register", "det", "--bump", "minor", "--from", "r2", check=0).stdout
    assert "registered det@v1.1.0" in out
    cli("promote", "det@v1.1.0", check=0)
    rows = cli_json("registry")["versions"]
    assert [(r["version"], r["champion"]) for r in rows] == [("v1.1.0", True), ("v1.0.0", False)]
    assert rows[0]["metrics"]["mAP50-95"] == 0.5 and rows[0]["registered_by"] == USER
    text = cli("registry", "det", check=0).stdout
    assert "★" in text and "champion" in text
    html = ws.registry()._repr_html_()
    assert html.count("class=nbv-hl") == 1, "the champion row is highlighted in notebooks"


def test_reregistering_or_going_down_is_refused_and_changes_nothing(ws):
    register_run(ws, "det", "1.2.0", {"mAP50-95": 0.3})
    add_model_version(ws, "again", {"mAP50-95": 0.9})
    before = snapshot(ws.root)
    same = cli("register", "det", "--version", "1.2.0", "--from", "again")
    assert same.returncode == 2
    assert "already registered; versions are immutable" in same.stderr and "hint: " in same.stderr
    lower = cli("register", "det", "--version", "1.1.9", "--from", "again")
    assert lower.returncode == 2 and "lower than the latest version v1.2.0" in lower.stderr
    after = snapshot(ws.root)
    assert after["tags"] == before["tags"] and after["head"] == before["head"]
    assert after["audit"] == before["audit"]


def test_register_from_a_file_and_from_a_model_meta(ws, tmp_path):
    weights = tmp_path / "outside.onnx"
    weights.write_bytes(b"onnx-bytes" * 100)
    from_file = ws.register("onnxdet", bump="major", source=str(weights))
    assert from_file.version == "v1.0.0" and from_file.lineage["run"] is None
    add_model_version(ws, "yolo-small", {"mAP50-95": 0.44}, params={"imgsz": 64})
    from_model = ws.register("yolo", version="0.1.0", source="yolo-small")
    manifest = json.loads((ws.root / "registry/yolo/v0.1.0/manifest.json").read_text())
    assert from_model.metrics == {"mAP50-95": 0.44}
    assert manifest["params"] == {"imgsz": 64} and manifest["framework"] == "pytorch"
    assert list(manifest["files"]) == ["files/best.pt"]
    assert manifest["source"] == "model:yolo-small@HEAD"


def test_unknown_source_and_bad_name_are_clear_errors(ws):
    missing = cli("register", "det", "--version", "1.0.0", "--from", "no-such-thing")
    assert missing.returncode == 1 and "is not a run, a model or a file" in missing.stderr
    bad = cli("register", "bad.name", "--version", "1.0.0", "--from", "x")
    assert bad.returncode == 2 and "invalid model name" in bad.stderr


# --- resolve / serving -----------------------------------------------------------------------
def test_resolve_serves_missing_weights_from_the_dvc_cache_outside_the_working_tree(ws):
    weights = pt_weights(3000)
    register_run(ws, "det", "1.0.0", {"mAP50-95": 0.3}, weights=weights)
    path = ws.root / "registry/det/v1.0.0/files/best.pt"
    path.unlink()
    resolved = ws.resolve("det@v1.0.0")
    assert Path(resolved.path) == ws.root / ".nbversion/resolved/det/v1.0.0/files/best.pt"
    assert Path(resolved.path).read_bytes() == weights
    assert not path.exists(), "a reading verb does not write into the working tree"


def test_resolve_pulls_weights_from_the_dvc_remote_when_the_cache_lacks_them(ws, tmp_path):
    import shutil

    weights = pt_weights(5000)
    register_run(ws, "det", "1.0.0", {"mAP50-95": 0.3}, weights=weights)
    dvc = str(Path(sys.executable).with_name("dvc"))
    subprocess.run([dvc, "remote", "add", "-d", "store", str(tmp_path / "store")], cwd=ws.root, check=True)
    subprocess.run([dvc, "push", "-q"], cwd=ws.root, check=True, capture_output=True)
    shutil.rmtree(ws.root / ".dvc" / "cache")
    (ws.root / "registry/det/v1.0.0/files/best.pt").unlink()
    resolved = ws.resolve("det@v1.0.0")
    assert Path(resolved.path).read_bytes() == weights


def test_resolve_at_a_date_answers_the_champion_of_that_time(ws):
    register_run(ws, "det", "1.0.0", {"mAP50-95": 0.3})
    register_run(ws, "det", "1.1.0", {"mAP50-95": 0.4})
    ws.promote("det@v1.0.0")
    time.sleep(1.1)   # tag dates have one-second resolution
    from datetime import datetime, timezone
    between = datetime.now(timezone.utc).isoformat(timespec="seconds")
    time.sleep(1.1)
    ws.promote("det@v1.1.0")
    assert ws.resolve("det@champion").version == "v1.1.0"
    assert ws.resolve("det@champion", at=between).version == "v1.0.0"
    early = cli("resolve", "det@champion", "--at", "2000-01-01")
    assert early.returncode == 1 and "had no champion at 2000-01-01" in early.stderr


def test_load_model_honours_model_version_and_returns_a_path_for_other_weights(ws, tmp_path, monkeypatch):
    import nbversion as nbv

    for version, content in (("1.0.0", b"one"), ("2.0.0", b"two")):
        source = tmp_path / f"model-{version}.onnx"
        source.write_bytes(content * 100)
        ws.register("onnxdet", version=version, source=str(source))
    ws.promote("onnxdet@v1.0.0")
    assert nbv.load_model("onnxdet").read_bytes() == b"one" * 100           # champion by default
    monkeypatch.setenv("MODEL_VERSION", "v2.0.0")
    assert nbv.load_model("onnxdet").read_bytes() == b"two" * 100
    monkeypatch.setenv("MODEL_VERSION", "latest")
    assert nbv.load_model("onnxdet").name == "model-2.0.0.onnx"
    assert nbv.load_model("onnxdet@v1.0.0").read_bytes() == b"one" * 100    # an explicit ref wins


def test_load_model_returns_an_ultralytics_yolo_for_yolo_weights(ws, tmp_path):
    import nbversion as nbv

    script = ("import sys; from ultralytics import YOLO; m = YOLO('yolov8n.yaml'); m.save(sys.argv[1])")
    subprocess.run([sys.executable, "-c", script, str(tmp_path / "best.pt")], check=True, capture_output=True,
                   cwd=tmp_path, timeout=300)
    ws.register("yolo", version="1.0.0", source=str(tmp_path / "best.pt"))
    ws.promote("yolo@v1.0.0")
    model = nbv.load_model("yolo@champion")
    assert type(model).__name__ == "YOLO" and model.task == "detect"


# --- kill -9 during register -------------------------------------------------------------------
def _start_register(root: Path, source: str, version: str) -> subprocess.Popen:
    exe = Path(sys.executable).with_name("nbversion")
    return subprocess.Popen([str(exe), "register", "det", "--version", version, "--from", source], cwd=root,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def test_kill_9_during_register_never_leaves_an_unreported_half_version(ws, tmp_path):
    source = tmp_path / "w.bin"
    source.write_bytes(os.urandom(1 << 20))
    outcomes = []
    for number, delay in enumerate((0.3, 0.8, 1.3, 1.8, 2.5)):
        version = f"{number + 1}.0.0"
        proc = _start_register(ws.root, str(source), version)
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        _let_orphans_finish(ws.root)
        tagged = bool(git(ws.root, "tag", "-l", f"det@v{version}").strip())
        folder = (ws.root / "registry/det" / f"v{version}").exists()
        verdict = ws.audit_verify()
        half = folder and not tagged
        outcomes.append((tagged, folder, verdict.ok))
        if half:
            assert not verdict.ok, f"a half version v{version} was left and verify did not report it"
            assert any(f"v{version}" in p["message"] for p in verdict.problems)
        else:
            assert verdict.ok, verdict.problems
        # the workspace stays usable: the same register again finishes or redoes it (or it is complete)
        if not git(ws.root, "tag", "-l", f"det@v{version}").strip():
            assert ws.register("det", version=version, source=str(source)).version == f"v{version}"
    assert ws.audit_verify().ok


def _let_orphans_finish(root: Path) -> None:
    """A git command the killed process had started runs on (kill -9 does not reach children):
    give it a moment to finish and drop its index.lock, as a user's next command would."""
    deadline = time.monotonic() + 10
    while (root / ".git" / "index.lock").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)


def test_the_same_register_again_finishes_a_version_killed_between_commit_and_tag(ws, tmp_path):
    source, other = tmp_path / "w.bin", tmp_path / "other.bin"
    source.write_bytes(os.urandom(4096))
    other.write_bytes(os.urandom(4096))
    env = {**os.environ, "NBVERSION_TEST_KILL_AT": "register-committed"}
    killed = cli("register", "det", "--version", "1.0.0", "--from", source, env=env)
    assert killed.returncode == -9
    assert git(ws.root, "ls-files", "registry/det/v1.0.0/manifest.json").strip()      # committed...
    assert not git(ws.root, "tag", "-l", "det@v1.0.0").strip()                       # ...never tagged
    verdict = ws.audit_verify()
    assert not verdict.ok and any("v1.0.0" in p["message"] for p in verdict.problems)
    before = snapshot(ws.root)
    refused = cli("register", "det", "--version", "1.0.0", "--from", other, check=1)  # other weights: no
    assert "committed but has no tag" in refused.stderr and "run that same `register` again" in refused.stderr
    assert "--version 1.0.1" in refused.stderr
    assert snapshot(ws.root) == before
    done = cli("register", "det", "--version", "1.0.0", "--from", source, check=0)     # the same: finished
    assert "registered det@v1.0.0" in done.stdout
    assert git(ws.root, "rev-list", "-n1", "det@v1.0.0").strip() == before["head"].strip()
    assert ws.audit_verify().ok and ws.verify().problems == []
    assert Path(ws.resolve("det@v1.0.0").path).read_bytes() == source.read_bytes()
    assert ws.register("det", bump="patch", source=str(other)).version == "v1.0.1"


def test_magics_return_rich_results(ws):
    from IPython.core.interactiveshell import InteractiveShell

    register_run(ws, "det", "1.0.0", {"mAP50-95": 0.4})
    shell = InteractiveShell.instance()
    shell.run_line_magic("load_ext", "nbversion")
    shell.run_line_magic("mv_promote", "det@v1.0.0")
    listing = shell.run_line_magic("mv_registry", "det")
    assert "class=nbv-hl" in listing._repr_html_() and listing.versions[0]["champion"]
    assert shell.run_line_magic("mv_resolve", "det@champion").version == "v1.0.0"
    assert shell.run_line_magic("mv_audit", "verify").ok
    # lines: init, model add, register, promote
    assert [n for n, e in shell.run_line_magic("mv_audit", "--action promote").entries] == [4]
