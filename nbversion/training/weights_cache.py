"""Pretrained weights nbversion downloads for `train --model yolov8n.pt`: once per URL, into its own cache.

Folder: $NBVERSION_WEIGHTS_DIR, else $XDG_CACHE_HOME/nbversion/weights, else ~/.cache/nbversion/weights.
URL: $NBVERSION_WEIGHTS_URL/<name>; by default Ultralytics' own release assets
(https://github.com/ultralytics/assets/releases/download/<the tag its downloader uses>).
NBVERSION_OFFLINE=1 never tries the network. (YOLO_OFFLINE is no signal: nbversion sets it for
Ultralytics itself, so that Ultralytics never downloads anything on its own.)

A download is written to `.partial/<host>-<pid>-<random>/<name>` and renamed into place only once
complete and readable as a PyTorch checkpoint (Ultralytics publishes no hashes); `<name>.json`
beside it records the url, md5 and size. Ctrl-C, a cut-off or a refused file leave nothing in the
cache; what a killed process left in `.partial/` is swept by the next download.
"""
from __future__ import annotations

import json
import logging
import os
import secrets
import shutil
import socket
from pathlib import Path
from typing import Optional

from ..core.backends.hashing import file_md5
from ..errors import DamagedFile, InvalidInput, NbversionError, NotFound, RemoteUnreachable
from ..events import Event, EventCallback, emitter

logger = logging.getLogger(__name__)

RELEASE_URL = "https://github.com/ultralytics/assets/releases/download/{release}"
CHUNK_BYTES = 1 << 20      # one progress event per MiB
TIMEOUT_S = 30             # connect / read silence before the network counts as unreachable


def cache_dir() -> Path:
    if os.environ.get("NBVERSION_WEIGHTS_DIR"):
        return Path(os.environ["NBVERSION_WEIGHTS_DIR"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "nbversion" / "weights"


def weights_url(name: str, release: str) -> str:
    base = os.environ.get("NBVERSION_WEIGHTS_URL") or RELEASE_URL.format(release=release)
    return f"{base.rstrip('/')}/{name}"


def is_offline() -> bool:
    return os.environ.get("NBVERSION_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def cached(name: str, url: str) -> Optional[dict]:
    """{"path", "url", "md5", "size"} of `name` downloaded from `url` earlier, if still intact."""
    folder = cache_dir()
    try:
        record = json.loads((folder / f"{name}.json").read_text())
        weights = folder / name
        if record.get("url") == url and weights.stat().st_size == record.get("size") \
                and file_md5(weights) == record.get("md5"):
            return {**record, "path": str(weights)}
    except (OSError, ValueError, AttributeError):
        pass   # not downloaded yet, or damaged: downloaded again
    return None


def fetch(name: str, url: str, on_event: Optional[EventCallback] = None) -> dict:
    """The cached copy of `url` (downloaded now if needed): {"path", "url", "md5", "size"}."""
    found = cached(name, url)
    if found:
        logger.debug("base weights %s: cached at %s (md5 %s)", name, found["path"], found["md5"])
        return found
    folder = cache_dir()
    if is_offline():
        raise _unreachable(name, url, f"NBVERSION_OFFLINE is set and {folder} has no copy")
    partial = _partial_folder(folder)
    try:
        target = partial / name
        _download(name, url, target, emitter(on_event))
        _check_checkpoint(name, url, target)
        record = {"name": name, "url": url, "md5": file_md5(target), "size": target.stat().st_size}
        os.replace(target, folder / name)
        (partial / "record.json").write_text(json.dumps(record, indent=1))
        os.replace(partial / "record.json", folder / f"{name}.json")
    except OSError as exc:
        raise NbversionError(f"cannot write {name} into the weights cache {folder}: {exc}",
                             hint="free some space, or point NBVERSION_WEIGHTS_DIR at a writable folder") from exc
    finally:
        shutil.rmtree(partial, ignore_errors=True)   # Ctrl-C included: no partial file stays
    logger.debug("base weights %s: downloaded from %s into %s (md5 %s)", name, url, folder, record["md5"])
    return {**record, "path": str(folder / name)}


def _partial_folder(folder: Path) -> Path:
    staging = folder / ".partial"
    try:
        staging.mkdir(parents=True, exist_ok=True)
        _sweep_dead(staging)
        partial = staging / f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(4)}"
        partial.mkdir()
    except OSError as exc:
        raise NbversionError(f"cannot create the weights cache {folder}: {exc}",
                             hint="point NBVERSION_WEIGHTS_DIR at a writable folder") from exc
    return partial


def _sweep_dead(staging: Path) -> None:
    """Downloads of killed processes on this host (their pid is gone); another host's are left alone."""
    host = socket.gethostname()
    for entry in staging.iterdir():
        owner, _, rest = entry.name.rpartition("-")[0].rpartition("-")
        if owner == host and rest.isdigit() and not _alive(int(rest)):
            shutil.rmtree(entry, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _download(name: str, url: str, target: Path, emit) -> None:
    import http.client
    import urllib.error
    import urllib.request

    request = urllib.request.Request(url, headers={"User-Agent": "nbversion"})
    done = total = 0
    dropped = False
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response, open(target, "wb") as out:
            total = int(response.headers.get("Content-Length") or 0)
            emit(Event("download", 0, total, f"{name} from {url}"))
            while chunk := response.read(CHUNK_BYTES):
                out.write(chunk)
                done += len(chunk)
                emit(Event("download", done, total, f"{name} from {url}"))
    except urllib.error.HTTPError as exc:
        raise NotFound(f"--model {name}: {url} answered HTTP {exc.code} ({exc.reason})",
                       hint="check the name (see Ultralytics' model list) and NBVERSION_WEIGHTS_URL, which "
                            "must be a folder holding <name>.pt") from None
    except (urllib.error.URLError, http.client.HTTPException, ConnectionError, TimeoutError, socket.timeout) as exc:
        if not done:
            raise _unreachable(name, url, str(getattr(exc, "reason", None) or exc)) from None
        dropped = True   # the connection dropped mid-file
    if dropped or (total and done != total):
        got = f"{done} of {total} bytes" if total else f"{done} bytes, then the connection dropped"
        raise DamagedFile(f"the download of {name} from {url} was cut off ({got})",
                          hint="train again to retry the download; nothing was kept in the weights cache")


def _unreachable(name: str, url: str, reason: str) -> RemoteUnreachable:
    stem = Path(name).stem
    return RemoteUnreachable(
        f"--model {name}: cannot download {url} ({reason}); no run was started",
        hint=f"without internet, copy {name} from a machine that has it, then "
             f"`nbversion model add {stem} /path/{name}` and train with `--model {stem}@latest`")


def _check_checkpoint(name: str, url: str, path: Path) -> None:
    """Ultralytics publishes no hashes: at least it must be a complete PyTorch checkpoint archive."""
    from ..core.artifacts.frameworks import detect

    hint = (f"the server sent something else (an HTML page of a proxy or login portal, or a cut-off file); "
            f"nothing was kept in {cache_dir()}; check NBVERSION_WEIGHTS_URL or try again")
    try:
        found = detect(path)
    except InvalidInput as exc:
        raise DamagedFile(f"the download of {name} from {url} is refused: {exc.message}", hint=hint) from None
    if found.framework not in ("ultralytics", "pytorch") or found.format not in ("checkpoint", "module"):
        raise DamagedFile(f"the download of {name} from {url} is refused: a {found.framework} {found.format}, "
                          "not a PyTorch checkpoint", hint=hint)
