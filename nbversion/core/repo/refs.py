"""`NAME@REV` for datasets and models: REV is a commit, a tag, or `~N` (N versions back).

A version of `datasets/<name>` is a commit that changed `datasets/<name>.dvc` or its
`.meta.json` (likewise for models: new metrics for the same weights are a new version). Tags given with `--tag T` are git tags `dataset/<name>/<T>` / `model/<name>/<T>`.
"""
from __future__ import annotations

from ...errors import NotFound, RefNotFound, UsageError
from ..backends import _git
from . import names

TAG_PREFIX = {"datasets": "dataset", "models": "model"}


def check_new_name(root, kind_dir: str, name: str) -> str:
    """A name to WRITE a version of: the one name rule (`names`), except that a dataset or model
    an earlier version created under its looser rule (dots allowed) can still get new versions."""
    from pathlib import Path

    if names.is_legacy_name(name) and (Path(root) / kind_dir / f"{name}.meta.json").is_file():
        return name
    return names.check_name(name, TAG_PREFIX[kind_dir])


def split_ref(ref: str) -> tuple[str, str | None]:
    name, _, rev = ref.partition("@")
    return name, (rev or None)


def tag_name(kind_dir: str, name: str, tag: str) -> str:
    return f"{TAG_PREFIX[kind_dir]}/{name}/{tag}"


def versions(root, kind_dir: str, name: str, rev: str = "HEAD") -> list:
    """Commits that changed `<kind_dir>/<name>.dvc` or its metadata, newest first (CommitInfo);
    a commit that deleted them (`dataset remove`) is not a version."""
    meta_file = f"{kind_dir}/{name}.meta.json"
    return [c for c in _git.log(root, rev=rev, paths=[f"{kind_dir}/{name}.dvc", meta_file])
            if ("D", meta_file) not in c.changes]


def tag_commit(root, tag: str) -> str | None:
    return _git.tag_commit(root, tag)


def _steps_back(name: str, rev: str | None) -> int:
    if not rev or not rev.startswith("~"):
        return 0
    digits = rev[1:] or "1"
    if not digits.isdigit():
        raise UsageError(f"{name}@{rev}: `~N` needs a number", hint=f"e.g. {name}@~1 for the previous version")
    return int(digits)


def resolve(root, kind_dir: str, name: str, rev: str | None) -> str:
    """The commit holding version `rev` of `name`; latest when rev is None or 'latest'."""
    kind = TAG_PREFIX[kind_dir]
    if rev in (None, "", "latest") or (rev or "").startswith("~"):
        history = versions(root, kind_dir, name)
        if not history:
            raise NotFound(f"no {kind} named {name!r}",
                           hint=f"`nbversion {kind} list` shows what exists; add one with `{kind} add`")
        back = _steps_back(name, rev)
        if back >= len(history):
            raise RefNotFound(f"{kind} {name} has {len(history)} version(s); {name}@{rev} goes back too far",
                              hint=f"use {name}@~0 .. {name}@~{len(history) - 1}")
        return history[back].sha
    if rev.startswith("/"):
        raise UsageError(f"{rev!r} is a path, not a version of {name}",
                         hint="the shell expands a bare ~0 / ~1: quote it ('~1') or write NAME@~1")
    commit = tag_commit(root, tag_name(kind_dir, name, rev)) or _git.rev_parse(root, rev)
    if _git.show(root, commit, f"{kind_dir}/{name}.dvc") is None:
        raise RefNotFound(f"{kind} {name!r} does not exist at {rev}",
                          hint=f"`nbversion log {kind_dir}/{name}.dvc` lists its versions")
    return commit
