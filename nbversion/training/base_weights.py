"""What a training starts from (`--model`), resolved to a local file, and the record of it in the run.

Each kind is recorded in run.json `base_model` (and the registered version's `lineage.base`):
- config    yolov8n.yaml: random weights, nothing downloaded          {kind, ref}
- file      a local weights file                                       {kind, ref, md5}
- download  a name Ultralytics publishes (yolov8n.pt), cached once     {kind, ref, md5, url}
- registry  NAME@champion | NAME@vX.Y.Z | NAME@latest of the registry  {kind, ref, md5, version, commit}
- model     NAME@REV of a `model add`-ed model (latest, ~N, tag, commit) {kind, ref, md5, name, commit}

NAME@REV asks the registry first: a registered version is immutable and was reviewed, a `model add`
version is a working copy's history. When NAME is not registered, or the registry has no such
version or stage (`det@~1`, `det@<commit>`), the `model add`-ed model NAME answers.
"""
from __future__ import annotations

import logging
import secrets
import shutil
from pathlib import Path
from typing import Optional

from ..core.backends.hashing import file_md5
from ..core.layout import tmp_dir
from ..errors import NotFound, UsageError
from ..events import EventCallback

logger = logging.getLogger(__name__)

MODELS_DIR = "models"


def resolve_base(ws, model: str, on_event: Optional[EventCallback] = None) -> tuple[str, dict]:
    """(what Ultralytics loads, the `base_model` record) for `--model`; downloads a published name once.

    Nothing in the workspace is written: a refused or unreachable base model starts no run.
    """
    if model.endswith((".yaml", ".yml")):
        return model, {"kind": "config", "ref": model}
    path = Path(model).expanduser()
    if path.is_file():
        from ..core.artifacts.frameworks import detect
        detect(path)   # a truncated or mislabelled file is refused here, not as a failed run
        return _checkpoint(str(path.resolve()), model), {"kind": "file", "ref": model, "md5": file_md5(path)}
    if "@" in model:
        weights, record = versioned_weights(ws, model)
        return _checkpoint(weights, model), record
    if model.endswith(".pt") and path.name == model:
        published, release = _published()
        if model in published:
            return _downloaded(model, release, on_event)
    if model.endswith(".pt"):
        raise NotFound(f"--model {model}: no such file, and not a name Ultralytics publishes",
                       hint="give a local file, a published name such as yolov8n.pt or yolo11n.pt (downloaded "
                            "once), a yolov8n.yaml config (trains from scratch) or NAME@champion / NAME@latest")
    raise UsageError(f"--model {model}: not a config, a file or a registry ref",
                     hint="use yolov8n.yaml, yolov8n.pt, path/to/weights.pt, NAME@champion, NAME@v1.2.0 or NAME@latest")


def _checkpoint(weights: str, ref: str) -> str:
    """Training resumes a PyTorch checkpoint: an export (ONNX, TorchScript, ...) is refused here,
    before a run is written, not as a failed run with Ultralytics' own TypeError."""
    name = Path(weights).name
    if not name.endswith(".pt"):
        raise UsageError(f"--model {ref} is {name}, not a .pt checkpoint: training starts from PyTorch weights",
                         hint="use the .pt version it was exported from (`nbversion model show` / "
                              "`nbversion registry` name it), or a yolov8n.yaml config")
    return weights


def _published() -> tuple[frozenset, str]:
    from . import _yolo
    return _yolo.published_weights()


def _downloaded(name: str, release: str, on_event) -> tuple[str, dict]:
    from . import weights_cache

    found = weights_cache.fetch(name, weights_cache.weights_url(name, release), on_event)
    return found["path"], {"kind": "download", "ref": name, "md5": found["md5"], "url": found["url"]}


def versioned_weights(ws, ref: str) -> tuple[str, dict]:
    name, _, rev = ref.partition("@")
    try:
        resolved = ws.resolve(ref)
    except ModuleNotFoundError as exc:
        raise NotFound(f"--model {ref}: the model registry is not available in this install",
                       hint="give a weights file or a yolov8n.yaml config") from exc
    except NotFound as registry_error:
        if not (ws.root / MODELS_DIR / f"{name}.meta.json").exists():
            raise
        logger.debug("--model %s: not in the registry (%s); a `model add`-ed model answers", ref, registry_error)
        return _model_version(ws.root, name, rev or None, ref)
    return str(resolved.path), {"kind": "registry", "ref": ref, "md5": file_md5(resolved.path),
                                "version": resolved.version, "commit": resolved.commit}


def _model_version(root: Path, name: str, rev: Optional[str], ref: str) -> tuple[str, dict]:
    """The weights of `model add`-ed NAME at REV: the working copy when it holds exactly them, else a
    copy of the DVC cache object under the workspace's tmp folder (the checkout is never changed)."""
    from ..core.artifacts import dataset_meta
    from ..core.backends import dvc_cache
    from ..core.repo import refs

    commit = refs.resolve(root, MODELS_DIR, name, rev)
    meta = dataset_meta.read_at(root, MODELS_DIR, name, commit)
    filename, md5 = meta.get("file") or f"{name}.pt", meta.get("md5")
    working = root / MODELS_DIR / name / filename
    if working.is_file() and file_md5(working) == md5:
        path = working
    else:
        path = _copy_from_cache(root, dvc_cache.object_path(root, md5 or "0" * 32), md5, filename, ref)
    logger.debug("--model %s: model %s at %s, weights %s", ref, name, commit[:8], path)
    return str(path), {"kind": "model", "ref": ref, "md5": md5, "name": name, "commit": commit}


def _copy_from_cache(root: Path, cached: Path, md5: str, filename: str, ref: str) -> Path:
    """Ultralytics reads the format from the suffix, which a cache object lacks: a named copy, made once."""
    if not cached.exists():
        raise NotFound(f"--model {ref}: its weights ({md5}) are not in the DVC cache",
                       hint="run `nbversion pull` to fetch them")
    target = tmp_dir(root) / "base-weights" / md5 / filename
    if target.is_file() and file_md5(target) == md5:
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{filename}.{secrets.token_hex(4)}.partial")   # two trainings may copy at once
    try:
        shutil.copyfile(cached, partial)
        partial.replace(target)
    finally:
        partial.unlink(missing_ok=True)
    return target


def describe(base: Optional[dict]) -> str:
    """`download yolov8n.pt (md5 …, https://…)`: one line of `runs show`."""
    if not base:
        return "unknown"
    details = [f"md5 {base['md5']}" if base.get("md5") else "",
               f"version {base['version']}" if base.get("version") else "",
               f"commit {base['commit'][:8]}" if base.get("commit") else "",
               base.get("url") or ""]
    shown = ", ".join(d for d in details if d)
    return f"{base.get('kind')} {base.get('ref')}" + (f" ({shown})" if shown else "")
