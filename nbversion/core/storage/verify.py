"""`verify [--repair]`: tags -> commits -> manifests -> DVC pointers -> cache files -> remote.

Every problem names what it affects (a registered version, a dataset version, the working
tree), so a user knows whether a corrupted byte matters. `--repair` fetches missing or
corrupted objects from a remote, drops a torn audit line, clears a stale lock, and re-checks.
What each tag, commit and the working tree needs is `reachability`'s walk (shared with `gc`,
`push`/`pull` and `backup`).
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from ...events import Event, emitter
from ..result import Result
from ..backends.hashing import file_md5
from ..backends import _dvc, dvc_cache, _git, _git_history, lock, pointers
from ..audit import chain as audit
from ..repo import leftovers
from .problem import Problem
from .reachability import VERSION_TAG, STAGE_TAG, anchor_pointers, expand, merge_needed, tag_anchors, worktree_needed

from typing import TYPE_CHECKING

logger = logging.getLogger(__name__)

if TYPE_CHECKING:   # annotations only: core.workspace imports this module into Workspace
    from ...events import EventCallback
    from ..workspace import Workspace



@dataclass
class VerifyResult(Result):
    problems: list = field(default_factory=list)
    checked: dict = field(default_factory=dict)
    remote: Optional[str] = None

    @property
    def exit_code(self) -> int:
        return 1 if any(not p.repaired for p in self.problems) else 0

    def table(self):
        rows = [[p.kind, p.what, ", ".join(p.affects), p.detail, "repaired" if p.repaired else ""]
                for p in self.problems]
        return ["problem", "what", "affects", "detail", "status"], rows

    def highlight(self, row) -> bool:
        return row[4] != "repaired"

    def summary(self) -> str:
        counts = ", ".join(f"{n} {k}" for k, n in self.checked.items())
        left = sum(1 for p in self.problems if not p.repaired)
        state = "all good" if not left else f"{left} problem(s) left"
        fixed = len(self.problems) - left
        return f"checked {counts}: {state}" + (f", {fixed} repaired" if fixed else "")


# --- checks -------------------------------------------------------------------------------

def check_registrations(root) -> list:
    """Half registrations (tag without manifest, manifest without tag) and changed versions."""
    problems = []
    versions = {m["name"] + "@v" + m["version"]: t["commit"] for t in _git.tags(root, "**")
                if (m := VERSION_TAG.match(t["name"]))}
    head = _git.head(root)
    head_manifests = [p for p in _git_history.tree_paths(root, head, ["registry"])
                      if p.endswith("/manifest.json")] if head else []
    specs = []
    for ref, rev in versions.items():
        name, version = ref.split("@")
        base = f"registry/{name}/{version}"
        specs += [f"{rev}:{base}/manifest.json", f"{rev}:{base}/files.dvc"]
        if head:
            specs += [f"{head}:{base}/manifest.json", f"{head}:{base}/files.dvc"]
    blobs = _git_history.cat_files(root, specs)
    for ref, rev in sorted(versions.items()):
        name, version = ref.split("@")
        base = f"registry/{name}/{version}"
        manifest = blobs.get(f"{rev}:{base}/manifest.json")
        if manifest is None:
            problems.append(Problem("half registration", f"tag {ref}", [f"registered {ref}"],
                                    "the version tag has no manifest.json in its commit"))
            continue
        for kind in ("manifest.json", "files.dvc"):
            now = blobs.get(f"{head}:{base}/{kind}") if head else None
            if now is not None and now != blobs.get(f"{rev}:{base}/{kind}"):
                problems.append(Problem("immutability", f"{base}/{kind}", [f"registered {ref}"],
                                        "changed after registration: differs from the tagged commit"))
        problems += _manifest_matches_files(root, ref, manifest, blobs.get(f"{rev}:{base}/files.dvc"))
        problems += _edited_in_worktree(root, ref, base, manifest, blobs.get(f"{rev}:{base}/files.dvc"))
    problems += _stage_tags_without_version(root)
    for path in head_manifests:
        parts = path.split("/")
        if len(parts) == 4 and f"{parts[1]}@{parts[2]}" not in versions:
            problems.append(Problem("half registration", path, [f"{parts[1]}@{parts[2]}"],
                                    "manifest without a version tag (registration did not finish)"))
    return problems


def _edited_in_worktree(root, ref: str, base: str, manifest: bytes, files_dvc: Optional[bytes]) -> list:
    """Every file of a version checked out here (its pointer is the tagged one) still hashes to
    the manifest: a re-saved model or an edited signature beside it is reported by name."""
    from ..registry.served import edited_files

    try:
        if files_dvc is None or (Path(root) / base / "files.dvc").read_bytes() != files_dvc:
            return []
        edited = edited_files(Path(root), base, json.loads(manifest))
    except (OSError, ValueError, AttributeError):
        return []    # not checked out here, or a broken manifest (reported above)
    return [Problem("immutability", path, [f"registered {ref}"],
                    f"edited after registration: no longer matches the manifest hash; "
                    f"`nbversion checkout HEAD {path} --force` restores it") for path in edited]


def _stage_tags_without_version(root) -> list:
    """A stage tag must point at a commit that holds a registered version of its model."""
    problems = []
    for tag in _git.tags(root, "**"):
        if (m := STAGE_TAG.match(tag["name"])) and not any(
                p.endswith("/manifest.json") for p in _git_history.tree_paths(root, tag["commit"], [f"registry/{m['name']}"])):
            problems.append(Problem("half registration", f"tag {tag['name']}", [f"stage {m['name']}#{m['stage']}"],
                                    "the stage tag points at a commit with no registered version"))
    return problems


def _manifest_matches_files(root, ref: str, manifest: bytes, files_dvc: Optional[bytes]) -> list:
    try:
        listed = {rel: f.get("md5") for rel, f in json.loads(manifest).get("files", {}).items()}
    except (ValueError, AttributeError):
        return [Problem("immutability", f"manifest of {ref}", [f"registered {ref}"], "manifest is not valid JSON")]
    outs = pointers.parse("files.dvc", files_dvc or b"")
    if not outs:
        return [Problem("half registration", f"files.dvc of {ref}", [f"registered {ref}"],
                        "the tagged commit has no DVC pointer for the weights")]
    md5, out = outs[0].md5, outs[0].path
    # manifest keys are relative to the version folder (`files/best.pt`); a `.dir` listing is
    # relative to the tracked output (`best.pt`): compare both from the version folder
    if md5.endswith(".dir"):
        try:
            actual = {f"{out}/{e['relpath']}": e["md5"] for e in json.loads(dvc_cache.object_path(root, md5).read_bytes())}
        except (OSError, ValueError):
            return []       # the missing .dir object is reported by the cache check
    else:
        actual = {out: md5}
    if listed and actual != listed:
        return [Problem("immutability", f"manifest of {ref}", [f"registered {ref}"],
                        "the manifest's file hashes do not match the tagged DVC pointer")]
    return []


def check_cache(root, needed: dict, on_event=None) -> tuple[list, dict]:
    """Missing and corrupted cache objects. Returns (problems, md5 -> labels checked)."""
    emit = emitter(on_event)
    everything, unreadable = expand(root, needed)
    problems = [Problem("missing", md5, sorted(needed[md5]), "directory listing not in the cache")
                for md5 in sorted(unreadable) if not dvc_cache.object_path(root, md5).exists()]
    for number, (md5, labels) in enumerate(sorted(everything.items()), start=1):
        emit(Event("hash", number, len(everything), md5[:12]))
        path = dvc_cache.object_path(root, md5)
        if md5 in unreadable and not path.exists():
            continue
        if not path.exists():
            problems.append(Problem("missing", md5, sorted(labels), "not in the local cache"))
        elif file_md5(path) != md5.replace(".dir", ""):
            problems.append(Problem("corrupt", md5, sorted(labels),
                                    f"{path.relative_to(root)} does not match its hash"))
    return problems, everything


def check_remote(root, everything: dict, remote: Optional[str]) -> list:
    missing = _dvc.remote_missing(root, everything, remote)
    return [Problem("not on remote", md5, sorted(everything[md5]), f"remote {remote or '(default)'}")
            for md5 in sorted(missing)]


def check_audit_and_lock(root) -> list:
    problems = []
    path = Path(root) / audit.AUDIT_FILE
    data = path.read_bytes() if path.exists() else b""
    if data and not data.endswith(b"\n"):
        problems.append(Problem("audit", str(audit.AUDIT_FILE), ["audit log"],
                                "torn last line (a write was cut off)"))
    else:
        chain = audit.verify_chain(root)
        if not chain.ok:
            problems.append(Problem("audit", f"{audit.AUDIT_FILE}:{chain.line}", ["audit log"], chain.problem))
    who = lock.holder(root)
    if who and not lock.is_locked(root):
        problems.append(Problem("lock", str(lock.lock_path(root).relative_to(root)), ["workspace lock"],
                                f"stale lock of pid {who.get('pid')} ({who.get('operation')})"))
    return problems


# --- the verb -----------------------------------------------------------------------------

def verify(ws: Workspace, repair: bool = False, remote: Optional[str] = None, check_remote_presence: bool = False,
           on_event: Optional[EventCallback] = None) -> VerifyResult:
    """Check tags, manifests, pointers and cache hashes; with `repair`, fix and check again (`nbversion verify`).

    Args:
        repair: fetch missing or corrupted objects from a remote, drop a torn audit line,
            clear a stale lock.
        remote: the remote to check against and repair from (default: the default remote).
        check_remote_presence: also check that every needed object is on the remote.
        on_event: called with progress `Event`s.

    Returns:
        VerifyResult: the `problems` found (and whether each was repaired), counts per check.

    Example:
        >>> ws = nbv.open(".")
        >>> ws.verify(repair=True)
    """
    result = _check(ws.root, remote, check_remote_presence, on_event)
    if not repair or not result.problems:
        return result
    fixed = repair_problems(ws.root, result.problems, remote, on_event)
    after = _check(ws.root, remote, check_remote_presence, on_event)
    still = {(p.kind, p.what) for p in after.problems}
    for problem in result.problems:
        problem.repaired = (problem.kind, problem.what) not in still and (problem.kind, problem.what) in fixed
    after_only = [p for p in after.problems if (p.kind, p.what) not in {(q.kind, q.what) for q in result.problems}]
    return VerifyResult(result.problems + after_only, after.checked, after.remote)


def _check(root, remote, check_remote_presence, on_event) -> VerifyResult:
    emit = emitter(on_event)
    emit(Event("verify", message="tags and manifests"))
    anchors = tag_anchors(root)
    problems = check_registrations(root)
    logger.debug("verify: %d tag(s), %d registration problem(s)", len(anchors), len(problems))
    needed = merge_needed(anchor_pointers(root, anchors), worktree_needed(root))
    cache_problems, everything = check_cache(root, needed, on_event)
    problems += cache_problems
    logger.debug("verify: %d pointer(s) -> %d object(s) hashed, %d missing or corrupt", len(needed),
                 len(everything), len(cache_problems))
    if check_remote_presence:
        emit(Event("verify", message="remote presence"))
        remote_problems = check_remote(root, everything, remote)
        logger.debug("verify: %d object(s) not on remote %s", len(remote_problems), remote or "(default)")
        problems += remote_problems
    for name, check in (("audit and lock", check_audit_and_lock), ("leftovers", leftovers.verify_problems),
                        ("links", _link_problems)):
        found = check(root)
        logger.debug("verify: %s: %d problem(s)", name, len(found))
        problems += found
    checked = {"tags": len(anchors), "pointers": len(needed), "objects": len(everything)}
    return VerifyResult(problems, checked, remote)


def repair_problems(root, problems: list, remote: Optional[str], on_event=None) -> set:
    """Fix what can be fixed, under the workspace lock. Returns the (kind, what) it acted on."""
    from ..backends.lock import workspace_lock

    emit = emitter(on_event)
    acted = set()
    with workspace_lock(root, "verify --repair", 120.0):   # taking it over clears a stale record
        acted |= {(p.kind, p.what) for p in problems if p.kind == "lock"}
        if any(p.kind == "audit" and "torn" in p.detail for p in problems):
            audit.repair_tail(root)
            acted |= {(p.kind, p.what) for p in problems if p.kind == "audit"}
        acted |= leftovers.repair(root, problems)
        acted |= _repair_links(root, problems)
        broken = [p for p in problems if p.kind in ("missing", "corrupt")]
        if not broken:
            return acted
        for problem in broken:
            if problem.kind == "corrupt":
                _discard(dvc_cache.object_path(root, problem.what))
        emit(Event("fetch", message=f"{len(broken)} object(s) from remote {remote or '(default)'}"))
        wanted = {p.what for p in broken}
        logger.debug("repair: fetching %d missing or corrupt object(s) from %s", len(wanted), remote or "(default)")
        with _dvc.transfer_progress(emit):   # DVC's per-object count, with its total
            _dvc.fetch_objects(root, wanted, remote)
        listed, _ = expand(root, {m: set() for m in wanted if m.endswith(".dir")})
        missing = {m for m in listed if not dvc_cache.object_path(root, m).exists()}
        if missing:   # files of a directory whose listing was itself missing
            _dvc.fetch_objects(root, missing, remote)
        _restore_worktree(root, broken)
        acted |= {(p.kind, p.what) for p in broken}
    return acted


def _discard(path: Path) -> None:
    """Remove a corrupted cache file (DVC makes them read-only) so a fetch can replace it."""
    try:
        path.chmod(0o644)
        path.unlink()
    except FileNotFoundError:
        pass


def _restore_worktree(root, broken: list) -> None:
    """A hard-linked working copy shared the corrupted bytes: link it again from the repaired cache."""
    paths = sorted({label.removeprefix("working tree ") for p in broken for label in p.affects
                    if label.startswith("working tree ")})
    outputs = pointers.in_worktree(root)
    targets = [outputs[p].dvc_file for p in paths if p in outputs]
    if targets:
        _dvc.checkout(root, targets)


def _link_problems(root) -> list:
    """Working-tree files sharing an inode with the cache, a stale DVC link setting, orphans."""
    from . import protection
    return protection.check(root)


def _repair_links(root, problems: list) -> set:
    from . import protection
    return protection.repair(root, problems)
