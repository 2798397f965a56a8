"""Named hyperparameter presets (`train --preset NAME`, `presets list|show`).

A preset is a YAML mapping of Ultralytics training arguments. nbversion ships `fast`,
`balanced` and `accurate` (nbversion/training/builtin_presets/); a workspace's
`.nbversion/presets/NAME.yaml`, versioned with the project, adds its own or replaces a built-in
of the same name. `init` copies nothing: a built-in improves with nbversion, a workspace file
stays as the team wrote it, and each run records the values it applied either way.
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Optional

from ..core.layout import META_DIR
from ..core.result import Result
from ..errors import InvalidInput, NotFound, UsageError

if TYPE_CHECKING:   # annotations only: core.workspace imports this module into Workspace
    from ..core.workspace import Workspace

BUILTIN_DIR = Path(__file__).with_name("builtin_presets")
WORKSPACE_DIR = f"{META_DIR}/presets"
# what `train` takes as its own parameters; everything else goes to Ultralytics as key=value
DEFAULTS = {"epochs": 100, "imgsz": 640, "batch": 16}
# a preset is shared by a team on different machines: the device is each run's choice
NOT_IN_A_PRESET = {"device": "the device is chosen per run with --device"}
NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")


@dataclass
class Preset:
    name: str
    source: str        # "workspace" or "built-in"
    file: str          # `.nbversion/presets/NAME.yaml`, or the package's file
    values: dict = field(default_factory=dict)
    blob: str = ""     # git's blob id of the file: equal to `git rev-parse HEAD:FILE` once committed
    problem: str = ""  # `presets list` shows a broken file with what is wrong instead of failing

    def lineage(self) -> dict:
        """What run.json keeps of the preset a run started from."""
        return {"name": self.name, "source": self.source, "file": self.file, "blob": self.blob,
                "values": self.values}


def check_name(name) -> str:
    if isinstance(name, str) and NAME_RE.fullmatch(name):
        return name
    raise UsageError(f"{name!r} is not a preset name: letters, digits, '-' and '_', the stem of "
                     f"{WORKSPACE_DIR}/NAME.yaml", hint="`nbversion presets list` shows the presets")


def _files(root) -> dict[str, tuple[str, Path]]:
    """name -> (source, file); a workspace file hides the built-in of the same name."""
    found = {p.stem: ("built-in", p) for p in sorted(BUILTIN_DIR.glob("*.yaml"))}
    folder = Path(root) / WORKSPACE_DIR
    if folder.is_dir():
        found.update({p.stem: ("workspace", p) for p in sorted(folder.glob("*.yaml"))
                      if NAME_RE.fullmatch(p.stem)})
    return found


def load(root, name: str, keep_broken: bool = False) -> Preset:
    """The preset NAME, read and checked (each key and value as `train key=value` checks them)."""
    check_name(name)
    files = _files(root)
    if name not in files:
        raise NotFound(f"no preset {name!r} (no {WORKSPACE_DIR}/{name}.yaml and no built-in of that name)",
                       hint=f"presets: {', '.join(sorted(files))}; write {WORKSPACE_DIR}/{name}.yaml "
                            "(a mapping of Ultralytics training arguments) to add one")
    source, path = files[name]
    shown = f"{WORKSPACE_DIR}/{path.name}" if source == "workspace" else f"nbversion/training/builtin_presets/{path.name}"
    data = path.read_bytes()
    text = data.decode("utf-8", errors="replace")
    blob = hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()
    try:
        return Preset(name, source, shown, _checked(shown, text), blob)
    except InvalidInput as exc:
        if not keep_broken:
            raise
        return Preset(name, source, shown, {}, blob, problem=exc.message)


def _checked(shown: str, text: str) -> dict:
    import yaml

    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        values = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise _bad(shown, mark.line + 1 if mark else 0, f"not valid YAML: {getattr(exc, 'problem', None) or exc}",
                   "fix the YAML syntax") from None
    if not isinstance(node, yaml.MappingNode) or not isinstance(values, dict):
        raise _bad(shown, node.start_mark.line + 1 if node is not None else 1,
                   "a preset is a mapping of training arguments", "write `key: value` lines, e.g. `epochs: 50`")
    lines: dict = {}
    for key_node, _ in node.value:
        key, line = key_node.value, key_node.start_mark.line + 1
        if key in lines:
            raise _bad(shown, line, f"{key} is set twice (first on line {lines[key]})", "keep one of them")
        lines[key] = line
    for key, value in values.items():
        _check_entry(shown, lines.get(str(key), 0), key, value)
    return values


def _check_entry(shown: str, line: int, key, value) -> None:
    from . import _yolo
    from .runner import OWN_KEYS

    if not isinstance(key, str) or key in OWN_KEYS:
        raise _bad(shown, line, f"{key}: set by nbversion, not by a preset", "use --data, --model and --name")
    if key in NOT_IN_A_PRESET:
        raise _bad(shown, line, f"{key}: {NOT_IN_A_PRESET[key]}", f"remove `{key}` from the preset")
    valid = _yolo.train_keys() - OWN_KEYS
    if key not in valid:
        import difflib

        close = difflib.get_close_matches(key, sorted(valid), n=3)
        raise _bad(shown, line, f"unknown training argument {key!r}",
                   f"did you mean {' or '.join(close)}" if close else "see Ultralytics' train settings: "
                   "https://docs.ultralytics.com/modes/train/#train-settings")
    if key in ("epochs", "batch") and not (isinstance(value, int) and not isinstance(value, bool)
                                           and (value >= 1 or key == "batch" and value == -1)):
        raise _bad(shown, line, f"{key}: {value!r} is not " + ("1 or more" if key == "epochs" else "1 or more, or -1"),
                   "give a whole number")
    try:
        _yolo.check_train_args({key: value})
    except UsageError as exc:
        raise _bad(shown, line, exc.message, "fix the value") from None


def _bad(shown: str, line: int, what: str, hint: str) -> InvalidInput:
    return InvalidInput(f"{shown}:{line}: {what}" if line else f"{shown}: {what}", hint=hint)


def apply(root, name: Optional[str], given: dict, extra: dict) -> tuple[dict, dict, Optional[Preset]]:
    """(epochs/imgsz/batch, key=value extras, the preset) for a training: the preset's values
    first, then what the caller gave (`given`: None where the caller said nothing)."""
    # `imgsz=64` as key=value wins over --imgsz, as it always did; it stays in `extra`, so
    # check_extra puts it through Ultralytics' checks like any key=value
    named = {key: extra.get(key, value) for key, value in given.items()}
    preset = load(root, name) if name else None
    values = dict(preset.values) if preset else {}
    for key, default in DEFAULTS.items():
        if named.get(key) is None:
            named[key] = values.get(key, default)
        values.pop(key, None)
    return named, {**values, **extra}, preset


@dataclass
class PresetList(Result):
    presets: list = field(default_factory=list)

    def table(self):
        return ["preset", "source", "sets"], [
            (p.name, p.source, f"error: {p.problem}" if p.problem else ", ".join(f"{k}={v}" for k, v in p.values.items()))
            for p in self.presets]

    def highlight(self, row) -> bool:
        return row[2].startswith("error: ")

    def summary(self) -> str:
        return (f"{len(self.presets)} preset(s); `nbversion train --preset NAME` applies one, "
                f"{WORKSPACE_DIR}/NAME.yaml adds or replaces one")

    def to_dict(self) -> dict:
        return {"presets": [{**p.lineage(), **({"problem": p.problem} if p.problem else {})} for p in self.presets]}


@dataclass
class PresetShow(Result):
    preset: Preset

    def table(self):
        return ["key", "value"], list(self.preset.values.items())

    def summary(self) -> str:
        p = self.preset
        return f"preset {p.name} ({p.source}: {p.file}, blob {p.blob[:12]})"

    def to_dict(self) -> dict:
        return self.preset.lineage()


def list_presets(ws: Workspace) -> PresetList:
    """Training presets: the built-in ones and the workspace's (`nbversion presets list`).

    Returns:
        PresetList: `presets`, each with its name, source ("workspace" or "built-in"), file and
        the training arguments it sets. A workspace file replaces a built-in of the same name;
        a broken one is listed with its `problem` (file:line: what is wrong) and no values.

    Example:
        >>> ws = nbv.open(".")
        >>> [p.name for p in ws.presets_list().presets]
    """
    return PresetList([load(ws.root, name, keep_broken=True) for name in sorted(_files(ws.root))]
                      + _unread_files(ws.root))


def _unread_files(root) -> list[Preset]:
    """Files in the presets folder no `--preset` can reach (`ok.yml`, `Bad.Name.yaml`): listed
    with why, rather than silently left out."""
    folder = Path(root) / WORKSPACE_DIR
    unread = []
    for path in sorted(folder.iterdir()) if folder.is_dir() else []:
        if not path.is_file() or path.name.startswith("."):
            continue
        shown = f"{WORKSPACE_DIR}/{path.name}"
        if path.suffix != ".yaml":
            why = f"not read: presets are NAME.yaml files (rename it to {path.stem}.yaml)" \
                if path.suffix in (".yml", ".YAML", ".YML") else "not read: not a NAME.yaml file"
        elif not NAME_RE.fullmatch(path.stem):
            why = f"not read: {path.stem!r} is not a preset name (letters, digits, '-' and '_')"
        else:
            continue
        unread.append(Preset(path.name, "workspace", shown, problem=why))
    return unread


def show(ws: Workspace, name: str) -> PresetShow:
    """One training preset: where it comes from and the arguments it sets (`nbversion presets show`).

    Args:
        name: a preset name (see `presets_list`).

    Returns:
        PresetShow: the `preset` (name, source, file, values, blob).

    Example:
        >>> ws = nbv.open(".")
        >>> ws.presets_show("fast").preset.values["imgsz"]
    """
    return PresetShow(load(ws.root, name))
