"""`log` and `diff`: history with data changes shown as data, not as `.dvc` pointers."""
from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Optional

from ...errors import UsageError
from .. import paging
from ..result import Result
from ..backends import _dvc, dvc_cache, _git
from ..units import human_bytes
from .cell import parse_trailers
from ..layout import TMP_DIR

from typing import TYPE_CHECKING

logger = logging.getLogger(__name__)

if TYPE_CHECKING:   # annotations only: core.workspace imports this module into Workspace
    import os
    from typing import Iterable
    from ...events import EventCallback
    from ..workspace import Workspace

CHANGE_WORDS = {"A": "added", "D": "removed", "M": "modified", "T": "modified"}


@dataclass
class LogEntry:
    commit: str
    author: str
    date: str
    message: str
    changes: list = field(default_factory=list)     # ["added datasets/coco (data)", ...]
    notebook: Optional[str] = None
    cell: Optional[str] = None
    changes_total: Optional[int] = None             # when `changes` lists only the first few


@dataclass
class LogResult(Result):
    entries: list = field(default_factory=list)
    page: Optional[paging.Page] = None

    def to_dict(self) -> dict:
        return {"entries": [asdict(e) for e in self.entries], **(self.page.to_dict() if self.page else {})}

    def summary(self) -> str:
        return self.page.describe(len(self.entries), "commits") if self.page else ""

    def table(self):
        rows = []
        for e in self.entries:
            cell = f"{e.notebook or ''} [{e.cell}]" if e.cell else ""
            total = e.changes_total if e.changes_total is not None else len(e.changes)
            rows.append([e.commit[:8], e.date[:19].replace("T", " "), e.author,
                         e.message.splitlines()[0], "; ".join(e.changes[:4])
                         + (f" (+{total - 4})" if total > 4 else ""), cell])
        return ["commit", "date", "author", "message", "changes", "cell"], rows


def _is_bookkeeping(path: str) -> bool:
    """Files every commit touches, not news."""
    return path == ".nbversion/audit.jsonl" or path.endswith("/.gitignore") or path == ".gitignore"


def _describe(letter: str, path: str) -> Optional[str]:
    word = CHANGE_WORDS.get(letter[0], "changed")
    if path.endswith(".dvc"):
        return f"{word} {path[:-4]} (data)"
    if _is_bookkeeping(path):
        return None
    return f"{word} {path}"


def _changes(pairs: list, most: Optional[int]) -> tuple[list, Optional[int]]:
    """The described changes (the first `most` of them) and, when cut, how many there are."""
    if most is None:
        return [d for d in (_describe(s, p) for s, p in pairs) if d], None
    described = []
    for letter, path in pairs:
        if len(described) == most:
            # a commit of 10,000 run folders: count the rest, describe none of it
            return described, sum(1 for _, p in pairs if not _is_bookkeeping(p))
        text = _describe(letter, path)
        if text:
            described.append(text)
    return described, None


def log(ws: Workspace, n: Optional[int] = None, paths: Iterable[str | os.PathLike] = (),
        on_event: Optional[EventCallback] = None, offset: Optional[int] = None,
        max_changes: Optional[int] = None) -> LogResult:
    """History, newest first, with the data changes and notebook cell of each commit (`nbversion log`).

    Args:
        n: only the last `n` commits (default: all).
        paths: only commits touching these paths (a data path matches its .dvc pointer too).
        on_event: unused; kept so every verb takes it.
        offset: skip the newest `offset` commits first (the next page); given, the result also
            says the `page` (total, offset, limit, next_offset), which costs one more git call.
        max_changes: list at most this many changes of a commit (`changes_total` then says how
            many it made): a commit of 10,000 files lists 10,000 otherwise.

    Returns:
        LogResult: `entries`, one `LogEntry` per commit, and `page` when `offset` is given.

    Example:
        >>> ws = nbv.open(".")
        >>> ws.log(5, paths=["models/det"])
    """
    if n is not None and n < 0:   # git would read -n -5 as "no limit" and print everything
        raise UsageError(f"-n {n}: give a number of 0 or more", hint="e.g. `nbversion log -n 5`")
    wanted = []
    for p in paths:
        rel = ws.rel(p)
        wanted += [rel, rel + ".dvc"]
    paging.check(n, offset or 0)
    entries = []
    for c in _git.log(ws.root, n, paths=wanted, skip=offset or 0):
        trailers = parse_trailers(c.body)
        changes, total = _changes(c.changes, max_changes)
        message = c.subject + ("\n\n" + c.body if c.body else "")
        entries.append(LogEntry(c.sha, c.email or c.author, c.date, message, changes,
                                trailers.get("notebook"), trailers.get("cell"), total))
    if offset is None:
        return LogResult(entries)
    return LogResult(entries, paging.Page(_git.count_commits(ws.root, paths=wanted), offset, n))


@dataclass
class FileChange:
    change: str            # added | removed | modified
    path: str
    tracked_by: str        # git | dvc
    size_before: Optional[int] = None
    size_after: Optional[int] = None


@dataclass
class DiffResult(Result):
    rev_a: str
    rev_b: str
    files: list = field(default_factory=list)

    def table(self):
        return (["change", "path", "tracked by", "size before", "size after"],
                [[f.change, f.path, f.tracked_by, human_bytes(f.size_before), human_bytes(f.size_after)]
                 for f in self.files])

    def summary(self):
        counts = {}
        for f in self.files:
            counts[f.change] = counts.get(f.change, 0) + 1
        detail = ", ".join(f"{n} {k}" for k, n in sorted(counts.items())) or "no differences"
        return f"{self.rev_a} → {self.rev_b}: {detail}"


def _object_size(root: Path, md5: str) -> Optional[int]:
    path = dvc_cache.object_path(root, md5)
    return path.stat().st_size if path.exists() else None


def _worktree_size(root: Path, rel: str) -> Optional[int]:
    path = root / rel
    return path.stat().st_size if path.is_file() else None


def diff(ws: Workspace, rev_a: Optional[str] = None, rev_b: Optional[str] = None,
         on_event: Optional[EventCallback] = None) -> DiffResult:
    """Files added, removed and modified between two versions, data included (`nbversion diff`).

    Args:
        rev_a: a commit, branch or tag (default: HEAD).
        rev_b: a commit, branch or tag (default: the working tree).
        on_event: unused; kept so every verb takes it.

    Returns:
        DiffResult: `files`, one `FileChange` per path with its sizes before and after.

    Example:
        >>> ws = nbv.open(".")
        >>> ws.diff("HEAD~1", "HEAD")
    """
    root = ws.root
    a = _git.rev_parse(root, rev_a or "HEAD")
    b = _git.rev_parse(root, rev_b) if rev_b else None
    files = []
    sizes_a = _git.tracked_files(root, a)
    sizes_b = _git.tracked_files(root, b) if b else None
    for letter, path in _git.diff_name_status(root, a, b):
        if path.endswith(".dvc") or path == ".nbversion/audit.jsonl" or path.endswith(".gitignore"):
            continue
        after = sizes_b.get(path) if sizes_b is not None else _worktree_size(root, path)
        files.append(FileChange(CHANGE_WORDS.get(letter[0], "modified"), path, "git",
                                sizes_a.get(path), after))
    if b is None:  # untracked files in the working tree are "added" too
        for entry in _git.status(root, untracked="all"):
            if entry.code == "??" and not entry.path.startswith(TMP_DIR):
                files.append(FileChange("added", entry.path, "git", None, _worktree_size(root, entry.path)))
    files += _data_changes(root, a, b)
    logger.debug("diff %s..%s: %d change(s)", a, b or "working tree", len(files))
    files.sort(key=lambda f: f.path)
    return DiffResult(rev_a or "HEAD", rev_b or "working tree", files)


def _data_changes(root: Path, a: str, b: Optional[str]) -> list[FileChange]:
    report = _dvc.diff(root, a, b)
    changes = []
    for key, word in (("added", "added"), ("deleted", "removed"), ("modified", "modified")):
        for item in report.get(key, []):
            path = item["path"]
            if path.endswith("/"):
                continue   # the folder entry; its files follow one by one
            hashes = item["hash"] if isinstance(item["hash"], dict) else (
                {"new": item["hash"]} if key == "added" else {"old": item["hash"]})
            before = _object_size(root, hashes["old"]) if hashes.get("old") else None
            if b is None and key != "deleted":
                after = _worktree_size(root, path)
            else:
                after = _object_size(root, hashes["new"]) if hashes.get("new") else None
            changes.append(FileChange(word, path, "dvc", before, after))
    return changes
