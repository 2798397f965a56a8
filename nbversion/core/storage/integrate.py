"""`pull` of a branch that diverged from the remote's: git merges the code, nbversion its own files.

The two sides' audit entries are kept as written (the log is a DAG) and a `pull merge` entry
names both heads; `*.meta.json` merges key by key; run records and registry versions are new
files on each side. What no rule merges (a code file both sides edited, the same dataset
changed on both sides) stops the pull with the exact list, and the workspace is as it was.
"""
from __future__ import annotations

import logging

from ...errors import MergeConflict, NbversionError, UncommittedChanges, UsageError
from ..audit import chain as audit
from ..backends import _git, _git_sync
from ..repo import merge_rules
from ..repo.cell import with_trailers

logger = logging.getLogger(__name__)


def merge_diverged(root, ref: str, user: str) -> str:
    """Merge `ref` (the remote's branch) into HEAD as one commit; returns a line saying what happened.

    Raises MergeConflict (with every conflicting path) after putting HEAD, the index and the
    working tree back as they were."""
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
    unresolved = [p for p in sorted(both | conflicts)
                  if p in conflicts and not merge_rules.resolve_by_rule(root, p, base, ref)]
    if unresolved:
        _git_sync.merge_abort(root)
        data = [p for p in unresolved if p.endswith(".dvc")]
        raise MergeConflict(
            f"pull stopped: {branch} and {ref} both changed {', '.join(unresolved)}; nothing was changed",
            hint=("the same dataset or model was changed on both sides: keep one version " if data else "")
            + f"merge by hand with `git merge {ref}`, fix those files, `git commit`, then `nbversion pull` "
              "again (`nbversion pull --abort` undoes a merge you started)", paths=unresolved)
    entry = audit.append(root, user, "pull merge", ref, {"base": base, "merged_by_rule": sorted(both)})
    _git.add(root, [str(audit.AUDIT_FILE)])
    sha = _git.commit(root, with_trailers(f"nbversion: merge {ref} into {branch}"), user)   # the whole merge
    logger.debug("merged %s into %s as %s (audit %s after %d heads)", ref, branch, sha[:8], entry["hash"][:12],
                 len(audit.parents_of(entry)))
    return f"merged {ref} into {branch} as {sha[:8]}"


def abort(root) -> str:
    """Undo a merge left unfinished (by `git merge` or `git pull`): HEAD, index and files as before."""
    if not _git_sync.merge_in_progress(root):
        raise UsageError("no merge in progress: nothing to abort",
                         hint="`nbversion pull` undoes a merge it cannot finish by itself")
    _git_sync.merge_abort(root)
    return "merge aborted: the checkout is as it was before the pull"
