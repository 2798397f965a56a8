"""`promote` and `demote`: stage tags behind roles and gates, then deploy hooks.

A promotion is a new GTO stage tag `<name>#<stage>#<N>` on the version's commit; the newest
N wins, so history is never rewritten: a rollback (promoting an older version, or `demote`)
is one more tag. The audit entry is committed before the tag is made; `audit verify`
reports a tag without its entry (made by hand) and an entry without its tag.
"""
from __future__ import annotations

import json
import logging
import time
from datetime import datetime
from dataclasses import dataclass, field
from typing import Optional

from ...errors import GateFailed, PermissionDenied, UsageError
from ...events import Event, emitter
from ..result import Result
from ..backends import _git
from . import deploy, rules, tags, versions as registry
from .resolve import select_version
from ..repo import identity

from typing import TYPE_CHECKING

logger = logging.getLogger(__name__)

if TYPE_CHECKING:   # annotations only: core.workspace imports this module into Workspace
    from ...events import EventCallback
    from ..workspace import Workspace


@dataclass
class PromoteResult(Result):
    name: str
    version: str
    stage: str
    tag: str
    previous: Optional[str]
    forced: bool = False
    rules: list = field(default_factory=list)      # RuleResult
    deploys: list = field(default_factory=list)    # DeployRecord
    action: str = "promote"

    def table(self):
        return ["rule", "result", "detail"], [[r.rule, "pass" if r.passed else "FAIL", r.detail] for r in self.rules]

    def highlight(self, row) -> bool:
        return row[1] == "FAIL"

    def summary(self):
        was = f" (was {self.previous})" if self.previous else ""
        verb = "demoted: " if self.action == "demote" else ""
        lines = [f"{verb}{self.name}@{self.version} is now {self.stage}{was}; tag {self.tag}"
                 + (" — FORCED past failing gates" if self.forced else "")]
        if self.action == "demote" and self.version is None:
            lines = [f"{self.name} has no {self.stage} now; tag {self.tag}"]
        for record in self.deploys:
            state = "ok" if record.ok else f"FAILED (status {record.status})"
            lines.append(f"deploy {record.hook} {record.target}: {state}")
        return "\n".join(lines)


def _dataset_tags(root, manifest: dict) -> Optional[list]:
    """Tags of the version's dataset: in its metadata at the lineage commit (and now, if the content
    is the same), and git tags `dataset/<name>/<tag>` on a version with the same content."""
    dataset = (manifest.get("lineage") or {}).get("dataset")
    if not dataset or not dataset.get("name"):
        return None
    meta_path = f"datasets/{dataset['name']}.meta.json"
    found, seen = set(), False
    for rev in filter(None, (dataset.get("commit"), "HEAD")):
        raw = _git.show(root, rev, meta_path)
        if raw is None:
            continue
        meta = json.loads(raw)
        same_content = rev != "HEAD" or not dataset.get("md5") or meta.get("content_hash") in (None, dataset["md5"])
        if same_content:
            seen = True
            found.update(meta.get("tags") or [])
    for row in _git.tags(root, f"dataset/{dataset['name']}/*"):
        # `dataset add --tag T` (or `git tag dataset/<name>/T` later): a tag on the same content counts
        same_commit = row["commit"] == dataset.get("commit")
        meta_then = None if same_commit else _git.show(root, row["commit"], meta_path)
        if same_commit or (meta_then and json.loads(meta_then).get("content_hash") == dataset.get("md5")):
            seen = True
            found.add(row["name"].rsplit("/", 1)[-1])
    return sorted(found) if seen else None


def _champion_manifest(root, art: tags.ArtifactTags, holder: Optional[str]) -> Optional[dict]:
    if not holder:
        return None
    manifest = registry.read_manifest(root, art.name, holder, art.versions[holder]["commit"])
    return {**manifest, "version": holder}


def _was_holder(art: tags.ArtifactTags, stage: str, version: str) -> bool:
    return any(e.version == version and not e.cancel for e in art.history(stage))


def check_rules(ws, art, version, stage, rule, user) -> list:
    holder = art.holders().get(stage)
    manifest = registry.read_manifest(ws.root, art.name, version, art.versions[version]["commit"])
    results = rules.evaluate(rule, manifest, champion=_champion_manifest(ws.root, art, holder),
                             current_stages=art.stages_of(version), user=user,
                             role=identity.role_of(ws.root, user), dataset_tags=_dataset_tags(ws.root, manifest))
    if _was_holder(art, stage, version):
        # a rollback restores a former holder: comparing it with the version it replaces is moot
        results = [rules.RuleResult(r.rule, True, "rollback to a former " + stage + ": not compared")
                   if r.rule.startswith("beats the current") else r for r in results]
    for result in results:
        logger.debug("gate %s for %s@%s -> %s: %s (%s)", result.rule, art.name, version, stage,
                     "pass" if result.passed else "FAIL", result.detail)
    return results


def _refuse(tx, target: str, stage: str, results: list):
    failed = [r for r in results if not r.passed]
    tx.audit("promote refused", target, {"stage": stage, "gates": [r.to_dict() for r in results]})
    tx.commit(f"nbversion: promotion of {target} to {stage} refused", [])
    table = "\n".join(f"  {'pass' if r.passed else 'FAIL'}  {r.rule}  ({r.detail})" for r in results)
    return GateFailed(f"{len(failed)} of {len(results)} rules failed; {target} was not promoted to {stage}:\n{table}",
                             hint="improve the version, or (admins only) promote with --force, which is audited",
                             results=results)


def _wait_past(last: float) -> None:
    """Sleep until the clock's second is past `last`: GTO orders stage tags by their (whole
    second) tagger date, so two tags in one second could make `gto show` pick the older one."""
    while int(time.time()) <= int(last):
        time.sleep(0.05)


def _last_tag_time(art: tags.ArtifactTags) -> float:
    return max((datetime.fromisoformat(e.date).timestamp() for e in art.events), default=0.0)


def _run_deploys(ws, rule, name, version, stage, user, previous, commit, emit) -> list:
    if not rule.deploy or not version:
        return []
    emit(Event("deploy", 0, 1, f"running deploy hooks of {stage}"))
    art = registry.one_artifact(ws.root, name)
    paths = [str(ws.root / registry.version_dir(name, version) / f)
             for f in registry.read_manifest(ws.root, name, version, art.versions[version]["commit"])["files"]]
    records = deploy.run_hooks(ws.root, rule.deploy, deploy.payload(name, version, stage, user, paths, previous, commit))
    with ws.transaction("deploy", role="viewer") as tx:
        deploy.append_history(ws.root, records)
        tx.audit("deploy", f"{name}@{version}", {"stage": stage, "hooks": [
            {"hook": r.hook, "target": r.target, "ok": r.ok, "status": r.status} for r in records]})
        tx.commit(f"nbversion: deploy {name}@{version} ({stage})", [deploy.DEPLOYS_FILE])
    emit(Event("deploy", 1, 1, "done"))
    return records


def _require_trusted_deploy(root, rule, stage: str) -> None:
    """A deploy command is a shell command every later promote runs, by admins and CI too: it
    runs only from rules an admin committed (advisory mode checks the roles before that commit)."""
    if not (rule.deploy or {}).get("command"):
        return
    from ..audit.policy_edits import deploy_command_refusal

    reason = deploy_command_refusal(root)
    if reason:
        raise PermissionDenied(f"not promoting to {stage}: its deploy command will not run, because {reason}",
                               hint="an admin commits rules.toml (`nbversion commit -m ...`), then promote again")


def promote(ws: Workspace, ref: str, stage: str = "champion", force: bool = False,
            on_event: Optional[EventCallback] = None) -> PromoteResult:
    """Assign a stage to a version behind roles and gates, then run deploy hooks (`nbversion promote`).

    Args:
        ref: NAME@vX.Y.Z, the version to promote.
        stage: the stage to assign.
        force: admins only: promote past failing gates (audited).
        on_event: called with progress `Event`s (gates, deploy hooks).

    Returns:
        PromoteResult: the version, stage, stage tag, former holder, gate results and deploys.

    Example:
        >>> ws = nbv.open(".")
        >>> ws.promote("det@v1.2.0", stage="champion")
    """
    emit = emitter(on_event)
    name, selector = registry.split_ref(ref)
    if not selector:
        raise UsageError(f"say which version to promote: {name}@vX.Y.Z", hint=f"see `nbversion registry {name}`")
    tags.check_name(stage, "stage")
    rule = rules.for_stage(rules.load(ws.root), stage, model=name)   # [models.NAME.stages.STAGE] first
    _require_trusted_deploy(ws.root, rule, stage)
    if force:
        identity.require(ws.root, "admin", "promote --force")
    with ws.transaction("promote", role=rule.role) as tx:
        art = registry.one_artifact(ws.root, name)
        version = select_version(art, selector)
        previous = art.holders().get(stage)
        logger.debug("promote %s: %r chose %s; %s held by %s; rule role %s, %d gate(s)", name, selector, version,
                     stage, previous, rule.role, len(rule.gates))
        if previous == version:
            raise UsageError(f"{name}@{version} is already {stage}", hint=f"see `nbversion registry {name}`")
        target = f"{name}@{version}"
        results = check_rules(ws, art, version, stage, rule, tx.user)
        forced = force and not all(r.passed for r in results)
        if not all(r.passed for r in results) and not force:
            logger.debug("promotion of %s to %s refused by the gates", target, stage)
            raise _refuse(tx, target, stage, results)
        tag = tags.stage_tag(name, stage, art.next_counter())
        _wait_past(_last_tag_time(art))
        tx.audit("promote", target, {"stage": stage, "tag": tag, "previous": previous, "forced": forced,
                                     "rollback": _was_holder(art, stage, version),
                                     "gates": [r.to_dict() for r in results]})
        commit = tx.commit(f"nbversion: promote {target} to {stage}" + (" (forced)" if forced else ""), [])
        _git.create_tag(ws.root, tag, art.versions[version]["commit"], tags.assign_message(name, stage, version), tx.user, sign=tx.sign)
        logger.debug("tagged %s on %s%s", tag, art.versions[version]["commit"], " (forced past failing gates)" if forced else "")
        emit(Event("promote", 1, 1, f"{tag}"))
    records = _run_deploys(ws, rule, name, version, stage, tx.user, previous, commit, emit)
    return PromoteResult(name, version, stage, tag, previous, forced, results, records)


def _former_holder(art: tags.ArtifactTags, stage: str, leaving: str) -> Optional[str]:
    """The version that held `stage` before `leaving` took it, if it still exists."""
    before = None
    for event in art.history(stage):
        if event.version == leaving and not event.cancel:
            return before
        if not event.cancel and event.version != leaving:
            before = event.version
    return before


def demote(ws: Workspace, ref: str, stage: str = "champion", rollback: bool = True,
           on_event: Optional[EventCallback] = None) -> PromoteResult:
    """Take a stage from a version; by default the former holder gets it back (`nbversion demote`).

    Args:
        ref: NAME@vX.Y.Z that holds the stage (NAME@champion works too).
        stage: the stage to take away.
        rollback: give the stage back to its former holder; False leaves it empty.
        on_event: called with progress `Event`s (deploy hooks).

    Returns:
        PromoteResult: the version, stage, who holds it now, and the deploys run.

    Example:
        >>> ws = nbv.open(".")
        >>> ws.demote("det@champion")
    """
    emit = emitter(on_event)
    name, selector = registry.split_ref(ref)
    tags.check_name(stage, "stage")
    rule = rules.for_stage(rules.load(ws.root), stage, model=name)
    with ws.transaction("demote", role=rule.role) as tx:
        art = registry.one_artifact(ws.root, name)
        version = select_version(art, selector or stage)
        if art.holders().get(stage) != version:
            raise UsageError(f"{name}@{version} is not {stage}", hint=f"see `nbversion registry {name}`")
        restored = _former_holder(art, stage, version) if rollback else None
        counter = art.next_counter()
        unassign = tags.stage_tag(name, stage, counter, cancel=True)
        made = [unassign] + ([tags.stage_tag(name, stage, counter + 1)] if restored else [])
        tx.audit("demote", f"{name}@{version}", {"stage": stage, "tag": unassign, "restored": restored,
                                                 "restore_tag": made[1] if restored else None})
        commit = tx.commit(f"nbversion: demote {name}@{version} from {stage}"
                           + (f", {restored} restored" if restored else ""), [])
        _wait_past(_last_tag_time(art))
        _git.create_tag(ws.root, unassign, art.versions[version]["commit"],
                        tags.unassign_message(name, stage, version), tx.user, sign=tx.sign)
        if restored:
            _wait_past(time.time())
            _git.create_tag(ws.root, made[1], art.versions[restored]["commit"],
                            tags.assign_message(name, stage, restored), tx.user, sign=tx.sign)
    records = _run_deploys(ws, rule, name, restored, stage, tx.user, version, commit, emit)
    result = PromoteResult(name, restored, stage, ", ".join(made), version, rules=[], deploys=records, action="demote")
    return result
