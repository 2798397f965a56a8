"""The REST routes under /nbversion/api/: one small handler per resource, thin over core.

Read-only routes are GET; anything that changes the workspace is POST (Jupyter checks XSRF
on every non-GET request) and fails fast with 409 while another process holds the lock.
List routes answer one page (`limit`, `offset`; the answer's `total` and `next`), filtered by
the core call itself, so a page of 10,000 runs costs a page (docs/sidebar.md lists the parameters).
"""
from __future__ import annotations

import logging
import tornado.web
from jupyter_server.utils import url_path_join

from ..errors import NbversionError
from .handlers import NbversionHandler
from .progress import ProgressHandler

logger = logging.getLogger(__name__)

NAME = r"(?P<name>[^/]+)"
LOG_PAGE = 50
LOG_CHANGES = 100   # changes listed per commit (each entry's changes_total says how many it made)


class StatusHandler(NbversionHandler):
    @tornado.web.authenticated
    async def get(self):
        await self.respond(lambda ws: ws.status())


class CommitHandler(NbversionHandler):
    @tornado.web.authenticated
    async def post(self):
        data = self.body_or_fail("message")
        if data is None:
            return
        try:
            paths = self.workspace_paths(data, "paths")
        except NbversionError as exc:
            return self.fail(exc)
        await self.respond(lambda ws: ws.commit(data["message"], paths),
                           mutating=True, status=201)


class LogHandler(NbversionHandler):
    @tornado.web.authenticated
    async def get(self):
        def log(ws):
            # `n` is the older name of `limit`; a page of history is 50 commits unless asked
            page = self.page_arguments(default_limit=self.int_argument("n", LOG_PAGE))
            return ws.log(page["limit"], offset=page["offset"], max_changes=LOG_CHANGES)
        await self.respond(log)


class DatasetsHandler(NbversionHandler):
    @tornado.web.authenticated
    async def get(self):
        await self.respond(lambda ws: ws.dataset_list(**self.page_arguments()))


class DatasetHandler(NbversionHandler):
    @tornado.web.authenticated
    async def get(self, name):
        rev = self.get_argument("rev", "")
        await self.respond(lambda ws: ws.dataset_show(f"{name}@{rev}" if rev else name))


class DatasetDiffHandler(NbversionHandler):
    @tornado.web.authenticated
    async def get(self, name):
        def diff(ws):
            return ws.dataset_diff(name, self.required_argument("a"), self.required_argument("b"))
        await self.respond(diff)


class ModelsHandler(NbversionHandler):
    @tornado.web.authenticated
    async def get(self):
        await self.respond(lambda ws: ws.model_list(**self.page_arguments()))


class ModelHandler(NbversionHandler):
    @tornado.web.authenticated
    async def get(self, name):
        rev = self.get_argument("rev", "")
        await self.respond(lambda ws: ws.model_show(f"{name}@{rev}" if rev else name))


class RunsHandler(NbversionHandler):
    @tornado.web.authenticated
    async def get(self):
        await self.respond(lambda ws: ws.runs_list(**self.filters("status", "dataset", "model"),
                                                   **self.page_arguments()))


class RunHandler(NbversionHandler):
    @tornado.web.authenticated
    async def get(self, name):
        await self.respond(lambda ws: ws.runs_show(name))


class RunsCompareHandler(NbversionHandler):
    """`runs/compare?runs=A,B[&metric=mAP50]`: what `nbversion runs compare A B` answers."""
    @tornado.web.authenticated
    async def get(self):
        def compare(ws):
            run_ids = [r.strip() for r in self.required_argument("runs").split(",") if r.strip()]
            return ws.runs_compare(run_ids, metric=self.get_argument("metric", "") or None)
        await self.respond(compare)


class RunStopHandler(NbversionHandler):
    # Stopping only raises a flag the training thread reads; it takes no workspace lock,
    # and must not wait for one (the run itself may be committing).
    @tornado.web.authenticated
    async def post(self, name):
        await self.respond(lambda ws: ws.runs_stop(name), status=202)


class RunCancelHandler(NbversionHandler):
    # A queued run only: its entry leaves the queue and its record is committed as cancelled
    # (under the workspace lock); a run that has started answers 400 with "use runs stop".
    @tornado.web.authenticated
    async def post(self, name):
        await self.respond(lambda ws: ws.runs_cancel(name))


class RegistryHandler(NbversionHandler):
    @tornado.web.authenticated
    async def get(self):
        await self.respond(lambda ws: ws.registry(**self.filters("name", "stage"), **self.page_arguments()))


class PromoteHandler(NbversionHandler):
    @tornado.web.authenticated
    async def post(self):
        data = self.body_or_fail("ref")
        if data is None:
            return
        try:
            stage = self.optional_string(data, "stage", "champion")
        except NbversionError as exc:
            return self.fail(exc)
        await self.respond(lambda ws: ws.promote(data["ref"], stage=stage),
                           mutating=True, status=201)


class AuditHandler(NbversionHandler):
    @tornado.web.authenticated
    async def get(self):
        # pages count back from the newest entry: offset=0 is the latest `limit` entries
        await self.respond(lambda ws: ws.audit(**self.filters("user", "action", "since"), **self.page_arguments()))


class AuditVerifyHandler(NbversionHandler):
    @tornado.web.authenticated
    async def get(self):
        await self.respond(lambda ws: ws.audit_verify())


class WhoamiHandler(NbversionHandler):
    @tornado.web.authenticated
    async def get(self):
        await self.respond(lambda ws: ws.whoami())


ROUTES = [
    ("status", StatusHandler),
    ("commit", CommitHandler),
    ("log", LogHandler),
    ("datasets", DatasetsHandler),
    (f"datasets/{NAME}", DatasetHandler),
    (f"datasets/{NAME}/diff", DatasetDiffHandler),
    ("models", ModelsHandler),
    (f"models/{NAME}", ModelHandler),
    ("runs", RunsHandler),
    ("runs/progress", ProgressHandler),
    ("runs/compare", RunsCompareHandler),
    (f"runs/{NAME}", RunHandler),
    (f"runs/{NAME}/stop", RunStopHandler),
    (f"runs/{NAME}/cancel", RunCancelHandler),
    ("registry", RegistryHandler),
    ("registry/promote", PromoteHandler),
    ("audit", AuditHandler),
    ("audit/verify", AuditVerifyHandler),
    ("whoami", WhoamiHandler),
]


def handlers(base_url: str) -> list:
    """(pattern, handler) pairs for tornado, anchored at the server's base URL."""
    logger.debug("%d REST routes under %snbversion/api/", len(ROUTES), base_url)
    return [(url_path_join(base_url, "nbversion", "api", path) + "/?", handler)
            for path, handler in ROUTES]
