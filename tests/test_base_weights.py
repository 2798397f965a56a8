"""Training from pretrained weights: `--model yolov8n.pt` downloaded once (a local HTTP server stands in
for Ultralytics' release URL: this machine is offline), the offline error and its `model add` way out,
`--model NAME@REV` of a `model add`-ed model, and the base model in the run's and the version's lineage."""
from __future__ import annotations

import hashlib
import http.server
import json
import socket
import threading
from pathlib import Path

import pytest

from conftest import cli, git, snapshot
from nbversion.errors import DamagedFile, NbversionError, RemoteUnreachable
from test_training import TINY
from trained import trained, trained_template  # noqa: F401  (fixtures)


def md5(path: Path) -> str:
    return hashlib.md5(Path(path).read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory) -> Path:
    """A real Ultralytics checkpoint, as a release asset is one (random weights: nothing is downloaded)."""
    from trained import isolated_env
    from ultralytics import YOLO

    folder = tmp_path_factory.mktemp("pretrained")
    with pytest.MonkeyPatch.context() as mp:
        isolated_env(mp, folder / "home")
        YOLO("yolov8n.yaml").save(folder / "yolov8n.pt")
    return folder / "yolov8n.pt"


class WeightsServer:
    """A release URL on loopback: serves `files` {path: bytes} and counts the requests for each."""

    def __init__(self, files: dict):
        self.files, self.requests, self.short = dict(files), [], set()
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                server.requests.append(self.path)
                body = server.files.get(self.path)
                if body is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                # a connection that drops mid-file: the header promises more than is sent
                self.send_header("Content-Length", str(len(body) * (2 if self.path in server.short else 1)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server(pretrained, monkeypatch, tmp_path):
    served = WeightsServer({"/v8.4.0/yolov8n.pt": pretrained.read_bytes()})
    monkeypatch.setenv("NBVERSION_WEIGHTS_URL", f"{served.url}/v8.4.0")
    monkeypatch.setenv("NBVERSION_WEIGHTS_DIR", str(tmp_path / "weights-cache"))
    monkeypatch.delenv("NBVERSION_OFFLINE", raising=False)
    yield served
    served.close()


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def tiny(ws, model, **kw):
    return ws.train("demo", model, epochs=1, imgsz=64, batch=4, device="cpu", extra=dict(TINY), wait=True, **kw)


def cached_files(folder: Path) -> list:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


def test_offline_is_a_clear_error_with_the_model_add_way_out_and_starts_no_run(trained, monkeypatch, tmp_path):
    ws, _ = trained
    cache = tmp_path / "weights-cache"
    url = f"http://127.0.0.1:{closed_port()}/v8.4.0"
    monkeypatch.setenv("NBVERSION_WEIGHTS_URL", url)
    monkeypatch.setenv("NBVERSION_WEIGHTS_DIR", str(cache))
    runs_before, before = sorted((ws.root / "runs").iterdir()), snapshot(ws.root)
    proc = cli("train", "--data", "demo", "--model", "yolov8n.pt", "--epochs", "1", "--device", "cpu")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    for words in (f"cannot download {url}/yolov8n.pt", "no run was started",
                  "`nbversion model add yolov8n /path/yolov8n.pt`", "--model yolov8n@latest"):
        assert words in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr
    assert snapshot(ws.root) == before and sorted((ws.root / "runs").iterdir()) == runs_before
    assert cached_files(cache) == []

    # NBVERSION_OFFLINE: the network is not even tried (a live server sees no request)
    served = WeightsServer({"/yolov8n.pt": b"never fetched"})
    try:
        monkeypatch.setenv("NBVERSION_WEIGHTS_URL", served.url)
        monkeypatch.setenv("NBVERSION_OFFLINE", "1")
        with pytest.raises(RemoteUnreachable, match="NBVERSION_OFFLINE is set") as caught:
            tiny(ws, "yolov8n.pt")
        assert "yolov8n@latest" in caught.value.hint and served.requests == []
    finally:
        served.close()
    assert snapshot(ws.root) == before and sorted((ws.root / "runs").iterdir()) == runs_before


def test_pretrained_name_is_downloaded_once_then_trained_from_with_url_and_md5_in_the_lineage(trained, server, pretrained,
                                                                                            tmp_path):
    ws, _ = trained
    events = []
    first = tiny(ws, "yolov8n.pt", on_event=events.append)
    assert first.record["status"] == "done", first.record
    size = pretrained.stat().st_size
    downloads = [e for e in events if e.stage == "download"]
    assert downloads and downloads[-1].done == downloads[-1].total == size   # progress in bytes
    url = f"{server.url}/v8.4.0/yolov8n.pt"
    assert first.record["base_model"] == {"kind": "download", "ref": "yolov8n.pt", "md5": md5(pretrained), "url": url}
    assert cached_files(tmp_path / "weights-cache") == ["yolov8n.pt", "yolov8n.pt.json"]
    assert md5(tmp_path / "weights-cache" / "yolov8n.pt") == md5(pretrained)

    second = tiny(ws, "yolov8n.pt")
    assert second.record["status"] == "done" and second.record["base_model"] == first.record["base_model"]
    assert server.requests == ["/v8.4.0/yolov8n.pt"]   # the second training read the cache
    shown = cli("runs", "show", second.run_id, check=0).stdout
    assert f"base model: download yolov8n.pt (md5 {md5(pretrained)}, {url})" in shown


@pytest.mark.parametrize("damage", ["truncated", "html", "cut off"])
def test_a_damaged_download_is_refused_and_leaves_nothing_in_the_cache(trained, server, pretrained, tmp_path, damage):
    ws, _ = trained
    whole = pretrained.read_bytes()
    body = {"truncated": whole[:len(whole) // 2], "html": b"<!DOCTYPE html><html>Sign in to the proxy</html>",
            "cut off": whole[:len(whole) // 2]}[damage]
    server.files["/v8.4.0/yolov8n.pt"] = body
    if damage == "cut off":
        server.short.add("/v8.4.0/yolov8n.pt")
    runs_before, before = sorted((ws.root / "runs").iterdir()), snapshot(ws.root)
    with pytest.raises(DamagedFile) as caught:
        tiny(ws, "yolov8n.pt")
    message = caught.value.message
    assert "yolov8n.pt" in message and f"{server.url}/v8.4.0/yolov8n.pt" in message
    assert ("cut off" in message) if damage == "cut off" else ("refused" in message)
    assert cached_files(tmp_path / "weights-cache") == []
    assert snapshot(ws.root) == before and sorted((ws.root / "runs").iterdir()) == runs_before


def test_ctrl_c_during_the_download_leaves_no_partial_file(trained, server, tmp_path):
    ws, _ = trained

    def interrupt(event):
        if event.stage == "download" and event.done:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        tiny(ws, "yolov8n.pt", on_event=interrupt)
    assert cached_files(tmp_path / "weights-cache") == []
    tiny_run = tiny(ws, "yolov8n.pt")          # the next training downloads it whole
    assert tiny_run.record["status"] == "done" and len(server.requests) == 2


def test_a_model_added_base_model_trains_from_name_at_latest_and_its_lineage_reaches_the_registry(trained, pretrained):
    ws, _ = trained
    added = ws.model_add("yolov8n", pretrained)
    run = tiny(ws, "yolov8n@latest")
    assert run.record["status"] == "done", run.record
    assert run.record["base_model"] == {"kind": "model", "ref": "yolov8n@latest", "md5": md5(pretrained),
                                        "name": "yolov8n", "commit": added.commit}
    assert f"base model: model yolov8n@latest (md5 {md5(pretrained)}, commit {added.commit[:8]})" in \
        cli("runs", "show", run.run_id, check=0).stdout
    registered = ws.register("det", version="1.0.0", source=run.run_id)
    manifest = json.loads(git(ws.root, "show", f"{registered.commit}:registry/det/v1.0.0/manifest.json"))
    assert manifest["lineage"]["base"] == run.record["base_model"]


def test_the_registry_answers_name_at_rev_first_and_an_older_model_version_comes_from_the_cache(trained, pretrained):
    ws, run_id = trained
    trained_weights = ws.root / "runs" / run_id / "weights" / "best.pt"
    older = ws.model_add("det", pretrained)
    ws.model_add("det", trained_weights)                     # models/det/ now holds the trained weights
    registered = ws.register("det", version="1.0.0", source=run_id)

    from_registry = tiny(ws, "det@latest")
    base = from_registry.record["base_model"]
    assert (base["kind"], base["version"], base["md5"]) == ("registry", "v1.0.0", md5(trained_weights))
    assert base["commit"] == registered.commit

    from_model = tiny(ws, "det@~1")                          # no such stage or version in the registry
    assert from_model.record["base_model"] == {"kind": "model", "ref": "det@~1", "md5": md5(pretrained),
                                               "name": "det", "commit": older.commit}
    assert [p.name for p in (ws.root / "models" / "det").iterdir()] == ["best.pt"]   # the checkout is untouched
    assert md5(ws.root / "models" / "det" / "best.pt") == md5(trained_weights)
    assert git(ws.root, "status", "--porcelain") == ""

    with pytest.raises(NbversionError, match="goes back too far"):
        tiny(ws, "det@~5")


def test_a_name_the_mirror_lacks_is_a_clear_error_naming_the_url(trained, server, tmp_path):
    ws, _ = trained
    before = snapshot(ws.root)
    proc = cli("train", "--data", "demo", "--model", "yolo11n.pt", "--epochs", "1", "--device", "cpu")
    assert proc.returncode == 1 and f"{server.url}/v8.4.0/yolo11n.pt answered HTTP 404" in proc.stderr, proc.stderr
    assert "NBVERSION_WEIGHTS_URL" in proc.stderr and "Traceback" not in proc.stderr
    assert cached_files(tmp_path / "weights-cache") == [] and snapshot(ws.root) == before
    unknown = cli("train", "--data", "demo", "--model", "yolov8q.pt", "--epochs", "1", "--device", "cpu")
    assert unknown.returncode == 1 and "not a name Ultralytics publishes" in unknown.stderr
    assert server.requests == ["/v8.4.0/yolo11n.pt"]     # an unpublished name is never asked for
