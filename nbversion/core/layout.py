"""Where nbversion keeps its own files in a workspace: one owner, imported by every layer.

Kept free of imports so the low-level backends (the lock, the stat cache) can use it without
depending on the settings code that itself depends on them.
"""
from __future__ import annotations

from pathlib import Path

META_DIR = ".nbversion"
ALLOWED_SIGNERS = f"{META_DIR}/allowed_signers"   # users' public keys (signed mode), git's format
TMP_DIR = f"{META_DIR}/tmp"   # posix, as git prints paths


def tmp_dir(root) -> Path:
    """The workspace's scratch folder (`.nbversion/tmp`, git-ignored): locks, import folders, caches."""
    return Path(root) / TMP_DIR
