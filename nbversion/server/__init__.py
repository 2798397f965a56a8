"""The Jupyter server extension: REST under /nbversion/api/ for the JupyterLab sidebar.

Enabled on install by `jupyter-config/jupyter_server_config.d/nbversion.json`. The workspace
is the server's root directory unless `NbversionConfig.workspace` says otherwise:

    jupyter lab --NbversionConfig.workspace=/path/to/project
"""
from __future__ import annotations

import logging
import os

from traitlets import Unicode
from traitlets.config import Configurable

from .. import __version__  # noqa: F401  (shown by `jupyter server extension list`)

logger = logging.getLogger(__name__)


class NbversionConfig(Configurable):
    workspace = Unicode("", config=True,
                        help="Folder of the nbversion workspace the sidebar shows "
                             "(default: the server's root_dir)")


def _jupyter_server_extension_points():
    return [{"module": "nbversion.server"}]


def _jupyter_labextension_paths():
    # lets `jupyter labextension develop --overwrite .` link the built sidebar in a checkout
    return [{"src": "../labextension", "dest": "nbversion-labextension"}]


def workspace_folder(server_app) -> str:
    configured = NbversionConfig(config=server_app.config).workspace
    root = configured or server_app.root_dir
    return os.path.abspath(os.path.expanduser(root))


def _load_jupyter_server_extension(server_app):
    from ..extras import require

    require("lab", "the nbversion server extension", ("jupyter_server",))
    from .routes import handlers

    web_app = server_app.web_app
    folder = workspace_folder(server_app)
    web_app.settings["nbversion_workspace"] = folder
    from ..logs import configure_from_settings
    log_file = configure_from_settings(folder)   # the worker threads' debug log, when a log file is set
    logger.debug("nbversion %s server extension for %s (log file %s)", __version__, folder, log_file)
    web_app.add_handlers(".*$", handlers(web_app.settings["base_url"]))
    _serve_queue(folder)
    server_app.log.info("nbversion: REST API at %snbversion/api/ for workspace %s",
                        web_app.settings["base_url"], folder)


def _serve_queue(folder: str) -> None:
    """Start the workspace's queued runs from this server as devices become free, also runs
    queued by kernels that have exited since (a thread for as long as the server runs)."""
    from ..core.layout import META_DIR
    from ..errors import MissingExtra
    from ..extras import require

    if not os.path.exists(os.path.join(folder, META_DIR, "config.toml")):
        return   # not a workspace (yet): nothing can be queued here
    try:
        require("yolo", "starting queued training runs")
    except MissingExtra:
        logger.debug("no yolo extra: this server starts no queued runs")
        return
    from ..training.queue_worker import serve_in_background
    serve_in_background(folder, forever=True)


# jupyter_server < 2 looked for this name
load_jupyter_server_extension = _load_jupyter_server_extension
