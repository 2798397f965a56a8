"""The notebook side of a run on a ray:// target: the job's log is the live view, the DVC remote
brings the results back.

Every few seconds it reads the job's state and log from the Jobs API: the host's per-epoch
`NBVERSION-TARGET-PROGRESS` lines rebuild results.csv here (fed to the same observer a local run
has: epochs, metrics, ETA), and `NBVERSION-TARGET-END` names the md5s of run.json, results.csv,
train.log and the weights, pushed by the host to the team's DVC remote. They are fetched, their
md5s checked, and the run is committed by follow.py's `_follow`, as for an ssh:// target. Stop is
`ray job stop` (SIGTERM: the host stops after the current batch and keeps resumable weights).
"""
from __future__ import annotations

import json
import logging
import shutil
import tempfile
from pathlib import Path
from typing import Optional

from ..training import runs
from ..training.handle import Run
from . import objects
from .ray_host import parse_log
from .ray_jobs import ENDED, JobsApi

logger = logging.getLogger(__name__)

POLL_SECONDS = 2.0
MAX_FAILED_POLLS = 30


class RayRun(Run):
    """A run training as a Ray job: Stop is `ray job stop` (the host stops cleanly on SIGTERM)."""

    def __init__(self, root, run_id: str, target, job_id: str):
        super().__init__(root, run_id)
        self.target, self.job_id, self.api = target, job_id, JobsApi(target)
        self.stop_sent = False

    def stop(self) -> "Run":
        self.api.stop(self.job_id)
        self.stop_sent = True
        self.note = (f"stop requested on target {self.target.name} (Ray job {self.job_id}): "
                     "it ends after the current batch")
        return self

    def poll_until_ended(self, follower) -> dict:
        """The END line's target.json; a job that ended without one is a failed run, with the job's reason."""
        local = runs.run_dir(self.root, self.run_id)
        earlier = (local / "results.csv").read_text().splitlines() if (local / "results.csv").exists() else []
        failures, shown = 0, 0
        while True:
            try:
                info = self.api.info(self.job_id)
                progress, ended = parse_log(self.api.logs(self.job_id))
                failures = 0
            except Exception:   # the head unreachable for a while: the job goes on there
                failures += 1
                logger.debug("polling Ray job %s failed (%d in a row)", self.job_id, failures, exc_info=True)
                if failures >= MAX_FAILED_POLLS:
                    raise
                self.finished.wait(POLL_SECONDS * 2)
                continue
            if len(progress) > shown:
                shown = len(progress)
                _write_csv(local / "results.csv", earlier, progress)
                follower.poll()
            if ended is not None:
                return ended
            if (local / runs.STOP_FILE).exists() and not self.stop_sent:   # `runs stop` from another process
                self.stop()
            if info.get("status") in ENDED:   # the END line is written before the job ends: read once more
                ended = parse_log(self.api.logs(self.job_id))[1]
                return ended or self._ended_without_a_word(info)
            self.finished.wait(POLL_SECONDS)

    def _ended_without_a_word(self, info: dict) -> dict:
        tail = " | ".join(self.api.logs(self.job_id).strip().splitlines()[-5:])[-600:]
        return {"status": "failed", "weights": {}, "files": {}, "pushed": True,
                "error": f"the Ray job {self.job_id} on target {self.target.name} is {info.get('status')}: "
                         f"{(info.get('message') or '').strip()} (last lines of its log: {tail})"}

    def bring_back(self, ws, ended: dict) -> tuple[str, Optional[str]]:
        """The host's files and weights from the DVC remote, md5-checked; returns (status, error) to commit."""
        from .follow import OUTCOME_KEYS, _data_remote

        if not ended.get("pushed"):
            raise RuntimeError(f"the target could not push the run's files: {ended.get('push_error')}")
        local = runs.run_dir(ws.root, self.run_id)
        files, weights = ended.get("files") or {}, ended.get("weights") or {}
        if files or weights:
            objects.fetch(ws.root, _data_remote(ws.root), set(files.values()) | set(weights.values()))
        there = {}
        with tempfile.TemporaryDirectory(prefix="nbv-ray-") as tmp:
            objects.place_files(ws.root, files, Path(tmp) / "files")   # each md5 checked
            for name in ("results.csv", "train.log"):
                if name in files:
                    shutil.copyfile(Path(tmp) / "files" / name, local / name)
            if "run.json" in files:
                there = json.loads((Path(tmp) / "files" / "run.json").read_text())
        runs.update(ws.root, self.run_id, **{k: there[k] for k in OUTCOME_KEYS if k in there},
                    target_ended=ended.get("at"))
        if weights:
            objects.place_files(ws.root, weights, local / "weights")
        return ended.get("status") or "failed", ended.get("error")


def _write_csv(path: Path, earlier: list, progress: list) -> None:
    """results.csv from an earlier attempt's rows and this job's: the reader keeps an epoch's last row."""
    header = progress[-1]["header"]
    rows = [line for line in earlier[1:] if line.strip()] + [p["row"] for p in progress]
    path.write_text("\n".join([header, *rows]) + "\n")
