"""The JupyterLab sidebar in a real browser: Debian's chromium driven by Playwright.

A real `jupyter lab` (127.0.0.1, token) serves a temp workspace holding a dataset, two
registered versions and a finished run; the test opens the sidebar, sees the datasets and
the champion, promotes the other version and sees the audit entry appear. Screenshots go
to test-artifacts/ (kept by CI).
"""
from __future__ import annotations

import importlib.util
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from conftest import REPO, cli, workspace_lock_held
from trained import held_training, trained, trained_template   # noqa: F401 (fixtures)

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


def installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        return False


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
    """demo dataset, a finished run, detector v1.0.0 (champion, from the run) and v1.1.0."""
    ws, run_id = trained
    ws.register("detector", version="1.0.0", source=run_id)
    weights = tmp_path / "detector.pt"
    shutil.copy(ws.root / "runs" / run_id / "weights" / "last.pt", weights)
    ws.register("detector", version="1.1.0", source=str(weights))
    ws.promote("detector@v1.0.0")
    return {"dataset": True, "registry": True, "run": run_id}


def start_lab(root: Path, tmp_path: Path, fake_core: bool = False, env_extra: dict | None = None):
    """`jupyter lab` on 127.0.0.1 with a token, our server extension and the built sidebar.

    Returns (process, url). With `fake_core`, tests/sidebar_fake_core.py stands in for the
    datasets, registry, audit and runs modules inside the server process.
    """
    config = tmp_path / "jupyter-config"
    (config / "labconfig").mkdir(parents=True)
    lines = ["c.ServerApp.jpserver_extensions = {'nbversion.server': True}"]
    if fake_core:
        lines += ["import sys", f"sys.path.insert(0, {str(Path(__file__).parent)!r})",
                  "import sidebar_fake_core", "sidebar_fake_core.install()"]
    (config / "jupyter_server_config.py").write_text("\n".join(lines) + "\n")
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
def lab(ws, populated, tmp_path):
    proc, url = start_lab(ws.root, tmp_path)
    yield {"url": url, "parts": {k: v for k, v in populated.items() if k != "run"}, "run": populated["run"],
           "root": ws.root}
    stop_lab(proc)


@pytest.fixture
def fake_lab(trained, tmp_path, request):
    """The sidebar over the fake core: a done run and a running one (held after epoch 1 of 5)."""
    ws, run_id = trained
    versions = getattr(request, "param", 2)
    with held_training(ws, epochs=5) as live:
        proc, url = start_lab(ws.root, tmp_path, fake_core=True, env_extra={"NBV_FAKE_VERSIONS": str(versions)})
        yield {"url": url, "root": ws.root, "done": run_id, "live": live}
        stop_lab(proc)


@pytest.fixture
def viewer_lab(trained, tmp_path):
    """The sidebar of a viewer (a role in users.toml), over the fake core with a running run."""
    ws, _ = trained
    ws.user_add("guest@example.com", "viewer")
    (ws.root / "notes.txt").write_text("uncommitted\n")
    with held_training(ws, epochs=3):
        proc, url = start_lab(ws.root, tmp_path, fake_core=True, env_extra={"NBVERSION_USER": "guest@example.com"})
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
    """A chromium page on the lab of the test (`lab` or `fake_lab`)."""
    name = next((n for n in ("fake_lab", "bare_lab", "viewer_lab") if n in request.fixturenames), "lab")
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
    assert identity.inner_text() == "tester@example.com · admin"
    assert "nothing changed" in section(page, "status").inner_text()
    shot(page, "light")

    runs = section(page, "runs")
    if installed("nbversion.training.runs"):
        assert lab["run"] in runs.inner_text()
    else:
        assert "not available" in runs.inner_text()
    if lab["parts"]["dataset"] is True:
        assert "demo" in section(page, "datasets").inner_text()
    if lab["parts"]["registry"] is True:
        champion = section(page, "registry").locator("tr.nbv-mod-highlight")
        assert champion.count() >= 1 and "1.0.0" in champion.first.inner_text()
    page.evaluate("window.jupyterapp.commands.execute('apputils:change-theme', {theme: 'JupyterLab Dark'})")
    page.wait_for_function("() => document.body.dataset.jpThemeLight === 'false'")
    page.wait_for_timeout(500)
    shot(page, "dark")
    missing = [f"{part} ({built})" for part, built in lab["parts"].items() if built is not True]
    if missing:
        pytest.skip(f"checked what exists; not built: {'; '.join(missing)}")


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


def test_sidebar_promotes_and_the_audit_entry_appears(page, lab):
    if lab["parts"]["registry"] is not True:
        pytest.skip(f"no registered versions: {lab['parts']['registry']}")
    open_sidebar(page)
    registry = section(page, "registry")
    row = registry.locator("tr", has_text="v1.1.0")
    row.get_by_role("button", name="Promote").click()
    dialog = page.locator(".jp-Dialog")
    shot(page, "promote-dialog")
    dialog.get_by_role("button", name="Promote").click()
    page.wait_for_function(
        "() => { const r = document.querySelector('#nbversion-sidebar .nbv-Section-registry tr.nbv-mod-highlight');"
        " return r && /1\\.1\\.0/.test(r.textContent); }")
    audit = section(page, "audit")
    page.wait_for_function(   # the audit section reloads right after the registry
        "() => { const r = document.querySelector('#nbversion-sidebar .nbv-Section-audit tbody tr');"
        " return r && r.textContent.includes('promote') && r.textContent.includes('1.1.0'); }")
    shot(page, "after-promote")
    audit.get_by_role("button", name="Verify").click()
    page.wait_for_selector("#nbversion-sidebar .nbv-Section-audit .nbv-Details.nbv-mod-ok")
    shot(page, "audit-verified")


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


# --- every UI path, over the fake core -------------------------------------------------------

def test_fake_core_datasets_show_and_diff(page, fake_lab):
    open_sidebar(page)
    datasets = section(page, "datasets")
    assert "circle, square" in datasets.inner_text()
    datasets.locator("tr", has_text="shapes").get_by_role("button", name="Show").click()
    page.wait_for_selector("#nbversion-sidebar .nbv-Section-datasets .nbv-Details >> text=16 train, 8 val")
    inputs = datasets.locator(".nbv-Diff input")
    assert [inputs.nth(i).input_value() for i in range(3)] == ["shapes", "~1", "latest"]
    inputs.nth(1).fill("~2")
    datasets.get_by_role("button", name="Diff").click()
    page.wait_for_selector("#nbversion-sidebar .nbv-Section-datasets .nbv-Details >> text=images/train/017.png")
    assert "~2 → latest" in datasets.locator(".nbv-Details").inner_text()


def test_fake_core_live_progress_and_stop(page, fake_lab):
    live, done = fake_lab["live"], fake_lab["done"]
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


def test_fake_core_champion_promote_gates_audit_verify(page, fake_lab):
    open_sidebar(page)
    registry = section(page, "registry")
    assert "v1.0.0" in registry.locator("tr.nbv-mod-highlight").inner_text()
    registry.locator("tr", has_text="v1.1.0").get_by_role("button", name="Promote").click()
    page.locator(".jp-Dialog").get_by_role("button", name="Promote").click()
    page.wait_for_function(
        "() => /v1\\.1\\.0/.test(document.querySelector("
        "'#nbversion-sidebar .nbv-Section-registry tr.nbv-mod-highlight').textContent)")
    # the gate results stay under the table once the promotion has answered
    page.wait_for_selector("#nbversion-sidebar .nbv-Section-registry .nbv-Details >> text=>= 0.30")
    assert "mAP50-95" in registry.locator(".nbv-Details").inner_text()
    audit = section(page, "audit")
    newest = audit.locator("tbody tr").first
    assert "promote" in newest.inner_text() and "detector@v1.1.0" in newest.inner_text()
    log = subprocess.run(["git", "log", "-1", "--format=%s"], cwd=fake_lab["root"], capture_output=True, text=True)
    assert "promote detector@v1.1.0" in log.stdout
    audit.get_by_role("button", name="Verify").click()
    page.wait_for_selector("#nbversion-sidebar .nbv-Section-audit .nbv-Details.nbv-mod-ok >> text=audit chain intact")
    shot(page, "fake-core-light")
    page.evaluate("window.jupyterapp.commands.execute('apputils:change-theme', {theme: 'JupyterLab Dark'})")
    page.wait_for_function("() => document.body.dataset.jpThemeLight === 'false'")
    page.wait_for_timeout(500)
    shot(page, "fake-core-dark")


def test_sidebar_outside_a_workspace_says_how_to_make_one(page, bare_lab):
    open_sidebar(page)
    status = section(page, "status").inner_text()
    assert "is not inside an nbversion workspace" in status and "nbversion init" in status
    assert page.locator(".Toastify__toast").count() == 0       # said in place, not six toasts
    shot(page, "no-workspace")


@pytest.mark.parametrize("fake_lab", [45], indirect=True)
def test_fake_core_a_long_registry_draws_30_rows_and_the_champion(page, fake_lab):
    open_sidebar(page)
    registry = section(page, "registry")
    rows = registry.locator("tbody tr")
    assert rows.count() == 31                                  # 30 newest + the champion (v1.0.0)
    assert "v1.44.0" in rows.first.inner_text()
    assert "v1.0.0" in registry.locator("tr.nbv-mod-highlight").inner_text()
    registry.get_by_role("button", name="Show all 45").click()
    page.wait_for_function("() => document.querySelectorAll("
                           "'#nbversion-sidebar .nbv-Section-registry tbody tr').length === 45")


def test_a_viewer_sees_the_workspace_but_cannot_act(page, viewer_lab):
    open_sidebar(page)
    assert page.locator("#nbversion-sidebar .nbv-Identity").inner_text() == "guest@example.com · viewer"
    status = section(page, "status")
    assert "notes.txt" in status.inner_text()                       # there is something to commit...
    assert status.get_by_role("button", name="Commit").is_disabled()  # ...but not for a viewer
    promote = section(page, "registry").get_by_role("button", name="Promote")
    assert promote.count() == 2 and all(promote.nth(i).is_disabled() for i in range(2))
    assert section(page, "runs").get_by_role("button", name="Stop").count() == 0
    shot(page, "viewer")
