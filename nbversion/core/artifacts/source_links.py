"""Symbolic links in a dataset's source folder: none may lead out of it.

A link to `/etc/passwd` or `~/.ssh/id_ed25519` among the labels would otherwise be read,
hashed, copied into the dataset (and pushed to the team's remote), and its lines quoted in
validation errors. Links that stay inside the folder are fine: the import copies the bytes
they point at, as any tool reading the folder would see them.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path

from ...errors import InvalidInput

logger = logging.getLogger(__name__)

MAX_SHOWN = 10


def links_leaving(folder: Path) -> list[str]:
    """Folder-relative paths of the links (to files or folders) whose target is outside `folder`."""
    folder = Path(folder)
    inside = folder.resolve()
    leaving = []
    for dirpath, dirs, files in os.walk(folder):   # does not descend into linked folders
        for name in dirs + files:
            if not os.path.islink(os.path.join(dirpath, name)):   # a string: once per file
                continue
            path = Path(dirpath) / name
            target = path.resolve()   # a dangling link's would-be target counts too
            if target != inside and inside not in target.parents:
                leaving.append(path.relative_to(folder).as_posix())
    return sorted(leaving)


def refuse_links_leaving(folder: Path) -> None:
    """InvalidInput naming every link out of `folder`, before any file of it is read."""
    leaving = links_leaving(folder)
    if not leaving:
        return
    logger.debug("%s: %d link(s) lead outside it: %s", folder, len(leaving), leaving)
    shown = ", ".join(leaving[:MAX_SHOWN]) + (f" and {len(leaving) - MAX_SHOWN} more" if len(leaving) > MAX_SHOWN else "")
    raise InvalidInput(f"{folder}: {len(leaving)} symbolic link(s) lead outside the folder: {shown}; "
                       "nothing was imported",
                       hint="replace each link with the file itself (e.g. `cp -L`), or remove it")
