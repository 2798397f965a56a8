"""Who a REST request acts as (issue 15, part 3), through a real Jupyter server.

With an identity provider that names real users (JupyterHub's, or any other than jupyter_server's
own token / password login) a request acts as the user who logged in: whoami, roles, the audit
entry and the git author, whatever NBVERSION_USER, JUPYTERHUB_USER or GIT_AUTHOR_* the server's
environment holds (its owner sets those). With jupyter_server's own login it acts as the CLI does.
"""
from __future__ import annotations

import inspect

import pytest
from jupyter_server.auth.identity import PasswordIdentityProvider

from conftest import cli_json, git
from hub_login import JupyterHubIdentityProvider, JupyterHubLoginHandler, TokenPerUserIdentityProvider, login
from pytest_jupyter.jupyter_core import *  # noqa: F401,F403
from pytest_jupyter.jupyter_server import *  # noqa: F401,F403
from test_server import _run_in_the_server_loop, api, assert_error  # noqa: F401 (fixtures)

BOSS = "boss@example.com"
RUN_ID = "20260101-000000-yolov8n"


@pytest.fixture
def server_login():
    """How the server authenticates (ServerApp settings)."""
    return {"identity_provider_class": TokenPerUserIdentityProvider}


@pytest.fixture
def jp_server_config(ws, server_login):
    return {"ServerApp": {"jpserver_extensions": {"nbversion.server": True}, **server_login},
            "NbversionConfig": {"workspace": str(ws.root)}}


@pytest.fixture
def team(ws, monkeypatch):
    """ana a contributor, vic a viewer, boss an admin; the server's environment names boss."""
    ws.user_add("ana", "contributor")
    ws.user_add("vic", "viewer")
    ws.user_add(BOSS, "admin")
    for var in ("NBVERSION_USER", "JUPYTERHUB_USER", "GIT_AUTHOR_EMAIL", "GIT_COMMITTER_EMAIL"):
        monkeypatch.setenv(var, BOSS)
    return ws


@pytest.mark.parametrize("server_login, source", [
    ({"identity_provider_class": TokenPerUserIdentityProvider}, "Jupyter login (TokenPerUserIdentityProvider)"),
    ({"identity_provider_class": JupyterHubIdentityProvider}, "JupyterHub login"),
    ({"login_handler_class": JupyterHubLoginHandler}, "JupyterHub login"),
], ids=["any-provider", "jupyterhub", "jupyterhub-legacy-app"])
async def test_whoami_names_the_logged_in_user_not_the_servers_environment(api, team, source):
    assert team.whoami().user == BOSS            # what the server process's environment says
    code, data = await api("whoami", headers=login("ana-token"))
    assert code == 200, data
    assert (data["user"], data["role"], data["source"]) == ("ana", "contributor", source)
    assert data["mode"] == "advisory (unsigned)"
    code, data = await api("whoami", headers=login("vic-token"))
    assert (data["user"], data["role"]) == ("vic", "viewer"), data


async def test_a_rest_commit_is_audited_and_authored_as_the_logged_in_user(api, team):
    (team.root / "notes.txt").write_text("hello\n")
    code, data = await api("commit", method="POST", body={"message": "notes from ana"}, headers=login("ana-token"))
    assert code == 201, data
    assert git(team.root, "log", "-1", "--format=%an <%ae>, committed by %cn <%ce>").strip() == \
        "ana <ana>, committed by ana <ana>"
    [(_, entry)] = team.audit(action="commit").entries
    assert (entry["user"], entry["target"]) == ("ana", "notes from ana")
    code, data = await api("audit", "verify", headers=login("ana-token"))
    assert code == 200 and data["ok"] is True, data


async def test_a_logged_in_viewer_cannot_commit_or_stop_runs(api, team):
    (team.root / "notes.txt").write_text("hello\n")
    code, data = await api("commit", method="POST", body={"message": "sneaky"}, headers=login("vic-token"))
    assert_error(code, data, 403, "permission_denied")
    assert "vic is a viewer" in data["error"]["message"]
    assert "?? notes.txt" in git(team.root, "status", "--porcelain")
    code, data = await api("runs", RUN_ID, "stop", method="POST", headers=login("vic-token"))
    assert_error(code, data, 403, "permission_denied")
    assert "runs stop" in data["error"]["message"]
    assert [(e["user"], e["target"]) for _, e in team.audit(action="denied").entries] == \
        [("vic", "commit"), ("vic", "runs stop")]
    assert git(team.root, "log", "-1", "--format=%ae").strip() == "vic"
    # a contributor passes the role check: the run is simply not there
    code, data = await api("runs", RUN_ID, "stop", method="POST", headers=login("ana-token"))
    assert code in (400, 404) and data["error"]["type"] != "permission_denied", data


@pytest.mark.parametrize("server_login", [{"identity_provider_class": PasswordIdentityProvider}])   # the default
async def test_with_jupyters_own_token_login_rest_acts_as_the_cli(api, team):
    code, data = await api("whoami")              # the server's token, as `jupyter lab` prints it
    assert code == 200, data
    from_the_terminal = cli_json("whoami")
    assert (data["user"], data["source"]) == (from_the_terminal["user"], from_the_terminal["source"]) \
        == (BOSS, "NBVERSION_USER")


for _name, _test in list(globals().items()):
    if _name.startswith("test_") and inspect.iscoroutinefunction(_test):
        globals()[_name] = _run_in_the_server_loop(_test)
