"""Opening DVC's Repo for one operation: quiet (core never prints), with nbversion's link types,
DVC's errors turned into NbversionErrors. Shared by the two DVC adapters, `_dvc` (local data)
and `_dvc_remote` (remotes and transfers), the only modules besides this one that import dvc.

Every call opens the repo, does one thing and closes it: DVC caches state per Repo object
and takes its own short-timeout lock, so we never keep one open across operations (our
workspace lock serialises callers).
"""
from __future__ import annotations

import contextlib
import logging
import time
from contextlib import contextmanager
from pathlib import Path

from ...errors import NbversionError, RemoteUnreachable

logger = logging.getLogger("nbversion.core.backends._dvc")   # one logger name for every DVC call, as before the split


def _quiet() -> None:
    """DVC logs hints ("To track the changes with git...") and progress; core never prints.

    Except under `nbversion -vv` (the root logger at DEBUG): then DVC's debug log is wanted."""
    if logging.getLogger().level != logging.DEBUG:
        logging.getLogger("dvc").setLevel(logging.ERROR)
    _no_spinner()


def _no_spinner() -> None:
    """`repo.add` shows a rich spinner (`ui.status`) whatever the log level; in a kernel rich draws
    it as an Output widget and swaps sys.stdout/sys.stderr meanwhile, so a run's commit leaked it
    into the notebook cell. DVC's own switch, `ui.enable()`, does not cover `status`."""
    from dvc.ui import ui

    from types import SimpleNamespace

    silent = SimpleNamespace(update=lambda *args, **kwargs: None)   # what DVC calls on the spinner
    ui.status = lambda *args, **kwargs: contextlib.nullcontext(silent)   # on the instance: idempotent


def _link_override(root) -> dict:
    """`core.link` decides how DVC links, whatever `.dvc/config` says (an old workspace may still
    say "reflink,hardlink,copy" until `verify --repair` rewrites it)."""
    from ..storage import linking

    return {"cache": {"type": linking.dvc_cache_type(linking.workspace_mode(root))}}


@contextmanager
def _repo(root, operation: str, transfer: bool = False):
    """DVC's Repo of `root`, closed after; a DVC error as an NbversionError keeping its cause
    (a RemoteUnreachable for a `transfer`: the remote refused, or could not be reached).
    `operation` names the adapter function in the debug log line, with the time it took."""
    from dvc.repo import Repo
    from dvc.exceptions import DvcException

    _quiet()
    started = time.monotonic()
    override = _link_override(root)
    try:
        repo = Repo(str(root), config=override)
    except DvcException as exc:
        raise NbversionError(f"DVC could not open {root}: {exc}") from exc
    repo.scm_context.quiet = True
    try:
        yield repo
    except (DvcException, ConnectionError) as exc:
        if transfer:
            raise RemoteUnreachable(f"dvc: {exc}", hint="check the remote's URL, login and network "
                                    "(`nbversion remote list`), then run the command again") from exc
        if isinstance(exc, ConnectionError):
            raise
        raise NbversionError(f"dvc: {exc}", hint="run `nbversion verify` to check the workspace") from exc
    finally:
        repo.close()
        logger.debug("dvc %s (in %s, %.2f s)", operation, root, time.monotonic() - started)


def _abs(root, targets) -> list[str]:
    """DVC resolves relative targets against the process cwd, not the repo: make them absolute."""
    return [str(Path(root) / t) for t in targets]

