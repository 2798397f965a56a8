"""The committed settings in `.nbversion/`: config.toml, users.toml, rules.toml."""
from __future__ import annotations

import tomllib   # Python >= 3.11, as pyproject.toml's requires-python says
from pathlib import Path

import tomli_w

from ...errors import InvalidInput
from ..backends import atomic
from ..layout import META_DIR  # noqa: F401 (the settings' folder, imported from here by their readers)



DEFAULT_CONFIG = {
    "core": {
        # files (and folders) above this size go to DVC; smaller ones to git
        "large_file_bytes": 1_000_000,
        # folders whose children are always data, tracked by DVC one child at a time
        "data_dirs": ["datasets", "models"],
        # an identity missing from users.toml gets this role
        "default_role": "contributor",
        # seconds to wait for the workspace lock before giving up
        "lock_timeout": 120,
        # data files vs the DVC cache: "copy" (a reflink where the filesystem can, else a copy; edits
        # in place are safe) or "hardlink" (no second copy, files read-only, `nbversion unprotect`)
        "link": "copy",
    },
    "datasets": {"max_zip_bytes": 500_000_000, "max_zip_ratio": 200},
    "gc": {"keep_last": 5, "older_than_days": 30},
}

DEFAULT_RULES = {
    "stages": {
        "champion": {"role": "admin"},
    }
}


def read_toml(path: Path) -> dict:
    if not path.exists():
        return {}
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise InvalidInput(f"{path}: {exc}", hint="fix the TOML syntax (line and column above)") from exc


def write_toml(path: Path, data: dict) -> None:
    atomic.write_text(path, tomli_w.dumps(data))


def load_config(root: Path) -> dict:
    """Defaults overlaid with the workspace's config.toml, one level deep."""
    merged = {section: dict(values) for section, values in DEFAULT_CONFIG.items()}
    path = Path(root) / META_DIR / "config.toml"
    data = read_toml(path)
    if data:   # a wrong value is an error naming file and line, not a traceback in some verb
        from .policy_check import check_config_values
        check_config_values(data, path.read_text(encoding="utf-8"))
    for section, values in data.items():
        if isinstance(values, dict):
            merged.setdefault(section, {}).update(values)
        else:
            merged[section] = values
    return merged
