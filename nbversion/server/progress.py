"""Live progress: `GET runs/progress?cursor=C&wait=S` answers only what changed since C.

A training run rewrites `runs/<id>/run.json` (and `results.csv`) once per epoch; a commit
rewrites `.git/index` and a branch ref, a registration or promotion adds tags, every mutation
appends to the audit log. So a `stat` of a few files says what changed, without reading them.
The server remembers each file's signature (inode, size, mtime): an atomic rewrite gets a
new inode, so even two writes in the same clock tick are seen. Each change bumps a counter;
the cursor is that counter, prefixed by an id of this server process so a cursor from before
a restart is answered in full, not trusted.

With `wait`, the request is held open (a long poll, stat calls only, off the event loop)
until something changes or the wait ends: an idle sidebar costs one request every ~25 s,
not one a second.
"""
from __future__ import annotations

import asyncio
import json
import logging
import math
import os
import threading
import time
import uuid
from pathlib import Path

import tornado.web

from ..errors import NbversionError, UsageError
from .handlers import EXECUTOR, NbversionHandler

logger = logging.getLogger(__name__)

RUN_FILES = ("run.json", "results.csv")
MAX_WAIT_S = 30.0
CHECK_EVERY_S = 0.5
SERVER_ID = uuid.uuid4().hex[:8]

# sidebar section -> files (or folders: renames inside change their mtime) that move with it
SECTION_FILES = {
    "status": (".git/index", ".git/HEAD"),
    "datasets": (".git/HEAD", ".git/refs/heads", ".git/packed-refs"),
    "registry": (".git/refs/tags", ".git/packed-refs"),
    "audit": (".nbversion/audit.jsonl",),
}


def _signature(path: str):
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return st.st_ino, st.st_size, st.st_mtime_ns


def run_files(root: Path) -> dict[str, list[str]]:
    """run id -> its progress files; one scandir, no reads."""
    try:
        entries = list(os.scandir(Path(root) / "runs"))
    except FileNotFoundError:
        return {}
    return {e.name: [os.path.join(e.path, name) for name in RUN_FILES] for e in entries if e.is_dir()}


class ChangeCounter:
    """Per workspace: the last signature of every watched file and the count at which it moved."""

    def __init__(self):
        self.lock = threading.Lock()
        self.count = 0
        self.seen: dict[str, tuple] = {}      # path -> (signature, count when it last changed)

    def observe(self, paths) -> dict[str, int]:
        """Stat `paths`; returns path -> count of its last change (bumping the changed ones)."""
        with self.lock:
            changed_at = {}
            for path in paths:
                signature = _signature(path)
                known = self.seen.get(path)
                if known is None or known[0] != signature:
                    self.count += 1
                    known = (signature, self.count)
                    self.seen[path] = known
                changed_at[path] = known[1]
            return changed_at


_counters: dict[str, ChangeCounter] = {}
_counters_lock = threading.Lock()


def counter_for(root: Path) -> ChangeCounter:
    with _counters_lock:
        return _counters.setdefault(str(root), ChangeCounter())


def parse_cursor(text: str) -> int:
    """The change count the client has seen; 0 (everything) for another server's cursor."""
    text = text or "0"
    server, colon, count = text.partition(":")
    if text == "0" or (colon and server != SERVER_ID and count.isdigit()):
        return 0
    if server != SERVER_ID or not count.isdigit():
        raise UsageError(f"`cursor` {text!r} is not a cursor from this API",
                         hint="start with cursor=0 and send back the cursor of each answer")
    return int(count)


def parse_wait(text: str) -> float:
    """Seconds to hold the request, at most MAX_WAIT_S; `nan` would never end the wait."""
    try:
        wait = float(text or 0)
    except ValueError:
        wait = float("nan")
    if not math.isfinite(wait) or wait < 0:
        raise UsageError(f"`wait` must be a number of seconds, 0 to {MAX_WAIT_S:g}, not {text[:40]!r}",
                         hint="e.g. wait=25 (longer waits are cut to 30)")
    return min(wait, MAX_WAIT_S)


MAP_KEYS = ("mAP50-95", "metrics/mAP50-95(B)", "mAP50", "metrics/mAP50(B)")


def _map_of(*sources: dict):
    for source in sources:
        for key in MAP_KEYS:
            if isinstance(source.get(key), (int, float)):
                return source[key]
    return None


def _status(record: dict) -> str:
    """The run's status, with "running" from a dead process shown as failed (as `runs list` does)."""
    try:
        from ..training.runs import effective_status
    except ImportError:   # training not installed: the record is all there is
        return record.get("status", "unknown")
    return effective_status(record)


def run_summary(root: Path, run_id: str) -> dict:
    """What the sidebar shows of a run; tolerant of a run.json being written right now.

    run.json (nbversion.training.runs): {"status", "params": {"epochs"}, "epochs": [per-epoch
    metrics], "metrics": {best epoch}}.
    """
    try:
        record = json.loads((Path(root) / "runs" / run_id / "run.json").read_text())
    except (OSError, ValueError):
        record = {}
    series = record.get("epochs") if isinstance(record.get("epochs"), list) else []
    last = series[-1] if series and isinstance(series[-1], dict) else {}
    best = record.get("metrics") if isinstance(record.get("metrics"), dict) else {}
    params = record.get("params") if isinstance(record.get("params"), dict) else {}
    return {"id": run_id, "status": _status(record) if record else "unknown",
            "epoch": last.get("epoch", len(series)), "epochs": params.get("epochs"),
            "map": _map_of(last, best), "metrics": last,
            "error": record.get("error"), "commit_error": record.get("commit_error")}


def changes_since(root: Path, cursor: int) -> dict:
    root = Path(root)
    runs = run_files(root)
    sections = {name: [str(root / f) for f in files] for name, files in SECTION_FILES.items()}
    counter = counter_for(root)
    changed_at = counter.observe([p for files in (*runs.values(), *sections.values()) for p in files])
    newer = lambda files: any(changed_at[p] > cursor for p in files)
    return {"cursor": f"{SERVER_ID}:{counter.count}",
            "runs": [run_summary(root, rid) for rid in sorted(runs) if newer(runs[rid])],
            "sections": [name for name, files in sections.items() if newer(files)]}


class ProgressHandler(NbversionHandler):
    """Long poll: returns at once when something changed, else after `wait` seconds."""

    _track_activity = False   # a waiting sidebar is not user activity (idle culling must still work)

    @tornado.web.authenticated
    async def get(self):
        try:
            cursor = parse_cursor(self.get_argument("cursor", "0"))
            wait = parse_wait(self.get_argument("wait", "0"))
        except NbversionError as exc:
            return self.fail(exc)
        loop = asyncio.get_running_loop()
        deadline = time.monotonic() + wait
        while True:
            answer = await loop.run_in_executor(EXECUTOR, changes_since, self.workspace_path, cursor)
            if answer["runs"] or answer["sections"] or time.monotonic() >= deadline or self.request.connection.stream.closed():
                break
            await asyncio.sleep(CHECK_EVERY_S)
        logger.debug("GET progress since %d: %d run(s) and sections %s changed", cursor, len(answer["runs"]),
                     answer["sections"])
        self.finish(json.dumps(answer, default=str))
