"""Deploy hooks run after a successful promotion, and their history `.nbversion/deploys.jsonl`.

A stage's `[stages.<stage>.deploy]` in rules.toml may name a `command` (run by the shell in
the workspace, with NBVERSION_* variables) and/or a `webhook` (POSTed the promotion as JSON).
A failing hook never undoes the promotion: it is reported and recorded.
"""
from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass, field
from typing import Optional

from ..result import Result
from ..audit.chain import now_iso
from ..repo.config import META_DIR

from typing import TYPE_CHECKING

logger = logging.getLogger(__name__)

if TYPE_CHECKING:   # annotations only: core.workspace imports this module into Workspace
    from ..workspace import Workspace

DEPLOYS_FILE = f"{META_DIR}/deploys.jsonl"
OUTPUT_LIMIT = 4000          # characters of hook output kept in the history


@dataclass
class DeployRecord:
    time: str
    name: str
    version: str
    stage: str
    user: str
    hook: str                # "command" | "webhook"
    target: str
    ok: bool
    status: Optional[int]    # exit code or HTTP status
    output: str
    seconds: float

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def payload(name: str, version: str, stage: str, user: str, paths: list, previous: Optional[str],
            commit: str) -> dict:
    return {"name": name, "version": version, "stage": stage, "paths": paths, "user": user,
            "previous": previous, "commit": commit, "time": now_iso()}


def run_command(root, command: str, data: dict, timeout: float) -> tuple[bool, Optional[int], str]:
    import subprocess

    env = dict(os.environ, NBVERSION_NAME=data["name"], NBVERSION_VERSION=data["version"],
               NBVERSION_STAGE=data["stage"], NBVERSION_USER=data["user"],
               NBVERSION_PATH=(data["paths"] or [""])[0], NBVERSION_PREVIOUS=data["previous"] or "",
               NBVERSION_PAYLOAD=json.dumps(data))
    try:
        proc = subprocess.run(command, shell=True, cwd=str(root), env=env, capture_output=True, text=True,
                              timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        return False, None, f"timed out after {timeout:g} s\n{exc.stdout or ''}"
    return proc.returncode == 0, proc.returncode, (proc.stdout + proc.stderr)


def post_webhook(url: str, data: dict, timeout: float) -> tuple[bool, Optional[int], str]:
    import urllib.error   # with http.client and ssl, ~15 ms that only a webhook should pay
    import urllib.request

    request = urllib.request.Request(url, data=json.dumps(data).encode(), method="POST",
                                     headers={"Content-Type": "application/json",
                                              "User-Agent": "nbversion-deploy"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            body = response.read(OUTPUT_LIMIT).decode("utf-8", "replace")
            return 200 <= response.status < 300, response.status, body
    except urllib.error.HTTPError as exc:
        return False, exc.code, exc.read(OUTPUT_LIMIT).decode("utf-8", "replace")
    except (urllib.error.URLError, OSError) as exc:
        return False, None, f"could not reach {url}: {getattr(exc, 'reason', exc)}"


def run_hooks(root, hooks: dict, data: dict) -> list[DeployRecord]:
    """Run the stage's command and webhook; never raises for a failing hook."""
    timeout = float(hooks.get("timeout", 300))
    records = []
    for kind, target in (("command", hooks.get("command")), ("webhook", hooks.get("webhook"))):
        if not target:
            continue
        start = time.perf_counter()
        if kind == "command":
            ok, status, output = run_command(root, target, data, timeout)
        else:
            ok, status, output = post_webhook(target, data, min(timeout, 30.0))
        logger.debug("deploy %s %s for %s@%s: ok %s, status %s, %.2f s", kind, target, data["name"], data["version"],
                     ok, status, time.perf_counter() - start)
        records.append(DeployRecord(now_iso(), data["name"], data["version"], data["stage"], data["user"], kind,
                                    target, ok, status, output[-OUTPUT_LIMIT:], round(time.perf_counter() - start, 3)))
    return records


def append_history(root, records: list[DeployRecord]) -> None:
    path = root / DEPLOYS_FILE
    with open(path, "a", encoding="utf-8") as fh:
        for record in records:
            fh.write(json.dumps(record.to_dict(), sort_keys=True) + "\n")
        fh.flush()
        os.fsync(fh.fileno())


def read_history(root, name: Optional[str] = None) -> list[dict]:
    path = root / DEPLOYS_FILE
    if not path.exists():
        return []
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            row = json.loads(line)
        except ValueError:   # a torn last line from a killed process
            logger.debug("skipping a line of %s that is not JSON", path, exc_info=True)
            continue
        if name is None or row.get("name") == name:
            rows.append(row)
    return rows


@dataclass
class DeploysResult(Result):
    deploys: list = field(default_factory=list)

    def table(self):
        rows = [[d["time"][:19], d["name"], d["version"], d["stage"], d["hook"], "ok" if d["ok"] else "FAILED",
                 d["status"], d["user"], (d["output"] or "").strip().splitlines()[-1][:60] if (d["output"] or "").strip() else ""]
                for d in self.deploys]
        return ["time", "model", "version", "stage", "hook", "result", "status", "user", "output"], rows

    def highlight(self, row) -> bool:
        return row[5] == "FAILED"

    def summary(self):
        failed = sum(1 for d in self.deploys if not d["ok"])
        if not self.deploys:
            return "no deploys yet: add [stages.<stage>.deploy] to .nbversion/rules.toml"
        return f"{len(self.deploys)} hook run(s), {failed} failed"


def deploys(ws: Workspace, name: Optional[str] = None) -> DeploysResult:
    """Deploy hook history (`nbversion deploys`).

    Args:
        name: only this model's deploys (default: all).

    Returns:
        DeploysResult: `deploys`, one dict per hook run.

    Example:
        >>> ws = nbv.open(".")
        >>> ws.deploys("det")
    """
    return DeploysResult(read_history(ws.root, name))
