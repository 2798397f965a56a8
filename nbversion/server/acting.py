"""Who a REST request acts as: the user the Jupyter server authenticated, or the server's owner.

Under JupyterHub (or any identity provider that names real users) several people may reach
one server (admin access, shared servers), and the server's environment is its owner's to
set: so a request acts as the user its identity provider authenticated, never as
NBVERSION_USER or JUPYTERHUB_USER of the server process. jupyter_server's own providers (a
token or a password) name no person, only "whoever holds the token", who is the server's
owner: there a request acts as the CLI's identity, the same as `nbversion` in a terminal.
"""
from __future__ import annotations

import logging

from jupyter_server.auth.identity import IdentityProvider, LegacyIdentityProvider, PasswordIdentityProvider

logger = logging.getLogger(__name__)

# the token / password login of a single-user server: it authenticates, but names nobody
OWNER_ONLY_PROVIDERS = (IdentityProvider, PasswordIdentityProvider)


def _is_jupyterhub(provider) -> bool:
    # jupyterhub >= 2 has its own provider (jupyterhub.singleuser.extension.JupyterHubIdentityProvider);
    # its older single-user app set a login handler, which jupyter_server wraps as the legacy provider
    found = type(provider)
    if isinstance(provider, LegacyIdentityProvider):
        found = getattr(provider, "login_handler_class", found)
    return (found.__module__ or "").split(".")[0] == "jupyterhub"


def acting_identity(handler) -> tuple[str, str] | None:
    """(user, where the identity came from) the request acts as; None: the CLI's identity."""
    provider = handler.identity_provider
    if type(provider) in OWNER_ONLY_PROVIDERS:
        return None
    user = handler.current_user.username   # jupyter_server refuses a User whose username is empty
    source = "JupyterHub login" if _is_jupyterhub(provider) else f"Jupyter login ({type(provider).__name__})"
    logger.debug("%s %s acts as %s (%s)", handler.request.method, handler.request.path, user, source)
    return user, source
