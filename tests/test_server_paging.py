"""Paging, filters and `fields=` of the REST list routes, through a real Jupyter server.

State is made with the verbs (real trainings, registrations, promotions, commits). A listing
that keeps a derived index in `.nbversion/tmp` must show a new run, registration, promotion
or audit entry in the very next answer, whatever the index held.
"""
from __future__ import annotations

import inspect
import os
import time
from urllib.parse import parse_qsl

import pytest

# pytest-jupyter's fixtures first: test_server's jp_server_config (our extension on the test
# workspace) must win over pytest-jupyter's default of the same name
from pytest_jupyter.jupyter_core import *  # noqa: F401,F403
from pytest_jupyter.jupyter_server import *  # noqa: F401,F403
from test_server import _run_in_the_server_loop, api, assert_error, jp_server_config  # noqa: F401 (fixtures)
from trained import held_training, tiny_train, trained, trained_template   # noqa: F401 (fixtures)

from nbversion.core.registry.listing import RACY_SECONDS

LIST_ROUTES = ["runs", "registry", "audit", "log", "datasets", "models"]


async def every_page(api, route: str, params: dict) -> tuple[list, list]:
    """Follow `next` from the first page to the last: (each page's answer, the totals seen)."""
    pages, path, query = [], (route,), dict(params)
    while True:
        code, data = await api(*path, params=query)
        assert code == 200, data
        pages.append(data)
        if data["next"] is None:
            return pages, [p["total"] for p in pages]
        route_part, _, query_text = data["next"].partition("?")
        path, query = tuple(route_part.split("/")), dict(parse_qsl(query_text))


def register_versions(ws, tmp_path, *versions: str) -> None:
    for version in versions:
        weights = tmp_path / f"w-{version}.pt"
        weights.write_bytes(os.urandom(512))
        ws.register("detector", version=version, source=str(weights))


# --- runs ------------------------------------------------------------------------------------

async def test_runs_page_filter_and_project_over_real_runs(trained, api, tmp_path):
    ws, first = trained
    second = tiny_train(ws).run_id
    third = tiny_train(ws).run_id
    pages, totals = await every_page(api, "runs", {"limit": "2"})
    # pages count back from the newest run; each page lists its runs oldest first
    assert [[r["id"] for r in p["runs"]] for p in pages] == [[second, third], [first]]
    assert totals == [3, 3] and pages[0]["next_offset"] == 2 and pages[1]["next_offset"] is None
    code, data = await api("runs", params={"status": "done", "dataset": "demo", "fields": "id,status"})
    assert code == 200 and data["runs"] == [{"id": i, "status": "done"} for i in (first, second, third)], data
    code, data = await api("runs", params={"dataset": "elsewhere"})
    assert code == 200 and data["runs"] == [] and data["total"] == 0
    code, data = await api("runs", params={"status": "done", "limit": "1", "fields": "view"})
    assert code == 200 and [row[0] for row in data["view"]["rows"]] == [third]
    assert data["total"] == 3 and "1 of 3 runs" in data["view"]["summary"]


async def test_a_new_run_and_a_status_change_show_in_the_next_answer(trained, api):
    ws, first = trained
    time.sleep(RACY_SECONDS + 0.1)    # past the clock-tick window: the run index is kept and trusted
    code, data = await api("runs", params={"status": "running"})
    assert code == 200 and data["total"] == 0
    with held_training(ws, epochs=3) as live:
        code, data = await api("runs", params={"status": "running"})
        assert [r["id"] for r in data["runs"]] == [live.run_id], data
    code, data = await api("runs")
    assert [r["id"] for r in data["runs"]] == [first, live.run_id]
    assert data["runs"][-1]["status"] in ("stopped", "done"), data["runs"][-1]
    code, data = await api("runs", params={"status": "running"})
    assert data["total"] == 0, data


async def test_a_bad_run_status_is_400_naming_the_statuses(api, ws):
    code, data = await api("runs", params={"status": "finished"})
    assert_error(code, data, 400, "usage")
    assert "finished" in data["error"]["message"] and "done" in data["error"]["hint"]


# --- registry --------------------------------------------------------------------------------

async def test_registry_pages_and_filters_by_name_and_stage(api, ws, tmp_path):
    register_versions(ws, tmp_path, "1.0.0", "1.1.0", "1.2.0")
    ws.promote("detector@v1.1.0")
    pages, totals = await every_page(api, "registry", {"limit": "2"})
    assert [[v["version"] for v in p["versions"]] for p in pages] == [["v1.2.0", "v1.1.0"], ["v1.0.0"]]
    assert totals == [3, 3]
    assert pages[0]["next"] == "registry?limit=2&offset=2"
    code, data = await api("registry", params={"stage": "champion", "fields": "version,champion"})
    assert code == 200 and data["versions"] == [{"version": "v1.1.0", "champion": True}], data
    code, data = await api("registry", params={"name": "detector", "offset": "1", "limit": "1"})
    assert [v["version"] for v in data["versions"]] == ["v1.1.0"] and data["next_offset"] == 2
    code, data = await api("registry", params={"name": "segmenter"})
    assert_error(code, data, 404, "not_found")


async def test_a_registration_and_a_promotion_show_in_the_next_answer(api, ws, tmp_path):
    register_versions(ws, tmp_path, "1.0.0")
    time.sleep(RACY_SECONDS + 0.1)    # past the clock-tick window: the kept rows are trusted
    code, data = await api("registry")
    assert [v["version"] for v in data["versions"]] == ["v1.0.0"] and data["total"] == 1
    code, data = await api("registry")     # read from the kept rows
    assert [v["version"] for v in data["versions"]] == ["v1.0.0"]
    register_versions(ws, tmp_path, "1.1.0")
    code, data = await api("registry")
    assert [v["version"] for v in data["versions"]] == ["v1.1.0", "v1.0.0"] and data["total"] == 2
    ws.promote("detector@v1.1.0")
    code, data = await api("registry", params={"stage": "champion"})
    assert [v["version"] for v in data["versions"]] == ["v1.1.0"], data
    code, data = await api("registry", "promote", method="POST", body={"ref": "detector@v1.0.0"})
    assert code == 201, data
    code, data = await api("registry", params={"stage": "champion"})
    assert [v["version"] for v in data["versions"]] == ["v1.0.0"], data


async def test_tags_changed_with_plain_git_show_in_the_next_answer(api, ws, tmp_path):
    """A colleague's `git tag -d` or `git pack-refs` changes what the kept rows are keyed on."""
    from conftest import git

    register_versions(ws, tmp_path, "1.0.0", "1.1.0", "1.2.0")
    time.sleep(RACY_SECONDS + 0.1)
    code, data = await api("registry")
    assert data["total"] == 3
    git(ws.root, "pack-refs", "--all")         # every tag moves into packed-refs
    code, data = await api("registry")
    assert [v["version"] for v in data["versions"]] == ["v1.2.0", "v1.1.0", "v1.0.0"]
    time.sleep(RACY_SECONDS + 0.1)
    code, data = await api("registry")
    git(ws.root, "tag", "-d", "detector@v1.1.0")   # rewrites packed-refs only
    code, data = await api("registry")
    assert [v["version"] for v in data["versions"]] == ["v1.2.0", "v1.0.0"] and data["total"] == 2


async def test_a_run_folder_removed_by_hand_is_gone_from_the_next_answer(trained, api):
    import shutil

    ws, first = trained
    time.sleep(RACY_SECONDS + 0.1)    # past the clock-tick window: the run index is kept and trusted
    code, data = await api("runs")
    assert [r["id"] for r in data["runs"]] == [first]
    shutil.rmtree(ws.root / "runs" / first)
    code, data = await api("runs")
    assert code == 200 and data["runs"] == [] and data["total"] == 0, data


def test_the_cli_filters_and_pages_the_same_lists(ws, tmp_path):
    import json

    from conftest import cli

    register_versions(ws, tmp_path, "1.0.0", "1.1.0", "1.2.0")
    ws.promote("detector@v1.0.0")
    held = json.loads(cli("registry", "--stage", "champion", "--json").stdout)
    assert [v["version"] for v in held["versions"]] == ["v1.0.0"] and held["total"] == 1
    first = json.loads(cli("registry", "-n", "2", "--json").stdout)
    assert [v["version"] for v in first["versions"]] == ["v1.2.0", "v1.1.0"] and first["next_offset"] == 2
    assert "2 of 3 versions" in cli("registry", "-n", "2").stdout
    refused = cli("runs", "list", "--status", "finished")
    assert refused.returncode == 2 and "not a run status" in refused.stderr


# --- audit and log ---------------------------------------------------------------------------

async def test_audit_pages_back_from_the_newest_entry_and_shows_a_new_one_at_once(api, ws):
    for n in range(3):
        (ws.root / f"notes{n}.txt").write_text(f"{n}\n")
        ws.commit(f"notes {n}")
    pages, totals = await every_page(api, "audit", {"limit": "3"})
    assert [[e["action"] for e in p["entries"]] for p in pages] == [["commit"] * 3, ["init"]]
    assert totals == [4, 4] and [e["line"] for e in pages[1]["entries"]] == [1]
    code, data = await api("audit", params={"action": "commit", "limit": "2", "offset": "1"})
    assert [e["target"] for e in data["entries"]] == [e["target"] for e in pages[0]["entries"][:2]]
    assert data["total"] == 3 and data["next_offset"] is None
    code, data = await api("audit", params={"user": "nobody@example.com"})
    assert code == 200 and data["entries"] == [] and data["total"] == 0
    (ws.root / "late.txt").write_text("late\n")
    ws.commit("late")
    code, data = await api("audit", params={"limit": "1"})
    assert data["total"] == 5 and "late" in str(data["entries"][0]), data


async def test_audit_since_that_is_no_date_is_400(api, ws):
    code, data = await api("audit", params={"since": "yesterday-ish"})
    assert_error(code, data, 400, "usage")
    assert "yesterday-ish" in data["error"]["message"]


async def test_log_pages_with_limit_and_offset(api, ws):
    for n in range(2):
        (ws.root / f"notes{n}.txt").write_text(f"{n}\n")
        ws.commit(f"notes {n}")
    pages, totals = await every_page(api, "log", {"limit": "2"})
    messages = [[e["message"].splitlines()[0] for e in p["entries"]] for p in pages]
    assert messages[0] == ["notes 1", "notes 0"] and len(messages) == 2 and totals == [3, 3]
    code, data = await api("log", params={"n": "1"})     # the older name of limit
    assert code == 200 and len(data["entries"]) == 1 and data["next_offset"] == 1


# --- bad parameters --------------------------------------------------------------------------

@pytest.mark.parametrize("route", LIST_ROUTES)
@pytest.mark.parametrize("params, word", [({"limit": "0"}, "limit"), ({"limit": "100000"}, "limit"),
                                          ({"limit": "ten"}, "limit"), ({"offset": "-1"}, "offset"),
                                          ({"fields": "id;drop"}, "fields")])
async def test_a_bad_page_parameter_is_400_with_a_clear_message(api, ws, route, params, word):
    code, data = await api(route, params=params)
    assert_error(code, data, 400, "usage")
    assert word in data["error"]["message"], data


async def test_a_field_no_item_has_is_400_listing_the_fields(api, ws, tmp_path):
    register_versions(ws, tmp_path, "1.0.0")
    code, data = await api("registry", params={"fields": "version,colour"})
    assert_error(code, data, 400, "usage")
    assert "colour" in data["error"]["message"] and "registered_by" in data["error"]["hint"]


for _name, _test in list(globals().items()):
    if _name.startswith("test_") and inspect.iscoroutinefunction(_test):
        globals()[_name] = _run_in_the_server_loop(_test)
