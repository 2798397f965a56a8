"""The committed settings in `.nbversion/`: config.toml, users.toml, rules.toml."""
from __future__ import annotations

import tomllib   # Python >= 3.11, as pyproject.toml's requires-python says
from pathlib import Path

import tomli_w

from ...errors import InvalidInput
from ..backends import atomic
from .policy_text import invalid_at, is_int, is_number, line_of
from .roles import ROLES
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
    "datasets": {"max_zip_bytes": 500_000_000, "max_zip_ratio": 200,
                 # files an image dataset may hold beside labels (.txt) and data.yaml: Ultralytics'
                 # IMG_FORMATS (ultralytics.data.utils, 8.4), copied: only training/_yolo imports it
                 "allowed_extensions": ["avif", "bmp", "dng", "heic", "heif", "jp2", "jpeg", "jpg", "mpo",
                                        "pfm", "png", "tif", "tiff", "webp"]},
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
        check_config_values(data, path.read_text(encoding="utf-8"))
    for section, values in data.items():
        if isinstance(values, dict):
            merged.setdefault(section, {}).update(values)
        else:
            merged[section] = values
    return merged


# config.toml: (section, key) -> (is it valid, what a valid value is)
CONFIG_KEYS = {
    ("core", "large_file_bytes"): (lambda v: is_int(v) and v >= 0, "a whole number of bytes, e.g. 1000000"),
    ("core", "data_dirs"): (lambda v: isinstance(v, list) and all(isinstance(d, str) and d for d in v),
                            'a list of folder names, e.g. ["datasets", "models"]'),
    ("core", "default_role"): (lambda v: v in ROLES, "one of " + ", ".join(ROLES)),
    ("core", "lock_timeout"): (lambda v: is_number(v) and v >= 0, "seconds, e.g. 120"),
    ("core", "link"): (lambda v: v in ("copy", "hardlink"), '"copy" (the default) or "hardlink"'),
    ("core", "log_file"): (lambda v: isinstance(v, str) and v.strip() != "" and "\0" not in v,
                           'a file path, relative to the workspace, e.g. ".nbversion/tmp/nbversion.log"'),
    ("datasets", "max_zip_bytes"): (lambda v: is_int(v) and v > 0, "a whole number of bytes"),
    ("datasets", "max_zip_ratio"): (lambda v: is_number(v) and v > 0, "a number, e.g. 200"),
    ("datasets", "allowed_extensions"): (lambda v: isinstance(v, list) and all(isinstance(e, str) and e for e in v),
                                         'a list of extensions, e.g. ["jpg", "png"]'),
    ("security", "signing"): (lambda v: v in ("off", "required"), '"required" (signed mode) or "off"'),
    ("gc", "keep_last"): (lambda v: is_int(v) and v >= 1, "a whole number, at least 1"),
    ("gc", "older_than_days"): (lambda v: is_number(v) and v >= 0, "days, e.g. 30"),
}


def check_config_values(data: dict, text: str) -> None:
    """The known settings of a parsed config.toml (also checked each time it is loaded)."""
    for (section, key), (valid, expected) in CONFIG_KEYS.items():
        values = data.get(section, {})
        if isinstance(values, dict) and key in values and not valid(values[key]):
            raise invalid_at(f"{META_DIR}/config.toml", line_of(text, f"{key} =", f"{key}=", key),
                             f"[{section}] {key} = {values[key]!r} is not valid", f"use {expected}")
