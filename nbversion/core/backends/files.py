"""The bytes a file or folder holds on disk, links not followed: one walk, used by routing,
leftover clean-up and cache removal alike."""
from __future__ import annotations

import os
from pathlib import Path


def tree_size(path: Path) -> int:
    """Size of a file, or the sum over a folder's files (a file vanishing meanwhile counts 0)."""
    if path.is_file():
        return path.stat().st_size
    total = 0
    for dirpath, _dirs, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(dirpath, name)).st_size
            except OSError:
                pass
    return total
