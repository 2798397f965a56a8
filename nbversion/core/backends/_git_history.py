"""History read in bulk, for the verbs that walk many commits (verify, gc, audit verify,
experiments): one `git log` or one `git cat-file --batch` instead of a call per commit.

Runs git through `_git`'s logged runner (or `git cat-file` directly, for its stdin protocol);
imports no GitPython.
"""
from __future__ import annotations

from typing import Iterable

from ...errors import NbversionError
from ._git import _run, head


def object_ids(root, specs: Iterable[str]) -> dict:
    """`REV:PATH` -> blob id, or None where it does not exist: one `cat-file --batch-check`."""
    specs = list(specs)
    if not specs:
        return {}
    import subprocess
    proc = subprocess.run(["git", "cat-file", "--batch-check=%(objectname) %(objecttype)"], cwd=str(root),
                          input="\n".join(specs) + "\n", capture_output=True, text=True)
    if proc.returncode != 0:
        raise NbversionError(f"git cat-file failed: {proc.stderr.strip()}")
    ids = {}
    for spec, line in zip(specs, proc.stdout.splitlines()):
        ids[spec] = None if line.endswith("missing") or " " not in line else line.split()[0]
    return ids


def numstat_log(root, paths: Iterable[str]) -> list[dict]:
    """Oldest first: {sha, date, changes: {path: (added, deleted)}} of commits touching `paths`."""
    if head(root) is None:
        return []
    # first parent: a merge commit's changes are what it brought to the branch
    out = _run(root, "log", "--first-parent", "--diff-merges=first-parent", "--reverse", "--no-renames",
               "--numstat", "--format=%x1e%H%x1f%cI",
               "HEAD", "--", *paths, strip_newline_in_stdout=False)
    commits = []
    for record in out.split("\x1e")[1:]:
        first, _, rest = record.partition("\n")
        sha, date = first.split("\x1f")
        changes = {}
        for line in rest.splitlines():
            parts = line.split("\t")
            if len(parts) == 3 and parts[0].isdigit():
                changes[parts[2]] = (int(parts[0]), int(parts[1]))
        commits.append({"sha": sha, "date": date, "changes": changes})
    return commits


def cat_files(root, specs: Iterable[str]) -> dict:
    """`REV:PATH` (or blob id) -> content bytes, or None where missing: one `cat-file --batch`."""
    import subprocess
    specs = list(dict.fromkeys(specs))
    if not specs:
        return {}
    proc = subprocess.run(["git", "cat-file", "--batch"], cwd=str(root), capture_output=True,
                          input=("\n".join(specs) + "\n").encode())
    if proc.returncode != 0:
        raise NbversionError(f"git cat-file failed: {proc.stderr.decode().strip()}")
    out, pos, contents = proc.stdout, 0, {}
    for spec in specs:
        end = out.index(b"\n", pos)
        header = out[pos:end].split()
        pos = end + 1
        if len(header) < 3 or header[-1] == b"missing":
            contents[spec] = None
            continue
        size = int(header[2])
        contents[spec] = out[pos:pos + size]
        pos += size + 1
    return contents


def tree_paths(root, rev: str, paths: Iterable[str] = ()) -> list[str]:
    """Every file path committed at `rev` (optionally under `paths`)."""
    out = _run(root, "ls-tree", "-r", "--name-only", "-z", rev, "--", *paths, strip_newline_in_stdout=False)
    return [p for p in out.split("\0") if p]


def files_changed_by_commit(root, pathspec: str, diff_filter: str = "AM") -> list[tuple[str, int, list[str]]]:
    """(sha, committer unix time, paths matching `pathspec` it added or changed) for every commit
    of every ref, newest first; renames count as an add."""
    out = _run(root, "log", "--all", "--format=%x1e%H %ct", "--name-only", "--no-renames",
               f"--diff-filter={diff_filter}", "--", pathspec)
    found = []
    for record in out.split("\x1e")[1:]:
        lines = [line for line in record.splitlines() if line.strip()]
        sha, ts = lines[0].split()
        found.append((sha, int(ts), lines[1:]))
    return found


def commits_with_dates(root, refs: Iterable[str] = ("--all",)) -> list[tuple[str, int]]:
    """(sha, committer unix time) of every commit reachable from `refs`, newest first."""
    out = _run(root, "log", "--format=%H %ct", *refs)
    return [(sha, int(ts)) for sha, ts in (line.split() for line in out.splitlines() if line.strip())]


def commits_touching(root, paths: Iterable[str], merges: bool = False) -> list[tuple[str, list[str], str]]:
    """(sha, parents, author email) of every commit reachable from HEAD that changed `paths`, on
    every branch merged in (not only the first parents): merge commits alone with `merges`."""
    if head(root) is None:
        return []
    kind = "--merges" if merges else "--no-merges"
    out = _run(root, "log", "--full-history", kind, "--format=%H %P%x09%ae", "HEAD", "--", *paths)
    found = []
    for line in out.splitlines():
        if "\t" in line:
            shas, email = line.split("\t", 1)
            sha, *parents = shas.split()
            found.append((sha, parents, email))
    return found


def added_lines(root, rev_a: str, rev_b: str, path: str) -> list[str]:
    """The lines `rev_b` adds to `path` over `rev_a` (a diff's `+` lines)."""
    out = _run(root, "diff", "--no-color", "-U0", rev_a, rev_b, "--", path)
    return [line[1:] for line in out.splitlines() if line.startswith("+") and not line.startswith("+++")]
