"""Jupyter logins that name real users, as JupyterHub's does, for the REST tests.

JupyterHub's single-user server asks the hub who sent each request (an API token or the OAuth
cookie) and names that hub user: through its identity provider (jupyterhub >= 2), or, in its
older single-user app, through a login handler that jupyter_server wraps in its legacy
provider. Here a fixed table of per-user tokens stands in for the hub.
"""
from __future__ import annotations

from jupyter_server.auth.identity import IdentityProvider, User
from jupyter_server.auth.login import LegacyLoginHandler

# token -> the user it authenticates
TOKENS = {"ana-token": "ana", "vic-token": "vic"}


def login(user_token: str) -> dict:
    """The headers of a request sent with `user_token`."""
    return {"Authorization": f"token {user_token}"}


def _user_of(handler) -> str | None:
    scheme, _, token = handler.request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "token" or token not in TOKENS:
        return None
    handler._token_authenticated = True   # as jupyter_server's own: a token needs no XSRF cookie
    return TOKENS[token]


class TokenPerUserIdentityProvider(IdentityProvider):
    """Names the user whose token the request carries; no token of the table: not logged in."""

    def get_user(self, handler):
        name = _user_of(handler)
        return User(username=name) if name else None


class JupyterHubIdentityProvider(TokenPerUserIdentityProvider):
    """Stands in for jupyterhub.singleuser.extension.JupyterHubIdentityProvider, which nbversion
    recognises by its module (jupyterhub itself is no dependency of the tests)."""


class JupyterHubLoginHandler(LegacyLoginHandler):
    """Stands in for jupyterhub.singleuser.mixins.JupyterHubLoginHandler (the older single-user app)."""

    @classmethod
    def get_user(cls, handler):
        return _user_of(handler)


JupyterHubIdentityProvider.__module__ = "jupyterhub.singleuser.extension"
JupyterHubLoginHandler.__module__ = "jupyterhub.singleuser.mixins"
