"""The Ray Jobs API of a ray:// target: plain HTTP (urllib) against the head's dashboard port.

Why not `ray.job_submission.JobSubmissionClient`: the notebook would need `ray[default]`
(~300 MB, its own grpcio/protobuf pins) only to send a few JSON requests; the REST API
(`/api/jobs/`) is what that client speaks, and it is stable across Ray 2.x. Only the cluster
needs Ray. A cluster with token authentication (Ray >= 2.5x's default) is reached with its token:
the target's `--keyfile` (the token file), else `RAY_AUTH_TOKEN`, `RAY_AUTH_TOKEN_PATH` or
`~/.ray/auth_token`, Ray's own order.
"""
from __future__ import annotations

import json
import logging
import os
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Optional

from ..errors import NotFound, RemoteUnreachable

logger = logging.getLogger(__name__)

ENDED = ("SUCCEEDED", "FAILED", "STOPPED")


class JobsApi:
    """One ray:// target's Jobs API: submit, status, logs, stop."""

    def __init__(self, target):
        self.target, self.url = target, target.url
        self.base = f"http://{self.url.host}:{self.url.port}/api/jobs/"

    def _token(self) -> Optional[str]:
        if self.target.keyfile:
            try:
                return Path(self.target.keyfile).read_text().strip()
            except OSError as exc:
                raise NotFound(f"target {self.target.name}: its token file {self.target.keyfile} "
                               f"cannot be read ({exc.strerror})", hint="copy the cluster's ~/.ray/auth_token there, or "
                                                         "`nbversion target add` it again with --keyfile FILE") from None
        if os.environ.get("RAY_AUTH_TOKEN"):
            return os.environ["RAY_AUTH_TOKEN"].strip()
        path = Path(os.environ.get("RAY_AUTH_TOKEN_PATH") or Path.home() / ".ray" / "auth_token")
        return path.read_text().strip() if path.is_file() else None

    def _call(self, method: str, path: str = "", body: Optional[dict] = None, what: str = "") -> dict:
        headers = {"Content-Type": "application/json"}
        token = self._token()
        if token:
            headers["Authorization"] = f"Bearer {token}"
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.base + path, data=data, method=method, headers=headers)
        where = f"{self.url.host}:{self.url.port}"
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                return json.loads(response.read().decode() or "{}")
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode(errors="replace").strip()[-400:]
            hint = ("give the cluster's token file with `nbversion target add NAME ray://head:8265 --keyfile FILE` "
                    "(Ray writes it to ~/.ray/auth_token on the head)" if exc.code in (401, 403)
                    else "check the cluster with `ray job list` there")
            raise RemoteUnreachable(f"target {self.target.name}: the Ray Jobs API at {where} refused "
                                    f"{what or method} (HTTP {exc.code}): {detail}", hint=hint) from None
        except (urllib.error.URLError, OSError, ValueError) as exc:
            raise RemoteUnreachable(f"target {self.target.name}: cannot reach the Ray Jobs API at {where}: "
                                    f"{getattr(exc, 'reason', exc)}",
                                    hint="is the head running with its dashboard (`ray start --head "
                                         "--dashboard-host 0.0.0.0`)? check the host and port") from None

    def submit(self, submission_id: str, entrypoint: str, env_vars: dict, gpus: int = 0) -> str:
        body = {"entrypoint": entrypoint, "submission_id": submission_id, "runtime_env": {"env_vars": env_vars},
                "metadata": {"nbversion": "1"}}
        if gpus:   # the entrypoint then runs on a node with that many GPUs, not necessarily the head
            body["entrypoint_num_gpus"] = gpus
        return self._call("POST", "", body, what="submitting the job")["submission_id"]

    def info(self, submission_id: str) -> dict:
        """{"status": PENDING|RUNNING|STOPPED|SUCCEEDED|FAILED, "message", ...}."""
        return self._call("GET", submission_id, what="reading the job's state")

    def logs(self, submission_id: str) -> str:
        return self._call("GET", f"{submission_id}/logs", what="reading the job's logs").get("logs") or ""

    def stop(self, submission_id: str) -> bool:
        return bool(self._call("POST", f"{submission_id}/stop", {}, what="stopping the job").get("stopped"))

    def run_to_end(self, submission_id: str, entrypoint: str, timeout: float = 600) -> tuple[dict, str]:
        """A short job submitted and waited for: (its final info, its logs)."""
        self.submit(submission_id, entrypoint, {})
        deadline = time.monotonic() + timeout
        while True:
            info = self.info(submission_id)
            if info.get("status") in ENDED:
                return info, self.logs(submission_id)
            if time.monotonic() > deadline:
                self.stop(submission_id)
                raise RemoteUnreachable(f"target {self.target.name}: the job {submission_id} did not end within "
                                        f"{timeout:.0f}s (it is {info.get('status')})",
                                        hint="the cluster may lack free CPUs: `ray status` there")
            time.sleep(1)
