"""`pull` of a branch that diverged from the remote's: git merges the code, nbversion its own files.

The two sides' audit entries are kept as written (the log is a DAG) and a `pull merge` entry
names both heads; `*.meta.json` merges key by key; run records and registry versions are new
files on each side; a dataset folder changed on both sides merges file by file
(`dataset_merge`). What no rule merges (a code file both sides edited, a label file changed
on both sides) stops the pull with the exact list, and the workspace is as it was.
"""
from __future__ import annotations

import logging
from typing import Optional

from ...errors import MergeConflict, NbversionError, UncommittedChanges, UsageError
from ..audit import chain as audit
from ..backends import _git, _git_sync
from ..repo import merge_rules
from ..repo.cell import with_trailers
from ..security import signing
from . import dataset_merge

logger = logging.getLogger(__name__)
MAX_SHOWN = 20   # conflicting paths named in the message; the error's `paths` has them all


def merge_diverged(root, ref: str, user: str, data_remote: Optional[str] = None) -> str:
    """Merge `ref` (the remote's branch) into HEAD as one commit; returns a line saying what happened.

    A dataset folder both sides changed is merged file by file (`dataset_merge`), its files
    from the other side fetched from `data_remote`. Raises MergeConflict (with every conflicting
    path, a dataset's by file) after putting HEAD, the index and the working tree back as they were."""
    dirty = sorted(entry.path for entry in _git.status(root, untracked="no"))
    if dirty:
        raise UncommittedChanges(f"uncommitted changes in {', '.join(dirty[:5])}{' ...' if len(dirty) > 5 else ''}: "
                                 "pull merges only a clean checkout",
                                 hint="commit them first (`nbversion commit -m ...`), then pull again")
    branch = _git.current_branch(root)
    base = _git_sync.merge_base(root, "HEAD", ref)
    both = merge_rules.changed_paths(root, base, "HEAD") & merge_rules.changed_paths(root, base, ref)
    try:
        _git_sync.merge(root, ref, no_commit=True)
    except NbversionError:   # conflicts: resolved by rule below, or the merge is undone
        logger.debug("git merge of %s stopped on conflicts", ref, exc_info=True)
    conflicts = _git_sync.conflicted_paths(root)
    unresolved, datasets = [], []
    for path in sorted(both | conflicts):
        if path not in conflicts or merge_rules.resolve_by_rule(root, path, base, ref):
            continue
        content = dataset_merge.plan(root, path, base, ref, data_remote) if path.endswith(".dvc") else None
        if content is None:
            unresolved.append(path)
        elif content.conflicts:
            unresolved += content.conflicts
        else:
            datasets.append(content)
    if unresolved:
        _git_sync.merge_abort(root)
        shown = ", ".join(unresolved[:MAX_SHOWN]) + (f" and {len(unresolved) - MAX_SHOWN} more" if len(unresolved) > MAX_SHOWN else "")
        raise MergeConflict(f"pull stopped: {branch} and {ref} both changed {shown}; nothing was changed",
                            hint=_conflict_hint(unresolved, ref), paths=unresolved)
    staged = _merge_datasets(root, datasets, data_remote, user)
    details = {"base": base, "merged_by_rule": sorted(both)}
    if datasets:
        details["content_merged"] = [d.folder for d in datasets]
    entry = audit.append(root, user, "pull merge", ref, details)
    _git.add(root, staged + [str(audit.AUDIT_FILE)])
    sha = _git.commit(root, with_trailers(f"nbversion: merge {ref} into {branch}"), user, sign=signing.required(root))   # the whole merge
    logger.debug("merged %s into %s as %s (audit %s after %d heads)", ref, branch, sha[:8], entry["hash"][:12],
                 len(audit.parents_of(entry)))
    return f"merged {ref} into {branch} as {sha[:8]}"


def _merge_datasets(root, datasets: list, data_remote: Optional[str], user: str) -> list[str]:
    """Write and re-track each content-merged dataset; on any failure the merge is undone and the
    folders are put back as HEAD has them."""
    if not datasets:
        return []
    try:
        dataset_merge.check_unedited(root, datasets)
        dataset_merge.fetch_objects(root, datasets, data_remote)
    except BaseException:
        _git_sync.merge_abort(root)
        raise
    try:
        return dataset_merge.apply(root, datasets, user)
    except BaseException:
        _git_sync.merge_abort(root)
        dataset_merge.restore(root, datasets)
        raise


def _conflict_hint(unresolved: list, ref: str) -> str:
    inside = [p for p in unresolved if not p.endswith(".dvc") and p.startswith("datasets/") and p.count("/") >= 2]
    data = [p for p in unresolved if p.endswith(".dvc")]
    start = ""
    if inside:
        start = ("both sides changed these dataset files differently: keep one side's version in one clone "
                 "(edit it, `nbversion commit`, `nbversion push`), then pull again; or ")
    elif data:
        start = "the same dataset or model was changed on both sides: keep one version "
    return start + (f"merge by hand with `git merge {ref}`, fix those files, `git commit`, then `nbversion pull` "
                    "again (`nbversion pull --abort` undoes a merge you started)")


def abort(root) -> str:
    """Undo a merge left unfinished (by `git merge` or `git pull`): HEAD, index and files as before."""
    if not _git_sync.merge_in_progress(root):
        raise UsageError("no merge in progress: nothing to abort",
                         hint="`nbversion pull` undoes a merge it cannot finish by itself")
    _git_sync.merge_abort(root)
    return "merge aborted: the checkout is as it was before the pull"
