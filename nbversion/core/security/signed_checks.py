"""`audit verify` in signed mode: every change since signing was turned on carries the signature
of a listed user, and is what that user was allowed to do.

A commit is checked when the config at its first parent requires signatures, or when it turns
signing on (the bootstrap: signed by a key in the allowed_signers it commits, by an admin under
the roles at its parent). A checked commit that touches an nbversion-managed file must carry a
good signature for a key in allowed_signers *as of its first parent*; the key's principal is the
actor: every audit entry the commit adds must be theirs, and its policy edits need an admin. A
merge without a signature passes only if it brings nothing of its own (each managed file as in
one of its parents, the audit log a union of theirs). Commits touching only code or notebooks
need no signature. Grades are cached by (commit, allowed_signers blob): commits are immutable.
"""
from __future__ import annotations

import json
import logging
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from ..audit import chain as audit
from ..backends import _git_history, _git_signatures, atomic
from ..layout import TMP_DIR
from ..repo import identity
from . import keys, signing

logger = logging.getLogger(__name__)

MANAGED_PREFIXES = (".nbversion/", "registry/", "runs/", ".dvc/")
MANAGED_FILES = (".gitattributes", ".dvcignore", "dvc.yaml", "dvc.lock")
AUDIT_PATH = audit.AUDIT_FILE.as_posix()
CACHE_ENV = "NBVERSION_SIGNATURE_CACHE"   # a guarded remote keeps its cache beside its repository


def is_managed(path: str) -> bool:
    return path.startswith(MANAGED_PREFIXES) or path in MANAGED_FILES or path.endswith(".dvc")


@dataclass
class SignedHistory:
    since: Optional[int] = None                        # committer time of the first bootstrap
    actors: dict = field(default_factory=dict)         # sha -> principal of its good signature
    checked: int = 0                                   # commits whose signature was needed


class GradeCache:
    """(object, allowed-signers blob) -> (grade, principal), in a JSON file that is only ever a
    shortcut: deleting it costs one re-check."""

    def __init__(self, root: Path):
        self.path = Path(os.environ.get(CACHE_ENV) or Path(root) / TMP_DIR / "signatures.json")
        try:
            self.known = json.loads(self.path.read_text())
        except (OSError, ValueError):
            self.known = {}
        self.dirty = False

    def get(self, key: str):
        found = self.known.get(key)
        return tuple(found) if found else None

    def put(self, key: str, grade: tuple) -> None:
        if grade[0] == _git_signatures.GOOD or grade[0] == "N":   # failures are re-checked next time
            self.known[key] = list(grade)
            self.dirty = True

    def save(self) -> None:
        if self.dirty:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                atomic.write_text(self.path, json.dumps(self.known))
            except OSError:
                logger.debug("could not save the signature cache %s", self.path, exc_info=True)


class _RolesAt:
    """Roles as users.toml said at many commits, read in two batches (not a `git show` each)."""

    def __init__(self, root: Path, revs):
        from ..repo.config import load_config, tomllib
        path = f"{identity.META_DIR}/users.toml"
        self.default = load_config(root)["core"]["default_role"]
        self.ids = _git_history.object_ids(root, {f"{rev}:{path}" for rev in revs})
        self.path, self.tables = path, {}
        for blob, text in _git_history.cat_files(root, {i for i in self.ids.values() if i}).items():
            try:
                self.tables[blob] = dict(tomllib.loads(text.decode()).get("users", {}))
            except (ValueError, UnicodeDecodeError):
                self.tables[blob] = {}   # unreadable: nobody has a role there (policy checks report it)

    def role(self, rev: str, user: str) -> str:
        return self.tables.get(self.ids.get(f"{rev}:{self.path}"), {}).get(user) or self.default


def _signers_file(folder: str, blob: Optional[str], text: bytes) -> str:
    path = os.path.join(folder, f"signers-{blob or 'none'}")
    with open(path, "wb") as fh:
        fh.write(text or b"")
    return path


def _grades(root: Path, wanted: dict, cache: GradeCache) -> dict:
    """sha -> (grade, principal) for `wanted`: sha -> allowed_signers blob id (None: no file)."""
    grades, by_blob = {}, {}
    for sha, blob in wanted.items():
        hit = cache.get(f"c:{sha}:{blob}")
        if hit:
            grades[sha] = hit
        else:
            by_blob.setdefault(blob, []).append(sha)
    if by_blob:
        texts = _git_history.cat_files(root, [b for b in by_blob if b])
        with tempfile.TemporaryDirectory(prefix="nbversion-signers-") as folder:
            for blob, shas in by_blob.items():
                found = _git_signatures.commit_grades(root, shas, _signers_file(folder, blob, texts.get(blob)))
                for sha in shas:
                    grades[sha] = found.get(sha, ("N", ""))
                    cache.put(f"c:{sha}:{blob}", grades[sha])
    logger.debug("signatures: %d commit(s), %d from the cache", len(wanted), len(wanted) - sum(map(len, by_blob.values())))
    return grades


def _clean_merge(root: Path, sha: str, parents: list, managed: list) -> bool:
    """A merge that brings nothing of its own to the managed files (a plain `git merge`)."""
    specs = [f"{rev}:{path}" for rev in (sha, *parents) for path in managed]
    ids = _git_history.object_ids(root, specs)
    for path in managed:
        if path == AUDIT_PATH:
            texts = _git_history.cat_files(root, [f"{rev}:{path}" for rev in (sha, *parents)])
            ours = set((texts[f"{sha}:{path}"] or b"").splitlines())
            theirs = set().union(*(set((texts[f"{p}:{path}"] or b"").splitlines()) for p in parents))
            if not ours <= theirs:
                return False
        elif ids[f"{sha}:{path}"] not in {ids[f"{p}:{path}"] for p in parents}:
            return False
    return True


def entry_users(lines) -> set:
    """The users of audit lines (JSON text or bytes)."""
    users = set()
    for line in lines:
        try:
            users.add(json.loads(line)["user"])
        except (ValueError, KeyError, TypeError):
            continue   # a torn or foreign line: the chain check reports it
    return users


def _merge_added_entries(root: Path, sha: str, parents: list) -> list:
    texts = _git_history.cat_files(root, [f"{rev}:{AUDIT_PATH}" for rev in (sha, *parents)])
    before = set().union(*(set((texts[f"{p}:{AUDIT_PATH}"] or b"").splitlines()) for p in parents))
    return [line for line in (texts[f"{sha}:{AUDIT_PATH}"] or b"").splitlines() if line not in before]


def check(root: Path, problems: list) -> SignedHistory:
    """Append a problem for each signed-mode rule a commit breaks; returns who signed what."""
    root = Path(root)
    commits = _git_signatures.first_parent_changes(root)
    config = signing.CONFIG_FILE
    ids = _git_history.object_ids(root, {f"{rev}:{config}" for sha, parents, *_ in commits for rev in (sha, *parents[:1])})
    texts = _git_history.cat_files(root, {i for i in ids.values() if i})
    required = {blob: signing.required_in(text) for blob, text in texts.items()}
    history, checked = SignedHistory(), []
    for sha, parents, _email, when, changed in reversed(commits):   # oldest first
        before = bool(parents) and required.get(ids[f"{parents[0]}:{config}"], False)
        bootstrap = not before and required.get(ids[f"{sha}:{config}"], False)
        if before or bootstrap:
            checked.append((sha, parents, bootstrap, [p for p in changed if is_managed(p)]))
            history.since = when if history.since is None else min(history.since, when)
    if not checked:
        return history
    signer_ids = _git_history.object_ids(root, {f"{sha if boot else parents[0]}:{keys.ALLOWED_SIGNERS}"
                                                 for sha, parents, boot, _ in checked})
    wanted = {sha: signer_ids[f"{sha if boot else parents[0]}:{keys.ALLOWED_SIGNERS}"]
              for sha, parents, boot, managed in checked if managed or boot}
    cache = GradeCache(root)
    grades = _grades(root, wanted, cache)
    cache.save()
    added = _git_signatures.added_lines_by_commit(root, AUDIT_PATH)
    roles = _RolesAt(root, {parents[0] if parents else sha for sha, parents, *_ in checked})
    for sha, parents, bootstrap, managed in checked:
        if sha not in wanted:
            continue
        history.checked += 1
        grade, principal = grades[sha]
        if grade != _git_signatures.GOOD:
            if len(parents) > 1 and _clean_merge(root, sha, parents, managed):
                continue
            why = "is not signed" if grade == "N" else "has a signature that is not good for any key in " \
                  f"{keys.ALLOWED_SIGNERS} at its parent"
            problems.append({"line": None, "check": "signatures",
                             "message": f"commit {sha[:8]} changes {_shown(managed)} but {why}"})
            continue
        history.actors[sha] = principal
        if len(parents) == 1:   # a change of managed files is a contributor's (viewers only read)
            role = roles.role(parents[0], principal)
            if not identity.allows(role, "contributor"):
                problems.append({"line": None, "check": "signatures",
                                 "message": f"commit {sha[:8]} changes {_shown(managed)}, signed by {principal} "
                                            f"({role}); changes need a contributor"})
        lines = _merge_added_entries(root, sha, parents) if len(parents) > 1 else added.get(sha, [])
        for user in sorted(entry_users(lines) - {principal}):
            problems.append({"line": None, "check": "signatures",
                             "message": f"commit {sha[:8]} is signed by {principal} but carries an audit entry "
                                        f"by {user} (a forged or borrowed line)"})
        if bootstrap:
            role = roles.role(parents[0] if parents else sha, principal)
            if not identity.allows(role, "admin"):
                problems.append({"line": None, "check": "signatures",
                                 "message": f"commit {sha[:8]} turned signing on, signed by {principal} ({role}); "
                                            "only an admin may"})
    return history


def _shown(paths: list) -> str:
    return ", ".join(paths[:3]) + (f" and {len(paths) - 3} more" if len(paths) > 3 else "")


def signer_of(root: Path, sha: str, parent: Optional[str]) -> Optional[str]:
    """The principal of `sha`'s good signature under allowed_signers at `parent` (None: unsigned
    or not good)."""
    blob = _git_history.object_ids(root, [f"{parent or sha}:{keys.ALLOWED_SIGNERS}"])[f"{parent or sha}:{keys.ALLOWED_SIGNERS}"]
    cache = GradeCache(root)
    grade, principal = _grades(root, {sha: blob}, cache)[sha]
    cache.save()
    return principal if grade == _git_signatures.GOOD else None


def tag_grades(root: Path, tag_rows: list) -> dict:
    """tag name -> (grade, principal), checked against every key ever listed in allowed_signers
    (revoking a key later does not unmake the tags it signed: see docs/security.md)."""
    ever = sorted(set(_git_signatures.lines_ever_added(root, keys.ALLOWED_SIGNERS)))
    text = ("\n".join(ever) + "\n").encode()
    import hashlib
    digest = hashlib.sha256(text).hexdigest()[:16]
    cache, grades = GradeCache(root), {}
    with tempfile.TemporaryDirectory(prefix="nbversion-signers-") as folder:
        signers_file = _signers_file(folder, digest, text)
        for row in tag_rows:
            key = f"t:{row['object']}:{digest}"
            grades[row["name"]] = cache.get(key) or _git_signatures.tag_grade(root, row["object"], signers_file)
            cache.put(key, grades[row["name"]])
    cache.save()
    return grades
