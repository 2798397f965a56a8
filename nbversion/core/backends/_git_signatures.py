"""Signatures, checked by git itself (`gpg.format=ssh`: git runs `ssh-keygen -Y verify`), in bulk.

One `git log --no-walk --stdin` grades many commits against one allowed-signers file; each
signature still costs git one ssh-keygen process (≈ 8 ms), so large sets are split over the CPUs.
Imports no GitPython: these run as plain subprocesses, like `_git_history`.
"""
from __future__ import annotations

import os
import re
import subprocess
from typing import Iterable

from ...errors import NbversionError

# git's %G? grades: G good (and the key's principal is listed), U good but no principal matched,
# B bad, X/Y/R expired or revoked, E cannot be checked, N no signature
GOOD = "G"
_SSH = ["-c", "gpg.format=ssh"]
_GOOD_FOR = re.compile(r'Good "git" signature for (\S+) with')


def _git(root, args: list, stdin: str = "") -> subprocess.CompletedProcess:
    return subprocess.run(["git", *args], cwd=str(root), input=stdin, capture_output=True, text=True)


def _grade_chunk(root, shas: list, signers_file: str) -> dict:
    proc = _git(root, [*_SSH, "-c", f"gpg.ssh.allowedSignersFile={signers_file}", "log", "--no-walk=unsorted",
                       "--stdin", "--format=%H %G? %GS"], "\n".join(shas) + "\n")
    if proc.returncode != 0:
        raise NbversionError(f"git log (signatures) failed: {proc.stderr.strip()}")
    graded = {}
    for line in proc.stdout.splitlines():
        sha, grade, *principal = line.split(" ", 2)
        graded[sha] = (grade, (principal[0] if principal else "").strip())
    return graded


def commit_grades(root, shas: Iterable[str], signers_file: str) -> dict:
    """sha -> (grade, principal) of each commit, checked against `signers_file`."""
    shas = list(dict.fromkeys(shas))
    if not shas:
        return {}
    from concurrent.futures import ThreadPoolExecutor
    jobs = max(1, min(os.cpu_count() or 1, len(shas) // 50 or 1))
    size = -(-len(shas) // jobs)
    chunks = [shas[i:i + size] for i in range(0, len(shas), size)]
    graded = {}
    with ThreadPoolExecutor(max_workers=jobs) as pool:   # each thread waits on its own git process
        for part in pool.map(lambda chunk: _grade_chunk(root, chunk, signers_file), chunks):
            graded.update(part)
    return graded


def tag_grade(root, tag_object: str, signers_file: str) -> tuple[str, str]:
    """(grade, principal) of an annotated tag: "G" with its principal, "N" unsigned, else "B"."""
    proc = _git(root, [*_SSH, "-c", f"gpg.ssh.allowedSignersFile={signers_file}", "verify-tag", "--raw",
                       tag_object])
    said = proc.stderr
    if "no signature found" in said:
        return "N", ""
    match = _GOOD_FOR.search(said)
    if proc.returncode == 0 and match:
        return GOOD, match.group(1)
    return ("U" if "Good" in said else "B"), ""


def first_parent_changes(root, exclude: Iterable[str] = ()) -> list[tuple]:
    """(sha, parents, author email, committer unix time, paths changed against the first parent) of
    every commit reachable from HEAD (all merged branches), newest first; `exclude`: revisions whose
    ancestors to leave out."""
    proc = _git(root, ["log", "--format=%x1e%H %P%x1f%ae%x1f%ct", "--name-only", "--no-renames",
                       "--diff-merges=first-parent", "HEAD", *[f"^{rev}" for rev in exclude]])
    if proc.returncode != 0:
        raise NbversionError(f"git log failed: {proc.stderr.strip()}")
    found = []
    for record in proc.stdout.split("\x1e")[1:]:
        head, _, names = record.partition("\n")
        shas, email, when = head.split("\x1f")
        sha, *parents = shas.split()
        found.append((sha, parents, email, int(when), [n for n in names.splitlines() if n.strip()]))
    return found


def added_lines_by_commit(root, path: str) -> dict:
    """sha -> the lines each non-merge commit reachable from HEAD added to `path`: one `git log -p`."""
    proc = _git(root, ["log", "--no-merges", "--format=%x1e%H", "-p", "-U0", "--no-color", "--no-renames",
                       "HEAD", "--", path])
    if proc.returncode != 0:
        raise NbversionError(f"git log failed: {proc.stderr.strip()}")
    added = {}
    for record in proc.stdout.split("\x1e")[1:]:
        sha, _, patch = record.partition("\n")
        added[sha.strip()] = [line[1:] for line in patch.splitlines() if line.startswith("+") and not line.startswith("+++")]
    return added


def lines_ever_added(root, path: str) -> list[str]:
    """Every line any commit reachable from HEAD added to `path` (e.g. every key ever listed)."""
    proc = _git(root, ["log", "--format=", "-p", "-U0", "--no-color", "--no-renames", "HEAD", "--", path])
    return [line[1:] for line in proc.stdout.splitlines() if line.startswith("+") and not line.startswith("+++")]
