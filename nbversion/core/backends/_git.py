"""The git adapter: plain functions over a repo root, each a `git` command line."""
from __future__ import annotations

import logging
import os
import time
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Optional

from ...errors import NbversionError, RefNotFound, RemoteUnreachable

logger = logging.getLogger(__name__)


class GitCommandError(Exception):
    """git exited non-zero: the command line, its exit status, and what it said."""

    def __init__(self, command, status: int, stderr: str = "", stdout: str = ""):
        super().__init__(f"{' '.join(command)} exited {status}: {stderr.strip() or stdout.strip()}")
        self.command, self.status, self.stderr, self.stdout = command, status, stderr, stdout


EMPTY_TREE = "4b825dc642cb6eb9a060e54bf8d69288fbee4904"

# a failure of these is the remote's (down, refused, diverged): a script may retry later
TALKS_TO_A_REMOTE = ("push", "fetch", "pull", "clone", "ls-remote")


def _cmd(root) -> "_Logged":
    return _Logged(str(root))


class _Logged:
    """git run as a plain process (GitPython's import alone cost ~40 ms a CLI call, for a thin
    wrapper over the same thing); every command line goes to the debug log with its duration
    (`nbversion -v`). Messages are git's own, in English (LC_ALL=C), as the parsing here expects."""
    def __init__(self, root: Optional[str]):
        self._root = root

    def execute(self, command, stdout_as_string: bool = True, strip_newline_in_stdout: bool = True,
                env: Optional[dict] = None, istream=None):
        import subprocess

        started = time.monotonic()
        full_env = {**os.environ, "LANGUAGE": "C", "LC_ALL": "C", **(env or {})}
        try:
            proc = subprocess.run(command, cwd=self._root, env=full_env, capture_output=True,
                                  stdin=istream if istream is not None else subprocess.DEVNULL)
        finally:
            logger.debug("%s (in %s, %.3f s)", " ".join(command), self._root, time.monotonic() - started)
        if proc.returncode != 0:
            raise GitCommandError(command, proc.returncode, proc.stderr.decode("utf-8", "replace"),
                                  proc.stdout.decode("utf-8", "replace"))
        out = proc.stdout
        if strip_newline_in_stdout and out.endswith(b"\n"):
            out = out[:-1]
        return out.decode("utf-8", "surrogateescape") if stdout_as_string else out


def _run(root, *args, **kwargs) -> str:
    try:
        return _cmd(root).execute(["git", *args], **kwargs)
    except GitCommandError as exc:
        kind = RemoteUnreachable if args and args[0] in TALKS_TO_A_REMOTE else NbversionError
        raise kind(f"git {args[0]} failed: {_stderr(exc)}") from exc


def _stderr(exc: GitCommandError) -> str:
    return (exc.stderr or exc.stdout or str(exc)).strip()


def toplevel(path) -> Optional[Path]:
    try:
        out = _cmd(path).execute(["git", "rev-parse", "--show-toplevel"])
    except (GitCommandError, OSError):
        return None
    return Path(out.strip()).resolve()


def init(root) -> None:
    _run(root, "init", "-q")


def identity_email(root) -> Optional[str]:
    try:
        value = _cmd(root).execute(["git", "config", "user.email"])
    except (GitCommandError, OSError):
        return None
    return value.strip() or None


# Who commits and tags for a user a Jupyter server authenticated (identity.acting_as): that user,
# whatever the server's git config or GIT_AUTHOR_* say; the id is the e-mail too, so `audit
# verify` finds the author's role.
_AUTHOR: ContextVar[Optional[str]] = ContextVar("nbversion_git_author", default=None)


@contextmanager
def authored_by(user: str):
    token = _AUTHOR.set(user)
    try:
        yield
    finally:
        _AUTHOR.reset(token)


def _author_env() -> dict:
    user = _AUTHOR.get()
    return {f"GIT_{who}_{part}": user for who in ("AUTHOR", "COMMITTER") for part in ("NAME", "EMAIL")} if user else {}


def _identity_args(root, user: str) -> list[str]:
    """`-c user.*` fallbacks so commits work where git has no identity configured."""
    args = []
    if not identity_email(root):
        email = user if "@" in user else f"{user}@localhost"
        args += ["-c", f"user.email={email}"]
    try:
        _cmd(root).execute(["git", "config", "user.name"])
    except GitCommandError:
        args += ["-c", f"user.name={user}"]
    return args


def head(root) -> Optional[str]:
    try:
        return _cmd(root).execute(["git", "rev-parse", "--verify", "-q", "HEAD"]).strip()
    except GitCommandError:
        return None


def current_branch(root) -> Optional[str]:
    try:
        return _cmd(root).execute(["git", "symbolic-ref", "--short", "-q", "HEAD"]).strip()
    except GitCommandError:
        return None


def rev_parse(root, rev: str) -> str:
    try:
        return _cmd(root).execute(["git", "rev-parse", "--verify", "-q", f"{rev}^{{commit}}"]).strip()
    except GitCommandError as exc:   # kept as the cause: `-v` shows what git said
        raise RefNotFound(f"unknown revision {rev!r}",
                          hint="use a commit hash, a branch, a tag or HEAD~N (see `nbversion log`)") from exc


@dataclass
class StatusEntry:
    code: str       # two-letter porcelain code, e.g. "??", " M", "D ", "A "
    path: str       # relative to the repo root, "/" separated; directories end with "/"


def status(root, paths: Iterable[str] = (), untracked: str = "normal") -> list[StatusEntry]:
    args = ["status", "--porcelain=v1", "-z", f"--untracked-files={untracked}", "--", *paths]
    out = _run(root, *args, strip_newline_in_stdout=False)
    entries, parts, i = [], out.split("\0"), 0
    while i < len(parts):
        item = parts[i]
        i += 1
        if len(item) < 4:
            continue
        code, path = item[:2], item[3:]
        if code[0] in "RC":
            i += 1  # the rename's source path follows
        entries.append(StatusEntry(code, path))
    return entries


def add(root, paths: Iterable[str]) -> None:
    """Stage additions, changes and deletions; a path already staged as deleted is skipped."""
    from pathlib import Path

    paths = list(paths)
    missing = [p for p in paths if not (Path(root) / p).exists()]
    if missing:
        in_index = set(_run(root, "ls-files", "-z", "--", *missing,
                            strip_newline_in_stdout=False).split("\0"))
        paths = [p for p in paths if p not in missing or p in in_index]
    if paths:
        _run(root, "add", "-A", "--", *paths)


def listed_files(root, paths: Iterable[str] = (), cached: bool = True, untracked: bool = False) -> list[str]:
    """`git ls-files`: tracked paths (`cached`) and/or untracked, not ignored ones under `paths`."""
    args = ["ls-files", "-z"] + (["--cached"] if cached else []) + (["--others", "--exclude-standard"] if untracked else [])
    return [p for p in _run(root, *args, "--", *paths, strip_newline_in_stdout=False).split("\0") if p]


def untrack(root, path: str) -> None:
    """Stop tracking `path` (a folder: everything under it) in git, keeping the files."""
    _run(root, "rm", "-r", "-q", "--cached", "--", path)


def staged_paths(root) -> list[str]:
    out = _run(root, "diff", "--cached", "--name-only", "-z", strip_newline_in_stdout=False)
    return [p for p in out.split("\0") if p]


# git signs with the user's SSH key (`user.signingkey`) through ssh-keygen: signed mode
SIGN_WITH_SSH = ["-c", "gpg.format=ssh"]


def commit(root, message: str, user: str, paths: Iterable[str] = (), sign: bool = False) -> str:
    """Commit `paths` only (all staged changes when empty): a user's other staged work stays staged.
    `sign`: with the user's SSH signing key (signed mode)."""
    paths = list(paths)
    args = ["commit", "-q", "--no-verify", *(["-S"] if sign else []), "-m", message]
    if paths:
        args += ["--", *paths]
    _run(root, *_identity_args(root, user), *(SIGN_WITH_SSH if sign else []), *args, env=_author_env() or None)
    return head(root)


def unstage(root, paths: Iterable[str]) -> None:
    """Put the index entries of `paths` back to HEAD's (the files themselves are left alone)."""
    paths = list(paths)
    if paths and head(root) is not None:
        _run(root, "reset", "-q", "HEAD", "--", *paths)


def tracked_files(root, rev: str = "HEAD", paths: Iterable[str] = ()) -> dict[str, int]:
    """path -> size of every blob in `rev` (optionally under `paths`)."""
    out = _run(root, "ls-tree", "-r", "-l", "-z", rev, "--", *paths, strip_newline_in_stdout=False)
    files = {}
    for item in out.split("\0"):
        if not item:
            continue
        meta, path = item.split("\t", 1)
        size = meta.split()[3]
        files[path] = int(size) if size.isdigit() else 0
    return files


def show(root, rev: str, path: str) -> Optional[bytes]:
    """Content of `path` at `rev`, or None when it does not exist there."""
    try:
        return _cmd(root).execute(["git", "show", f"{rev}:{path}"], stdout_as_string=False,
                                  strip_newline_in_stdout=False)
    except GitCommandError:
        return None


def diff_name_status(root, rev_a: str, rev_b: Optional[str]) -> list[tuple[str, str]]:
    args = ["diff", "--name-status", "-z", "--no-renames", rev_a]
    if rev_b:
        args.append(rev_b)
    out = _run(root, *args, strip_newline_in_stdout=False)
    parts = [p for p in out.split("\0") if p]
    return [(parts[i], parts[i + 1]) for i in range(0, len(parts) - 1, 2)]


@dataclass
class CommitInfo:
    sha: str
    author: str
    email: str
    date: str           # ISO 8601
    subject: str
    body: str
    changes: list       # [(status letter, path)]


_LOG_FORMAT = "%x1e%H%x1f%an%x1f%ae%x1f%aI%x1f%s%x1f%b%x1f"


def log(root, n: Optional[int] = None, rev: str = "HEAD", paths: Iterable[str] = (), skip: int = 0) -> list[CommitInfo]:
    """Commits newest first: at most `n`, after skipping the newest `skip`."""
    if head(root) is None:
        return []
    args = ["log", f"--format={_LOG_FORMAT}", "--name-status", "--no-renames", "-z"]
    if n:
        args.append(f"-n{n}")
    if skip:
        args.append(f"--skip={skip}")
    out = _run(root, *args, rev, "--", *paths, strip_newline_in_stdout=False)
    commits = []
    for record in out.split("\x1e")[1:]:
        sha, author, email, date, subject, body, rest = record.split("\x1f", 6)
        parts = [p.strip("\n") for p in rest.split("\0")]
        parts = [p for p in parts if p]
        changes = [(parts[i], parts[i + 1]) for i in range(0, len(parts) - 1, 2)]
        commits.append(CommitInfo(sha, author, email, date, subject, body.strip(), changes))
    return commits


def count_commits(root, rev: str = "HEAD", paths: Iterable[str] = ()) -> int:
    """How many commits `log` would list (0 before the first commit)."""
    if head(root) is None:
        return 0
    return int(_run(root, "rev-list", "--count", rev, "--", *paths).strip() or 0)


def checkout(root, rev: str, paths: Iterable[str] = (), force: bool = False) -> None:
    paths = list(paths)
    args = ["checkout", "-q"] + (["-f"] if force else []) + [rev]
    if paths:
        args += ["--", *paths]
    _run(root, *args)


def create_tag(root, name: str, rev: str, message: Optional[str] = None, user: Optional[str] = None,
               date: Optional[str] = None, sign: bool = False) -> None:
    """An annotated tag by `user` with `message`; a lightweight one without a message. `date` (ISO
    8601) is the tagger date, for a tag re-made later that must keep (or move past) a date.
    `sign`: an annotated tag signed with the user's SSH signing key (signed mode)."""
    if message is None:
        _run(root, "tag", name, rev)
    else:
        env = {**_author_env(), **({"GIT_COMMITTER_DATE": date} if date else {})}
        kind = [*SIGN_WITH_SSH, "tag", "-s"] if sign else ["tag", "-a"]
        _run(root, *_identity_args(root, user or ""), *kind, name, rev, "-m", message, env=env or None)


def delete_tag(root, name: str) -> None:
    _run(root, "tag", "-d", name)


def tag_commit(root, tag: str) -> Optional[str]:
    """The commit tag `tag` points at, or None when there is no such tag."""
    try:
        return _cmd(root).execute(["git", "rev-parse", "-q", "--verify", f"refs/tags/{tag}^{{commit}}"]).strip()
    except GitCommandError:
        return None


def tags(root, pattern: str = "*", namespace: str = "refs/tags") -> list[dict]:
    """Annotated and light tags: name, target commit, tagger, date, message (and `object`, the
    tag's own id). `namespace`: where the refs live (another remote's tags fetched aside)."""
    depth = len(namespace.strip("/").split("/"))
    fmt = f"%(refname:strip={depth})%1f%(*objectname)%1f%(objectname)%1f%(taggeremail)%1f%(taggerdate:iso-strict)%1f%(contents:subject)%1e"
    out = _run(root, "for-each-ref", f"--format={fmt}", f"{namespace.rstrip('/')}/{pattern}", strip_newline_in_stdout=False)
    result = []
    for record in out.split("\x1e"):
        record = record.strip("\n")
        if not record:
            continue
        name, peeled, obj, email, date, subject = record.split("\x1f")
        result.append({"name": name, "commit": peeled or obj, "tagger": email.strip("<>"),
                       "date": date, "message": subject, "object": obj})
    return result


def branch_exists(root, name: str) -> bool:
    try:
        _cmd(root).execute(["git", "show-ref", "--verify", "-q", f"refs/heads/{name}"])
        return True
    except GitCommandError:
        return False


def create_branch(root, name: str, start: Optional[str] = None, switch: bool = False) -> None:
    """Branch `name` at `start` (HEAD when None); with `switch`, check it out too."""
    start_args = [start] if start else []
    _run(root, *(["checkout", "-q", "-b", name] if switch else ["branch", "-q", name]), *start_args)


def parents(root, sha: str) -> list[str]:
    return _run(root, "rev-list", "--parents", "-n1", sha).split()[1:]


def last_commit_touching(root, path: str, rev: str = "HEAD") -> Optional[str]:
    """The newest commit reachable from `rev` that changed `path`, or None."""
    return _run(root, "log", "-n1", "--format=%H", rev, "--", path).strip() or None


def is_ancestor(root, a: str, b: str) -> bool:
    try:
        _cmd(root).execute(["git", "merge-base", "--is-ancestor", a, b])
        return True
    except GitCommandError:
        return False


def config_get(root, key: str, local_only: bool = False) -> Optional[str]:
    """A git config value (of this repository only with `local_only`), or None when unset."""
    try:
        return _cmd(root).execute(["git", "config", *(["--local"] if local_only else []), key]).strip()
    except GitCommandError:
        return None


def config_set(root, key: str, value: str) -> None:
    _run(root, "config", key, value)


def config_unset(root, key: str) -> None:
    """Remove a key from this repository's config; nothing happens when it is not set."""
    try:
        _cmd(root).execute(["git", "config", "--local", "--unset", key])
    except GitCommandError:
        pass


def status_staged(root, paths: Iterable[str]) -> bool:
    """True when any of `paths` has a change staged against HEAD (or there is no HEAD yet)."""
    paths = list(paths)
    if not paths:
        return False
    if head(root) is None:
        return True
    out = _run(root, "diff", "--cached", "--name-only", "HEAD", "--", *paths)
    return bool(out.strip())


def branches(root, pattern: str = "*") -> dict:
    """Local branch name -> commit sha."""
    out = _run(root, "for-each-ref", "--format=%(refname:strip=2) %(objectname)", f"refs/heads/{pattern}")
    return dict(line.split() for line in out.splitlines() if line.strip())


def ref_format_ok(refname: str) -> bool:
    """Whether git accepts `refname` as a ref (`git check-ref-format`, run outside any repo)."""
    try:
        _Logged(None).execute(["git", "check-ref-format", refname])
    except GitCommandError:
        return False
    return True
