"""The audit log `.nbversion/audit.jsonl`: a hash DAG that merges across clones.

Each line is a JSON object with time, user, action, target, details, prev and hash. `hash` is
the sha256 of the line's canonical JSON without its own `hash`; `prev` names the log's head(s)
when the line was written: one hash (a string, as every linear log has it; 64 zeros for the
first line) or, after two clones' logs were merged, a list of every head. Two clones that each
appended merge without rewriting anything: `.gitattributes` gives the log git's `merge=union`,
so a plain `git merge` keeps both sides' lines (ours, then theirs) and leaves two heads, which
the next entry names. Editing a line, or removing, inserting or reordering one so that an
entry comes before a parent it names, is found at that line.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator, Optional

from ..layout import TMP_DIR

logger = logging.getLogger(__name__)

AUDIT_FILE = Path(".nbversion") / "audit.jsonl"
GENESIS = "0" * 64
FIELDS = ("time", "user", "action", "target", "details", "prev")
# committed in the workspace's .gitattributes: a plain `git merge` (or a colleague with only git)
# unions the two sides' appended lines instead of stopping on a conflict
MERGE_ATTRIBUTE = f"{AUDIT_FILE.as_posix()} merge=union"
HEADS_CACHE = Path(TMP_DIR) / "audit-heads.json"


def canonical(entry: dict) -> bytes:
    body = {k: entry.get(k) for k in FIELDS}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def entry_hash(entry: dict) -> str:
    return hashlib.sha256(canonical(entry)).hexdigest()


def now_iso(timespec: str = "microseconds") -> str:
    """UTC now in ISO 8601: microseconds order audit entries; metadata files say "seconds"."""
    return datetime.now(timezone.utc).isoformat(timespec=timespec)


def _last_line(path: Path) -> Optional[bytes]:
    """The last complete line, read backwards from the end: constant time for any size."""
    with open(path, "rb") as fh:
        fh.seek(0, os.SEEK_END)
        end = fh.tell()
        if end == 0:
            return None
        chunk, pos = b"", end
        while pos > 0:
            step = min(65536, pos)
            pos -= step
            fh.seek(pos)
            chunk = fh.read(step) + chunk
            lines = chunk.rstrip(b"\n").split(b"\n")
            if len(lines) > 1 or pos == 0:
                return lines[-1]
    return None


def parents_of(entry: dict) -> list[str]:
    """The hashes an entry names in `prev`: one for a linear log, several after a merge."""
    prev = entry.get("prev")
    return list(prev) if isinstance(prev, list) else [prev]


def heads(root: Path) -> list[str]:
    """The hashes no later entry names as a parent (sorted): one for a linear log, several after
    a plain `git merge` of two clones' logs, [GENESIS] for an empty one. Remembered in
    `.nbversion/tmp` against the file's size and mtime, so an append reads no history."""
    path = Path(root) / AUDIT_FILE
    try:
        stat = path.stat()
    except FileNotFoundError:
        return [GENESIS]
    stamp = [stat.st_size, stat.st_mtime_ns, stat.st_ino]
    cache = Path(root) / HEADS_CACHE
    try:
        cached = json.loads(cache.read_bytes())
        if cached["stamp"] == stamp:
            return cached["heads"]
    except (OSError, ValueError, KeyError, TypeError):
        pass   # no cache yet, or an old one: one scan below
    check = verify_chain(root)
    if check.ok:
        found = check.heads or [GENESIS]
    else:   # a damaged log (audit verify says where): go on from its last line, as a chain would
        found = [_last_good_hash(root)]
    _remember_heads(root, found)
    return found


def _last_good_hash(root: Path) -> str:
    line = _last_line(Path(root) / AUDIT_FILE)
    try:
        return json.loads(line)["hash"] if line else GENESIS
    except (ValueError, KeyError, TypeError):
        logger.debug("the last audit line has no hash: starting from the genesis", exc_info=True)
        return GENESIS


def _remember_heads(root: Path, found: list[str]) -> None:
    path, cache = Path(root) / AUDIT_FILE, Path(root) / HEADS_CACHE
    try:
        stat = path.stat()
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_name(f".{cache.name}.{os.getpid()}")
        tmp.write_text(json.dumps({"stamp": [stat.st_size, stat.st_mtime_ns, stat.st_ino], "heads": found}))
        os.replace(tmp, cache)
    except OSError:
        logger.debug("could not remember the audit log's heads; the next append scans again", exc_info=True)


def ensure_merge_attribute(root: Path) -> bool:
    """Give the log `merge=union` in the workspace's `.gitattributes` (for workspaces made before
    it existed); True if the file changed and must be committed."""
    path = Path(root) / ".gitattributes"
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    if MERGE_ATTRIBUTE in text.splitlines():
        return False
    path.write_text(text + ("" if not text or text.endswith("\n") else "\n") + MERGE_ATTRIBUTE + "\n", encoding="utf-8")
    return True


def repair_tail(root: Path) -> bool:
    """Drop a trailing partial line left by a killed append. Returns True if it changed the file."""
    path = Path(root) / AUDIT_FILE
    data = path.read_bytes()
    if not data or data.endswith(b"\n"):
        return False
    with open(path, "r+b") as fh:
        fh.truncate(data.rfind(b"\n") + 1)
    return True


def append(root: Path, user: str, action: str, target: str = "", details: Optional[dict] = None) -> dict:
    """Append one chained entry. The caller holds the workspace lock."""
    path = Path(root) / AUDIT_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists():
        repair_tail(root)
    tips = heads(root)
    entry = {"time": now_iso(), "user": user, "action": action, "target": target,
             "details": details or {}, "prev": tips[0] if len(tips) == 1 else tips}
    entry["hash"] = entry_hash(entry)
    line = json.dumps(entry, sort_keys=True, separators=(",", ":"), ensure_ascii=False) + "\n"
    # one write() of the whole line with O_APPEND: a kill leaves the line whole or torn at the end
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    _remember_heads(root, [entry["hash"]])
    logger.debug("audit %s %s by %s: %s (after %d head(s))", action, target, user, entry["hash"][:12], len(tips))
    return entry


def iter_entries(root: Path) -> Iterator[tuple[int, dict]]:
    path = Path(root) / AUDIT_FILE
    if not path.exists():
        return
    with open(path, "rb") as fh:
        for number, raw in enumerate(fh, start=1):
            if raw.strip():
                yield number, json.loads(raw)


@dataclass
class ChainCheck:
    ok: bool
    lines: int = 0
    line: Optional[int] = None       # first bad line number
    problem: str = ""
    problems: list = field(default_factory=list)
    heads: list = field(default_factory=list)   # hashes no later line names: 1, or more after a merge


_HASH_KEY = b',"hash":"'
_PREV_KEY = b'"prev":"'


def _check_slow(raw: bytes, seen: set) -> tuple[Optional[dict], Optional[str]]:
    """(entry, None) if the line is good, else (None, what is wrong)."""
    try:
        entry = json.loads(raw)
    except ValueError:
        return None, "line is not valid JSON"
    if not isinstance(entry, dict):
        return None, "line is not a JSON object"
    parents = parents_of(entry)
    if not parents or not all(isinstance(p, str) for p in parents):
        return None, "`prev` must name the hash (or the list of hashes) of the entries before it"
    missing = [p for p in parents if p.encode() not in seen]
    if missing:
        return None, (f"chain broken: `prev` names {missing[0][:12]}, which is not an earlier line "
                      "(a line was removed, inserted or reordered)")
    if entry_hash(entry) != entry.get("hash"):
        return None, "line was edited: its hash does not match its content"
    if entry["hash"].encode() in seen:
        return None, "line repeats an earlier line"
    return entry, None


def verify_chain(root: Path) -> ChainCheck:
    """Stream the file once; stop at the first broken line. Memory: one hash per line.

    Every line's parents must be lines above it (or the genesis), and its hash must match its
    content. Fast path (one sha256, no JSON parsing: about 2.5 µs a line): `append` writes the
    canonical JSON with `hash` inserted in sorted-key order, so the canonical bytes are the
    raw line with `"hash":"...",` cut out. The top-level `hash` and `prev` keys are their
    last occurrences: only `prev`, `target`, `time`, `user` (strings) follow them, and a
    string cannot hold an unescaped quote. Any line the fast path cannot confirm (several
    parents, another key order, an edit) gets the full JSON check, which decides.
    """
    path = Path(root) / AUDIT_FILE
    if not path.exists():
        return ChainCheck(ok=True)
    seen, named, number = {GENESIS.encode()}, set(), 0
    sha256 = hashlib.sha256
    with open(path, "rb", buffering=1 << 20) as fh:
        for number, raw in enumerate(fh, start=1):
            at = raw.rfind(_HASH_KEY)
            if at > 0 and raw[at + 73:at + 75] == b'",' and raw.startswith(b'{"action":') and raw.endswith(b"\n"):
                prev_at = raw.rfind(_PREV_KEY)
                parent = raw[prev_at + 8:prev_at + 72] if prev_at > at else None
                if parent in seen and raw[prev_at + 72:prev_at + 73] == b'"':
                    hasher = sha256(raw[:at + 1])
                    hasher.update(raw[at + 75:-1])
                    digest = raw[at + 9:at + 73]
                    if hasher.hexdigest().encode() == digest and digest not in seen:
                        seen.add(digest)
                        named.add(parent)
                        continue
            if not raw.endswith(b"\n"):
                return ChainCheck(False, number, number, "line is incomplete (a write was cut off)")
            entry, problem = _check_slow(raw[:-1], seen)
            if problem:
                return ChainCheck(False, number, number, problem)
            seen.add(entry["hash"].encode())
            named.update(p.encode() for p in parents_of(entry))
    tips = sorted(h.decode() for h in seen - named - {GENESIS.encode()})
    return ChainCheck(ok=True, lines=number, heads=tips)
