"""Content hashes as DVC computes them (md5 of the bytes), streamed in constant memory."""
from __future__ import annotations

import hashlib
from pathlib import Path


def file_md5(path: Path, chunk: int = 8 << 20) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()
