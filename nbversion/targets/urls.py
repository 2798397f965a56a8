"""Target URLs: `ssh://[user@]host[:port]/path`, `slurm://[user@]login-host/path?partition=P&gpus=N&time=T`,
`ray://head:8265[?workdir=/path&gpus=N]` (the Ray Jobs API on the dashboard port). Parsed and checked before anything is stored."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Optional
from urllib.parse import parse_qsl, urlsplit

from ..errors import UsageError

KINDS = ("ssh", "slurm", "ray")
RUNNABLE = ("ssh", "slurm", "ray")      # the kinds `train --on` can use in this version
SLURM_KEYS = {"partition": r"[A-Za-z0-9_.-]+", "gpus": r"[0-9]+", "time": r"[0-9:-]+",
              "account": r"[A-Za-z0-9_.-]+", "qos": r"[A-Za-z0-9_.-]+"}
HINT = "ssh://[user@]host[:port]/path | slurm://[user@]login-host/path?partition=P&gpus=N&time=HH:MM:SS | ray://head:8265"


@dataclass
class TargetUrl:
    url: str
    kind: str                            # ssh | slurm | ray
    host: str
    user: Optional[str] = None
    port: Optional[int] = None
    path: str = ""                       # the folder on the host the workspaces are cloned under
    options: dict = field(default_factory=dict)   # slurm: partition, gpus, time...

    @property
    def login(self) -> str:
        return f"{self.user}@{self.host}" if self.user else self.host


def parse(url: str) -> TargetUrl:
    """A target URL checked part by part; a UsageError names the part that is wrong."""
    if not isinstance(url, str) or not url.strip():
        raise UsageError("a target URL is needed", hint=HINT)
    parts = urlsplit(url.strip())
    kind = parts.scheme.lower()
    if kind not in KINDS:
        raise UsageError(f"target URL {url!r}: unknown scheme {parts.scheme or '(none)'!r}",
                         hint=f"use one of: {HINT}")
    try:
        port = parts.port
    except ValueError:
        raise UsageError(f"target URL {url!r}: the port is not a number from 1 to 65535", hint=HINT) from None
    if not parts.hostname:
        raise UsageError(f"target URL {url!r}: the host is missing", hint=HINT)
    if parts.fragment or parts.password:
        raise UsageError(f"target URL {url!r}: a password or #fragment has no place in a target URL",
                         hint="an SSH key is given with --keyfile FILE")
    target = TargetUrl(url.strip(), kind, parts.hostname, parts.username, port, parts.path.rstrip("/"))
    if kind == "ray":
        _check_ray(target, parts)
    else:
        _check_path(target, parts)
        target.options = _slurm_options(url, parts.query) if kind == "slurm" else {}
        if kind == "ssh" and parts.query:
            raise UsageError(f"target URL {url!r}: an ssh:// target takes no ?query ({parts.query})", hint=HINT)
    return target


def _check_path(target: TargetUrl, parts) -> None:
    if not target.path or target.path == "/":
        raise UsageError(f"target URL {target.url!r}: the path is missing (the folder on {target.host} "
                         "where workspaces are cloned)", hint=f"e.g. {target.kind}://{target.login}/scratch/nbversion")
    if not target.path.startswith("/") or ".." in target.path.split("/"):
        raise UsageError(f"target URL {target.url!r}: the path {target.path!r} must be absolute, without '..'",
                         hint=HINT)
    if re.search(r"[\s'\"\\$`;|&<>]", target.path):
        raise UsageError(f"target URL {target.url!r}: the path {target.path!r} has a space or a shell character",
                         hint="choose a folder name of letters, digits, '/', '-', '_' and '.'")


def _slurm_options(url: str, query: str) -> dict:
    options = {}
    for key, value in parse_qsl(query, keep_blank_values=True):
        if key not in SLURM_KEYS:
            raise UsageError(f"target URL {url!r}: unknown query key {key!r}",
                             hint="slurm:// takes " + ", ".join(f"{k}=..." for k in SLURM_KEYS))
        if not re.fullmatch(SLURM_KEYS[key], value):
            raise UsageError(f"target URL {url!r}: {key}={value!r} is not a valid value",
                             hint="e.g. partition=gpu&gpus=1&time=02:00:00")
        options[key] = int(value) if key == "gpus" else value
    return options


RAY_KEYS = {"workdir": r"/[A-Za-z0-9/_.-]*", "gpus": r"[0-9]+"}   # the job's folder on the node, its GPUs


def _check_ray(target: TargetUrl, parts) -> None:
    if target.path:
        raise UsageError(f"target URL {target.url!r}: a ray:// target is the head's dashboard address "
                         f"(no path: {parts.path}); the folder on the node is ?workdir=/path",
                         hint="e.g. ray://head:8265 or ray://head:8265?workdir=/scratch/nbversion&gpus=1")
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        if key not in RAY_KEYS:
            raise UsageError(f"target URL {target.url!r}: unknown query key {key!r}",
                             hint="ray:// takes workdir=/absolute/path and gpus=N")
        if not re.fullmatch(RAY_KEYS[key], value) or ".." in value.split("/"):
            raise UsageError(f"target URL {target.url!r}: {key}={value!r} is not a valid value",
                             hint="workdir: an absolute path without spaces or '..'; gpus: a number")
        target.options[key] = int(value) if key == "gpus" else value
    if target.user:
        raise UsageError(f"target URL {target.url!r}: a ray:// target has no user", hint="e.g. ray://head:8265")
    target.port = target.port or 8265
