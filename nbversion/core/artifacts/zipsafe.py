"""Safe extraction of a `.zip`: every entry is checked before a single byte is written.

Refused: absolute paths, `..` components, symlinks (they could point anywhere once
extracted), archives whose total uncompressed size exceeds a limit, and entries whose
compression ratio looks like a zip bomb.
"""
from __future__ import annotations

import logging
import stat
import zlib
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from ...errors import InvalidInput
from .yolo_layout import Problem

if TYPE_CHECKING:   # annotations only; zipfile is imported where an archive is opened
    import zipfile

logger = logging.getLogger(__name__)

# small entries compress absurdly well (an empty label file); only judge ratios above this
RATIO_MIN_BYTES = 1_000_000


def _entry_problem(archive: str, info: zipfile.ZipInfo) -> str | None:
    name = info.filename
    if name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
        return "absolute path in the archive"
    if ".." in PurePosixPath(name.replace("\\", "/")).parts:
        return "path escapes the archive folder (`..`)"
    if stat.S_ISLNK(info.external_attr >> 16):
        return "symbolic link in the archive"
    return None


def check(path, max_bytes: int, max_ratio: float) -> list[zipfile.ZipInfo]:
    """The archive's file entries, or InvalidInput listing every unsafe one."""
    import zipfile

    path = Path(path)
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise InvalidInput(f"{path}: not a readable ZIP archive ({exc})",
                           hint="re-create the archive, or import the folder instead") from exc
    with archive:
        infos = archive.infolist()
    problems = [Problem(f"{path.name}:{i.filename}", None, msg)
                for i in infos if (msg := _entry_problem(path.name, i))]
    total = sum(i.file_size for i in infos)
    if total > max_bytes:
        problems.append(Problem(path.name, None, f"uncompressed size {total:,} bytes exceeds the limit "
                                                 f"of {max_bytes:,} bytes"))
    for info in infos:
        if info.file_size > RATIO_MIN_BYTES and info.file_size > max_ratio * max(info.compress_size, 1):
            problems.append(Problem(f"{path.name}:{info.filename}", None,
                                    f"compression ratio {info.file_size / max(info.compress_size, 1):.0f}:1 "
                                    "looks like a zip bomb"))
    if problems:
        raise InvalidInput(f"{path.name}: unsafe archive, {problems[0]}"
                           + (f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""),
                           hint="repack the archive with relative paths and regular files only; the "
                                "size limits are datasets.max_zip_bytes / max_zip_ratio in .nbversion/config.toml",
                           problems=problems)
    return [i for i in infos if not i.is_dir()]


def extract(path, dest, max_bytes: int, max_ratio: float, on_progress=None) -> Path:
    """Check, then extract into `dest` (created). Stops if entries inflate beyond what they declared.
    `on_progress(done, total)`: entries extracted so far."""
    import zipfile

    infos = check(path, max_bytes, max_ratio)
    logger.debug("extracting %d entr(ies) of %s into %s (limits: %d bytes, ratio %s)", len(infos), path, dest,
                 max_bytes, max_ratio)
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    try:
        _extract_checked(path, dest, infos, max_bytes, on_progress)
    except (RuntimeError, NotImplementedError, zipfile.BadZipFile, EOFError, zlib.error) as exc:
        # encrypted entries, an unsupported compression method, a corrupt member
        raise InvalidInput(f"{Path(path).name}: cannot extract ({exc})",
                           hint="re-create the archive without a password, with deflate or no compression") from exc
    return dest


def _extract_checked(path, dest: Path, infos, max_bytes: int, on_progress=None) -> None:
    import zipfile

    written = 0
    with zipfile.ZipFile(path) as archive:
        for number, info in enumerate(infos, start=1):
            if on_progress and (number % 64 == 1 or number == len(infos)):
                on_progress(number, len(infos))
            target = dest / PurePosixPath(info.filename.replace("\\", "/"))
            target.parent.mkdir(parents=True, exist_ok=True)
            with archive.open(info) as src, open(target, "wb") as out:
                # the header's sizes can lie: count what really comes out
                while chunk := src.read(1 << 20):
                    written += len(chunk)
                    if written > max_bytes:
                        raise InvalidInput(f"{Path(path).name}: inflates beyond {max_bytes:,} bytes",
                                           hint="the archive's sizes are wrong or it is a zip bomb")
                    out.write(chunk)


def single_top_folder(folder: Path) -> Path:
    """`x.zip` often holds one folder `x/`: the dataset is inside it (macOS litter ignored)."""
    children = [c for c in folder.iterdir() if c.name not in ("__MACOSX", ".DS_Store")]
    if len(children) == 1 and children[0].is_dir():
        return children[0]
    return folder
