"""A small fake of the datasets, registry, promotion and audit modules, for UI tests.

Loaded into the `jupyter lab` process of tests/test_sidebar_browser.py (through its
jupyter_server_config.py), so the sidebar's every path (show, diff, live progress, stop,
champion, promote with gates, audit, verify) is tested in the browser whatever the state of
the real modules. The fakes return real `Result`s and mutate through the real transaction
(lock, role check, hash-chained audit, commit), like the modules they stand in for. Runs are
not faked: the tests train for real (tests/trained.py); the real runs and runner modules read
and stop them.
"""
from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field

from nbversion.core.audit import chain as audit_chain
from nbversion.errors import NotFound
from nbversion.render import Result

STATE = {"champion": "v1.0.0"}
# NBV_FAKE_VERSIONS=45 makes a long registry (the sidebar draws 30 rows and "Show all")
VERSIONS = [f"v1.{i}.0" for i in range(int(os.environ.get("NBV_FAKE_VERSIONS", "2")))]


@dataclass
class Table(Result):
    headers: list
    rows: list
    note: str = ""
    marked: list = field(default_factory=list)   # rows to highlight, by first two cells
    ok: bool = True

    def table(self):
        return self.headers, self.rows

    def summary(self):
        return self.note

    def highlight(self, row):
        return list(row[:2]) in self.marked


# --- datasets ------------------------------------------------------------------------------

def list_datasets(ws):
    return Table(["name", "version", "classes", "images"], [["shapes", "a1b2c3d4", "circle, square", 24]],
                 "1 dataset")


def show(ws, ref):
    if not ref.startswith("shapes"):
        raise NotFound(f"no dataset {ref}", hint="see `nbversion dataset list`")
    return Table(["class", "train", "val"], [["circle", 9, 4], ["square", 7, 4]], "shapes: 16 train, 8 val")


def diff(ws, name, rev_a, rev_b):
    return Table(["change", "path"], [["added", "images/train/017.png"]], f"{name}: 1 file added")


# --- registry, promotion -------------------------------------------------------------------

def registry(ws, name=None):
    rows = [["detector", v, "champion" if v == STATE["champion"] else "", "tester@example.com"]
            for v in reversed(VERSIONS)]      # newest first, as the real registry lists them
    return Table(["name", "version", "stage", "registered by"], rows, f"champion: detector@{STATE['champion']}",
                 marked=[["detector", STATE["champion"]]])


def promote(ws, ref, stage="champion"):
    name, _, version = ref.partition("@")
    if version not in VERSIONS:
        raise NotFound(f"{ref} is not registered", hint="see `nbversion registry`")
    with ws.transaction("promote", role="admin") as tx:
        tx.audit("promote", ref, {"stage": stage, "previous": STATE["champion"]})
        tx.commit(f"nbversion: promote {ref} to {stage}")
    STATE["champion"] = version
    return Table(["gate", "rule", "value", "passed"], [["mAP50-95", ">= 0.30", "0.41", "yes"]],
                 f"{ref} is now {stage}")


def demote(ws, ref, stage="champion"):
    raise NotFound("demote is not part of the fake")


# --- audit ---------------------------------------------------------------------------------

def query(ws, user=None, action=None, since=None, limit=None):
    rows = [[e["time"][:19], e["user"], e["action"], e["target"]]
            for _, e in audit_chain.iter_entries(ws.root)
            if (user is None or e["user"] == user) and (action is None or e["action"] == action)]
    return Table(["time", "user", "action", "target"], rows[-limit:] if limit else rows)


def verify(ws):
    check = audit_chain.verify_chain(ws.root)
    note = f"audit chain intact: {check.lines} entries" if check.ok else f"line {check.line}: {check.problem}"
    return Table([], [], note, ok=check.ok)


# Workspace method -> the fake that stands in for it
WORKSPACE_METHODS = {
    "dataset_list": list_datasets, "dataset_show": show, "dataset_diff": diff,
    "registry": registry, "promote": promote, "demote": demote,
    "audit": query, "audit_verify": verify,
}


def install() -> None:
    """Make the fakes those Workspace methods: each method is its operation's function."""
    from nbversion.core.workspace import Workspace

    for name, function in WORKSPACE_METHODS.items():
        setattr(Workspace, name, function)
