"""Issues 8 and 16: REST list endpoints at N registered versions, runs and audit entries; sidebar first paint.

    python -m benchmarks.bench_server [--versions 1000] [--runs 1000] [--audit 1000] [--no-browser]

A real `jupyter lab` serves a generated workspace; each endpoint is timed over HTTP, warm
(median of 5): each list route's first page (default limit 100), a filtered query, the
sidebar's `fields=view` and a deep page. The generated workspace must pass `nbversion verify`
and `nbversion audit verify` (the table says so). The first paint is the time from clicking
the sidebar tab until every section shows its data, in Debian's chromium driven by Playwright.
Goal (issue 16): every list route < 50 ms at 10,000 versions, runs and audit entries.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
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
LIST_ROUTES = ("log", "datasets", "models", "runs", "registry", "audit")
# each list route: its first page (default limit), a filtered query, the sidebar's `fields=view`, a deep page
ENDPOINTS = ["status", "whoami", "runs/progress?cursor={cursor}",
             "log", "log?offset=1&limit=2", "datasets", "models",
             "runs", "runs?status=done&dataset=bench&limit=20", "runs?fields=view", "runs?offset=5000&fields=id,status",
             "registry", "registry?stage=champion", "registry?fields=view", "registry?name=detector&offset=5000",
             "audit", "audit?user=bench@example.com&action=register&limit=20", "audit?limit=50&fields=view",
             "audit?since=2000-01-01&offset=5000"]


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


def write_versions(root: Path, count: int, tmp: Path) -> None:
    """`count` versions of `detector` that `verify` and `audit verify` accept, made in seconds.

    One real `nbversion register` (v0.0.1) gives the storage format; the other versions copy its
    DVC pointer (the same weights object) with their own manifest, each with its `register`
    entry appended by the product's own chain code, one commit, and GTO annotated tags made with
    git plumbing (registering one by one takes a commit and a tag each: hours at 10,000). The
    champion is a real `nbversion promote`, so its stage tag and audit entry are the product's."""
    weights = tmp / "weights.bin"
    weights.write_bytes(os.urandom(4096))
    cli(root, "register", "detector", "--version", "0.0.1", "--from", str(weights))
    template = root / "registry" / "detector" / "v0.0.1"
    manifest = json.loads((template / "manifest.json").read_text())
    from nbversion.core.audit import chain

    refs = []
    with _no_fsync():
        for i in range(count - 1):
            version = f"v1.{i // 100}.{i % 100}"
            folder = root / "registry" / "detector" / version
            folder.mkdir(parents=True)
            for name in ("files.dvc", ".gitignore"):
                shutil.copyfile(template / name, folder / name)
            # the weights checked out, as after a real register (else `status` lists each as missing)
            shutil.copytree(template / "files", folder / "files", copy_function=shutil.copyfile)
            metrics = {"mAP50-95": 0.3 + i / 100000}
            (folder / "manifest.json").write_text(json.dumps(
                {**manifest, "version": version, "metrics": metrics, "registered_at": chain.now_iso("seconds")}))
            tag = f"detector@{version}"
            chain.append(root, "bench@example.com", "register", tag,
                         {"tag": tag, "source": manifest["source"], "files": manifest["files"], "metrics": metrics})
            refs.append(version)
    git(root, "add", "registry", ".nbversion/audit.jsonl")
    git(root, "commit", "-qm", f"nbversion: register {count - 1} versions")
    head = git(root, "rev-parse", "HEAD").strip()
    stdin = "".join(f"create refs/tags/detector@{v} {_annotated(root, head, f'detector@{v}', v)}\n" for v in refs)
    git(root, "update-ref", "--stdin", input=stdin)
    cli(root, "promote", f"detector@{refs[-1] if refs else 'v0.0.1'}")


def write_audit(root: Path, count: int) -> int:
    """Pad the audit log to `count` entries with the product's chain code (`note` entries, which
    nothing re-checks), committed; returns the number of entries."""
    from nbversion.core.audit import chain

    have = sum(1 for _ in chain.iter_entries(root))
    with _no_fsync():
        for i in range(max(count - have, 0)):
            chain.append(root, "alice@example.com" if i % 2 else "bench@example.com", "note", f"bench note {i}")
    if count > have:
        git(root, "add", ".nbversion/audit.jsonl")
        git(root, "commit", "-qm", f"nbversion: {count - have} audit notes")
    return max(count, have)


@contextmanager
def _no_fsync():
    """The chain code fsyncs every line (~4 ms each here); a generated log needs no durability."""
    saved = os.fsync
    os.fsync = lambda fd: None
    try:
        yield
    finally:
        os.fsync = saved


def cli(root: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "nbversion"), *args], cwd=root, env=bench_env(), check=True,
                          capture_output=True, text=True)


def verified(root: Path) -> dict:
    """`nbversion verify` and `nbversion audit verify` on the generated workspace: "PASS" or the problem."""
    found = {}
    for verb in (["verify"], ["audit", "verify"]):
        proc = subprocess.run([str(BIN / "nbversion"), *verb], cwd=root, env=bench_env(), capture_output=True, text=True)
        found[" ".join(verb)] = "PASS" if proc.returncode == 0 else \
            f"FAIL ({(proc.stdout + proc.stderr).strip().splitlines()[-1][:120]})"
    return found


def _annotated(root: Path, commit: str, tag: str, version: str) -> str:
    body = (f"object {commit}\ntype commit\ntag {tag}\n"
            f"tagger bench <bench@example.com> 1767225600 +0000\n\nRegistering artifact detector version {version}\n")
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
    parser.add_argument("--audit", type=int, default=int(os.environ.get("BENCH_AUDIT", 1000)),
                        help="audit entries in the log (the registrations' own included)")
    parser.add_argument("--no-browser", action="store_true")
    parser.add_argument("--no-verify", action="store_true", help="skip `verify` / `audit verify` of the generated state")
    args = parser.parse_args(argv)
    rows = []
    with scratch("server") as tmp:
        root = ours_repo(tmp / "ws")
        write_runs(root, args.runs)
        git(root, "add", "runs")
        git(root, "commit", "-qm", f"{args.runs} runs")
        write_versions(root, max(args.versions, 1), tmp)
        entries = write_audit(root, args.audit)
        if not args.no_verify:
            for verb, verdict in verified(root).items():
                rows.append({"benchmark": f"`nbversion {verb}` of the generated workspace", "nbversion": verdict,
                             "baseline": "", "ratio": "", "goal": "PASS"})
        with lab_server(root, tmp) as url:
            _, progress = get(url, "runs/progress?cursor=0")
            for path in ENDPOINTS:
                seconds, code, data = time_endpoint(url, path.format(cursor=progress.get("cursor", 0)))
                shown = path.format(cursor="C")
                if code != 200:
                    label = f"GET {shown} (HTTP {code}: {data.get('error', {}).get('type')})"
                else:
                    items = next((data[k] for k in ("runs", "versions", "entries", "datasets", "models") if k in data),
                                 (data.get("view") or {}).get("rows", []))
                    total = f" of {data['total']}" if "total" in data else ""
                    label = f"GET {shown} ({len(items)}{total})"
                listing = path.split("?")[0] in LIST_ROUTES
                rows.append(row(label, seconds * 1000, None, "< 50 ms" if listing else "< 100 ms", unit="ms"))
            if not args.no_browser:
                paint = first_paint(url)
                if paint is not None:
                    rows.append(row("sidebar first paint (click to all sections drawn)", paint, None, "< 1 s"))
    print(f"generated: {args.runs} runs, {max(args.versions, 1)} versions, {entries} audit entries")
    return rows


if __name__ == "__main__":
    from ._util import machine
    from .report import print_rows
    print(machine())
    print_rows(main(sys.argv[1:]))
