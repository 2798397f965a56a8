"""Hostile input to every REST route (nbversion/server/routes.py), through a real Jupyter server.

Each route gets hostile path names, query parameters and JSON bodies: the answer is always a
JSON object, a 4xx error with type/message/hint (or a 2xx where the input is legitimate), never
a 500 or a traceback, and the workspace (git, tags, audit log, DVC cache) is unchanged.
"""
from __future__ import annotations

import json
import os
import time

import pytest

from conftest import git, snapshot
from pytest_jupyter.jupyter_core import *  # noqa: F401,F403
from pytest_jupyter.jupyter_server import *  # noqa: F401,F403
from test_server import _run_in_the_server_loop, api, jp_server_config  # noqa: F401

from nbversion.server.routes import ROUTES

NUL = "\x00"
# values no route should choke on: empty, blank, path tricks, NUL, huge, odd numbers, shell and git syntax
HOSTILE = ["", " ", "..", "../../etc/passwd", "/etc/passwd", NUL, f"a{NUL}b", "x" * 5000, "-1", "0",
           "1e999", "nan", "inf", "9" * 40, "abc", "ü ☃", "$(touch pwned)", "--all", "HEAD~99999", "@{-1}",
           "name@", "@", "@@v1", "~1", "a..b", "x.lock", "\n", "%", "{}", "[]"]
# names in the URL path (`[^/]+`): the same, minus what cannot be a path segment
HOSTILE_NAMES = [v for v in HOSTILE if v and "/" not in v and v.strip()]
GOOD = {"name": "shapes", "rev": "", "a": "latest", "b": "latest"}

# route -> (method, path parameter values, query parameters to vary)
PLAN = {
    "status": ("GET", None, ["fields"]),
    "commit": ("POST", None, []),
    "log": ("GET", None, ["n"]),
    "datasets": ("GET", None, []),
    "datasets/{name}": ("GET", "shapes", ["rev"]),
    "datasets/{name}/diff": ("GET", "shapes", ["a", "b"]),
    "models": ("GET", None, []),
    "models/{name}": ("GET", "det", ["rev"]),
    "runs": ("GET", None, ["fields"]),
    "runs/progress": ("GET", None, ["cursor", "wait"]),
    "runs/compare": ("GET", None, ["runs", "metric"]),
    "runs/{name}": ("GET", "no-such-run", []),
    "runs/{name}/stop": ("POST", "no-such-run", []),
    "runs/{name}/cancel": ("POST", "no-such-run", []),
    "registry": ("GET", None, ["name"]),
    "registry/promote": ("POST", None, []),
    "audit": ("GET", None, ["user", "action", "since", "limit"]),
    "audit/verify": ("GET", None, []),
    "whoami": ("GET", None, []),
}

COMMIT_BODIES = ["", "null", "[]", "1", '"message"', "{", '{"message": null}', '{"message": 5}',
                 '{"message": ["a"]}', '{"message": {}}', '{"message": "   "}', json.dumps({"message": NUL}),
                 json.dumps({"message": f"a{NUL}b"}),
                 *[json.dumps({"message": "hostile", "paths": paths}) for paths in (
                     "notes.txt", 5, {"a": 1}, [1], [None], [{"a": 1}], ["/etc/passwd"], ["../outside"],
                     [NUL], [f"notes{NUL}.txt"], ["does-not-exist"], [".git/config"], ["x" * 5000],
                     [".nbversion/tmp/lock"])]]
PROMOTE_BODIES = ["", "null", "[]", '{"ref": 5}', '{"ref": ["det@v1.1.0"]}', '{"ref": null}',
                  *[json.dumps({"ref": ref}) for ref in ("det", "det@", "@v1.1.0", "det@v9.9.9", "det@v1.1.0.0",
                                                       "ghost@v1.0.0", f"det@v1.1.0{NUL}", "x" * 5000,
                                                       "det@v1.0.0", "../det@v1.1.0", "det@~99", "det@latest~1")],
                  *[json.dumps({"ref": "det@v1.1.0", "stage": stage}) for stage in (
                      5, ["champion"], {"a": 1}, True, "..", "a..b", "x" * 300, NUL, "champion\n", "-f", "a b",
                      "x.lock")]]


@pytest.fixture
def hostile_ws(ws, demo_data, tmp_path):
    """A dataset, a model, two registered versions (v1.0.0 champion) and an untracked file."""
    ws.dataset_add("shapes", demo_data)
    onnx = tmp_path / "det.onnx"
    onnx.write_bytes(b"\x08\x07\x12\x07pytorch\x1a\x032.1:\x0c\n\x04onnx" + bytes(40))
    ws.model_add("det", onnx)
    weights = tmp_path / "det.pt"
    weights.write_bytes(os.urandom(1024))
    ws.register("det", version="1.0.0", source=str(weights))
    weights.write_bytes(os.urandom(1024))
    ws.register("det", version="1.1.0", source=str(weights))
    ws.promote("det@v1.0.0")
    (ws.root / "notes.txt").write_text("not committed\n")
    return ws


def test_every_route_is_in_the_plan():
    assert sorted(PLAN) == sorted(path.replace("(?P<name>[^/]+)", "{name}") for path, _ in ROUTES)


def _path(route: str, name) -> list[str]:
    """The URL path parts; `jp_fetch` percent-encodes them."""
    return [name if part == "{name}" else part for part in route.split("/")]


def _check(problems: list, what: str, code: int, data, mutating: bool) -> None:
    text = json.dumps(data) if not isinstance(data, str) else data
    if "Traceback" in text or code >= 500:
        problems.append(f"{what}: {code} {text[:300]}")
    elif not isinstance(data, dict):
        problems.append(f"{what}: not a JSON object: {code} {text[:200]}")
    elif code >= 400:
        error = data.get("error") or {}
        if not (isinstance(error.get("type"), str) and error.get("message") and "hint" in error):
            problems.append(f"{what}: {code} without type/message/hint: {text[:200]}")
    elif mutating or code >= 300:
        problems.append(f"{what}: {code}, expected a refusal: {text[:200]}")


async def test_hostile_input_to_every_route_is_a_json_4xx_and_changes_nothing(api, hostile_ws, monkeypatch):
    monkeypatch.delenv("NBVERSION_TRACEBACK", raising=False)
    root = hostile_ws.root
    before = snapshot(root)
    problems: list[str] = []
    calls = 0

    async def call(what, route, name=None, params=None, body=None):
        nonlocal calls
        method, _, _ = PLAN[route]
        calls += 1
        code, data = await api(*_path(route, name), method=method, params=params, body=body)
        _check(problems, what, code, data, mutating=method == "POST")
        if method == "POST" and snapshot(root) != before:
            problems.append(f"{what}: changed the workspace")
            pytest.fail("\n".join(problems))   # later cases would be judged against a changed workspace

    for route, (method, name, params) in PLAN.items():
        good = {p: GOOD.get(p, "") for p in params}
        if name is not None:
            for bad in HOSTILE_NAMES:
                await call(f"{method} {route} name={bad!r}", route, bad, good)
        for param in params:
            for bad in HOSTILE:
                await call(f"{method} {route} {param}={bad!r}", route, name, {**good, param: bad})
    for body in COMMIT_BODIES:
        await call(f"POST commit {body[:80]!r}", "commit", body=body)
    for body in PROMOTE_BODIES:
        await call(f"POST registry/promote {body[:80]!r}", "registry/promote", body=body)

    assert calls > 500   # every route, every hostile value
    assert not problems, f"{len(problems)} of {calls} hostile requests misbehaved:\n" + "\n".join(problems)
    assert snapshot(root) == before
    assert not (root / "pwned").exists()
    assert git(root, "status", "--porcelain") == "?? notes.txt\n"


async def test_a_long_poll_with_a_wait_that_never_ends_is_refused_at_once(api, ws):
    """`wait=nan` used to hold the request until something changed (nan never compares >=)."""
    _, first = await api("runs", "progress")
    for wait in ("nan", "inf", "-1", "soon"):
        started = time.monotonic()
        code, data = await api("runs", "progress", params={"cursor": first["cursor"], "wait": wait})
        assert code == 400 and data["error"]["type"] == "usage" and "`wait`" in data["error"]["message"], data
        assert time.monotonic() - started < 2
    code, data = await api("runs", "progress", params={"cursor": first["cursor"], "wait": "0.2"})
    assert code == 200 and data["cursor"] == first["cursor"]


for _name, _test in list(globals().items()):
    if _name.startswith("test_") and getattr(_test, "__code__", None) and _test.__code__.co_flags & 0x80:
        globals()[_name] = _run_in_the_server_loop(_test)
