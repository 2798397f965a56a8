"""The host side's extras when it runs as a Ray job (spec["report"] == "log"): no SSH reaches it.

So everything the notebook needs travels through the job's log and the DVC remote:
- one `NBVERSION-TARGET-PROGRESS {json}` line per epoch (results.csv's header and new row),
- SIGTERM (what `ray job stop` sends) asks for the same clean stop as the STOP file: the trainer
  ends after the current batch and keeps resumable weights,
- at the end run.json, results.csv and train.log are stored as DVC objects and pushed with the
  weights; `NBVERSION-TARGET-END {target.json}` names their md5s, as the job's last line.
"""
from __future__ import annotations

import json
import signal
import sys
from pathlib import Path

from . import objects

PROGRESS = "NBVERSION-TARGET-PROGRESS "
END = "NBVERSION-TARGET-END "
FILES = ("run.json", "results.csv", "train.log")


def reports(spec: dict) -> bool:
    return spec.get("report") == "log"


def _say(prefix: str, data: dict) -> None:
    sys.stdout.write(prefix + json.dumps(data) + "\n")   # the job's log is how the notebook hears us
    sys.stdout.flush()


def progress_printer(folder: Path):
    """An observer's `emit`: each epoch's results.csv row (Ultralytics writes it before the callback)."""
    def emit(event) -> None:
        if event.stage != "epoch":
            return
        lines = (folder / "results.csv").read_text().splitlines() if (folder / "results.csv").exists() else []
        if len(lines) >= 2:
            _say(PROGRESS, {"epoch": event.done, "epochs": event.total, "header": lines[0], "row": lines[-1]})
    return emit


def stop_on_sigterm(observer) -> None:
    """`ray job stop` sends SIGTERM (RAY_JOB_STOP_SIGNAL) and waits RAY_JOB_STOP_WAIT_TIME_S before SIGKILL."""
    signal.signal(signal.SIGTERM, lambda signum, frame: observer.stop_requested.set())


def hand_back_files(root, folder: Path, remote: str) -> dict:
    """run.json, results.csv and train.log as objects on the DVC remote: {name: md5}."""
    files = {}
    for name in FILES:
        if (folder / name).is_file():
            files[name] = objects.store_file(root, folder / name)
    objects.push(root, remote, set(files.values()))
    return files


def say_end(ended: dict) -> None:
    _say(END, ended)


def parse_log(text: str) -> tuple[list, dict | None]:
    """(progress lines' data, the END line's data or None) read from a job's log."""
    progress, ended = [], None
    for line in text.splitlines():
        if line.startswith(PROGRESS):
            try:
                progress.append(json.loads(line[len(PROGRESS):]))
            except ValueError:   # a line cut by the log's end: read again next poll
                continue
        elif line.startswith(END):
            try:
                ended = json.loads(line[len(END):])
            except ValueError:
                continue
    return progress, ended
