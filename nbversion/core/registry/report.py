"""`report [--format html|json] [--out FILE]`: registry, champion history, deploys, audit summary.

The HTML is one standalone page (inline CSS, no scripts, nothing fetched) that prints to PDF.
"""
from __future__ import annotations

import json
import logging
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from ...errors import UsageError
from ..result import Result
from ..backends import atomic
from ..audit import chain as audit
from ..audit.chain import now_iso
from ..audit.verify import verify
from .deploy import read_history
from .listing import registry
from .versions import artifact_tags

from typing import TYPE_CHECKING

logger = logging.getLogger(__name__)

if TYPE_CHECKING:   # annotations only: core.workspace imports this module into Workspace
    from ..workspace import Workspace

CSS = """
body{font:14px/1.45 -apple-system,'Segoe UI',Roboto,Helvetica,Arial,sans-serif;color:#1d2330;max-width:1100px;margin:32px auto;padding:0 24px}
h1{font-size:24px;margin:0 0 4px}h2{font-size:18px;margin:28px 0 8px;border-bottom:2px solid #e3e6ec;padding-bottom:4px}
.meta{color:#5b6475}.ok{color:#137333;font-weight:600}.bad{color:#b3261e;font-weight:600}
table{border-collapse:collapse;width:100%;font-size:13px;margin:6px 0}
th,td{text-align:left;padding:4px 8px;border-bottom:1px solid #e3e6ec;vertical-align:top}
th{background:#f4f6f9}tr.hl td{background:#fff4cc}tr.fail td{background:#fde8e6}
.cards{display:flex;gap:12px;flex-wrap:wrap}.card{border:1px solid #e3e6ec;border-radius:6px;padding:8px 14px}
.card b{display:block;font-size:20px}
@media print{body{margin:0;max-width:none}h2{break-after:avoid}tr{break-inside:avoid}}
"""


@dataclass
class ReportResult(Result):
    path: str
    format: str
    versions: int
    promotions: int
    deploys: int
    audit_ok: bool

    def table(self):
        return ["report", "format", "versions", "promotions", "deploys", "audit"], [
            [self.path, self.format, self.versions, self.promotions, self.deploys, "OK" if self.audit_ok else "FAILED"]]

    def summary(self):
        return f"report written to {self.path}"


def champion_history(root) -> list[dict]:
    rows = []
    for art in artifact_tags(root).values():
        for event in art.events:
            rows.append({"name": art.name, "stage": event.stage, "version": event.version,
                         "action": "unassign" if event.cancel else "assign", "tag": event.tag,
                         "by": event.tagger, "date": event.date})
    return sorted(rows, key=lambda r: r["date"])


def collect(ws) -> dict:
    checked = verify(ws)
    counts_action, counts_user, last = Counter(), Counter(), None
    for _, entry in audit.iter_entries(ws.root):
        counts_action[entry["action"]] += 1
        counts_user[entry["user"]] += 1
        last = entry["time"]
    return {"generated_at": now_iso(), "workspace": str(ws.root),
            "registry": registry(ws).versions, "champion_history": champion_history(ws.root),
            "deploys": read_history(ws.root),
            "audit": {"lines": sum(counts_action.values()), "ok": checked.ok, "problems": checked.problems,
                      "warnings": checked.warnings, "by_action": dict(counts_action),
                      "by_user": dict(counts_user), "last_entry": last}}


def _table(headers, rows, row_class=lambda row: "") -> str:
    import html

    if not rows:
        return "<p class=meta>none</p>"
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join(f"<tr class='{row_class(r)}'>" + "".join(f"<td>{html.escape(_fmt(v))}</td>" for v in r) + "</tr>"
                   for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _fmt(value) -> str:
    if value is None:
        return ""
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def render_html(data: dict) -> str:
    import html

    a = data["audit"]
    status = "<span class=ok>chain and rules verified</span>" if a["ok"] else \
        f"<span class=bad>verification FAILED: {html.escape(a['problems'][0]['message'])}</span>"
    champions = [v for v in data["registry"] if v["champion"]]
    cards = "".join(f"<div class=card>{html.escape(label)}<b>{html.escape(str(value))}</b></div>" for label, value in [
        ("versions", len(data["registry"])), ("champions", ", ".join(f"{v['name']}@{v['version']}" for v in champions) or "none"),
        ("deploys", len(data["deploys"])), ("audit lines", a["lines"])])
    reg = _table(["model", "version", "stages", "mAP50-95", "mAP50", "registered by", "registered at"],
                 [[v["name"], v["version"], ", ".join(v["stages"]), v["metrics"].get("mAP50-95"), v["metrics"].get("mAP50"),
                   v["registered_by"], (v["registered_at"] or "")[:19]] for v in data["registry"]],
                 lambda r: "hl" if "champion" in r[2] else "")
    hist = _table(["date", "model", "stage", "version", "action", "by", "tag"],
                  [[h["date"][:19], h["name"], h["stage"], h["version"], h["action"], h["by"], h["tag"]]
                   for h in data["champion_history"]])
    deploys = _table(["time", "model", "version", "stage", "hook", "result", "status", "user"],
                     [[d["time"][:19], d["name"], d["version"], d["stage"], d["hook"], "ok" if d["ok"] else "FAILED",
                       d["status"], d["user"]] for d in data["deploys"]],
                     lambda r: "fail" if r[5] == "FAILED" else "")
    actions = _table(["action", "entries"], sorted(a["by_action"].items()))
    users = _table(["user", "entries"], sorted(a["by_user"].items()))
    problems = _table(["line", "check", "problem"], [[p.get("line"), p["check"], p["message"]] for p in a["problems"]],
                      lambda r: "fail")
    return (f"<!DOCTYPE html><html lang=en><head><meta charset=utf-8><title>nbversion report</title>"
            f"<style>{CSS}</style></head><body><h1>Model registry report</h1>"
            f"<p class=meta>{html.escape(data['workspace'])} · generated {html.escape(data['generated_at'][:19])} UTC · "
            f"{status}</p><div class=cards>{cards}</div>"
            f"<h2>Registry</h2>{reg}<h2>Champion history</h2>{hist}<h2>Deploy history</h2>{deploys}"
            f"<h2>Audit summary</h2>{actions}{users}<h2>Audit verification problems</h2>{problems}</body></html>")


def report(ws: Workspace, format: str = "html", out: Optional[str] = None) -> ReportResult:
    """Write a standalone report: registry, champions, deploys and audit summary (`nbversion report`).

    Args:
        format: "html" or "json".
        out: the file to write (default: nbversion-report.html or .json in the current folder).

    Returns:
        ReportResult: the path written and the counts it reports.

    Example:
        >>> ws = nbv.open(".")
        >>> ws.report("html", out="report.html")
    """
    if format not in ("html", "json"):
        raise UsageError(f"unknown report format {format!r}", hint="use --format html or --format json")
    data = collect(ws)
    path = Path(out) if out else Path.cwd() / f"nbversion-report.{format}"
    text = render_html(data) if format == "html" else json.dumps(data, indent=2, default=str)
    atomic.write_text(path, text)
    logger.debug("report (%s) written to %s: %d model(s)", format, path, len(data["registry"]))
    promotions = sum(1 for h in data["champion_history"] if h["action"] == "assign")
    return ReportResult(str(path), format, len(data["registry"]), promotions, len(data["deploys"]), data["audit"]["ok"])
