"""Registry tags two clones both made: `push` refuses them, `pull` re-numbers the local ones.

Two clones that register the same `NAME@vX.Y.Z`, or promote concurrently and both make stage
tag `NAME#STAGE#N`, hold one tag name on different content; git would refuse the second push
with "already exists", and a fetch would refuse to clobber the local tag. `check_push` says
which tag, who made it on the remote and when. `renumber_local` (called by `pull` before it
merges) gives the local, unpushed tags free names: a version moves to the next free version in
a new commit (the registering commit stays as it was), a stage tag gets the next free N and a
tagger date newer than every other stage tag of the artifact (GTO orders assignments by date).
Each move appends a `renumber` audit entry naming the entry that made the tag
(`core/audit/renames.py`), so `audit verify` follows it. Nothing the remote has is moved.
The remote's tags are read from `refs/nbversion/remote-tags/*`, fetched aside.
"""
from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Optional

from ...errors import NbversionError, TagCollision
from ..audit import chain as audit, renames
from ..backends import _git, _git_sync, atomic
from ..registry import tags
from ..registry.versions import version_dir

from typing import TYPE_CHECKING

if TYPE_CHECKING:   # annotations only
    from ..transaction import Transaction
    from ..workspace import Workspace

logger = logging.getLogger(__name__)

REMOTE_TAGS = "refs/nbversion/remote-tags"
REASON = "{tag} was made on {remote} by {tagger} at {date}, on other content"


@dataclass
class Collision:
    tag: str          # the name both sides hold
    local: dict       # `_git.tags()` rows
    remote: dict


def collisions(root, remote: str) -> list[Collision]:
    """Registry tags both here and on `remote` on different tag objects (different content)."""
    theirs = _git_sync.remote_tag_ids(root, remote)
    local = {row["name"]: row for row in _git.tags(root) if tags.parse(row["name"])}
    clashing = sorted(name for name, row in local.items() if name in theirs and theirs[name][0] != row["object"])
    logger.debug("%d registry tag(s) here, %d tag(s) on %s, %d clash", len(local), len(theirs), remote, len(clashing))
    if not clashing:
        return []
    remote_rows = _fetch_remote_rows(root, remote)
    return [Collision(name, local[name], remote_rows[name]) for name in clashing if name in remote_rows]


def _fetch_remote_rows(root, remote: str) -> dict:
    """The remote's tags as `_git.tags()` rows; their objects stay, the refs go again."""
    _git_sync.fetch_tags_aside(root, remote, REMOTE_TAGS)
    try:
        return {row["name"]: row for row in _git.tags(root, namespace=REMOTE_TAGS)}
    finally:
        _git_sync.drop_refs(root, REMOTE_TAGS)


def _who(root, row: dict) -> str:
    """Who made a remote tag: a version's manifest says who registered it (the nbversion user,
    which a shared git identity would hide); else the tagger."""
    parsed = tags.parse(row["name"]) or {}
    if "version" in parsed:
        raw = _git.show(root, row["commit"], f"{version_dir(parsed['name'], parsed['version'])}/manifest.json")
        try:
            by = json.loads(raw).get("registered_by") if raw else None
        except ValueError:
            by = None       # not our manifest: the tagger is all there is
        if by:
            return by
    return row["tagger"] or "unknown"


def check_push(root, remote_git_name: Optional[str]) -> None:
    """Refuse a push whose registry tags exist on the remote on other content (`TagCollision`).

    Args:
        root: the workspace root.
        remote_git_name: the git remote `push` sends history to (None: no history, nothing to check).
    """
    if not remote_git_name:
        return
    found = collisions(root, remote_git_name)
    if not found:
        return
    made = []
    for c in found:
        what = "registered" if "version" in tags.parse(c.tag) else "made"
        made.append(f"{c.tag} was {what} on {remote_git_name} by {_who(root, c.remote)} at {c.remote['date']}")
    raise TagCollision(f"{remote_git_name} already has {', '.join(c.tag for c in found)} on other content: "
                       + "; ".join(made),
                       hint=f"run `nbversion pull {remote_git_name}`: it re-numbers your unpushed version(s) and stage "
                            "tag(s) to the next free ones, then push again")


# --- pull: re-numbering ------------------------------------------------------------------------
def renumber_local(ws: Workspace, tx: Transaction, remote_git_name: str) -> list[dict]:
    """Give the local, unpushed registry tags that clash with `remote_git_name`'s free names.

    Call it inside a transaction, before fetching the remote's tags into `refs/tags` (git
    refuses to clobber a local tag) and before merging. Versions first (each in a commit of
    its own), then stage tags (one commit for their audit entries, then the tags).

    Returns:
        One dict per tag re-made: {"old": tag, "new": tag, "reason": text}.
    """
    root = ws.root
    remote_rows = _fetch_remote_rows(root, remote_git_name)
    local_rows = {row["name"]: row for row in _git.tags(root) if tags.parse(row["name"])}
    ours, theirs = tags.read_all(list(local_rows.values())), tags.read_all(list(remote_rows.values()))
    log = [entry for _, entry in audit.iter_entries(root)]
    done, moved = [], {}          # moved: old register commit -> (name, new version, new commit)
    for name, art in sorted(ours.items()):
        other = theirs.get(name)
        if other is None:
            continue
        taken = set(art.versions) | set(other.versions)
        for version in sorted(art.versions, key=tags.parse_version):
            info, remote_info = art.versions[version], other.versions.get(version)
            if remote_info is None or local_rows[info["tag"]]["object"] == remote_rows[info["tag"]]["object"]:
                continue
            _require_unpushed(root, remote_git_name, info["tag"], info["commit"])
            new = _free_version(version, taken)
            taken.add(new)
            reason = REASON.format(tag=info["tag"], remote=remote_git_name, date=remote_info["date"],
                                   tagger=_who(root, remote_rows[info["tag"]]))
            sha = _move_version(ws, tx, log, name, version, new, reason)
            moved[info["commit"]] = (name, new, sha)
            done.append({"old": info["tag"], "new": tags.version_tag(name, new), "reason": reason})
    for name, art in sorted(ours.items()):
        done += _renumber_stages(ws, tx, log, art, theirs.get(name), local_rows, remote_rows, moved, remote_git_name)
    logger.debug("re-numbered %d tag(s) against %s", len(done), remote_git_name)
    return done


def _require_unpushed(root, remote: str, tag: str, commit: str) -> None:
    if _git_sync.reachable_from_remote(root, remote, commit):
        raise NbversionError(f"{tag} clashes with {remote}'s {tag}, but its commit {commit[:8]} is already on {remote}: "
                             "it cannot be re-numbered",
                             hint=f"remove one of the two tags by hand after agreeing which {tag} stays "
                                  f"(`git tag -d {tag}` here, or `git push {remote} :refs/tags/{tag}`)")


def _free_version(version: str, taken: set) -> str:
    major, minor, patch = tags.parse_version(version)
    while tags.format_version((major, minor, patch)) in taken:
        patch += 1
    return tags.format_version((major, minor, patch))


def _move_version(ws, tx, log: list, name: str, old: str, new: str, reason: str) -> str:
    """A new commit with registry/NAME/OLD moved to NEW and the moved manifest saying NEW;
    then the tag moves. The old commit (and its manifest) stay as they were."""
    root = ws.root
    old_rel, new_rel = version_dir(name, old), version_dir(name, new)
    if not (root / old_rel / "manifest.json").exists():
        raise NbversionError(f"{old_rel}/manifest.json is not in the working tree, so {name}@{old} cannot be re-numbered",
                             hint="check out the branch that registered it, then pull again")
    os.rename(root / old_rel, root / new_rel)    # the DVC-tracked weights (ignored by git) move along
    manifest = json.loads((root / new_rel / "manifest.json").read_bytes())
    manifest["version"] = new
    atomic.write_json(root / new_rel / "manifest.json", manifest)
    old_tag, new_tag = tags.version_tag(name, old), tags.version_tag(name, new)
    entry = tx.audit(renames.RENUMBER, old_tag, {"old": old, "new": new, "reason": reason, "tag": new_tag,
                                                 "old_tag": old_tag, "entry": renames.entry_of(log, old_tag)})
    log.append(entry)
    sha = tx.commit(f"nbversion: renumber {old_tag} to {new} ({name}@{old} exists on the remote)", [old_rel, new_rel])
    _git.delete_tag(root, old_tag)
    _git.create_tag(root, new_tag, sha, tags.register_message(name, new), tx.user, sign=tx.sign)
    logger.debug("moved %s to %s in %s", old_tag, new_tag, sha)
    return sha


def _renumber_stages(ws, tx, log: list, art: tags.ArtifactTags, other: Optional[tags.ArtifactTags],
                     local_rows: dict, remote_rows: dict, moved: dict, remote: str) -> list[dict]:
    """Re-make this artifact's unpushed stage tags from the first one that clashes (all later
    ones too, so they keep their order), with fresh N and newer dates; and re-make unpushed stage
    tags of a re-numbered version on its new commit under their own name and date."""
    other = other or tags.ArtifactTags(art.name)
    unpushed = [e for e in art.events if local_rows[e.tag]["object"] != (remote_rows.get(e.tag) or {}).get("object")]
    clashing = [e.counter for e in unpushed if e.tag in remote_rows]
    first = min(clashing, default=None)
    counter = max([e.counter for e in art.events + other.events], default=0)
    newest = max([datetime.fromisoformat(e.date).timestamp() for e in art.events + other.events], default=0.0)
    plan = []    # (event, new tag, target commit, version, date)
    for event in unpushed:
        row = local_rows[event.tag]
        _, version, target = moved.get(row["commit"], (art.name, event.version, row["commit"]))
        if first is not None and event.counter >= first:
            counter, newest = counter + 1, max(time.time(), newest + 1)
            plan.append((event, tags.stage_tag(art.name, event.stage, counter, event.cancel), target, version,
                         f"@{int(newest)} +0000"))
        elif row["commit"] in moved:
            plan.append((event, event.tag, target, version, event.date))
    done = []
    for event, new_tag, _, _, _ in plan:
        if new_tag == event.tag:
            continue
        remote_row = remote_rows.get(event.tag)
        reason = (REASON.format(tag=event.tag, remote=remote, tagger=_who(ws.root, remote_row),
                                date=remote_row["date"]) if remote_row else
                  f"re-made after {art.name}'s clashing stage tag(s), to keep their order")
        log.append(tx.audit(renames.RENUMBER, event.tag, {"old": event.tag, "new": new_tag, "reason": reason,
                                                          "tag": new_tag, "old_tag": event.tag,
                                                          "entry": renames.entry_of(log, event.tag)}))
        done.append({"old": event.tag, "new": new_tag, "reason": reason})
    if done:
        tx.commit(f"nbversion: renumber {len(done)} stage tag(s) of {art.name} (the remote has the same N)", [])
    for event, new_tag, target, version, date in plan:
        message = (tags.unassign_message if event.cancel else tags.assign_message)(art.name, event.stage, version)
        _git.delete_tag(ws.root, event.tag)
        _git.create_tag(ws.root, new_tag, target, message, local_rows[event.tag]["tagger"] or tx.user, date=date, sign=tx.sign)
    return done
