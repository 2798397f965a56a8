"""The only module that imports ultralytics (and, through it, torch).

Everything Ultralytics needs to run offline is set here, before the first import: a writable
config folder, no downloads, no auto-install, no telemetry, fonts copied from matplotlib (the
plots would otherwise fetch Arial.ttf from the network).
"""
from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
import threading
import warnings
from pathlib import Path
from typing import Callable, Iterable, Optional

from ..errors import InvalidInput, NbversionError, UsageError

logger = logging.getLogger(__name__)

_prepared: Optional[Path] = None


def config_dir(workspace_root=None) -> Path:
    """YOLO_CONFIG_DIR if set, else ~/.config/nbversion/yolo, else <workspace>/.nbversion/tmp/yolo."""
    if os.environ.get("YOLO_CONFIG_DIR"):
        return Path(os.environ["YOLO_CONFIG_DIR"])
    home = Path.home() / ".config" / "nbversion" / "yolo"
    try:
        home.mkdir(parents=True, exist_ok=True)
        return home
    except OSError:  # a read-only home (some JupyterHub images): keep it inside the workspace
        from ..core.layout import tmp_dir
        return tmp_dir(workspace_root or ".") / "yolo"


def prepare(workspace_root=None) -> Path:
    """Apply the offline recipe once per process; returns the Ultralytics config folder."""
    global _prepared
    if _prepared is not None:
        return _prepared
    folder = config_dir(workspace_root)
    folder.mkdir(parents=True, exist_ok=True)
    os.environ["YOLO_CONFIG_DIR"] = str(folder)
    os.environ["YOLO_OFFLINE"] = "true"
    os.environ["YOLO_AUTOINSTALL"] = "false"
    # a background run must not print into whichever cell runs meanwhile: warnings only
    os.environ.setdefault("YOLO_VERBOSE", "false")
    _copy_fonts(folder)
    # torch 2.9+ calls torch.jit deprecated on every TorchScript load/trace; Ultralytics' TorchScript
    # export and runtime use it, and a user can do nothing about it: one red line per predict otherwise
    warnings.filterwarnings("ignore", message=r"`torch\.jit\.\w+` is deprecated", category=FutureWarning)
    from ultralytics.utils import SETTINGS

    SETTINGS.update({"sync": False, "dvc": False, "wandb": False, "mlflow": False,
                     "comet": False, "clearml": False, "tensorboard": False, "raytune": False})
    _prepared = folder
    return folder


def _copy_fonts(folder: Path) -> None:
    """Ultralytics downloads Arial for its plots; matplotlib's DejaVuSans is a fine stand-in."""
    import matplotlib

    source = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"
    for name in ("Arial.ttf", "Arial.Unicode.ttf"):
        if source.exists() and not (folder / name).exists():
            shutil.copyfile(source, folder / name)


def version() -> str:
    prepare()
    import ultralytics

    return ultralytics.__version__


def train_keys() -> set:
    """Every argument `YOLO.train` accepts (Ultralytics' default cfg)."""
    prepare()
    from ultralytics.cfg import DEFAULT_CFG_DICT

    return set(DEFAULT_CFG_DICT)


def check_train_args(args: dict) -> None:
    """Ultralytics' own type and range checks of `key=value` arguments, before a run exists.

    `check_cfg` is what the trainer runs first thing (`get_cfg`); `imgsz` is checked apart
    (Ultralytics only parses it when building the data loader). What passes here and fails
    later is a recorded, failed run.
    """
    prepare()
    from ultralytics.cfg import check_cfg
    from ultralytics.utils.checks import check_imgsz

    for key, value in args.items():
        try:
            check_cfg({key: value}, hard=True)
            if key == "imgsz":
                check_imgsz(value, min_dim=1, max_dim=2)
        except (TypeError, ValueError, SyntaxError) as exc:
            raise UsageError(f"training argument {_clip(f'{key}={value}', 60)}: {_clip(_first_line(exc), 200)}",
                             hint="fix the value (Ultralytics' train settings: "
                                  "https://docs.ultralytics.com/modes/train/#train-settings); no run was started") from None


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def cuda_devices() -> int:
    """How many CUDA GPUs torch sees (0 on a CPU-only machine or a CPU build of torch)."""
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def gpu_memory_gb() -> Optional[float]:
    import torch

    if not torch.cuda.is_available():
        return None
    return torch.cuda.memory_reserved() / 1e9


def load_yolo(weights, task: Optional[str] = None):
    """An Ultralytics `YOLO` for a checkpoint or an export (.onnx, .torchscript, a folder export).

    `task`: read from the export's metadata by the caller; Ultralytics guesses (and warns) without it.
    """
    prepare()
    from ultralytics import YOLO

    try:
        return YOLO(str(weights), task=task)
    except UNLOADABLE as exc:
        raise _not_a_model(weights, exc) from None


# what Ultralytics raises for a bare state_dict, a foreign TorchScript or a damaged file
UNLOADABLE = (TypeError, KeyError, AttributeError, RuntimeError, ModuleNotFoundError, EOFError, ValueError)


def _not_a_model(weights, exc: BaseException) -> InvalidInput:
    logger.debug("Ultralytics could not load %s", weights, exc_info=exc)   # the user gets its first line
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    first = first.replace("ERROR ❌️", "").replace(str(weights), Path(weights).name).strip()
    first = first.split(". ")[0].rstrip(".")   # Ultralytics' advice that follows names downloads we never do
    return InvalidInput(f"{Path(weights).name} is not an Ultralytics YOLO model: {first}",
                        hint="give a run id, NAME@champion, a .pt saved by Ultralytics "
                             "(`model.save(...)` / a run's best.pt) or an export of one, not a state_dict")


def published_weights() -> tuple[frozenset, str]:
    """Weights Ultralytics publishes as release assets (yolov8n.pt, yolo11n.pt, ...) and the release
    tag its own downloader fetches them from (v8.4.0 in Ultralytics 8.4)."""
    prepare()
    import inspect

    from ultralytics.utils import downloads

    release = inspect.signature(downloads.attempt_download_asset).parameters.get("release")
    names = frozenset(n for n in downloads.GITHUB_ASSETS_NAMES if n.endswith(".pt"))
    return names, release.default if release and isinstance(release.default, str) else "v8.4.0"


def build_model(model: str):
    """A model from a `yolov8n.yaml`-style config (random init) or a local .pt file; pretrained
    weights were resolved to a local file before (`base_weights`): Ultralytics downloads nothing."""
    prepare()
    from ultralytics import YOLO

    if model.endswith((".yaml", ".yml")) or Path(model).is_file():
        try:
            return YOLO(model)
        except (FileNotFoundError, KeyError, AttributeError) as exc:
            raise NbversionError(f"--model {model}: Ultralytics cannot build it ({exc})",
                                 hint="use a config like yolov8n.yaml, a .pt file, or NAME@champion") from exc
    raise NbversionError(f"--model {model}: no such file",
                         hint="give yolov8n.yaml (random init), yolov8n.pt (pretrained), a weights file, "
                              "NAME@champion, NAME@vX.Y.Z or NAME@latest")


def train(model: str, args: dict, callbacks: dict[str, Callable], resume_from: Optional[str] = None,
          log_file: Optional[Path] = None):
    """Run `YOLO(...).train(**args)` with our callbacks added; blocks until training ends.

    `resume_from`: a checkpoint with optimizer state; Ultralytics restores args and epoch from it.
    `log_file`: Ultralytics' console output of this training goes there (appended: a resumed run).
    """
    prepare()
    from ultralytics import YOLO

    with training_log(log_file) as log_callbacks:
        yolo = YOLO(resume_from) if resume_from else build_model(model)
        for event, function in [*callbacks.items(), *log_callbacks.items()]:
            yolo.add_callback(event, function)
        if resume_from:
            keep = {k: v for k, v in args.items() if k in ("device", "workers", "amp", "plots")}
            return yolo.train(resume=resume_from, **keep)
        return yolo.train(**args)


@contextlib.contextmanager
def training_log(log_file: Optional[Path]):
    """Ultralytics' LOGGER at INFO into `log_file` for one training; yields the callbacks that add
    its epoch lines (the progress bar that prints them on a console is off with YOLO_VERBOSE=false).

    The console handler keeps its own level, so the cell running meanwhile stays quiet; the
    logger's level and our handler are put back however the training ends.
    """
    if log_file is None:
        yield {}
        return
    from ultralytics.utils import LOGGER

    handler = logging.FileHandler(log_file, mode="a", encoding="utf-8")
    handler.setLevel(logging.INFO)
    console_format = next((h.formatter for h in LOGGER.handlers if h.formatter is not None), None)
    handler.setFormatter(_PlainText(console_format))
    mine = threading.get_ident()   # two trainings in one process (two GPUs): each its own lines
    handler.addFilter(lambda record: record.thread == mine or not record.threadName.startswith("nbversion-train-"))
    with _log_level_lock:
        if not _log_level_saved:   # the first training log of this process: INFO from now on
            _log_level_saved.update(logger=LOGGER.level, consoles=[(h, h.level) for h in LOGGER.handlers])
            for console, was in _log_level_saved["consoles"]:   # INFO reaches our file, not the cell
                console.setLevel(max(was, LOGGER.level))
            LOGGER.setLevel(logging.INFO)
        _log_level_saved["users"] = _log_level_saved.get("users", 0) + 1
        LOGGER.addHandler(handler)
    try:
        yield {"on_train_epoch_end": lambda trainer: _log_epoch_line(LOGGER, trainer)}
    finally:
        with _log_level_lock:
            LOGGER.removeHandler(handler)
            _log_level_saved["users"] -= 1
            if not _log_level_saved["users"]:   # the last one puts Ultralytics' levels back
                LOGGER.setLevel(_log_level_saved["logger"])
                for console, was in _log_level_saved["consoles"]:
                    console.setLevel(was)
                _log_level_saved.clear()
        handler.close()


_log_level_lock = threading.Lock()
_log_level_saved: dict = {}   # Ultralytics' own levels while training logs are open


class _PlainText(logging.Formatter):
    """Ultralytics' console format (WARNING ⚠️ prefixes) without the terminal colour codes."""

    ANSI = re.compile(r"\x1b\[[0-9;]*m")

    def __init__(self, console: Optional[logging.Formatter]):
        super().__init__("%(message)s")
        self.console = console

    def format(self, record: logging.LogRecord) -> str:
        # the console formatter prefixes record.msg in place: format a copy, not the record others see
        text = (self.console or super()).format(logging.makeLogRecord(record.__dict__))
        return self.ANSI.sub("", text)


def _log_epoch_line(log, trainer) -> None:
    """What Ultralytics' progress bars (off with YOLO_VERBOSE=false) end an epoch with: epoch, GPU
    memory, losses, image size; then the header of the validation table that follows."""
    try:
        losses = list(trainer.tloss.values()) if hasattr(trainer.tloss, "values") else list(trainer.tloss)
        memory = trainer._get_memory() if hasattr(trainer, "_get_memory") else 0.0
        log.info(("%11s" * 2 + "%11.4g" * len(losses) + "%11s" * 2) % (
            f"{trainer.epoch + 1}/{trainer.epochs}", f"{memory:.3g}G", *[float(v) for v in losses], "-",
            trainer.args.imgsz))
        validator = getattr(trainer, "validator", None)
        if validator is not None and hasattr(validator, "get_desc"):
            log.info(validator.get_desc())
    except Exception:   # a log line must never stop the training
        logger.debug("could not write the epoch line to train.log", exc_info=True)


def predict(weights, images: Iterable[str], conf: float, iou: float, imgsz: Optional[int],
            task: Optional[str] = None) -> list[dict]:
    """One dict per image: boxes as (class name, confidence, xyxy), annotated RGB array, speed (ms).

    `weights`: a .pt, an ONNX / TorchScript export or an export folder; `task` as `load_yolo`.
    """
    yolo = load_yolo(weights, task)
    kwargs = {"conf": conf, "iou": iou, "verbose": False, "device": "cpu" if not cuda_devices() else None}
    if imgsz:
        kwargs["imgsz"] = imgsz
    images = [str(i) for i in images]
    # a warm-up on the first image: an export is opened by its runtime only at the first prediction (a
    # damaged one fails here, said as such), and the times reported leave the runtime's start out
    try:
        yolo.predict(images[:1], **{k: v for k, v in kwargs.items() if v is not None})
    except UNLOADABLE as exc:
        raise _not_a_model(weights, exc) from None
    found = []
    # one image per call: Ultralytics' `speed` is per batch, and each image's own time is reported
    for result in (yolo.predict(image, **{k: v for k, v in kwargs.items() if v is not None})[0] for image in images):
        names = result.names
        boxes = [(names[int(c)], float(p), [float(v) for v in xyxy])
                 for c, p, xyxy in zip(result.boxes.cls.tolist(), result.boxes.conf.tolist(),
                                       result.boxes.xyxy.tolist())]
        found.append({"boxes": boxes, "annotated": result.plot()[..., ::-1].copy(),
                      "ms": sum(v for v in result.speed.values() if v is not None)})
    return found


# --- export (`nbversion export`) and the boxes its check compares ------------------------------
def export(weights: Path, fmt: str, imgsz: Optional[int], half: bool, dynamic: bool) -> tuple[Path, dict]:
    """`YOLO(weights).export(...)` on the CPU; returns (what it wrote, the arguments it used).

    The exporter writes beside `weights`: the caller passes a copy in a temp folder. What the
    exporter prints (banners, torch.jit warnings) goes to the debug log, not into the cell.
    """
    prepare()
    import contextlib
    import io
    import warnings

    import ultralytics
    from ultralytics import YOLO

    chatter = io.StringIO()
    with contextlib.redirect_stdout(chatter), contextlib.redirect_stderr(chatter), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            yolo = YOLO(str(weights))
            used = {"format": fmt, "imgsz": imgsz or yolo.overrides.get("imgsz") or yolo.model.args.get("imgsz"),
                    "half": half, "dynamic": dynamic, "ultralytics": ultralytics.__version__}
            written = yolo.export(format=fmt, imgsz=used["imgsz"], half=half, dynamic=dynamic,
                                  device="cpu", verbose=False)
        except Exception as exc:   # Ultralytics raises whatever its loader or converter hits
            logger.debug("Ultralytics export to %s failed; its output:\n%s", fmt, chatter.getvalue(), exc_info=True)
            first = _first_line(exc).replace("ERROR ❌️", "").replace(str(weights), Path(weights).name).strip()
            first = first.split(". ")[0].rstrip(".")   # what follows is Ultralytics' advice to download a model
            raise NbversionError(f"export of {Path(weights).name} to {fmt} failed: {_clip(first, 200)}",
                                 hint="export an Ultralytics checkpoint (a run, NAME@champion, a run's best.pt); "
                                      "`nbversion -v export ...` shows the exporter's output") from None
    logger.debug("Ultralytics export to %s:\n%s", fmt, chatter.getvalue())
    return Path(written), used


def detect_boxes(weights: Path, images: list, conf: float, imgsz: int) -> list[dict]:
    """Per image {"boxes": [(class id, confidence, xyxy)], "ms"} of any format Ultralytics runs;
    one warm-up image first, so the times are those of a served model, not of its first call."""
    prepare()
    import warnings

    from ultralytics import YOLO

    with warnings.catch_warnings():   # torch.jit.load's deprecation notice: not the user's business
        warnings.simplefilter("ignore")
        yolo = YOLO(str(weights), task="detect")
        kwargs = {"conf": conf, "imgsz": imgsz, "verbose": False, "device": "cpu"}
        yolo.predict(str(images[0]), **kwargs)
    found = []
    for image in images:
        result = yolo.predict(str(image), **kwargs)[0]
        found.append({"boxes": list(zip(result.boxes.cls.int().tolist(), result.boxes.conf.tolist(),
                                        result.boxes.xyxy.tolist())),
                      "ms": sum(v for v in result.speed.values() if v is not None)})
    return found
