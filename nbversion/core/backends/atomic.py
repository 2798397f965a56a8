"""Writes that a killed process cannot leave half done: temp file + fsync + rename."""
from __future__ import annotations

import json
import os
from pathlib import Path


_fallback_umask = None


def current_umask() -> int:
    """The process umask, read without changing it: `os.umask()` can only be read by setting it,
    and a thread creating a file meanwhile would get the temporary value."""
    global _fallback_umask
    try:
        with open("/proc/self/status", "rb") as fh:
            for line in fh:
                if line.startswith(b"Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    if _fallback_umask is None:   # no /proc (macOS): read it once, the racy way
        _fallback_umask = os.umask(0o022)
        os.umask(_fallback_umask)
    return _fallback_umask


def write_bytes(path, data: bytes) -> None:
    import tempfile

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        # mkstemp makes the file 0600; a file written in place would get 0666 less the umask,
        # and a colleague or a serving account in the same group must be able to read it
        try:
            os.fchmod(fd, 0o666 & ~current_umask())
        except OSError:   # a file system without modes (some network shares): its default stands
            pass
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_text(path, text: str) -> None:
    write_bytes(path, text.encode("utf-8"))


def write_json(path, data) -> None:
    write_text(path, json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")
