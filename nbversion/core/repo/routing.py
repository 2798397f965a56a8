"""Which changed paths go to DVC and which to git.

Rules (config `core.large_file_bytes`, `core.data_dirs`):
- a direct child folder of a data dir (`datasets/coco`) is one DVC output;
- other files under a data dir go to DVC, except metadata (`*.meta.json`) and DVC's own files;
- a training run folder (`runs/<id>/` with a run.json) goes the way the run commits itself:
  `weights/` to DVC, the rest (record, results.csv) to git;
- elsewhere, a file or an untracked folder above the size threshold goes to DVC as one output;
- everything else goes to git.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

from ..backends.files import tree_size

logger = logging.getLogger(__name__)

GIT_ONLY_SUFFIXES = (".meta.json", ".dvc", ".gitignore", ".dvcignore")
RUNS_DIR = "runs"   # nbversion.training.runs.RUNS_DIR


def _is_run_folder(root: Path, rel: str) -> bool:
    return rel.startswith(RUNS_DIR + "/") and rel.count("/") == 1 and (root / rel / "run.json").is_file()


@dataclass
class Plan:
    dvc: list = field(default_factory=list)    # paths to `dvc add`
    git: list = field(default_factory=list)    # paths to `git add`

    def extend(self, other: "Plan") -> None:
        self.dvc += other.dvc
        self.git += other.git


def _under_data_dir(rel: str, data_dirs) -> str | None:
    for data_dir in data_dirs:
        if rel.startswith(data_dir.rstrip("/") + "/"):
            return data_dir.rstrip("/")
    return None


def route_untracked(root: Path, rel: str, config: dict) -> Plan:
    """Route one untracked path as reported by git (folders end with "/")."""
    core = config["core"]
    data_dirs, limit = core["data_dirs"], int(core["large_file_bytes"])
    is_dir = rel.endswith("/")
    rel = rel.rstrip("/")
    name = rel.rsplit("/", 1)[-1]
    plan = Plan()
    if is_dir and (rel in data_dirs or any(d.startswith(rel + "/") for d in data_dirs)):
        for child in sorted(os.listdir(root / rel)):   # a data dir itself: route each child
            if child.startswith("."):
                continue
            child_rel = f"{rel}/{child}" + ("/" if (root / rel / child).is_dir() else "")
            plan.extend(route_untracked(root, child_rel, config))
        return plan
    if is_dir and (rel == RUNS_DIR or _is_run_folder(root, rel)):
        return _route_runs(root, rel, config)
    data_dir = _under_data_dir(rel, data_dirs)
    if data_dir:
        if name.endswith(GIT_ONLY_SUFFIXES):
            plan.git.append(rel)
        else:
            # the dataset / model folder is the unit of versioning, whatever depth changed
            top = "/".join(rel.split("/")[: data_dir.count("/") + 2])
            plan.dvc.append(top)
        return plan
    if name.endswith(GIT_ONLY_SUFFIXES):
        plan.git.append(rel)
    elif tree_size(root / rel) > limit:
        logger.debug("%s is over large_file_bytes (%d): to DVC", rel, limit)
        plan.dvc.append(rel)
    else:
        plan.git.append(rel)   # git applies .gitignore inside a folder
    return plan


def _route_runs(root: Path, rel: str, config: dict) -> Plan:
    """`runs/` one run at a time; a run's weights to DVC, its record to git (never one DVC blob
    holding run.json, which the run's own next commit could not add its weights under)."""
    plan = Plan()
    if rel == RUNS_DIR:
        for child in sorted(os.listdir(root / rel)):
            child_rel = f"{rel}/{child}" + ("/" if (root / rel / child).is_dir() else "")
            plan.extend(route_untracked(root, child_rel, config))
        return plan
    if (root / rel / "weights").is_dir():
        plan.dvc.append(f"{rel}/weights")
    plan.git.append(rel)
    return plan


def dedupe(paths: list[str]) -> list[str]:
    seen, result = set(), []
    for p in paths:
        if p not in seen:
            seen.add(p)
            result.append(p)
    return result
