"""Reachability: which DVC objects each commit, registered version, stage or dataset tag, branch
tip and the working tree need, `.dir` listings expanded into their files.

One walk, read by `verify` (what must be present), `gc` (what must never go), `push`/`pull`
(what to transfer) and `backup` (what to archive). Labels say who needs an object in words a
user knows ("registered yolo@v1.0.0", "dataset coco@v1", "working tree models/net").
"""
from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from typing import Optional

from ..backends import _dvc, dvc_cache, _git, _git_history, pointers

logger = logging.getLogger(__name__)

VERSION_TAG = re.compile(r"^(?P<name>[^@#]+)@v(?P<version>\d+\.\d+\.\d+)$")
STAGE_TAG = re.compile(r"^(?P<name>[^@#]+)#(?P<stage>[^#]+)#(?P<n>\d+)$")
DATASET_TAG = re.compile(r"^dataset/(?P<name>.+)/(?P<tag>[^/]+)$")


@dataclass
class Anchor:
    """Something whose data must stay readable: a commit plus the label a user knows it by."""
    label: str           # "registered yolo@v1.0.0", "stage yolo#champion", "dataset coco@v1"
    rev: str
    paths: Optional[list] = None    # only these outputs (None: every .dvc file of the commit)
    protected: bool = True          # gc never touches it


def tag_anchors(root) -> list:
    """An anchor for each registry version, stage and dataset tag."""
    anchors = []
    for tag in _git.tags(root, "**"):
        name, rev = tag["name"], tag["commit"]
        if m := VERSION_TAG.match(name):
            base = f"registry/{m['name']}/v{m['version']}"
            anchors.append(Anchor(f"registered {name}", rev, [f"{base}/files.dvc"]))
        elif m := STAGE_TAG.match(name):
            anchors.append(Anchor(f"stage {m['name']}#{m['stage']}", rev,
                                  _registry_pointer_files(root, rev, m["name"])))
        elif m := DATASET_TAG.match(name):
            anchors.append(Anchor(f"dataset {m['name']}@{m['tag']}", rev, [f"datasets/{m['name']}.dvc"]))
    return anchors


def _registry_pointer_files(root, rev: str, name: str) -> list:
    return [p for p in _git_history.tree_paths(root, rev, [f"registry/{name}"]) if p.endswith("files.dvc")]


def anchor_pointers(root, anchors) -> dict:
    """md5 -> set of labels, read with one `git cat-file --batch` for all anchors."""
    specs = {}
    for anchor in anchors:
        files = anchor.paths
        if files is None:
            files = [p for p in _git_history.tree_paths(root, anchor.rev) if p.endswith(".dvc")]
        for dvc_file in files:
            specs.setdefault(f"{anchor.rev}:{dvc_file}", []).append(anchor.label)
    contents = _git_history.cat_files(root, specs)
    needed = {}
    for spec, labels in specs.items():
        dvc_file = spec.split(":", 1)[1]
        for pointer in pointers.parse(dvc_file, contents.get(spec) or b""):
            if pointer.md5:
                needed.setdefault(pointer.md5, set()).update(labels)
    return needed


def worktree_needed(root) -> dict:
    needed = {}
    for path, pointer in pointers.in_worktree(root).items():
        if pointer.md5:
            needed.setdefault(pointer.md5, set()).add(f"working tree {path}")
    return needed


def merge_needed(*maps) -> dict:
    merged = {}
    for mapping in maps:
        for md5, labels in mapping.items():
            merged.setdefault(md5, set()).update(labels)
    return merged


def expand(root, needed: dict) -> tuple[dict, set]:
    """Add the files listed in each cached `.dir` object. Returns (all md5s -> labels, unreadable .dir md5s)."""
    everything, unreadable = dict(needed), set()
    for md5, labels in needed.items():
        if not md5.endswith(".dir"):
            continue
        try:
            entries = json.loads(dvc_cache.object_path(root, md5).read_bytes())
        except (OSError, ValueError):
            unreadable.add(md5)
            continue
        for entry in entries:
            everything.setdefault(entry["md5"], set()).update(labels)
    return everything, unreadable


def commit_anchors(root) -> list:
    """Every commit of every branch and tag, for `--all-versions`."""
    return [Anchor(f"commit {sha[:8]}", sha) for sha, _ in _git_history.commits_with_dates(root, ["--all"])]


def objects_for(root, anchors: list, include_worktree: bool, remote=None, fetch: bool = False) -> dict:
    """md5 -> labels of what `anchors` need; with `fetch`, missing `.dir` listings are fetched first
    from `remote` so their files can be listed too."""
    needed = anchor_pointers(root, anchors)
    if include_worktree:
        needed = merge_needed(needed, worktree_needed(root))
    everything, unreadable = expand(root, needed)
    if fetch and unreadable:
        _dvc.fetch_objects(root, unreadable, remote)
        everything, _ = expand(root, needed)
    return everything


def needed_objects(root, include_worktree: bool = True) -> dict:
    """md5 -> labels of everything tags (and the working tree) need, `.dir` contents included."""
    anchors = tag_anchors(root)
    maps = [anchor_pointers(root, anchors)] + ([worktree_needed(root)] if include_worktree else [])
    return expand(root, merge_needed(*maps))[0]


def protected_needed(root) -> dict:
    """md5 -> labels that gc must never remove: tags, what registered and staged versions reach
    through their lineage, branch tips, the working tree."""
    anchors = tag_anchors(root)
    lineage_anchors, lineage_md5s = lineage_needed(root)
    anchors += lineage_anchors
    anchors += [Anchor(f"branch {name}", sha) for name, sha in _git.branches(root, "**").items()]
    return merge_needed(anchor_pointers(root, anchors), lineage_md5s, worktree_needed(root))


def lineage_needed(root) -> tuple[list, dict]:
    """(anchors, md5 -> labels) of the dataset versions registered and staged versions were trained
    on: a champion whose training data is gone cannot be reproduced or audited."""
    specs, all_tags = {}, _git.tags(root, "**")
    versioned = set()
    for tag in all_tags:
        if m := VERSION_TAG.match(tag["name"]):
            specs[f"{tag['commit']}:registry/{m['name']}/v{m['version']}/manifest.json"] = tag["name"]
            versioned.add((m["name"], tag["commit"]))
    for tag in all_tags:
        # a stage tag on a version's commit is covered by that version; one elsewhere keeps
        # every manifest of its model at its commit (it is `verify`'s to say it is odd)
        if (m := STAGE_TAG.match(tag["name"])) and (m["name"], tag["commit"]) not in versioned:
            for path in _git_history.tree_paths(root, tag["commit"], [f"registry/{m['name']}"]):
                if path.endswith("/manifest.json"):
                    specs[f"{tag['commit']}:{path}"] = tag["name"]
    anchors, md5s = [], {}
    for spec, blob in _git_history.cat_files(root, specs).items():
        try:
            dataset = (json.loads(blob or b"{}").get("lineage") or {}).get("dataset") or {}
        except (ValueError, AttributeError):   # a broken manifest is `verify`'s to report
            logger.debug("manifest %s is not readable: its dataset lineage is not kept", spec, exc_info=True)
            continue
        name, label = dataset.get("name"), f"lineage of {specs[spec]}"
        if not isinstance(name, str) or not name:
            continue
        if isinstance(dataset.get("commit"), str) and dataset["commit"].strip("0"):
            anchors.append(Anchor(label, dataset["commit"], [f"datasets/{name}.dvc"]))
        if isinstance(dataset.get("md5"), str) and dataset["md5"]:
            md5s.setdefault(dataset["md5"], set()).add(label)   # the content hash, in case the commit is elsewhere
    return anchors, md5s
