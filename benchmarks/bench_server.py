"""Issue 8: REST list endpoints at 1,000 registered versions and 1,000 runs; sidebar first paint.

    python -m benchmarks.bench_server [--versions 1000] [--runs 1000] [--no-browser]

A real `jupyter lab` serves a generated workspace; each endpoint is timed over HTTP, warm
(median of 5). The first paint is the time from clicking the sidebar tab until every
section shows its data, in Debian's chromium driven by Playwright.
"""
from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from pathlib import Path

from ._util import BIN, bench_env, ours_repo, row, scratch

REPO = Path(__file__).resolve().parents[1]
TOKEN = "nbversion-bench"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ENDPOINTS = ["status", "log", "datasets", "runs", "runs/progress?cursor={cursor}", "registry", "audit", "whoami",
             # what the sidebar asks: the table only, not every record's full dict
             "runs?fields=view", "registry?fields=view"]


def git(root: Path, *args: str, **kw) -> str:
    return subprocess.run(["git", *args], cwd=root, env=bench_env(), check=True,
                          capture_output=True, text=True, **kw).stdout


def write_runs(root: Path, count: int) -> None:
    """Finished run records in the schema of nbversion.training.runs (no training needed)."""
    for i in range(count):
        run = root / "runs" / f"20260101-{i:06d}-bench"
        run.mkdir(parents=True)
        series = [{"epoch": e, "mAP50": 0.5, "mAP50-95": 0.3 + e / 100} for e in (1, 2, 3)]
        (run / "run.json").write_text(json.dumps({
            "id": run.name, "status": "done", "params": {"epochs": 3}, "device": "cpu",
            "model": "yolov8n.yaml", "epochs": series, "best_epoch": 3, "metrics": series[-1],
            "dataset": {"name": "bench"}, "weights": {}}))
        (run / "results.csv").write_text("epoch,metrics/mAP50-95(B)\n1,0.31\n2,0.32\n3,0.33\n")


def write_versions(root: Path, count: int) -> None:
    """`count` versions in the registry's storage format: manifests under registry/ and GTO
    annotated tags. Registering one by one takes a commit each; git plumbing makes 1,000 in seconds."""
    refs = []
    for i in range(count):
        version = f"v1.{i // 100}.{i % 100}"
        folder = root / "registry" / "detector" / version
        folder.mkdir(parents=True)
        (folder / "manifest.json").write_text(json.dumps({
            "name": "detector", "version": version, "files": {}, "metrics": {"mAP50-95": 0.3 + i / 10000},
            "registered_by": "bench@example.com", "registered_at": "2026-01-01T00:00:00+00:00"}))
        refs.append(version)
    git(root, "add", "registry")
    git(root, "commit", "-qm", f"register {count} versions")
    head = git(root, "rev-parse", "HEAD").strip()
    stdin = "".join(f"create refs/tags/detector@{v} {_annotated(root, head, f'detector@{v}', v)}\n" for v in refs)
    git(root, "update-ref", "--stdin", input=stdin)
    champion = _annotated(root, head, "detector#champion#1", refs[-1], stage=True)
    git(root, "update-ref", "refs/tags/detector#champion#1", champion)


def _annotated(root: Path, commit: str, tag: str, version: str, stage: bool = False) -> str:
    message = (f"Assigning stage champion to artifact detector version {version}" if stage
               else f"Registering artifact detector version {version}")
    body = (f"object {commit}\ntype commit\ntag {tag}\n"
            f"tagger bench <bench@example.com> 1767225600 +0000\n\n{message}\n")
    return git(root, "hash-object", "-t", "tag", "-w", "--stdin", input=body).strip()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def lab_server(root: Path, tmp: Path):
    config = tmp / "jupyter-config"
    (config / "labconfig").mkdir(parents=True)
    (config / "jupyter_server_config.json").write_text(json.dumps(
        {"ServerApp": {"jpserver_extensions": {"nbversion.server": True}}}))
    (config / "labconfig" / "page_config.json").write_text(json.dumps(
        {"disabledExtensions": {"@jupyterlab/apputils-extension:announcements": True}}))
    extensions = tmp / "labextensions"
    extensions.mkdir()
    (extensions / "nbversion-labextension").symlink_to(REPO / "nbversion" / "labextension")
    port = free_port()
    env = {**bench_env(), "JUPYTER_CONFIG_DIR": str(config), "JUPYTER_DATA_DIR": str(tmp / "data")}
    proc = subprocess.Popen(
        [str(BIN / "python"), "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
         f"--IdentityProvider.token={TOKEN}", f"--ServerApp.root_dir={root}", "--allow-root",
         f"--LabApp.extra_labextensions_path={extensions}"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=root)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                get(url, "whoami")
                break
            except OSError:
                time.sleep(0.3)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def get(url: str, path: str) -> tuple[int, dict]:
    request = urllib.request.Request(f"{url}/nbversion/api/{path}", headers={"Authorization": f"token {TOKEN}"})
    try:
        with urllib.request.urlopen(request, timeout=120) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def time_endpoint(url: str, path: str, repeat: int = 5) -> tuple[float, int, dict]:
    code, data = get(url, path)             # warm-up: imports, git and OS caches
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        code, data = get(url, path)
        times.append(time.perf_counter() - start)
    return statistics.median(times), code, data


def first_paint(url: str) -> float | None:
    if not Path(CHROMIUM).exists():
        return None
    os.environ.setdefault("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(f"{url}/lab?token={TOKEN}")
        tab = page.locator('li.lm-TabBar-tab[data-id="nbversion-sidebar"]')
        tab.wait_for(timeout=120_000)
        start = time.perf_counter()
        tab.click()
        page.wait_for_function(
            "() => { const s = document.querySelectorAll('#nbversion-sidebar .nbv-Section');"
            " return s.length === 5 && [...s].every(x => !x.textContent.includes('loading…')); }",
            timeout=120_000)
        seconds = time.perf_counter() - start
        browser.close()
    return seconds


def main(argv=None) -> list[dict]:
    parser = argparse.ArgumentParser()
    parser.add_argument("--versions", type=int, default=int(os.environ.get("BENCH_VERSIONS", 1000)))
    parser.add_argument("--runs", type=int, default=int(os.environ.get("BENCH_RUNS", 1000)))
    parser.add_argument("--no-browser", action="store_true")
    args = parser.parse_args(argv)
    rows = []
    with scratch("server") as tmp:
        root = ours_repo(tmp / "ws")
        write_runs(root, args.runs)
        git(root, "add", "runs")
        git(root, "commit", "-qm", f"{args.runs} runs")
        write_versions(root, args.versions)
        with lab_server(root, tmp) as url:
            _, progress = get(url, "runs/progress?cursor=0")
            for path in ENDPOINTS:
                seconds, code, data = time_endpoint(url, path.format(cursor=progress.get("cursor", 0)))
                size = len((data.get("view") or {}).get("rows", data.get("runs", [])))
                shown = path.split("?")[0] + (" ?fields=view" if "fields=view" in path else "")
                label = f"GET {shown} ({size} rows)" if code == 200 else \
                    f"GET {shown} (HTTP {code}: {data.get('error', {}).get('type')})"
                rows.append(row(label, seconds * 1000, None, "< 100 ms", unit="ms"))
            if not args.no_browser:
                paint = first_paint(url)
                if paint is not None:
                    rows.append(row("sidebar first paint (click to all sections drawn)", paint, None, "< 1 s"))
    return rows


if __name__ == "__main__":
    from ._util import machine
    from .report import print_rows
    print(machine())
    print_rows(main(sys.argv[1:]))
