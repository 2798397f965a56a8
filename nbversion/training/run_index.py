"""A derived index of the run records, so listing one page of 10,000 runs reads one page.

`.nbversion/tmp/runs-index.json` (git-ignored, rebuilt from the records whenever in doubt) holds
the sorted run ids and the columns a listing filters on (status, dataset, model). The records
stay the source; the index is trusted only while nothing could have changed them:

- the `runs/` folder is unchanged (a run folder added or removed changes its mtime and links);
- git's index file is unchanged (a checkout, merge, pull or reset that rewrites run records
  rewrites it too);
- every record nbversion wrote since is re-read: `runs.write` appends the run id to the journal
  `.nbversion/tmp/runs-written`, and the index remembers how far it has read that journal;
- a queued or running run's record is read on every listing (its process rewrites it each epoch).

Anything else (another key, a folder changed within the filesystem's clock tick, a damaged
index) gets a full pass: one `stat` per record, re-reading only the records whose (mtime, size,
inode) moved. A `stat` of 10,000 files costs ~25 ms here, which is why it is not done every time.
"""
from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path
from typing import Optional

from ..core.backends import atomic, git_files
from ..core.layout import TMP_DIR

logger = logging.getLogger(__name__)

INDEX_FILE = f"{TMP_DIR}/runs-index.json"
STAMPS_FILE = f"{TMP_DIR}/runs-stamps.json"
JOURNAL_FILE = f"{TMP_DIR}/runs-written"
FORMAT = 1
# a folder changed this recently may change again within the same mtime tick: do not trust its mtime
RACY_SECONDS = 2.0
LIVE = ("queued", "running")
COLUMNS = ("status", "dataset", "model")


def note_written(root, run_id: str) -> None:
    """Tell the index that `run_id`'s record was rewritten (called by every product write)."""
    path = Path(root) / JOURNAL_FILE
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # one O_APPEND write: concurrent writers (a kernel, the CLI) never interleave within a line
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, f"{run_id}\n".encode())
        finally:
            os.close(fd)
    except OSError:
        # no journal line: make sure the next listing does not trust its index
        logger.debug("could not journal the write of run %s; dropping the run index", run_id, exc_info=True)
        try:
            os.unlink(Path(root) / INDEX_FILE)
        except OSError:
            pass


def _key(root: Path) -> list:
    journal = git_files.stamp(root / JOURNAL_FILE)
    # the journal's inode: a journal deleted and begun again is not read from the old offset
    return [git_files.stamp(root / "runs"), git_files.stamp(git_files.git_dir(root) / "index"),
            journal[2] if journal else None]


def _journal_size(root: Path) -> int:
    try:
        return os.stat(root / JOURNAL_FILE).st_size
    except OSError:
        return 0


def read_record(base: Path, run_id: str) -> Optional[dict]:
    try:
        with open(f"{base}/{run_id}/run.json", "rb") as fh:   # a string path: pathlib costs more than the read
            record = json.loads(fh.read())
    except (OSError, ValueError):
        return None     # gone, or being rewritten right now: read again next time
    return record if isinstance(record, dict) else None


def _columns_of(record: dict) -> tuple:
    dataset = record.get("dataset")
    return (record.get("status", "unknown"), dataset.get("name") if isinstance(dataset, dict) else None,
            record.get("model"))


def _load(path: Path) -> Optional[dict]:
    try:
        data = json.loads(path.read_bytes())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and data.get("format") == FORMAT else None


class RunIndex:
    """Sorted run ids and their filter columns, true as of `refresh()`."""

    def __init__(self, root):
        self.root = Path(root)
        self.base = self.root / "runs"
        self.ids: list[str] = []
        self.rows: dict[str, tuple] = {}    # id -> (status, dataset name, model)
        self.live: dict[str, dict] = {}     # id -> record, re-read now: queued/running runs

    def refresh(self) -> "RunIndex":
        key, journal = _key(self.root), _journal_size(self.root)
        index = _load(self.root / INDEX_FILE)
        trusted = index is not None and index.get("key") == key and not index.get("racy") \
            and 0 <= index.get("journal", -1) <= journal
        if trusted:
            self.ids = index["ids"]
            self.rows = dict(zip(self.ids, zip(*(index[c] for c in COLUMNS)))) if self.ids else {}
            changed = self._journaled_since(index["journal"], journal)
            if any(run_id not in self.rows for run_id in changed):
                trusted = False     # a record the index never saw: only a full pass places it
            else:
                read_all = all([self._reread(run_id) for run_id in changed])
                if changed and read_all:   # an unreadable record is read again next time
                    self._save(key, journal, stamps=None)
        if not trusted:
            self._full_pass(key, journal)
        for run_id in [i for i, row in self.rows.items() if row[0] in LIVE]:
            record = read_record(self.base, run_id)
            if record is not None:
                self.rows[run_id] = _columns_of(record)
                self.live[run_id] = record
        return self

    def _journaled_since(self, start: int, end: int) -> set[str]:
        if end <= start:
            return set()
        with open(self.root / JOURNAL_FILE, "rb") as fh:
            fh.seek(start)
            tail = fh.read(end - start)
        return {line.decode() for line in tail.split(b"\n") if line}

    def _reread(self, run_id: str) -> bool:
        """Read `run_id`'s record again; False if it exists but cannot be read now."""
        record = read_record(self.base, run_id)
        if record is None:
            if (self.base / run_id / "run.json").exists():
                return False
            self.rows.pop(run_id, None)
            self.ids = [i for i in self.ids if i != run_id]
            return True
        self.rows[run_id] = _columns_of(record)
        return True

    def _full_pass(self, key: list, journal: int) -> None:
        old = _load(self.root / STAMPS_FILE) or {}
        old_stamps, old_rows = old.get("stamps") or {}, old.get("rows") or {}
        stamps, rows, unreadable = {}, {}, False
        try:
            names = sorted(os.listdir(self.base))
        except OSError:
            names = []
        for name in names:
            try:
                st = os.stat(self.base / name / "run.json")
            except OSError:
                continue    # not a run folder (or its record is not written yet)
            stamp = [st.st_mtime_ns, st.st_size, st.st_ino]
            if old_stamps.get(name) == stamp and name in old_rows:
                rows[name], stamps[name] = tuple(old_rows[name]), stamp
                continue
            record = read_record(self.base, name)
            if record is None:
                unreadable = True   # not JSON (yet): listed once it is, so keep no trusted index
                continue
            rows[name] = _columns_of(record)
            # a record written within the clock tick may be written again with the same stamp
            if time.time_ns() - stamp[0] >= RACY_SECONDS * 1e9:
                stamps[name] = stamp
        self.ids, self.rows = list(rows), rows
        logger.debug("run index: full pass over %d records", len(rows))
        self._save(key, journal, stamps={"format": FORMAT, "stamps": stamps,
                                         "rows": {k: list(v) for k, v in rows.items()}}, doubtful=unreadable)

    def _save(self, key: list, journal: int, stamps: Optional[dict], doubtful: bool = False) -> None:
        # only the folder's mtime can hide a second change in the same clock tick (git writes its
        # index to a new file each time, so the index's inode moves with every write)
        index = {"format": FORMAT, "key": key, "racy": doubtful or git_files.is_recent(key[:1], RACY_SECONDS),
                 "journal": journal, "ids": self.ids}
        for column_number, column in enumerate(COLUMNS):
            index[column] = [self.rows[i][column_number] for i in self.ids]
        try:
            if stamps is not None:
                atomic.write_text(self.root / STAMPS_FILE, json.dumps(stamps))
            atomic.write_text(self.root / INDEX_FILE, json.dumps(index))
        except OSError:
            logger.debug("could not save the run index; the next listing rebuilds it", exc_info=True)

    def select(self, status: Optional[str] = None, dataset: Optional[str] = None,
               model: Optional[str] = None) -> list[str]:
        """The ids that pass every filter given, in the list's order. A queued or running run
        whose process died counts as failed, as users see it."""
        if not (status or dataset or model):
            return self.ids
        from .runs import effective_status
        rows, live, found = self.rows, self.live, []
        for run_id in self.ids:
            row_status, row_dataset, row_model = rows[run_id]
            if dataset and row_dataset != dataset or model and row_model != model:
                continue
            if status and (effective_status(live[run_id]) if run_id in live else row_status) != status:
                continue
            found.append(run_id)
        return found
