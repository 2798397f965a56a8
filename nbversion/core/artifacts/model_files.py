"""The files of a model version and which one is the model: one rule for `register` and `model add`.

A version is a folder: the model file and what serving needs beside it (a signature, metrics.json,
an OpenVINO `.bin`). The rule (docs/registry.md, "Versions with several files"):

- Sources: one folder gives its files with their sub-paths; several sources give each file by its
  name and each folder under its own name. Hidden files and folders (`.ipynb_checkpoints`) are left out.
- The model file is the single file `frameworks.detect` recognises as a model format (an OpenVINO
  `.xml` with its `.bin` too); a file named `model.*` wins when there are several. Signature and
  metadata files (a `.json` that is not an XGBoost model, `.yaml`, `.md`, a `.txt` that is not a
  LightGBM model, ...) are never picked. Several candidates and no `model.*`: an error listing them;
  `--model-file NAME` says which.
- With `rename`, the model file is stored as `model<suffix>` in its folder (an OpenVINO `.bin` of the
  same stem follows it); every other file keeps its name. Without it, every name is kept.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Optional

from ...errors import DamagedFile, InvalidInput, NotFound, UsageError
from .frameworks import Detected, detect

logger = logging.getLogger(__name__)

MODEL_STEM = "model"
# metadata beside a model, never a model: a signature, a card, an Ultralytics metadata.yaml, plots
NEVER_MODEL = {".yaml", ".yml", ".md", ".rst", ".csv", ".toml", ".ini", ".cfg", ".log", ".html", ".png",
               ".jpg", ".jpeg", ".svg", ".pdf", ".py", ".ipynb"}
# suffixes that are a model or metadata depending on the content: detect decides, a refusal means metadata
EITHER = {".json", ".txt"}
# a model format whose weights sit in a second file of the same stem
COMPANIONS = {".xml": ".bin"}


@dataclass
class VersionFiles:
    files: dict            # stored path (posix, relative to the version's folder) -> source file
    model_file: str        # the stored path of the model file
    detected: Detected     # what the model file is


def collect(sources: list) -> dict:
    """stored path -> source file, for one folder or several files and folders."""
    paths = [Path(s) for s in sources]
    if len(paths) == 1 and paths[0].is_dir():
        found = _folder_files(paths[0], PurePosixPath())
    else:
        found = {}
        for path in paths:
            more = _folder_files(path, PurePosixPath(path.name)) if path.is_dir() else {path.name: path}
            for rel in more:
                if rel in found:
                    raise UsageError(f"two sources would both be stored as {rel}: {found[rel]} and {more[rel]}",
                                     hint="rename one of them, or put them in one folder with sub-folders")
            found.update(more)
    if not found:
        raise NotFound(f"{sources[0]}: no files to version (hidden files are left out)",
                       hint="give the folder that holds the model file, or the files themselves")
    return found


def _folder_files(folder: Path, prefix: PurePosixPath) -> dict:
    files = {}
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder)
        if any(part.startswith(".") for part in rel.parts):
            logger.debug("left out the hidden %s", path)
            continue
        if path.is_file():
            files[(prefix / rel.as_posix()).as_posix()] = path
    return files


def _openvino(path: Path) -> Optional[Detected]:
    """An OpenVINO IR: XML with a <net> root and its weights in the .bin of the same stem."""
    with open(path, "rb") as fh:
        head = fh.read(4096)
    if b"<net" in head and path.with_suffix(".bin").is_file():
        return Detected("openvino", "openvino-ir")
    return None


def as_model(path: Path) -> Optional[Detected]:
    """What `path` is when it is a model; None for metadata. A damaged model file is an error."""
    suffix = path.suffix.lower()
    if suffix in NEVER_MODEL:
        return None
    if suffix == ".xml":
        return _openvino(path)
    try:
        found = detect(path)
    except DamagedFile:
        raise
    except InvalidInput:
        if suffix in EITHER:
            return None          # a signature .json, a README .txt
        raise                    # a .pt that is no PyTorch file: the user's model is broken
    return found if found.framework != "unknown" else None


def refuse_metadata_only(path: Path) -> None:
    """A single file given as a version must be able to be its model: not a signature, a card, a
    metrics.json (the same files `pick` never takes as the model)."""
    suffix = path.suffix.lower()
    if suffix in EITHER:
        try:
            detect(path)   # an XGBoost .json / a LightGBM .txt is a model
            return
        except DamagedFile:
            raise
        except InvalidInput as exc:
            reason = exc.message
    elif suffix in NEVER_MODEL or (suffix == ".xml" and as_model(path) is None):
        reason = f"a {suffix} file is metadata beside a model"
    else:
        return
    raise InvalidInput(f"{path}: not a model file: {reason}",
                       hint="give the model file, or the folder that holds the model and this file "
                            "(--from DIR, or --from MODEL --from FILE)")


def _some(names, shown: int = 5) -> str:
    """A few names of a long list, and how many more: a folder of 48 images is not one error line."""
    names = list(names)
    more = len(names) - shown
    return ", ".join(names[:shown]) + (f" and {more} more" if more > 0 else "")


def pick(files: dict, wanted: Optional[str] = None, where: str = "the sources") -> tuple[str, Detected]:
    """(stored path, what it is) of the model file among `files` (stored path -> source file)."""
    if wanted:
        return _wanted(files, wanted, where)
    found = {rel: d for rel, d in ((rel, as_model(path)) for rel, path in files.items()) if d is not None}
    if not found:
        others = [rel for rel, path in files.items()
                  if path.suffix.lower() not in NEVER_MODEL | EITHER and path.suffix.lower() != ".xml"]
        if len(others) == 1:   # one file of a format we do not know: still the model, as a single file is
            return others[0], Detected("unknown", Path(others[0]).suffix.lstrip(".") or "file")
        raise NotFound(f"no model file in {where}: none of its {len(files)} file(s) ({_some(files)}) "
                       f"is a model format nbversion knows",
                       hint="give the folder or file that holds the model (.pt, .onnx, .joblib, ...), or name "
                            "it with --model-file NAME if nbversion does not know its format")
    if len(found) > 1:
        named = {rel: d for rel, d in found.items() if PurePosixPath(rel).stem.lower() == MODEL_STEM}
        if len(named) != 1:
            raise UsageError(f"more than one model file in {where}: {_some(found)}",
                             hint=f"say which one with --model-file NAME (e.g. --model-file {next(iter(found))}), "
                                  "or give the other files separately")
        found = named
    rel, detected = next(iter(found.items()))
    logger.debug("model file of %s: %s (%s %s)", where, rel, detected.framework, detected.format)
    return rel, detected


def _wanted(files: dict, wanted: str, where: str) -> tuple[str, Detected]:
    matches = [rel for rel in files if rel == wanted] or [rel for rel in files if PurePosixPath(rel).name == wanted]
    if len(matches) != 1:
        what = "is not one of" if not matches else "names more than one of"
        raise UsageError(f"--model-file {wanted} {what} the files in {where}: {_some(files)}",
                         hint="give the stored path of one of them, e.g. --model-file " + next(iter(files)))
    path = files[matches[0]]
    detected = as_model(path)
    if detected is None and path.suffix.lower() in NEVER_MODEL | EITHER:
        raise UsageError(f"--model-file {wanted}: {path.name} is a metadata file, not a model",
                         hint="name the weights file")
    return matches[0], detected or Detected("unknown", path.suffix.lstrip(".") or "file")


def renamed(files: dict, model_file: str) -> tuple[dict, str]:
    """`rename`: the model file (and its OpenVINO .bin) stored as model<suffix>; the rest as they are."""
    model = PurePosixPath(model_file)
    moves = {model_file: str(model.with_name(MODEL_STEM + model.suffix))}
    companion = COMPANIONS.get(model.suffix.lower())
    if companion and str(model.with_suffix(companion)) in files:
        moves[str(model.with_suffix(companion))] = str(model.with_name(MODEL_STEM + companion))
    result = {}
    for rel, path in files.items():
        new = moves.get(rel, rel)
        if new in result or (new != rel and new in files and new not in moves):
            raise UsageError(f"--rename would store {rel} as {new}, which another file already is",
                             hint="rename or remove the other file, or register without --rename")
        result[new] = path
    logger.debug("--rename: %s", {k: v for k, v in moves.items() if k != v} or "names already normalised")
    return result, moves[model_file]


def version_files(sources: list, wanted: Optional[str] = None, rename: bool = False) -> VersionFiles:
    """The files of a new version from the sources the user gave, its model file picked."""
    files = collect(sources)
    # normalised: `project/../art2` is shown as the folder it is
    where = os.path.normpath(str(sources[0])) if len(sources) == 1 else f"{len(sources)} sources"
    if len(files) == 1 and not wanted:   # one file is the model whatever it is, as `model add FILE` always was
        rel, path = next(iter(files.items()))
        detected = as_model(path) or Detected("unknown", path.suffix.lstrip(".") or "file")
    else:
        rel, detected = pick(files, wanted, where)
    if rename:
        files, rel = renamed(files, rel)
    return VersionFiles(files, rel, detected)
