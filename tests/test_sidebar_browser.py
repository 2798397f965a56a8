"""The JupyterLab sidebar in a real browser: Debian's chromium driven by Playwright.

A real `jupyter lab` (127.0.0.1, token) serves a temp workspace holding a dataset, two
registered versions and a finished run, all made with the public verbs on the real core;
the test opens the sidebar, sees the datasets and the champion, promotes the other version
past a gate and sees the audit entry appear. Screenshots go to test-artifacts/ (kept by CI).
"""
from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from conftest import REPO, cli, workspace_lock_held
from trained import held_training, tiny_train, trained, trained_template   # noqa: F401 (fixtures)

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
BUILT = REPO / "nbversion" / "labextension"
ARTIFACTS = REPO / "test-artifacts"
TOKEN = "nbversion-browser-test"

pytestmark = [
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Debian's chromium: apt-get install chromium"),
    pytest.mark.skipif(importlib.util.find_spec("playwright") is None, reason="needs playwright (pip)"),
    pytest.mark.skipif(not (BUILT / "package.json").exists(),
                       reason="the sidebar is not built: cd labextension && npm ci && npm run build"),
]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- the workspace: a dataset, a finished run, two registered versions, a champion -------
# All built with the verbs: `dataset add` + a real training (once per module, copied per test),
# `register` from the run and from its weights, `promote`; a running run is a real training in
# this process, held between epochs (tests/trained.py).


@pytest.fixture
def populated(trained, tmp_path):
    """demo dataset, a finished run, detector v1.0.0 (champion, from its weights file) and
    v1.1.0 (from the run, so with its metrics for the champion gate)."""
    ws, run_id = trained
    weights = tmp_path / "detector.pt"
    shutil.copy(ws.root / "runs" / run_id / "weights" / "last.pt", weights)
    ws.register("detector", version="1.0.0", source=str(weights))
    ws.register("detector", version="1.1.0", source=run_id)
    ws.promote("detector@v1.0.0")
    return ws, run_id


def start_lab(root: Path, tmp_path: Path, env_extra: dict | None = None):
    """`jupyter lab` on 127.0.0.1 with a token, our server extension and the built sidebar.

    Returns (process, url).
    """
    config = tmp_path / "jupyter-config"
    (config / "labconfig").mkdir(parents=True)
    (config / "jupyter_server_config.py").write_text("c.ServerApp.jpserver_extensions = {'nbversion.server': True}\n")
    # no "news" toast over the sidebar in screenshots
    (config / "labconfig" / "page_config.json").write_text(json.dumps(
        {"disabledExtensions": {"@jupyterlab/apputils-extension:announcements": True}}))
    extensions = tmp_path / "labextensions"
    extensions.mkdir()
    (extensions / "nbversion-labextension").symlink_to(BUILT)
    port = free_port()
    env = {**os.environ, "JUPYTER_CONFIG_DIR": str(config), "JUPYTER_DATA_DIR": str(tmp_path / "jupyter-data"),
           **(env_extra or {})}
    log_path = tmp_path / "lab.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
             f"--IdentityProvider.token={TOKEN}", f"--ServerApp.root_dir={root}",
             f"--LabApp.extra_labextensions_path={extensions}", "--expose-app-in-browser", "--allow-root"],
            env=env, stdout=log, stderr=subprocess.STDOUT, cwd=root)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_server(url, proc, log_path)
    except BaseException:
        stop_lab(proc)
        raise
    return proc, url


def stop_lab(proc) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@pytest.fixture
def lab(populated, tmp_path):
    ws, run_id = populated
    proc, url = start_lab(ws.root, tmp_path)
    yield {"url": url, "run": run_id, "root": ws.root, "ws": ws}
    stop_lab(proc)


@pytest.fixture
def live_lab(trained, tmp_path):
    """A done run and a running one (a real training held after epoch 1 of 5)."""
    ws, run_id = trained
    with held_training(ws, epochs=5) as live:
        proc, url = start_lab(ws.root, tmp_path)
        yield {"url": url, "root": ws.root, "done": run_id, "live": live}
        stop_lab(proc)


@pytest.fixture
def queue_lab(trained, tmp_path):
    """A running run (a real training held after epoch 1) and a second one queued behind it on the
    cpu: `train` in the same process, while the device is busy, queues it."""
    ws, _ = trained
    with held_training(ws, epochs=3) as live:
        queued = tiny_train(ws, epochs=1, wait=False, name="queued")   # an id no other run's contains
        assert queued.status == "queued", queued.summary()
        proc, url = start_lab(ws.root, tmp_path)
        yield {"url": url, "root": ws.root, "ws": ws, "live": live, "queued": queued.run_id}
        stop_lab(proc)


@pytest.fixture
def compare_lab(trained, tmp_path):
    """The finished 1-epoch run and a second one of 2 epochs, both in the Runs section."""
    ws, run_id = trained
    second = tiny_train(ws, epochs=2)
    assert second.record["status"] == "done", second.record
    proc, url = start_lab(ws.root, tmp_path)
    yield {"url": url, "root": ws.root, "runs": [run_id, second.run_id]}
    stop_lab(proc)


LONG_REGISTRY = 32     # more than the 30 rows the sidebar draws before "Show all"


def registry_lab(ws, tmp_path, count: int):
    """detector v1.0.0 (champion) .. v1.<count-1>.0, registered from weight files."""
    weights = tmp_path / "detector.pt"
    for minor in range(count):
        weights.write_bytes(os.urandom(256))
        ws.register("detector", version=f"1.{minor}.0", source=str(weights))
    ws.promote("detector@v1.0.0")
    proc, url = start_lab(ws.root, tmp_path)
    yield {"url": url, "root": ws.root}
    stop_lab(proc)


@pytest.fixture
def long_registry_lab(ws, tmp_path):
    yield from registry_lab(ws, tmp_path, LONG_REGISTRY)


PAGED_REGISTRY = 103   # more than the 100 versions of the server's first page


@pytest.fixture
def paged_registry_lab(ws, tmp_path):
    """Two pages of the registry route, the champion on the second."""
    yield from registry_lab(ws, tmp_path, PAGED_REGISTRY)


@pytest.fixture
def viewer_lab(populated, tmp_path):
    """The sidebar of a viewer (a role in users.toml), with a running run."""
    ws, _ = populated
    ws.user_add("guest@example.com", "viewer")
    (ws.root / "notes.txt").write_text("uncommitted\n")
    with held_training(ws, epochs=3):
        proc, url = start_lab(ws.root, tmp_path, env_extra={"NBVERSION_USER": "guest@example.com"})
        yield {"url": url, "root": ws.root}
        stop_lab(proc)


@pytest.fixture
def bare_lab(tmp_path):
    """JupyterLab started in a folder that is not a workspace."""
    folder = tmp_path / "just-a-folder"
    folder.mkdir()
    proc, url = start_lab(folder, tmp_path)
    yield {"url": url, "root": folder}
    stop_lab(proc)


def wait_for_server(url: str, proc, log: Path, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail("jupyter lab exited:\n" + log.read_text()[-3000:])
        try:
            with urllib.request.urlopen(f"{url}/api/status?token={TOKEN}", timeout=2) as answer:
                if answer.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    pytest.fail("jupyter lab did not answer in time:\n" + log.read_text()[-3000:])


@pytest.fixture
def page(request):
    """A chromium page on the lab of the test (`lab`, `live_lab`, ...)."""
    name = next((n for n in ("live_lab", "queue_lab", "compare_lab", "long_registry_lab", "paged_registry_lab", "bare_lab", "viewer_lab")
                 if n in request.fixturenames), "lab")
    lab = request.getfixturevalue(name)
    os.environ.setdefault("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        page = context.new_page()
        page.set_default_timeout(30_000)
        page.goto(f"{lab['url']}/lab?token={TOKEN}")
        page.wait_for_selector("#jp-main-dock-panel", state="attached", timeout=90_000)
        yield page
        context.close()
        browser.close()


def open_sidebar(page) -> float:
    """Click the nbversion tab; seconds until every section has painted its data."""
    tab = page.locator('li.lm-TabBar-tab[data-id="nbversion-sidebar"]')
    tab.wait_for(timeout=60_000)
    started = time.monotonic()
    tab.click()
    page.wait_for_function(
        "() => { const s = document.querySelectorAll('#nbversion-sidebar .nbv-Section');"
        " return s.length === 5 && [...s].every(x => !x.textContent.includes('loading…')); }")
    return time.monotonic() - started


def section(page, name: str):
    return page.locator(f"#nbversion-sidebar .nbv-Section-{name}")


def shot(page, name: str) -> Path:
    path = ARTIFACTS / f"sidebar-{name}.png"
    page.screenshot(path=str(path))
    return path


# --- the tests ---------------------------------------------------------------------------

def test_sidebar_shows_status_datasets_runs_and_champion(page, lab):
    first_paint = open_sidebar(page)
    (ARTIFACTS / "sidebar-first-paint.txt").write_text(f"{first_paint:.3f}\n")
    assert first_paint < 10, first_paint
    identity = page.locator("#nbversion-sidebar .nbv-Identity")
    # roles are checked, not proven by keys, until signed mode: the header says so
    assert identity.inner_text() == "tester@example.com · admin · roles advisory (unsigned)"
    assert "nothing changed" in section(page, "status").inner_text()
    shot(page, "light")

    assert lab["run"] in section(page, "runs").inner_text()
    assert "demo" in section(page, "datasets").inner_text()
    champion = section(page, "registry").locator("tr.nbv-mod-highlight")
    assert champion.count() == 1 and "v1.0.0" in champion.inner_text()
    page.evaluate("window.jupyterapp.commands.execute('apputils:change-theme', {theme: 'JupyterLab Dark'})")
    page.wait_for_function("() => document.body.dataset.jpThemeLight === 'false'")
    page.wait_for_timeout(500)
    shot(page, "dark")


def test_sidebar_commit_from_the_status_section(page, lab):
    (lab["root"] / "notes.txt").write_text("written in the browser test\n")
    open_sidebar(page)
    status = section(page, "status")
    assert "notes.txt" in status.inner_text()
    status.locator("input.nbv-Input").fill("notes from the sidebar")
    status.get_by_role("button", name="Commit").click()
    page.wait_for_function("() => document.querySelector('#nbversion-sidebar .nbv-Section-status')"
                           ".textContent.includes('nothing changed')")
    log = subprocess.run(["git", "log", "-1", "--format=%s"], cwd=lab["root"], capture_output=True, text=True)
    assert "notes from the sidebar" in log.stdout
    shot(page, "after-commit")


def test_sidebar_follows_a_commit_made_in_a_terminal(page, lab):
    open_sidebar(page)
    newest = "() => document.querySelector('#nbversion-sidebar .nbv-Section-audit tbody tr').textContent"
    before = page.evaluate(newest)
    (lab["root"] / "notes.txt").write_text("from a terminal\n")
    cli("commit", "-m", "from a terminal", cwd=lab["root"], check=0)
    # no click: the long poll sees the new audit line and the sidebar reloads that section
    page.wait_for_function(
        "before => { const r = document.querySelector('#nbversion-sidebar .nbv-Section-audit tbody tr');"
        " return r && r.textContent !== before && r.textContent.includes('commit'); }",
        arg=before, timeout=10_000)
    assert "nothing changed" in section(page, "status").inner_text()
    shot(page, "followed-terminal-commit")


CHAMPION_GATE = """[stages.champion]
role = "admin"
gates = ["metrics.mAP50-95 >= 0"]
"""


def test_sidebar_promotes_past_a_gate_and_the_audit_entry_appears(page, lab):
    (lab["root"] / ".nbversion" / "rules.toml").write_text(CHAMPION_GATE)   # the admin's rules, committed
    lab["ws"].commit("champion gate")
    open_sidebar(page)
    registry = section(page, "registry")
    assert "v1.0.0" in registry.locator("tr.nbv-mod-highlight").inner_text()
    registry.locator("tr", has_text="v1.1.0").get_by_role("button", name="Promote").click()
    shot(page, "promote-dialog")
    page.locator(".jp-Dialog").get_by_role("button", name="Promote").click()
    page.wait_for_function(
        "() => { const r = document.querySelector('#nbversion-sidebar .nbv-Section-registry tr.nbv-mod-highlight');"
        " return r && /v1\\.1\\.0/.test(r.textContent); }")
    # the gate results stay under the table once the promotion has answered
    page.wait_for_selector("#nbversion-sidebar .nbv-Section-registry .nbv-Details >> text=mAP50-95")
    assert "pass" in registry.locator(".nbv-Details").inner_text()
    audit = section(page, "audit")
    page.wait_for_function(   # the audit section reloads right after the registry
        "() => { const r = document.querySelector('#nbversion-sidebar .nbv-Section-audit tbody tr');"
        " return r && r.textContent.includes('promote') && r.textContent.includes('detector@v1.1.0'); }")
    log = subprocess.run(["git", "log", "-1", "--format=%s"], cwd=lab["root"], capture_output=True, text=True)
    assert "detector@v1.1.0" in log.stdout and "champion" in log.stdout
    shot(page, "after-promote")
    audit.get_by_role("button", name="Verify").click()
    page.wait_for_selector("#nbversion-sidebar .nbv-Section-audit .nbv-Details.nbv-mod-ok")
    shot(page, "audit-verified")
    page.evaluate("window.jupyterapp.commands.execute('apputils:change-theme', {theme: 'JupyterLab Dark'})")
    page.wait_for_function("() => document.body.dataset.jpThemeLight === 'false'")
    page.wait_for_timeout(500)
    shot(page, "audit-verified-dark")


def toast(page, text: str):
    """The JupyterLab notification holding `text` (react-toastify under the hood)."""
    page.wait_for_function(
        "t => [...document.querySelectorAll('.Toastify__toast')].some(n => n.textContent.includes(t))", arg=text)
    return page.locator(".Toastify__toast", has_text=text).first


def test_sidebar_error_is_a_notification_with_the_hint(page, lab):
    (lab["root"] / "notes.txt").write_text("hello\n")
    open_sidebar(page)
    with workspace_lock_held(lab["root"], "commit (another kernel)", seconds=60):
        status = section(page, "status")
        status.locator("input.nbv-Input").fill("blocked")
        status.get_by_role("button", name="Commit").click()
        note = toast(page, "the workspace is busy")
        assert "another kernel" in note.inner_text()
        assert "wait for it to finish" in note.inner_text()       # the hint
        page.wait_for_timeout(800)                                 # the toast has slid in
        shot(page, "error-notification")
    assert "notes.txt" in section(page, "status").inner_text()   # nothing was committed
    assert section(page, "status").locator("input.nbv-Input").input_value() == "blocked"   # nor lost


# --- datasets, live runs -------------------------------------------------------------------

def test_sidebar_shows_and_diffs_dataset_versions(page, lab, tmp_path):
    from nbversion.demo import edit_labels, make_dataset

    source = make_dataset(tmp_path / "demo-v2")           # the same bytes as version 1...
    relabelled = edit_labels(source, count=1)[0]          # ...but one box moved
    lab["ws"].dataset_add("demo", source)
    open_sidebar(page)
    datasets = section(page, "datasets")
    row = datasets.locator("tr", has_text="demo")
    row.get_by_role("button", name="Show").click()
    page.wait_for_selector("#nbversion-sidebar .nbv-Section-datasets .nbv-Details >> text=demo@latest")
    assert "train 16 images" in datasets.locator(".nbv-Details").inner_text()
    inputs = datasets.locator(".nbv-Diff input")
    assert [inputs.nth(i).input_value() for i in range(3)] == ["demo", "~1", "latest"]
    datasets.get_by_role("button", name="Diff").click()
    page.wait_for_selector(f"#nbversion-sidebar .nbv-Section-datasets .nbv-Details >> text={relabelled.name}")
    details = datasets.locator(".nbv-Details").inner_text()
    assert "label changed" in details and "~1 → latest" in details
    shot(page, "dataset-diff")


def test_sidebar_live_progress_and_stop(page, live_lab):
    live, done = live_lab["live"], live_lab["done"]
    open_sidebar(page)
    runs = section(page, "runs")
    bar = runs.locator(".nbv-LiveRun")
    assert f"{live.run_id}: epoch 1/5" in bar.inner_text()
    assert done not in bar.inner_text()                              # a finished run has no bar
    # the trainer finishes epoch 2: the long poll brings it without any click
    live.release()
    assert live.wait_held() == 2
    expected = f"epoch 2/5 · mAP {live.record()['epochs'][-1]['mAP50-95']:.3f}"
    page.wait_for_function("t => document.querySelector('#nbversion-sidebar .nbv-LiveRun')"
                           ".textContent.includes(t)", arg=expected, timeout=10_000)
    assert runs.locator("progress").get_attribute("max") == "5"
    shot(page, "live-progress")
    finished = runs.locator("tr", has_text=done)
    assert finished.get_by_role("button", name="Stop").count() == 0
    runs.locator("tr", has_text=live.run_id).get_by_role("button", name="Stop").click()
    assert f"{live.run_id}: running" in toast(page, "stop requested: process").inner_text()
    live.release()                                # the trainer polls the stop file the server left
    live.run.wait(timeout=300)
    assert live.record()["status"] == "stopped" and len(live.record()["epochs"]) < 5
    page.wait_for_function("id => ![...document.querySelectorAll('#nbversion-sidebar .nbv-LiveRun')]"
                           ".some(n => n.textContent.includes(id))", arg=live.run_id, timeout=15_000)


def test_sidebar_cancels_a_queued_run_and_the_audit_says_so(page, queue_lab):
    queued, live = queue_lab["queued"], queue_lab["live"].run_id
    open_sidebar(page)
    runs = section(page, "runs")
    row = runs.locator("tr", has_text=queued)
    assert "queued (1)" in row.inner_text()                          # its place in the cpu's queue
    assert runs.locator("tr", has_text=live).get_by_role("button", name="Cancel").count() == 0
    shot(page, "queued-run")
    row.get_by_role("button", name="Cancel").click()
    page.wait_for_function(
        "id => [...document.querySelectorAll('#nbversion-sidebar .nbv-Section-runs tbody tr')]"
        ".some(r => r.textContent.includes(id) && r.textContent.includes('cancelled'))", arg=queued)
    assert row.get_by_role("button", name="Cancel").count() == 0      # nothing left to cancel
    assert queue_lab["ws"].runs_show(queued).record["status"] == "cancelled"
    assert [e["target"] for e in queue_lab["ws"].audit(action="runs cancel").to_dict()["entries"]] == [queued]
    page.wait_for_function(   # the audit section follows the new line
        "id => [...document.querySelectorAll('#nbversion-sidebar .nbv-Section-audit tbody tr')]"
        ".some(r => r.textContent.includes('runs cancel') && r.textContent.includes(id))", arg=queued, timeout=10_000)
    assert "running" in runs.locator("tr", has_text=live).inner_text()   # the run it waited for goes on
    shot(page, "queued-run-cancelled")


def test_sidebar_outside_a_workspace_says_how_to_make_one(page, bare_lab):
    open_sidebar(page)
    status = section(page, "status").inner_text()
    assert "is not inside an nbversion workspace" in status and "nbversion init" in status
    assert page.locator(".Toastify__toast").count() == 0       # said in place, not six toasts
    shot(page, "no-workspace")


def test_a_long_registry_draws_30_rows_and_the_champion(page, long_registry_lab):
    open_sidebar(page)
    registry = section(page, "registry")
    rows = registry.locator("tbody tr")
    assert rows.count() == 31                                  # 30 newest + the champion (v1.0.0)
    assert f"v1.{LONG_REGISTRY - 1}.0" in rows.first.inner_text()
    assert "v1.0.0" in registry.locator("tr.nbv-mod-highlight").inner_text()
    registry.get_by_role("button", name=f"Show all {LONG_REGISTRY}").click()
    page.wait_for_function("n => document.querySelectorAll("
                           "'#nbversion-sidebar .nbv-Section-registry tbody tr').length === n", arg=LONG_REGISTRY)


def test_a_registry_longer_than_a_page_loads_the_next_page_on_demand(page, paged_registry_lab):
    open_sidebar(page)
    registry = section(page, "registry")
    assert "100 of 103 versions" in registry.inner_text()       # the server sent its first page
    assert "v1.0.0" in registry.locator("tr.nbv-mod-highlight").inner_text()   # the champion, pinned
    registry.get_by_role("button", name="Show all 101").click()
    registry.get_by_role("button", name=f"Show {PAGED_REGISTRY - 100} more of {PAGED_REGISTRY}").click()
    page.wait_for_function("n => document.querySelectorAll("
                           "'#nbversion-sidebar .nbv-Section-registry tbody tr').length === n", arg=PAGED_REGISTRY)
    rows = registry.locator("tbody tr")                        # the champion once, in its place
    assert "v1.102.0" in rows.first.inner_text() and "v1.0.0" in rows.last.inner_text()
    assert "v1.0.0" in registry.locator("tr.nbv-mod-highlight").inner_text()
    assert registry.get_by_role("button", name=re.compile("more of")).count() == 0   # the last page
    assert f"{PAGED_REGISTRY} of {PAGED_REGISTRY}" in registry.inner_text()


def test_a_viewer_sees_the_workspace_but_cannot_act(page, viewer_lab):
    open_sidebar(page)
    identity = page.locator("#nbversion-sidebar .nbv-Identity").inner_text()
    assert identity == "guest@example.com · viewer · roles advisory (unsigned)"
    status = section(page, "status")
    assert "notes.txt" in status.inner_text()                       # there is something to commit...
    assert status.get_by_role("button", name="Commit").is_disabled()  # ...but not for a viewer
    promote = section(page, "registry").get_by_role("button", name="Promote")
    assert promote.count() == 2 and all(promote.nth(i).is_disabled() for i in range(2))
    assert section(page, "runs").get_by_role("button", name="Stop").count() == 0
    shot(page, "viewer")


def test_sidebar_compares_two_ticked_runs(page, compare_lab):
    open_sidebar(page)
    runs = section(page, "runs")
    compare = runs.locator("button", has_text="Compare")
    assert compare.is_disabled()                   # nothing ticked yet
    for run_id in compare_lab["runs"]:
        runs.locator("tr", has_text=run_id).locator("input.nbv-Pick").check()
    compare.click()
    lines = page.locator("#nbversion-compare svg polyline.nbv-CompareLine")   # a tab of the main area
    lines.first.wait_for(state="attached")   # a 1-epoch curve is one point: drawn as a dot beside it
    assert lines.count() == 2                      # one curve per run
    shown = page.locator("#nbversion-compare").inner_text()
    assert all(run_id in shown for run_id in compare_lab["runs"]) and "epochs" in shown, shown
    shot(page, "compare")
    page.locator("#nbversion-compare select").select_option("box_loss")
    # redrawn for the chosen metric: its best epochs in the table, still one curve per run
    page.wait_for_function("() => document.querySelector('#nbversion-compare').textContent"
                           ".includes('best epoch (box_loss)')")
    assert lines.count() == 2
