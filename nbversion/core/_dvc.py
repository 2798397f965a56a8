"""The only module that imports dvc. DVC is used in-process (`dvc.repo.Repo`).

Every call opens the repo, does one thing and closes it: DVC caches state per Repo object
and takes its own short-timeout lock, so we never keep one open across operations (our
workspace lock serialises callers).
"""
from __future__ import annotations

import logging
from contextlib import contextmanager
from pathlib import Path
from typing import Iterable, Optional

from ..errors import NbversionError


def _quiet() -> None:
    """DVC logs hints ("To track the changes with git...") and progress; core never prints."""
    logging.getLogger("dvc").setLevel(logging.ERROR)


@contextmanager
def _repo(root):
    from dvc.repo import Repo
    from dvc.exceptions import DvcException

    _quiet()
    try:
        repo = Repo(str(root))
    except DvcException as exc:
        raise NbversionError(f"DVC could not open {root}: {exc}") from exc
    repo.scm_context.quiet = True
    try:
        yield repo
    except DvcException as exc:
        raise NbversionError(f"dvc: {exc}", hint="run `nbversion verify` to check the workspace") from exc
    finally:
        repo.close()


def _abs(root, targets) -> list[str]:
    """DVC resolves relative targets against the process cwd, not the repo: make them absolute."""
    return [str(Path(root) / t) for t in targets]


def init(root, link_types: str) -> None:
    import io
    from contextlib import redirect_stdout

    from dvc.repo import Repo

    _quiet()
    with redirect_stdout(io.StringIO()):  # `dvc init` greets on stdout; core never prints
        repo = Repo.init(str(root))
    try:
        with repo.config.edit() as conf:
            conf["core"]["autostage"] = False
            conf["core"]["analytics"] = False
            conf["cache"]["type"] = link_types
    finally:
        repo.close()


def add(root, targets: Iterable[str]) -> None:
    targets = list(targets)
    if not targets:
        return
    with _repo(root) as repo:
        repo.add(_abs(root, targets))


def remove(root, dvc_files: Iterable[str]) -> None:
    """Stop tracking (keeps data in cache); removes the .dvc file and its .gitignore entry."""
    with _repo(root) as repo:
        for target in dvc_files:
            repo.remove(str(Path(root) / target), outs=False)


def checkout(root, targets: Optional[Iterable[str]] = None) -> None:
    with _repo(root) as repo:
        repo.checkout(targets=_abs(root, targets) if targets else None, force=True)


def data_status(root) -> dict:
    """DVC's granular `data status`: uncommitted added/modified/deleted inside tracked outputs."""
    with _repo(root) as repo:
        return repo.data_status(granular=True)


def diff(root, rev_a: str, rev_b: Optional[str]) -> dict:
    with _repo(root) as repo:
        return repo.diff(rev_a, rev_b)


def cache_dir(root) -> Path:
    with _repo(root) as repo:
        return Path(repo.cache.local.path)


def read_dir_manifest(root, md5_dir: str) -> list[dict]:
    """The `.dir` object of a tracked directory: [{"relpath", "md5"}...] from the local cache."""
    import json

    path = object_path(root, md5_dir)
    if not path.exists():
        raise NbversionError(f"the cache has no listing for directory hash {md5_dir}",
                             hint="run `nbversion pull` to fetch it from a remote")
    return json.loads(path.read_text())


def object_path(root, md5: str) -> Path:
    """Path of an object in DVC 3's default local cache layout."""
    return Path(root) / ".dvc" / "cache" / "files" / "md5" / md5[:2] / md5[2:]
