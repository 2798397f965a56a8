"""GTO-format registry tags: names, messages, and the registry state they encode.

`<name>@vX.Y.Z` registers a version (on the registering commit); `<name>#<stage>#<N>`
assigns a stage and `<name>#<stage>!#<N>` unassigns it (both on the version's commit).
N counts up across all of an artifact's stage tags, as GTO does: the highest N is the newest.
"""
from __future__ import annotations

import logging
import re
from datetime import datetime
from dataclasses import dataclass, field
from typing import Optional

from ...errors import UsageError
from ..repo.names import NAME_PATTERN as NAME_RE

logger = logging.getLogger(__name__)
SEMVER_RE = r"v(?P<major>0|[1-9]\d*)\.(?P<minor>0|[1-9]\d*)\.(?P<patch>0|[1-9]\d*)"
TAG_RE = re.compile(
    rf"^(?P<name>{NAME_RE})(?:@(?P<version>{SEMVER_RE})|#(?P<stage>{NAME_RE})(?P<cancel>!?)#(?P<counter>\d+))$")
VERSION_ONLY = re.compile(rf"^{SEMVER_RE}$")


def check_name(name: str, kind: str = "model") -> str:
    """A registry (or stage) name: the one name rule of `names`, which is GTO's."""
    from ..repo.names import check_name as check
    return check(name, kind)


def parse_version(text: str) -> tuple[int, int, int]:
    text = text if text.startswith("v") else f"v{text}"
    match = VERSION_ONLY.fullmatch(text)
    if not match:
        raise UsageError(f"invalid version {text!r}", hint="use semantic versions: vMAJOR.MINOR.PATCH, e.g. v1.2.0")
    return int(match["major"]), int(match["minor"]), int(match["patch"])


def format_version(parts: tuple[int, int, int]) -> str:
    return "v{}.{}.{}".format(*parts)


def bump(latest: Optional[tuple[int, int, int]], part: str) -> tuple[int, int, int]:
    major, minor, patch = latest or (0, 0, 0)
    if part == "major":
        return major + 1, 0, 0
    if part == "minor":
        return major, minor + 1, 0
    if part == "patch":
        return major, minor, patch + 1
    raise UsageError(f"unknown bump {part!r}", hint="use --bump major, minor or patch")


def version_tag(name: str, version: str) -> str:
    return f"{name}@{version}"


def stage_tag(name: str, stage: str, counter: int, cancel: bool = False) -> str:
    return f"{name}#{stage}{'!' if cancel else ''}#{counter}"


def register_message(name: str, version: str) -> str:
    return f"Registering artifact {name} version {version}"


def assign_message(name: str, stage: str, version: str) -> str:
    return f"Assigning stage {stage} to artifact {name} version {version}"


def unassign_message(name: str, stage: str, version: str) -> str:
    return f"Unassigning stage {stage} from artifact {name} version {version}"


def parse(tag: str) -> Optional[dict]:
    match = TAG_RE.match(tag)
    if not match:
        return None
    if match["version"]:
        return {"name": match["name"], "version": match["version"]}
    return {"name": match["name"], "stage": match["stage"], "cancel": bool(match["cancel"]),
            "counter": int(match["counter"])}


@dataclass
class StageEvent:
    tag: str
    stage: str
    version: Optional[str]
    counter: int
    cancel: bool
    date: str
    tagger: str


@dataclass
class ArtifactTags:
    """Everything the tags say about one artifact."""

    name: str
    versions: dict = field(default_factory=dict)     # version -> {tag, commit, date, tagger}
    events: list = field(default_factory=list)       # StageEvent, oldest (lowest N) first

    def next_counter(self) -> int:
        return max((e.counter for e in self.events), default=0) + 1

    def holders(self, until: Optional[datetime] = None) -> dict:
        """stage -> version now (or at the aware datetime `until`): the newest assignment wins."""
        held = {}
        for event in self.events:
            if until is not None and datetime.fromisoformat(event.date) > until:
                continue
            if not event.cancel:
                held[event.stage] = event.version
            elif held.get(event.stage) == event.version:
                held[event.stage] = None
        return {stage: version for stage, version in held.items() if version}

    def stages_of(self, version: str) -> list[str]:
        return sorted(stage for stage, held in self.holders().items() if held == version)

    def history(self, stage: str) -> list[StageEvent]:
        return [e for e in self.events if e.stage == stage]

    def latest_version(self) -> Optional[str]:
        if not self.versions:
            return None
        return format_version(max(parse_version(v) for v in self.versions))


def read_all(git_tags: list[dict]) -> dict[str, ArtifactTags]:
    """name -> ArtifactTags from `_git.tags()` rows (one `for-each-ref` for the whole registry)."""
    artifacts: dict[str, ArtifactTags] = {}
    staged = []
    for row in git_tags:
        parsed = parse(row["name"])
        if not parsed:
            continue
        art = artifacts.setdefault(parsed["name"], ArtifactTags(parsed["name"]))
        if "version" in parsed:
            art.versions[parsed["version"]] = {"tag": row["name"], "commit": row["commit"],
                                               "date": row["date"], "tagger": row["tagger"]}
        else:
            staged.append((art, parsed, row))
    for art, parsed, row in staged:
        art.events.append(StageEvent(row["name"], parsed["stage"], _version_of(art, row), parsed["counter"],
                                     parsed["cancel"], row["date"], row["tagger"]))
    for art in artifacts.values():
        art.events.sort(key=lambda e: e.counter)
    logger.debug("%d artifact(s) from %d git tag(s)", len(artifacts), len(git_tags))
    return artifacts


def _version_of(art: ArtifactTags, row: dict) -> Optional[str]:
    """The version a stage tag points at: the one registered on its commit (as GTO does)."""
    on_commit = [v for v, info in art.versions.items() if info["commit"] == row["commit"]]
    if len(on_commit) == 1:
        return on_commit[0]
    match = re.search(rf"version ({SEMVER_RE})", row.get("message") or "")
    return match.group(1) if match else (on_commit[0] if on_commit else None)
