"""The one base handler of the REST API: auth, executor, JSON errors.

Handlers stay thin: parse the request, call a Workspace method in a worker thread (git and
DVC calls take hundreds of milliseconds, the server's event loop must never wait on them),
and write the result's `to_dict()`. Every `NbversionError` becomes
`{"error": {"type", "message", "hint"}}` with the error's own `http_status`, here and only here.
Any other exception is a bug: the same JSON with status 500 and type "internal" (the message
from `errors.as_error`, as the CLI prints it), its traceback in the server log only.
"""
from __future__ import annotations

import asyncio
import json
import logging
import re
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from pathlib import Path
from typing import Callable
from urllib.parse import urlencode

import tornado.web
from jupyter_server.base.handlers import APIHandler
from tornado.log import app_log

from ..errors import InternalError, NbversionError, NotAvailable, UsageError, WorkspaceLocked, as_error
from ..core import paging
from ..render import Result, _cell, to_jsonable
from .acting import acting_identity

logger = logging.getLogger(__name__)

SERVER_LOG_HINT = "this is a bug in nbversion; the Jupyter server log has its traceback: please report it"

# Few threads: core calls are git/DVC subprocesses; more would only fight over the same disk.
EXECUTOR = ThreadPoolExecutor(max_workers=4, thread_name_prefix="nbversion-api")


def _not_available(exc: ModuleNotFoundError) -> NotAvailable:
    return NotAvailable(f"this nbversion installation has no {exc.name} module",
                        hint="upgrade nbversion, or install the extra it needs "
                             "(`pip install nbversion[yolo]` for training)")


def _locked_error(root: Path) -> WorkspaceLocked:
    from ..core.backends.lock import holder
    who = holder(root) or {}
    return WorkspaceLocked(
        f"the workspace is busy: {who.get('operation', 'an operation')} by pid "
        f"{who.get('pid', '?')} on {who.get('host', '?')}",
        hint="wait for it to finish, then try again")


def view_of(result: Result) -> dict:
    """The table the CLI prints, so the sidebar shows every result the same way."""
    headers, rows = result.table()
    return {"headers": list(headers), "rows": [[_cell(v) for v in row] for row in rows],
            "summary": result.summary(),
            "highlight": [i for i, row in enumerate(rows) if result.highlight(row)]}


# the key of a listing's items in its to_dict(): what `fields=` projects
LIST_KEYS = ("runs", "versions", "entries", "datasets", "models")
FIELD_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,63}")


def to_payload(result, view_only: bool = False, fields: tuple = ()) -> dict:
    """`result.to_dict()` plus its `view`; a plain value is wrapped as {"result": ...}.

    `view_only` skips `to_dict()`: a dataclass copied field by field costs ~20 ms at 1,000
    registry versions, and the sidebar draws only the view (and the page it is on).
    `fields`: keep only these keys of each listed item (`runs`, `versions`, `entries`...).
    """
    page = getattr(result, "page", None)
    if view_only and isinstance(result, Result):
        return {"view": view_of(result), **(page.to_dict() if page is not None else {})}
    data = to_jsonable(result)
    if not isinstance(data, dict):
        data = {"result": data}
    if fields:
        _project(data, fields)
    if isinstance(result, Result):
        data["view"] = view_of(result)
    return data


def _project(data: dict, fields: tuple) -> None:
    for key in LIST_KEYS:
        items = data.get(key)
        if not isinstance(items, list):
            continue
        known = set().union(*(item.keys() for item in items if isinstance(item, dict)))
        unknown = [f for f in fields if f not in known]
        if items and unknown:
            raise UsageError(f"`fields`: no item of `{key}` has a field {unknown[0]!r}",
                             hint=f"fields are: {', '.join(sorted(known))} (or `fields=view` for the table)")
        data[key] = [{f: item[f] for f in fields if f in item} for item in items]


class NbversionHandler(APIHandler):
    """Base of every /nbversion/api/ handler."""

    @property
    def workspace_path(self) -> Path:
        return Path(self.settings["nbversion_workspace"])

    def workspace(self):
        from ..core.workspace import open_workspace
        return open_workspace(self.workspace_path)

    # --- request parsing -----------------------------------------------------------------
    def body(self) -> dict:
        """The JSON body; a bad one is the client's error, reported like any other."""
        raw = self.request.body or b"{}"
        try:
            data = json.loads(raw)
        except ValueError as exc:
            raise UsageError(f"the request body is not valid JSON: {exc}",
                             hint="send a JSON object, e.g. {\"message\": \"...\"}") from None
        if not isinstance(data, dict):
            raise UsageError("the request body must be a JSON object")
        return data

    def required(self, data: dict, key: str) -> str:
        value = data.get(key)
        if not isinstance(value, str) or not value.strip():
            raise UsageError(f"`{key}` is missing from the request",
                             hint=f"send {{\"{key}\": \"...\"}} in the JSON body")
        return value.strip()

    def body_or_fail(self, *keys: str) -> dict | None:
        """The JSON body with `keys` present, or None after answering 400."""
        try:
            data = self.body()
            for key in keys:
                data[key] = self.required(data, key)
            return data
        except NbversionError as exc:
            self.fail(exc)
            return None

    def string_list(self, data: dict, key: str) -> list[str]:
        """`key` of the body as a list of strings (missing: empty); anything else is the client's error."""
        value = data.get(key)
        if value is None:
            return []
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise UsageError(f"`{key}` must be a list of strings", hint=f"send {{\"{key}\": [\"path\", ...]}}")
        return value

    def workspace_paths(self, data: dict, key: str) -> list[str]:
        """`key` as a list of paths, a relative one taken from the workspace root (the folder the
        sidebar shows), never from the server's working directory."""
        return [str(self.workspace_path / path) for path in self.string_list(data, key)]

    def optional_string(self, data: dict, key: str, default: str) -> str:
        value = data.get(key)
        if value is None or value == "":
            return default
        if not isinstance(value, str):
            raise UsageError(f"`{key}` must be a string, not {type(value).__name__}",
                             hint=f"send {{\"{key}\": \"...\"}} or leave it out")
        return value

    def required_argument(self, name: str) -> str:
        value = self.get_argument(name, "").strip()
        if not value:
            raise UsageError(f"the query parameter `{name}` is missing",
                             hint=f"add ?{name}=... to the URL")
        return value

    def int_argument(self, name: str, default=None):
        raw = self.get_argument(name, None)
        if raw in (None, ""):
            return default
        try:
            return int(raw)
        except ValueError:
            raise UsageError(f"`{name}` must be a whole number, not {raw!r}") from None

    def page_arguments(self, default_limit: int = paging.DEFAULT_LIMIT) -> dict:
        """`limit` (1 to MAX_LIMIT, default `default_limit`) and `offset` (0 or more) of a list route."""
        limit = self.int_argument("limit", default_limit)
        if not 1 <= limit <= paging.MAX_LIMIT:
            raise UsageError(f"`limit` must be between 1 and {paging.MAX_LIMIT}, not {limit}",
                             hint=f"ask for pages of at most {paging.MAX_LIMIT}; each answer's `next` asks for the next one")
        offset = self.int_argument("offset", 0)
        if offset < 0:
            raise UsageError(f"`offset` must be 0 or more, not {offset}",
                             hint="offset=0 is the first page; each answer's `next_offset` says where the next starts")
        return {"limit": limit, "offset": offset}

    def filters(self, *names: str) -> dict:
        """The filter parameters among `names` that the request gives (empty ones left out)."""
        found = {name: self.get_argument(name, "").strip() for name in names}
        return {name: value for name, value in found.items() if value}

    def fields(self) -> tuple[bool, tuple]:
        """`fields=view` (only the table) or `fields=a,b` (only these keys of each item)."""
        names = [f.strip() for f in self.get_argument("fields", "").split(",") if f.strip()]
        bad = [f for f in names if f != "view" and not FIELD_NAME.fullmatch(f)]
        if bad:
            raise UsageError(f"`fields`: {bad[0]!r} is not a field name",
                             hint="give `fields=view` or field names separated by commas, e.g. fields=id,status")
        return names == ["view"], tuple(f for f in names if f != "view")

    def next_page(self, payload: dict) -> None:
        """Add `next`: this route's query for the next page (None on the last one)."""
        if "next_offset" not in payload:
            return
        if payload["next_offset"] is None:
            payload["next"] = None
            return
        query = {key: self.get_argument(key) for key in self.request.arguments}
        query.update(offset=payload["next_offset"], limit=payload["limit"])
        route = self.request.path.split("/nbversion/api/", 1)[-1].rstrip("/")
        payload["next"] = f"{route}?{urlencode(query)}"

    # --- calling core --------------------------------------------------------------------
    async def call(self, operation: Callable, mutating: bool = False):
        """Run `operation(ws)` in a worker thread, as the request's user; a mutating one fails
        fast when locked.

        The core would wait up to `lock_timeout` for the lock; a web request should rather
        answer 409 at once and let the user retry than hang for two minutes.
        """
        from ..core.repo.identity import acting_as
        acting = acting_identity(self)

        def run():
            # set in the worker thread itself: the executor does not carry the loop's context
            with acting_as(*acting) if acting else nullcontext():
                ws = self.workspace()
                if mutating:
                    from ..core.backends.lock import is_locked
                    if is_locked(ws.root):
                        raise _locked_error(ws.root)
                return operation(ws)

        return await asyncio.get_running_loop().run_in_executor(EXECUTOR, run)

    async def respond(self, operation: Callable, mutating: bool = False, status: int = 200) -> None:
        try:
            view_only, fields = self.fields()   # a bad `fields` is refused before any work
            result = await self.call(operation, mutating)
        except NbversionError as exc:
            return self.fail(exc)
        except ModuleNotFoundError as exc:
            return self.fail(_not_available(exc))
        except Exception as exc:   # noqa: BLE001 - the last line of defence: JSON, never a raw 500 page
            return self.fail(self.internal(exc))
        try:
            payload = to_payload(result, view_only, fields)
        except NbversionError as exc:
            return self.fail(exc)
        self.next_page(payload)
        self.set_status(status)
        logger.debug("%s %s: %d", self.request.method, self.request.path, status)
        self.finish(json.dumps(payload, default=str))

    def internal(self, exc: BaseException) -> NbversionError:
        """`exc` as the error a user sees; a bug's traceback goes to the server log, not the client."""
        error = as_error(exc, hint=SERVER_LOG_HINT)
        if isinstance(error, InternalError) or error.http_status >= 500:
            app_log.error("nbversion: %s %s failed", self.request.method, self.request.path,
                          exc_info=(type(exc), exc, exc.__traceback__))
        return error

    def fail(self, exc: NbversionError) -> None:
        logger.debug("%s %s: %s %s", self.request.method, self.request.path, exc.http_status, exc.type,
                     exc_info=(type(exc), exc, exc.__traceback__))
        self.set_status(exc.http_status)
        self.finish(json.dumps({"error": exc.to_dict()}, default=str))

    def write_error(self, status_code: int, **kwargs) -> None:
        """Anything unexpected (a bug, a 403 from auth) keeps the same JSON error shape."""
        exc = kwargs.get("exc_info", (None, None, None))[1]
        self.set_header("Content-Type", "application/json")
        if exc is not None and not isinstance(exc, tornado.web.HTTPError):
            # tornado has logged the traceback already
            error = as_error(exc, hint=SERVER_LOG_HINT)
            self.set_status(error.http_status if error.http_status >= 400 else 500)
            return self.finish(json.dumps({"error": error.to_dict()}, default=str))
        message = (exc.log_message if exc is not None else None) or self._reason
        self.finish(json.dumps({"error": {"type": "HTTPError", "message": message,
                                          "hint": "see the Jupyter server log for details"}}))
