"""The metadata files `datasets/<name>.meta.json` and `models/<name>.meta.json` (in git)."""
from __future__ import annotations

import json
from ...errors import NotFound
from ..audit.chain import now_iso
from ..backends import _git, atomic, pointers

DATASETS_DIR = "datasets"   # datasets/<name>/ (DVC), datasets/<name>.meta.json (git)
MODELS_DIR = "models"


def meta_path(kind_dir: str, name: str) -> str:
    return f"{kind_dir}/{name}.meta.json"


def read_at(root, kind_dir: str, name: str, commit: str) -> dict:
    data = _git.show(root, commit, meta_path(kind_dir, name))
    if data is None:
        raise NotFound(f"{meta_path(kind_dir, name)} does not exist at {commit[:8]}",
                       hint="it was versioned without nbversion; add it again with `dataset add` / `model add`")
    return json.loads(data)


def read_current(root, kind_dir: str, name: str) -> dict | None:
    path = root / meta_path(kind_dir, name)
    return json.loads(path.read_text()) if path.exists() else None


def write(root, kind_dir: str, name: str, meta: dict) -> str:
    rel = meta_path(kind_dir, name)
    atomic.write_json(root / rel, meta)
    return rel


def pointer_at(root, kind_dir: str, name: str, commit: str | None) -> pointers.Pointer:
    """The DVC pointer of `<kind_dir>/<name>` at `commit` (None: the working tree)."""
    dvc_file = f"{kind_dir}/{name}.dvc"
    text = _git.show(root, commit, dvc_file) if commit else (root / dvc_file).read_bytes()
    found = pointers.parse(dvc_file, text or b"")
    if not found:
        raise NotFound(f"{dvc_file} has no output at {commit[:8] if commit else 'the working tree'}")
    return found[0]


def dataset_meta(name: str, layout, validation, pointer, tags, source, user, warnings) -> dict:
    return {
        "name": name,
        "format": layout.format,
        "classes": list(layout.names),
        "splits": validation.splits if validation else {},
        "split_dirs": {s: split.sources for s, split in layout.splits.items()},
        "class_instances": validation.class_instances if validation else {},
        "stats": validation.stats if validation else {},
        "bytes": pointer.size,
        "files": pointer.nfiles,
        "tags": list(tags),
        "source": source,
        "content_hash": pointer.md5,
        "added_by": user,
        "added_at": now_iso("seconds"),
        "warnings": [w.to_dict() for w in warnings],
    }


def catalogue(root, kind_dir: str) -> list[tuple[str, list, dict]]:
    """(name, versions newest first, metadata at HEAD) of every `<kind_dir>/<name>.meta.json`."""
    from ..repo import refs

    if _git.head(root) is None:
        return []
    found = []
    for path in sorted(_git.tracked_files(root, "HEAD", [kind_dir])):
        if not path.endswith(".meta.json") or path.count("/") != 1:
            continue
        name = path[len(kind_dir) + 1:-len(".meta.json")]
        history = refs.versions(root, kind_dir, name)
        if history:
            found.append((name, history, read_at(root, kind_dir, name, "HEAD")))
    return found
