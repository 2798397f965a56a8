"""`backup create [--out FILE] [--encrypt] [--since BACKUP]` and `backup restore FILE DIR`.

A backup is one tar.gz: `repo.bundle` (every branch and tag), `objects/<md5>` (the DVC
objects that registered versions, stage tags, tagged datasets and the working tree need),
and `report.json` / `report.html` listing each object with its size and hash. The report is
also written next to the archive. `--since` stores only objects the previous backup (and its
own bases) did not hold; restore then reads the chain from the same folder. The git bundle
is always complete: history is small, the data is what needs to be incremental.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import zlib
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Optional

from ...errors import AlreadyExists, IntegrityError, InvalidInput, NotFound, UsageError
from ..backends.faults import checkpoint
from ...events import Event, emitter
from ...extras import require
from ..result import Result
from ..backends import atomic, _dvc, dvc_cache, _git, _git_sync
from . import crypto
from ..backends.hashing import file_md5
from .reachability import needed_objects

from typing import TYPE_CHECKING

logger = logging.getLogger(__name__)

if TYPE_CHECKING:   # annotations only: core.workspace imports this module into Workspace
    import tarfile
    from ...events import EventCallback
    from ..workspace import Workspace

FORMAT = 1
PASSPHRASE_ENV = "NBVERSION_BACKUP_PASSPHRASE"


@dataclass
class BackupResult(Result):
    archive: str
    sha256: str
    objects: int
    bytes: int
    refs: int
    encrypted: bool
    base: Optional[str] = None
    missing: list = field(default_factory=list)
    directory: str = ""

    def table(self):
        rows = [["archive", self.archive], ["sha256", self.sha256], ["objects", self.objects],
                ["bytes of data", self.bytes], ["branches and tags", self.refs],
                ["encrypted", "yes" if self.encrypted else "no"], ["incremental on", self.base or "-"]]
        if self.directory:
            rows.append(["restored into", self.directory])
        return ["", ""], rows

    def summary(self):
        if self.missing:
            return f"{len(self.missing)} needed object(s) were not in the cache: run `nbversion pull --all-versions` first"
        return "restored: run `nbversion verify` there" if self.directory else "backup written"


def _sha256(path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _default_out(root: Path) -> Path:
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    return root.parent / f"{root.name}-backup-{stamp}.tar.gz"


def _passphrase(passphrase: Optional[str]) -> Optional[str]:
    return passphrase or os.environ.get(PASSPHRASE_ENV)


def read_report(archive, passphrase: Optional[str] = None) -> dict:
    """The report.json inside a backup (decrypting it first when needed)."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        plain = _plain_archive(Path(archive), Path(tmp), passphrase)
        return _report_of(plain, Path(archive))


def _report_of(plain: Path, shown: Path) -> dict:
    """report.json of a (decrypted) backup; anything else is a clear error, not a tarfile traceback."""
    import gzip
    import tarfile

    try:
        with tarfile.open(plain, "r:gz") as tar:
            member = tar.extractfile("report.json")
            return json.loads(member.read())
    except (EOFError, zlib.error, gzip.BadGzipFile) as exc:   # a gzip stream that stops or breaks
        raise IntegrityError(f"{shown} is truncated or damaged ({exc})",
                             hint="use an intact copy of the backup (its sha256 is in the .json next to it)") from None
    except (tarfile.TarError, KeyError, ValueError, AttributeError) as exc:
        raise InvalidInput(f"{shown} is not a backup made by `nbversion backup create` ({_why(exc)})",
                           hint="give the .tar.gz (or encrypted file) that `backup create` wrote") from None


def _why(exc: Exception) -> str:
    if isinstance(exc, KeyError):
        return "no report.json in it"
    return str(exc) or type(exc).__name__


def _plain_archive(archive: Path, tmp: Path, passphrase: Optional[str]) -> Path:
    if not archive.is_file():
        raise NotFound(f"backup {archive} not found", hint="give the path of a .tar.gz made by `backup create`")
    if not crypto.is_encrypted(archive):
        return archive
    require("remotes", "restoring an encrypted backup", ("cryptography",))
    tmp.mkdir(parents=True, exist_ok=True)
    plain = tmp / "plain.tar.gz"
    crypto.decrypt_file(archive, plain, _passphrase(passphrase))
    return plain


def create(ws: Workspace, out: Optional[str] = None, encrypt: bool = False, passphrase: Optional[str] = None,
           since: Optional[str] = None, on_event: Optional[EventCallback] = None) -> BackupResult:
    """Write one archive of history and the data that matters (`nbversion backup create`).

    Args:
        out: the archive to write (default: ../<workspace>-backup-<time>.tar.gz).
        encrypt: AES-256-GCM with `passphrase` (needs the `remotes` extra).
        passphrase: the passphrase (default: $NBVERSION_BACKUP_PASSPHRASE).
        since: an earlier backup: store only the objects it lacks.
        on_event: called with progress `Event`s.

    Returns:
        BackupResult: the archive, its sha256, counts of objects, bytes and refs, objects missing.

    Example:
        >>> ws = nbv.open(".")
        >>> ws.backup_create(out="/backups/project.tar.gz")
    """
    import tempfile

    emit = emitter(on_event)
    passphrase = _passphrase(passphrase)
    if encrypt:
        require("remotes", "backup create --encrypt", ("cryptography",))
    if encrypt and not passphrase:
        raise UsageError("--encrypt needs a passphrase", hint=f"set {PASSPHRASE_ENV} or answer the prompt")
    out_path = Path(out).expanduser().resolve() if out else _default_out(ws.root)
    base_report = read_report(since, passphrase) if since else None
    already = set(base_report["all_objects"]) if base_report else set()
    emit(Event("backup", message="finding the objects registered and tagged versions need"))
    needed = needed_objects(ws.root)
    present = {m: l for m, l in needed.items() if dvc_cache.object_path(ws.root, m).exists()}
    missing = sorted(set(needed) - set(present))
    logger.debug("backup: %d object(s) needed, %d in the local cache, %d already in %s", len(needed), len(present),
                 len(already), since)
    with tempfile.TemporaryDirectory(dir=out_path.parent) as tmp:
        tmp = Path(tmp)
        refs = _bundle(ws.root, tmp / "repo.bundle")
        new = {m: present[m] for m in sorted(present) if m not in already}
        report = _report(ws.root, tmp / "repo.bundle", refs, new, set(present) | already, since, base_report)
        plain = tmp / "backup.tar.gz"
        _write_tar(ws.root, plain, tmp, report, emit)
        final = tmp / "final"
        crypto.encrypt_file(plain, final, passphrase) if encrypt else os.replace(plain, final)
        os.replace(final, out_path)
    digest = _sha256(out_path)
    atomic.write_json(str(out_path) + ".json", {**report, "archive_sha256": digest, "encrypted": encrypt})
    atomic.write_text(str(out_path) + ".html", _html(report, digest))
    size = sum(o["size"] for o in report["objects"].values())
    return BackupResult(str(out_path), digest, len(new), size, len(refs), encrypt,
                        report["base"]["file"] if report["base"] else None, missing)


def _bundle(root, path: Path) -> list:
    return _git_sync.bundle_create(root, path)


def _report(root, bundle: Path, refs: list, new: dict, all_objects: set, since, base_report) -> dict:
    objects = {m: {"size": dvc_cache.object_path(root, m).stat().st_size, "md5": m.replace(".dir", ""),
                   "needed_by": sorted(labels)} for m, labels in new.items()}
    base = None
    if since:
        base = {"file": Path(since).name, "sha256": _sha256(since), "created_at": base_report["created_at"]}
    return {"format": FORMAT, "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "workspace": Path(root).name, "bundle": {"sha256": _sha256(bundle), "refs": refs},
            "objects": objects, "all_objects": sorted(all_objects), "base": base}


def _write_tar(root, plain: Path, tmp: Path, report: dict, emit) -> None:
    import tarfile

    (tmp / "report.json").write_text(json.dumps(report, indent=2, sort_keys=True))
    (tmp / "report.html").write_text(_html(report, None))
    # data is mostly images and weights that do not compress: the fastest level is enough
    with tarfile.open(plain, "w:gz", compresslevel=1) as tar:
        for name in ("report.json", "report.html", "repo.bundle"):
            tar.add(tmp / name, arcname=name)
        total = len(report["objects"])
        for number, md5 in enumerate(report["objects"], start=1):
            emit(Event("backup", number, total, md5[:12]))
            tar.add(dvc_cache.object_path(root, md5), arcname=f"objects/{md5}")
            checkpoint("backup-added-one")   # the interrupt tests stop us here, part-way through


def _html(report: dict, digest: Optional[str]) -> str:
    import html

    rows = "".join(f"<tr><td>{html.escape(m)}</td><td>{o['size']}</td><td>{html.escape(', '.join(o['needed_by']))}</td></tr>"
                   for m, o in sorted(report["objects"].items()))
    head = f"<p>archive sha256: {digest}</p>" if digest else ""
    return (f"<html><body><h1>nbversion backup of {html.escape(report['workspace'])}</h1>"
            f"<p>created {report['created_at']}; {len(report['objects'])} object(s); "
            f"refs: {html.escape(', '.join(report['bundle']['refs']))}</p>{head}"
            f"<table><tr><th>md5</th><th>bytes</th><th>needed by</th></tr>{rows}</table></body></html>")


# --- restore ----------------------------------------------------------------------------------

def _safe_members(tar: tarfile.TarFile, archive: Path) -> list:
    """Only the names a backup contains: nothing may land outside the restore folder."""
    members = []
    for member in tar.getmembers():
        name = member.name
        ok = name in ("report.json", "report.html", "repo.bundle") or (
            name.startswith("objects/") and "/" not in name[8:] and ".." not in name and member.isfile())
        if not ok:
            raise InvalidInput(f"{archive}: unexpected entry {name!r}", hint="this is not an nbversion backup")
        members.append(member)
    return members


def _chain(archive: Path, passphrase: Optional[str], tmp: Path) -> list:
    """[(plain archive, report)] oldest first, following each `base` in the same folder."""
    chain, current = [], archive
    while True:
        plain = _plain_archive(current, tmp / str(len(chain)), passphrase)
        report = _report_of(plain, current)
        chain.insert(0, (plain, report))
        if not report.get("base"):
            return chain
        base = current.parent / report["base"]["file"]
        if not base.exists():
            raise NotFound(f"{archive.name} is incremental on {base.name}, which is not next to it",
                           hint=f"put {base.name} in {current.parent} and restore again")
        if _sha256(base) != report["base"]["sha256"]:
            raise IntegrityError(f"{base.name} is not the backup {current.name} was built on (sha256 differs)")
        current = base


def restore(archive: str, directory: str, passphrase: Optional[str] = None, on_event=None) -> BackupResult:
    import tempfile
    import gzip
    import tarfile

    emit = emitter(on_event)
    archive_path, target = Path(archive).expanduser().resolve(), Path(directory).expanduser().resolve()
    if target.exists() and any(target.iterdir()):
        raise AlreadyExists(f"{target} already exists and is not empty", hint="restore into a new folder")
    existed = target.exists()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            tmp = Path(tmp)
            chain = _chain(archive_path, _passphrase(passphrase), tmp)
            newest_plain, newest = chain[-1]
            with tarfile.open(newest_plain, "r:gz") as tar:
                tar.extractall(tmp / "newest", members=[m for m in _safe_members(tar, archive_path)
                                                        if m.name == "repo.bundle"])
            _clone_bundle(tmp / "newest" / "repo.bundle", target)
            count = size = 0
            for plain, report in chain:
                emit(Event("restore", message=f"objects of {report['created_at']}"))
                added, nbytes = _restore_objects(plain, report, target, emit)
                logger.debug("restored %d object(s), %d bytes from the archive of %s", added, nbytes, report["created_at"])
                count, size = count + added, size + nbytes
        _dvc.checkout_workspace(target)
    except (EOFError, zlib.error, gzip.BadGzipFile, tarfile.TarError) as exc:
        _remove_partial(target, existed)
        raise IntegrityError(f"{archive_path} is truncated or damaged ({exc})",
                             hint="use an intact copy of the backup (its sha256 is in the .json next to it)") from None
    except BaseException:
        _remove_partial(target, existed)   # a failed restore leaves no half-workspace behind
        raise
    return BackupResult(str(archive_path), _sha256(archive_path), count, size,
                        len(newest["bundle"]["refs"]), crypto.is_encrypted(archive_path),
                        newest["base"]["file"] if newest.get("base") else None, directory=str(target))


def _remove_partial(target: Path, existed: bool) -> None:
    if not target.is_dir():
        return
    if existed:   # it was an empty folder the user made: leave it, empty again
        for child in target.iterdir():
            shutil.rmtree(child) if child.is_dir() and not child.is_symlink() else child.unlink()
    else:
        shutil.rmtree(target, ignore_errors=True)


def _clone_bundle(bundle: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    _git_sync.clone(bundle, target)
    for ref in _git_sync.remote_branches(target, "origin"):
        if ref not in ("HEAD", _git.current_branch(target)):
            _git.create_branch(target, ref, f"origin/{ref}")
    _git_sync.remove_remote(target, "origin")   # it pointed at a temporary bundle


def _restore_objects(plain: Path, report: dict, target: Path, emit) -> tuple[int, int]:
    import tarfile

    count = size = 0
    total = len(report["objects"])
    with tarfile.open(plain, "r:gz") as tar:
        for member in _safe_members(tar, plain):
            if not member.name.startswith("objects/"):
                continue
            md5 = member.name[len("objects/"):]
            emit(Event("restore", count + 1, total, md5[:12]))
            dest = dvc_cache.object_path(target, md5)
            dest.parent.mkdir(parents=True, exist_ok=True)
            partial = dest.with_name(dest.name + ".restoring")
            with tar.extractfile(member) as src, open(partial, "wb") as fh:
                shutil.copyfileobj(src, fh, 1 << 20)
            if file_md5(partial) != md5.replace(".dir", ""):
                partial.unlink()
                raise IntegrityError(f"object {md5} in {plain.name} does not match its hash",
                                     hint="the backup is damaged: restore from another copy")
            os.replace(partial, dest)
            count, size = count + 1, size + member.size
    return count, size
