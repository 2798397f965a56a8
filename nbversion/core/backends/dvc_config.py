"""DVC's config files read without DVC: importing its parser costs ~0.2 s, paid on every commit
for one value (`cache.type`, `cache.dir`). Writing them stays DVC's job."""
from __future__ import annotations

from pathlib import Path
from typing import Optional


def value(path: Path, section: str, key: str) -> Optional[str]:
    """One value of a DVC config file (INI-like: `[section]`, `key = value`), read without DVC's
    parser: importing it costs ~0.2 s, on every commit."""
    try:
        lines = path.read_text().splitlines()
    except OSError:
        return None
    current = None
    for line in (raw.strip() for raw in lines):
        if line.startswith("["):
            current = line.strip("[]'\" ").lower()
        elif current == section and line.partition("=")[0].strip().lower() == key:
            return line.partition("=")[2].strip().strip("'\"")
    return None


def cache_type(root) -> str:
    """`cache.type` as the committed `.dvc/config` says it (what a plain `dvc checkout` does)."""
    return value(Path(root) / ".dvc" / "config", "cache", "type") or ""
