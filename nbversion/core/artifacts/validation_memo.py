"""Validation verdicts remembered by content, so `commit` of a big dataset where a few files
changed decodes and parses only those: an image that decoded, or a label file that parsed
(with its class counts, for a given number of classes), is the same verdict for the same md5.

The md5s come from the folder's per-file fingerprints (`file_prints`), so unchanged files are
not even read. Only good verdicts are kept: a file with a problem is checked again, and its
error names the file and line every time. One JSON file under `.nbversion/tmp` (a cache).
"""
from __future__ import annotations

import json
import logging
from collections import Counter
from pathlib import Path
from typing import Optional

from ..backends import atomic
from ..layout import TMP_DIR

logger = logging.getLogger(__name__)

MEMO_FILE = Path(TMP_DIR) / "validated.json"
MAX_ENTRIES = 2_000_000     # past this the memo starts afresh (≈ 100 MB of JSON)


class Memo:
    def __init__(self, root: Path, known: dict):
        self.path, self.known = Path(root) / MEMO_FILE, known    # known: relpath -> md5, files not read
        try:
            self.verdicts = json.loads(self.path.read_bytes())
        except (OSError, ValueError):
            self.verdicts = {}
        self.added = 0

    def image_ok(self, rel: str) -> Optional[str]:
        """The md5 of an image known to decode (then it need not be read), else None."""
        md5 = self.known.get(rel)
        return md5 if md5 and self.verdicts.get("i" + md5) else None

    def label(self, rel: str, nclasses: int) -> Optional[tuple[str, Counter]]:
        """(md5, class counts) of a label file known to parse for `nclasses`, else None."""
        md5 = self.known.get(rel)
        counts = self.verdicts.get(f"l{nclasses}:{md5}") if md5 else None
        return (md5, Counter({int(k): v for k, v in counts.items()})) if counts is not None else None

    def image_size(self, md5: str) -> Optional[tuple]:
        """(width, height) of an image known to decode; None for a verdict kept before sizes were."""
        verdict = self.verdicts.get("i" + md5)
        return tuple(verdict) if isinstance(verdict, list) else None

    def boxes(self, md5: str) -> Optional[list]:
        """[(class id, w, h)] of a label file that parsed (dataset statistics), else None."""
        found = self.verdicts.get("b" + md5)
        return [tuple(b) for b in found] if found is not None else None

    def image_decoded(self, md5: str, size=None) -> None:
        # the size is the verdict (truthy): statistics of a committed edit need not open the image
        key = "i" + md5
        if size and not isinstance(self.verdicts.get(key), list):
            self.verdicts.pop(key, None)
        self._put(key, list(size) if size else 1)

    def label_parsed(self, md5: str, nclasses: int, counts: Counter, boxes=None) -> None:
        self._put(f"l{nclasses}:{md5}", {str(k): v for k, v in counts.items()})
        if boxes is not None:
            self.remember_boxes(md5, boxes)

    def remember_boxes(self, md5: str, boxes: list) -> None:
        self._put("b" + md5, [[c, round(w, 6), round(h, 6)] for c, w, h in boxes])

    def _put(self, key: str, value) -> None:
        if key not in self.verdicts:
            self.verdicts[key] = value
            self.added += 1

    def save(self) -> None:
        if not self.added:
            return
        if len(self.verdicts) > MAX_ENTRIES:
            self.verdicts = {}
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            atomic.write_bytes(self.path, json.dumps(self.verdicts, separators=(",", ":")).encode())
        except OSError:   # a cache: losing it costs one full validation
            logger.debug("could not save the validation memo", exc_info=True)
