"""One error family with a message a user can act on and a hint.

Front ends translate it once: magics into a short red line, the CLI into
``error:``/``hint:`` and an exit code, REST into a JSON body with a status.
Each class has a stable ``type`` string (``--json`` and REST bodies carry it) so a
script tells cases apart without parsing messages; docs/errors.md lists them all
(tests/test_error_types.py keeps that table and this module in step).
"""
from __future__ import annotations

import errno
import os

TRACEBACK_ENV = "NBVERSION_TRACEBACK"   # set to 1 to see the traceback of an internal error
RERUN_HINT = (f"this is a bug in nbversion; run again with {TRACEBACK_ENV}=1 and report the "
              "traceback it prints")


class NbversionError(Exception):
    """Something the user can fix; `hint` says how (the base: catch it to catch them all)."""

    type = "error"
    exit_code = 1
    http_status = 400

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint

    def to_dict(self) -> dict:
        return {"type": self.type, "message": self.message, "hint": self.hint}


class UsageError(NbversionError):
    """Bad command-line / magic arguments."""

    type = "usage"
    exit_code = 2


class NotAWorkspace(NbversionError):
    """Neither the folder nor any of its parents is an nbversion workspace."""

    type = "not_a_workspace"
    http_status = 404


class NotFound(NbversionError):
    """An unknown dataset, model, run, remote or file (an unknown revision or version: `ref_not_found`)."""

    type = "not_found"
    http_status = 404


class NothingToCommit(NbversionError):
    """A commit was asked for but nothing changed."""

    type = "nothing_to_commit"
    http_status = 409


class UncommittedChanges(NbversionError):
    """The verb needs a clean working tree (checkout, merge) and there are changes."""

    type = "uncommitted_changes"
    http_status = 409


class WorkspaceLocked(NbversionError):
    """Another nbversion operation holds the workspace lock."""

    type = "lock_held"
    http_status = 409


class PermissionDenied(NbversionError):
    """The current identity's role does not allow the action."""

    type = "permission_denied"
    exit_code = 3
    http_status = 403


class InvalidInput(NbversionError):
    """Bad data: a malformed label, an unsafe archive, a wrong file type."""

    type = "invalid_input"

    def __init__(self, message: str, hint: str | None = None, problems: list | None = None):
        super().__init__(message, hint)
        self.problems = problems or []

    def to_dict(self) -> dict:
        data = super().to_dict()
        if self.problems:
            data["problems"] = [p.to_dict() if hasattr(p, "to_dict") else p for p in self.problems]
        return data


class DamagedFile(InvalidInput):
    """A file of a known format cut short or corrupted (a truncated .pt or .keras): never versioned."""

    type = "damaged_file"


class IntegrityError(NbversionError):
    """Stored data does not match its recorded hash, or the audit chain is broken."""

    type = "integrity"


class MissingExtra(NbversionError):
    """A verb needs an optional part of nbversion that is not installed (`pip install 'nbversion[X]'`)."""

    type = "missing_extra"
    http_status = 501

    def __init__(self, message: str, hint: str | None = None, extra: str | None = None):
        super().__init__(message, hint)
        self.extra = extra

    def to_dict(self) -> dict:
        return {**super().to_dict(), "extra": self.extra}


class InternalError(NbversionError):
    """An exception nbversion did not expect: a bug, shown as one line (type "internal")."""

    type = "internal"
    http_status = 500


class VersionExists(UsageError):
    """The version being registered is already registered: versions are immutable."""

    type = "version_exists"


class TagCollision(VersionExists):
    """A version or stage tag being pushed exists on the remote on other content (two clones made it)."""

    type = "tag_collision"
    http_status = 409


class AlreadyExists(UsageError):
    """Something to be created (an experiment branch, a clone or restore target) is already there."""

    type = "already_exists"


class RefNotFound(NotFound):
    """An unknown revision, tag, or version of a dataset, model or registered model."""

    type = "ref_not_found"


class MergeConflict(NbversionError):
    """`pull` found changes on both sides that no rule merges; `paths` lists them. Nothing changed."""

    type = "merge_conflict"
    http_status = 409

    def __init__(self, message: str, hint: str | None = None, paths: list | None = None):
        super().__init__(message, hint)
        self.paths = paths or []

    def to_dict(self) -> dict:
        return {**super().to_dict(), "paths": self.paths}


class GateFailed(NbversionError):
    """A promotion gate failed; `results` holds every rule with pass/fail (`rules` in the body)."""

    type = "gate_failed"
    http_status = 409

    def __init__(self, message: str, hint: str | None = None, results: list | None = None):
        super().__init__(message, hint)
        self.results = results or []

    def to_dict(self) -> dict:
        return {**super().to_dict(), "rules": [r.to_dict() for r in self.results]}


class RemoteUnreachable(NbversionError):
    """A remote (git history or DVC data) could not be reached or refused the transfer."""

    type = "remote_unreachable"


class PushRefused(NbversionError):
    """A guarded remote refused a push: a new commit or tag fails `audit verify`, or a registry tag would move.

    Raised by `nbversion guard pre-receive` (the hook `guard install` puts on a remote); its
    message names each commit and rule, and git shows it to the pusher after `remote:`.
    """

    type = "push_refused"
    http_status = 409


class NotAvailable(NbversionError):
    """A REST endpoint's operation family is not part of this installation (yet)."""

    type = "not_available"
    http_status = 501


class StoppedByUser(NbversionError):
    """Ctrl-C or the kernel's interrupt stopped an operation; the message says what it left."""

    type = "interrupted"
    exit_code = 130


class Interrupted(KeyboardInterrupt):
    """Ctrl-C (or the kernel's interrupt) inside a mutating operation, with what it left: a
    KeyboardInterrupt still, so whatever catches those (IPython, a user's script) still does."""

    def __init__(self, action: str, committed: str | None = None, kept: str | None = None):
        super().__init__(action)
        self.action, self.committed, self.kept = action, committed, kept


def interrupted_message(exc: BaseException) -> str:
    """The one line a front end shows for a Ctrl-C: what the interrupted operation left behind."""
    if not isinstance(exc, Interrupted):   # a reading verb, or before the workspace lock was taken
        return "interrupted: nothing was changed"
    if exc.committed:
        return (f"interrupted after {exc.action} committed {exc.committed[:8]}: that change is kept"
                + (f"; {exc.kept}" if exc.kept else ""))
    if exc.kept:
        return f"interrupted: {exc.action} stopped part-way: {exc.kept}"
    return f"interrupted: {exc.action} committed nothing, the workspace is as it was (run it again to do it)"


def error_classes() -> list:
    """Every error class a user can meet, each followed by its subclasses: the table of docs/errors.md."""
    def walk(cls):
        yield cls
        for sub in sorted(cls.__subclasses__(), key=lambda c: c.__name__):
            yield from walk(sub)
    return [c for c in walk(NbversionError) if c.__module__ == __name__]


def wants_traceback() -> bool:
    """NBVERSION_TRACEBACK=1: front ends let an internal error's traceback through, to be reported."""
    return bool(os.environ.get(TRACEBACK_ENV))


def as_error(exc: BaseException, hint: str = RERUN_HINT) -> NbversionError:
    """Any exception from a verb as the error a user sees; the one translation every front end uses.

    An OSError names the path and what the file system refused; anything else is a bug, said
    so in one line (`hint` tells where its traceback is: a rerun for the CLI, the server log for REST).
    """
    if isinstance(exc, NbversionError):
        return exc
    if isinstance(exc, OSError) and exc.errno is not None:
        return _os_error(exc)
    return InternalError(f"internal error: {type(exc).__name__}: {_short(str(exc))}", hint=hint)


def _os_error(exc: OSError) -> NbversionError:
    """A file-system refusal (a name too long, a full disk, no permission) in words, naming the path."""
    where = f": {_short(str(exc.filename))}" if exc.filename else ""
    if exc.errno == errno.ENAMETOOLONG:
        return NbversionError(f"a name or path is too long for the file system{where}",
                              hint="use a shorter name; a file name is limited to 255 bytes")
    if exc.errno == errno.ENOSPC:
        error = NbversionError(f"no space left on the device{where}",
                               hint="free some space (`nbversion gc --dry-run` shows what can go) and try again")
    elif exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        error = NbversionError(f"the file system refused access{where} ({exc.strerror})",
                               hint="check the owner and mode of that path")
    else:
        error = NbversionError(f"{exc.strerror or type(exc).__name__}{where}",
                               hint="check that the path exists and is the kind of file the command expects")
    error.http_status = 500   # the server's disk, not the request, is at fault
    return error


def _short(text: str, limit: int = 120) -> str:
    return text if len(text) <= limit else text[:limit - 1] + "…"
