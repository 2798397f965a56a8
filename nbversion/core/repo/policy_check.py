"""The policy files `.nbversion/rules.toml`, `users.toml` and `config.toml`, checked at `commit`.

A rules.toml with a typo would otherwise be committed and break every later `promote` (or,
worse, silently drop a gate: `gate = ...` instead of `gates = ...`). Each problem names the
file and line and says what a valid value looks like; nothing is written when one is found.
Keys this version does not know in config.toml are left alone (newer versions add some).
"""
from __future__ import annotations

import logging
import re
from pathlib import Path

from ...errors import UsageError
from .config import META_DIR, check_config_values, tomllib
from .policy_text import invalid_at as _bad, is_number as _number, line_of as _line
from .roles import ROLES

logger = logging.getLogger(__name__)

RULES, USERS, CONFIG = (f"{META_DIR}/{n}" for n in ("rules.toml", "users.toml", "config.toml"))
STAGE_KEYS = {"role", "promotes_from", "gates", "deploy"}
DEPLOY_KEYS = {"command", "webhook", "timeout"}
ROLE_HINT = "roles are: " + ", ".join(ROLES)


def _parse(root: Path, rel: str) -> tuple[dict, str]:
    text = (root / rel).read_text(encoding="utf-8", errors="replace")
    try:
        return tomllib.loads(text), text
    except tomllib.TOMLDecodeError as exc:
        match = re.search(r"line (\d+)", str(exc))
        raise _bad(rel, int(match.group(1)) if match else 0, f"not valid TOML ({exc})",
                   "fix the syntax (strings need quotes, tables look like [stages.champion])") from None


def check_rules(root: Path) -> None:
    from ..registry import rules

    data, text = _parse(root, RULES)
    stages = data.get("stages", {})
    if not isinstance(stages, dict):
        raise _bad(RULES, _line(text, "stages"), "`stages` must be a table", "write [stages.champion]")
    for stage, raw in stages.items():
        _check_stage(stage, raw, text, f"stages.{stage}", f"stage {stage}")
    _check_models(data.get("models", {}), text)
    rules.load(root)   # the gates themselves: file:line for each one it cannot read


def _check_models(models, text: str) -> None:
    """`[models.<model>.stages.<stage>]`: a model's own rules, checked as a stage's are."""
    from . import names

    if not isinstance(models, dict):
        raise _bad(RULES, _line(text, "models"), "`models` must be a table", "write [models.NAME.stages.champion]")
    for model, section in models.items():
        where = _line(text, f"[models.{model}.", f"models.{model}", model)
        try:
            names.check_name(model, "model")
        except UsageError as exc:
            raise _bad(RULES, where, exc.message, exc.hint or "") from None
        if not isinstance(section, dict):
            raise _bad(RULES, where, f"[models.{model}] must be a table", f"write [models.{model}.stages.champion]")
        for key in section:
            if key != "stages":
                raise _bad(RULES, _line(text, f"[models.{model}.{key}", f"{key} =", f"{key}=", key) or where,
                           f"unknown setting {key!r} for model {model}",
                           f"a model takes only stage tables: [models.{model}.stages.champion]")
        stages = section.get("stages", {})
        if not isinstance(stages, dict):
            raise _bad(RULES, where, f"[models.{model}.stages] must be a table", f"write [models.{model}.stages.champion]")
        for stage, raw in stages.items():
            label = f"models.{model}.stages.{stage}"
            _check_stage(stage, raw, text, label, f"stage {stage} of model {model}", after=_line(text, f"[{label}"))


def _check_stage(stage: str, raw, text: str, label: str, what: str, after: int = 0) -> None:
    """One stage table (`[stages.champion]` or `[models.risk.stages.champion]`); `after`: the line
    its table starts on, so a key is looked for in its own table first."""
    from . import names

    find = lambda *needles: _line_from(text, after, *needles)   # noqa: E731
    where = find(f"[{label}]", label, stage)
    try:
        names.check_name(stage, "stage")
    except UsageError as exc:   # say it with the file and line
        raise _bad(RULES, where, exc.message, exc.hint or "") from None
    if not isinstance(raw, dict):
        raise _bad(RULES, where, f"[{label}] must be a table", "e.g. [stages.champion] role = \"admin\"")
    for key in raw:
        if key not in STAGE_KEYS:
            raise _bad(RULES, find(f"{key} =", f"{key}=", key), f"unknown setting {key!r} in {what}",
                       "a stage takes " + ", ".join(sorted(STAGE_KEYS)))
    role = raw.get("role", "admin")
    if role not in ROLES:
        raise _bad(RULES, find(f'"{role}"', "role"), f"unknown role {role!r} for {what}", ROLE_HINT)
    before = raw.get("promotes_from")
    if before is not None and (not isinstance(before, str) or not names.NAME_RE.fullmatch(before)):
        raise _bad(RULES, find("promotes_from"), f"promotes_from of {what} must be a stage name",
                   'e.g. promotes_from = "qa"')
    if not isinstance(raw.get("gates", []), list):
        raise _bad(RULES, find("gates"), f"gates of {what} must be a list",
                   'e.g. gates = ["metrics.mAP50-95 >= 0.5"]')
    _check_deploy(raw.get("deploy", {}), stage, text)


def _line_from(text: str, start: int, *needles: str) -> int:
    """The first line at or after `start` holding a needle (else anywhere, as `_line`)."""
    if start:
        tail = "\n".join(text.splitlines()[start - 1:])
        found = _line(tail, *needles)
        if found:
            return found + start - 1
    return _line(text, *needles)


def _check_deploy(deploy, stage: str, text: str) -> None:
    where = _line(text, f"[stages.{stage}.deploy]", "deploy")
    if not isinstance(deploy, dict):
        raise _bad(RULES, where, f"deploy of stage {stage} must be a table", '[stages.champion.deploy] command = "..."')
    for key, value in deploy.items():
        line = _line(text, f"{key} =", key) or where
        if key not in DEPLOY_KEYS:
            raise _bad(RULES, line, f"unknown deploy setting {key!r} in stage {stage}",
                       "a deploy hook takes " + ", ".join(sorted(DEPLOY_KEYS)))
        if key == "timeout" and not (_number(value) and value > 0):
            raise _bad(RULES, line, f"deploy timeout of stage {stage} must be a number of seconds", "e.g. timeout = 300")
        if key != "timeout" and not isinstance(value, str):
            raise _bad(RULES, line, f"deploy {key} of stage {stage} must be a string", f'e.g. {key} = "..."')


def check_users(root: Path) -> None:
    data, text = _parse(root, USERS)
    users = data.get("users", {})
    if not isinstance(users, dict):
        raise _bad(USERS, _line(text, "users"), "`users` must be a table", '[users] then "id" = "role" lines')
    for user, role in users.items():
        if role not in ROLES:
            raise _bad(USERS, _line(text, user), f"unknown role {role!r} for {user}", ROLE_HINT)


def check_config(root: Path) -> None:
    check_config_values(*_parse(root, CONFIG))


CHECKS = {RULES: check_rules, USERS: check_users, CONFIG: check_config}


def check(root: Path, paths) -> None:
    """Check each policy file among `paths` (workspace-relative) that exists; raise on the first problem."""
    for rel in sorted(set(paths) & set(CHECKS)):
        logger.debug("checking the policy file %s before it is committed", rel)
        if (Path(root) / rel).is_file():
            CHECKS[rel](Path(root))
