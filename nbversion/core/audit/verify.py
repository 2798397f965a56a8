"""`audit verify`: the chain, roles and rules, hand-made tags, half versions.

Roles and rules live in git, so a laptop's checks are advisory; `audit verify` re-checks
every registration, promotion and role change against the users.toml and rules.toml in
force just before the commit that recorded it, which a CI job can enforce.
"""
from __future__ import annotations

import bisect
import json
import logging
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Optional

from ..result import Result
from ..backends import _git, _git_history
from . import chain as audit, policy_edits, renames
from ..repo import identity
from ..registry import rules
from ..repo.config import META_DIR
from ..registry.versions import REGISTRY_DIR, artifact_tags, version_dir

from typing import TYPE_CHECKING

if TYPE_CHECKING:   # annotations only: core.workspace imports this module into Workspace
    from ...events import EventCallback
    from ..workspace import Workspace

logger = logging.getLogger(__name__)

USERS_FILE = f"{META_DIR}/users.toml"
AUDIT_PATH = str(audit.AUDIT_FILE)
RECHECKED = (b'"action":"promote"', b'"action":"demote"', b'"action":"register"', b'"action":"user add"')
# nbversion writes keys sorted, so "action" comes first: a prefix test is 8x faster than a search
RECHECKED_PREFIXES = tuple(b"{" + key for key in RECHECKED)
RENUMBERED = b'"action":"renumber"'     # read too: which tag a register/promote entry's tag is now


# --- audit verify --------------------------------------------------------------------------
@dataclass
class VerifyResult(Result):
    ok: bool
    lines: int
    problems: list = field(default_factory=list)    # {line, check, message}
    warnings: list = field(default_factory=list)
    checked: dict = field(default_factory=dict)

    @property
    def exit_code(self) -> int:
        return 0 if self.ok else 1

    def table(self):
        rows = [[p.get("line") or "", p["check"], "FAIL", p["message"]] for p in self.problems]
        rows += [[w.get("line") or "", w["check"], "warn", w["message"]] for w in self.warnings]
        return ["line", "check", "result", "problem"], rows

    def highlight(self, row) -> bool:
        return row[2] == "FAIL"

    def summary(self):
        counts = ", ".join(f"{v} {k}" for k, v in self.checked.items())
        if self.ok:
            return f"audit log OK: {self.lines} lines chained; checked {counts}"
        first = self.problems[0]
        where = f"line {first['line']}: " if first.get("line") else ""
        return f"audit verify FAILED: {where}{first['message']} ({len(self.problems)} problem(s))"

    def to_dict(self):
        return {"ok": self.ok, "lines": self.lines, "problems": self.problems, "warnings": self.warnings,
                "checked": self.checked}


class _Policies:
    """users.toml / rules.toml as they were before each commit that added audit lines."""

    def __init__(self, root: Path):
        self.root = root
        self.ends, self.revs = [], []        # ends[i]: last audit line added by the commit revs[i] names
        self.by_date = []                    # (commit date, users rev, rules rev) after each commit
        self._cache = {}
        self.rewrites = []                   # (sha, lines deleted): the log is append-only
        users_rev = rules_rev = None
        count = 0
        for commit in _git_history.numstat_log(root, [AUDIT_PATH, USERS_FILE, rules.RULES_FILE]):
            added, deleted = commit["changes"].get(AUDIT_PATH, (0, 0))
            if deleted and not _lossless_merge(root, commit["sha"]):
                self.rewrites.append((commit["sha"], deleted))
            if added or deleted:
                count += added - deleted
                self.ends.append(count)
                self.revs.append((users_rev, rules_rev))
            users_rev = commit["sha"] if USERS_FILE in commit["changes"] else users_rev
            rules_rev = commit["sha"] if rules.RULES_FILE in commit["changes"] else rules_rev
            self.by_date.append((datetime.fromisoformat(commit["date"]), users_rev, rules_rev))
        self.committed_lines = count

    def _load(self, rev: Optional[str], path: str):
        key = (rev, path)
        if key not in self._cache:
            if rev is None:     # not committed yet: the working tree is in force
                text = (self.root / path).read_text() if (self.root / path).exists() else ""
            else:
                text = (_git.show(self.root, rev, path) or b"").decode()
            if path == USERS_FILE:
                from ..repo.config import tomllib
                self._cache[key] = dict(tomllib.loads(text).get("users", {})) if text else {}
            else:
                self._cache[key] = rules.load(self.root, text)
        return self._cache[key]

    def for_line(self, number: int):
        at = bisect.bisect_left(self.ends, number)
        users_rev, rules_rev = self.revs[at] if at < len(self.ends) else self.by_date[-1][1:] if self.by_date else (None, None)
        return self._load(users_rev, USERS_FILE), self._load(rules_rev, rules.RULES_FILE)

    def at_date(self, when: datetime):
        users_rev = rules_rev = None
        for date, u, r in self.by_date:
            if date <= when:
                users_rev, rules_rev = u, r
        return self._load(users_rev, USERS_FILE), self._load(rules_rev, rules.RULES_FILE)


def _entry_keys(text: bytes | None) -> set:
    keys = set()
    for raw in (text or b"").splitlines():
        if raw.strip():
            e = json.loads(raw)
            keys.add((e.get("time"), e.get("user"), e.get("action"), e.get("target"),
                      json.dumps(e.get("details"), sort_keys=True)))
    return keys


def _lossless_merge(root: Path, sha: str) -> bool:
    """A merge commit that lost no parent's entry. `exp merge` before the log was a DAG re-chained
    both branches' logs by time (deleting lines); such history stays valid. Merges made now only
    append, so they never reach this check."""
    parents = _git.parents(root, sha)
    if len(parents) < 2:
        return False
    merged = _entry_keys(_git.show(root, sha, AUDIT_PATH))
    return all(_entry_keys(_git.show(root, p, AUDIT_PATH)) <= merged for p in parents)


def _needed_role(entry: dict, stage_rules: dict) -> tuple[str, str]:
    action, details = entry["action"], entry.get("details") or {}
    if action == "register":
        return "contributor", "register"
    if action == "user add":
        return "admin", "user add"
    stage = details.get("stage", "champion")
    needed = rules.for_stage(stage_rules, stage, model=str(entry.get("target") or "").partition("@")[0]).role
    if details.get("forced"):
        return "admin", f"forced {action} to {stage}"
    return needed, f"{action} to {stage}"


def recheck_entries(root: Path, policies: _Policies, problems: list, stats: dict) -> set:
    """Re-check role-bearing entries; returns the registry tags the log accounts for (a tag
    `pull` re-numbered counts under its new name)."""
    named, renamed = [], {}
    path = root / audit.AUDIT_FILE
    if not path.exists():
        return set()
    with open(path, "rb", buffering=1 << 20) as fh:
        for number, raw in enumerate(fh, start=1):
            if raw.startswith(b'{"action":'):
                if not raw.startswith(RECHECKED_PREFIXES) and not raw.startswith(b"{" + RENUMBERED):
                    continue
            elif not any(key in raw for key in RECHECKED) and RENUMBERED not in raw:
                continue
            try:
                entry = json.loads(raw)
            except ValueError:
                continue    # the chain check reports it
            if entry.get("action") == renames.RENUMBER:
                renames.add(renamed, entry)
                continue
            details = entry.get("details") or {}
            named += [(entry.get("hash"), t) for t in renames.tags_named(entry)]
            users, stage_rules = policies.for_line(number)
            needed, what = _needed_role(entry, stage_rules)
            role = identity.role_of(root, entry["user"], users)
            stats[entry["action"]] = stats.get(entry["action"], 0) + 1
            if not identity.allows(role, needed):
                problems.append({"line": number, "check": "roles",
                                 "message": f"{entry['user']} was {role} but {what} needs {needed} "
                                            f"({entry['target']})"})
            if entry["action"] == "promote" and not details.get("forced"):
                problems.extend({"line": number, "check": "gates", "message": message}
                                for message in recheck_gates(root, entry, stage_rules))
    return {renames.current(renamed, entry_hash, tag) for entry_hash, tag in named}


def _manifest_or_none(root: Path, ref: str) -> dict | None:
    from ..registry.versions import read_manifest, split_ref
    from ...errors import NbversionError

    name, version = split_ref(ref)
    try:
        return {**read_manifest(root, name, version, f"{name}@{version}"), "version": version}
    except (NbversionError, ValueError):   # a missing version is reported by the registry check
        logger.debug("the manifest of %s is not readable", ref, exc_info=True)
        return None


def recheck_gates(root: Path, entry: dict, stage_rules: dict) -> list[str]:
    """An unforced promotion must pass the metric gates in force then, whatever the entry says."""
    details = entry.get("details") or {}
    if any(not g.get("passed") for g in details.get("gates") or []):
        return [f"{entry['target']} was promoted past a failing gate without --force"]
    manifest = _manifest_or_none(root, entry["target"])
    if manifest is None:
        return []       # a missing version is reported by the registry check
    rule = rules.for_stage(stage_rules, details.get("stage", "champion"), model=entry["target"].partition("@")[0])
    previous = _manifest_or_none(root, f"{entry['target'].partition('@')[0]}@{details['previous']}") \
        if details.get("previous") else None
    failed = []
    for gate in rule.gates:
        if gate.kind == "metric":
            result = rules.check_metric(gate, manifest)
        elif gate.kind == "beats_champion" and not details.get("rollback"):
            result = rules.check_beats(gate, manifest, previous)
        else:
            continue    # dataset tags can change later: the recorded result stands
        if not result.passed:
            failed.append(f"{entry['target']} fails `{result.rule}` ({result.detail}) under the rules in force "
                          "then, but was promoted without --force")
    return failed


def check_stage_tags(root: Path, arts: dict, audited: set, policies: _Policies, problems: list, warnings: list) -> int:
    count = 0
    for art in arts.values():
        for event in art.events:
            count += 1
            if event.tag in audited:
                continue
            users, stage_rules = policies.at_date(datetime.fromisoformat(event.date))
            needed = rules.for_stage(stage_rules, event.stage, model=art.name).role
            role = identity.role_of(root, event.tagger, users)
            if not identity.allows(role, needed):
                problems.append({"line": None, "check": "tags",
                                 "message": f"stage tag {event.tag} was made by hand by {event.tagger or 'unknown'} "
                                            f"({role}); {event.stage} needs {needed}"})
            else:
                warnings.append({"line": None, "check": "tags",
                                 "message": f"stage tag {event.tag} by {event.tagger} is not in the audit log"})
    return count


def check_signed_tags(root: Path, arts: dict, policies: _Policies, since: int, problems: list) -> int:
    """Signed mode: each registry tag made since signing was turned on is signed by a listed key
    whose user could make it (a version: contributor; a stage: the stage's role)."""
    made = [(info["tag"], info["date"], "contributor", "register") for art in arts.values()
            for info in art.versions.values()]
    made += [(event.tag, event.date, None, event.stage) for art in arts.values() for event in art.events]
    model_of = {event.tag: art.name for art in arts.values() for event in art.events}
    made = [m for m in made if m[1] and datetime.fromisoformat(m[1]).timestamp() >= since]
    if not made:
        return 0
    rows = {row["name"]: row for row in _git.tags(root)}
    from ..security import signed_checks
    grades = signed_checks.tag_grades(root, [rows[name] for name, *_ in made if name in rows])
    for name, date, needed, what in made:
        grade, principal = grades.get(name, ("N", ""))
        if grade != "G":
            problems.append({"line": None, "check": "signatures",
                             "message": f"tag {name} is {'not signed' if grade == 'N' else 'signed by a key not in allowed_signers'}"})
            continue
        users, stage_rules = policies.at_date(datetime.fromisoformat(date))
        needed = needed or rules.for_stage(stage_rules, what, model=model_of.get(name)).role
        role = identity.role_of(root, principal, users)
        if not identity.allows(role, needed):
            problems.append({"line": None, "check": "signatures",
                             "message": f"tag {name} is signed by {principal} ({role}); {what} needs {needed}"})
    return len(made)


def check_versions(root: Path, arts: dict, audited: set, problems: list) -> int:
    """Half versions: a tag without its manifest, a folder without its tag, a manifest changed later."""
    specs, count = {}, 0
    for art in arts.values():
        for version, info in art.versions.items():
            count += 1
            rel = f"{version_dir(art.name, version)}/manifest.json"
            specs[(art.name, version)] = (f"{info['tag']}:{rel}", f"HEAD:{rel}")
    ids = _git_history.object_ids(root, [s for pair in specs.values() for s in pair]) if _git.head(root) else {}
    for (name, version), (at_tag, at_head) in specs.items():
        if ids.get(at_tag) is None:
            problems.append({"line": None, "check": "registry",
                             "message": f"tag {name}@{version} has no manifest at its commit (half version)"})
        elif ids.get(at_head) not in (None, ids[at_tag]):
            problems.append({"line": None, "check": "registry",
                             "message": f"{name}@{version}/manifest.json changed after registration"})
    folder = root / REGISTRY_DIR
    for version_path in sorted(folder.glob("*/v*")) if folder.exists() else []:
        art = arts.get(version_path.parent.name)
        if version_path.is_dir() and (art is None or version_path.name not in art.versions):
            problems.append({"line": None, "check": "registry",
                             "message": f"{version_path.relative_to(root)} has no tag {version_path.parent.name}@"
                                        f"{version_path.name} (an interrupted register: remove the folder, or "
                                        "register again)"})
    all_tags = {e.tag for art in arts.values() for e in art.events}
    all_tags |= {info["tag"] for art in arts.values() for info in art.versions.values()}
    for tag in sorted(audited - all_tags):
        problems.append({"line": None, "check": "tags",
                         "message": f"the audit log records {tag} but the tag does not exist (interrupted, or deleted)"})
    return count


def check_history(policies: _Policies, chain: audit.ChainCheck, problems: list) -> None:
    """What the chain alone cannot see: lines cut off the end, or a log re-chained and committed."""
    if chain.ok and chain.lines < policies.committed_lines:
        problems.append({"line": chain.lines + 1, "check": "chain",
                         "message": f"the log has {chain.lines} lines but {policies.committed_lines} were committed: "
                                    "its last line(s) were removed"})
    for sha, deleted in policies.rewrites:
        problems.append({"line": None, "check": "chain",
                         "message": f"commit {sha[:8]} removed or rewrote {deleted} committed audit line(s); "
                                    "the log is append-only"})


def verify(ws: Workspace, on_event: Optional[EventCallback] = None) -> VerifyResult:
    """Check the audit hash chain and re-check roles, rules, stage tags and versions (`nbversion audit verify`).

    Args:
        on_event: called with progress `Event`s, one per check (the signature check of a long
            signed history takes the longest).

    Returns:
        VerifyResult: `ok`, the lines checked, `problems`, `warnings` and counts per check.

    Example:
        >>> ws = nbv.open(".")
        >>> ws.audit_verify().ok
    """
    from ...events import Event, emitter

    emit = emitter(on_event)
    step = lambda done, what: emit(Event("audit verify", done, 6, what))
    step(0, "hash chain")
    chain = audit.verify_chain(ws.root)
    problems, warnings, stats = [], [], {}
    if not chain.ok:
        problems.append({"line": chain.line, "check": "chain", "message": chain.problem})
    step(1, "history")
    policies = _Policies(ws.root)
    check_history(policies, chain, problems)
    step(2, "entries")
    audited = recheck_entries(ws.root, policies, problems, stats)
    from ..security import signed_checks
    step(3, "signatures")
    signed = signed_checks.check(ws.root, problems)
    if signed.since is not None:
        stats["signed commits"] = signed.checked
    step(4, "policy edits")
    stats["policy edits"] = policy_edits.check(ws.root, problems, signed.actors)
    step(5, "tags and versions")
    arts = artifact_tags(ws.root)
    stats["stage tags"] = check_stage_tags(ws.root, arts, audited, policies, problems, warnings)
    if signed.since is not None:
        stats["signed tags"] = check_signed_tags(ws.root, arts, policies, signed.since, problems)
    stats["versions"] = check_versions(ws.root, arts, audited, problems)
    step(6, "done")
    return VerifyResult(not problems, chain.lines, problems, warnings, stats)
