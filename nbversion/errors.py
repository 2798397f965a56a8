"""One error type with a message a user can act on and a hint.

Front ends translate it once: magics into a short red line, the CLI into
``error:``/``hint:`` and an exit code, REST into a JSON body with a status.
"""
from __future__ import annotations


class NbversionError(Exception):
    """Something the user can fix; ``hint`` says how."""

    exit_code = 1
    http_status = 400

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint

    def to_dict(self) -> dict:
        return {"type": type(self).__name__, "message": self.message, "hint": self.hint}


class UsageError(NbversionError):
    """Bad command-line / magic arguments."""

    exit_code = 2


class NotAWorkspace(NbversionError):
    http_status = 404


class NotFound(NbversionError):
    """An unknown revision, dataset, model, run or version."""

    http_status = 404


class NothingToCommit(NbversionError):
    http_status = 409


class UncommittedChanges(NbversionError):
    http_status = 409


class WorkspaceLocked(NbversionError):
    http_status = 409


class PermissionDenied(NbversionError):
    """The current identity's role does not allow the action."""

    exit_code = 3
    http_status = 403


class InvalidInput(NbversionError):
    """Bad data: a malformed label, an unsafe archive, a wrong file type."""

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


class IntegrityError(NbversionError):
    """Stored data does not match its recorded hash, or the audit chain is broken."""


class MissingExtra(NbversionError):
    """A verb needs an optional part of nbversion that is not installed (`pip install 'nbversion[X]'`)."""

    http_status = 501

    def __init__(self, message: str, hint: str | None = None, extra: str | None = None):
        super().__init__(message, hint)
        self.extra = extra

    def to_dict(self) -> dict:
        return {**super().to_dict(), "extra": self.extra}
