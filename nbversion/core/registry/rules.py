"""Promotion rules from `.nbversion/rules.toml`: role, stage order, gates and deploy hooks per stage.

    [stages.champion]
    role = "admin"
    promotes_from = "qa"
    gates = ["metrics.mAP50-95 >= 0.5"]          # compact form, or tables:
    [[stages.champion.gates]]
    beats_champion = "mAP50-95"
    [stages.champion.deploy]
    command = "echo deployed $NBVERSION_VERSION"

A stage without an entry needs the admin role and has no gates.

A model can have its own rules for a stage, which override the stage's key by key:

    [models.risk.stages.champion]
    gates = ["metrics.f1 >= 0.8"]                 # risk's gates replace the mAP gates above

Keys the model's table leaves out (role, promotes_from, deploy) are the stage's. So a YOLO mAP
gate in `[stages.champion]` does not block a classifier that has its own gates, while a model
without its own table keeps every gate of the stage (and a metric it lacks still fails it).
"""
from __future__ import annotations

import logging
import operator
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from ...errors import InvalidInput
from ..repo.config import META_DIR, read_toml

logger = logging.getLogger(__name__)

RULES_FILE = f"{META_DIR}/rules.toml"
OPS = {">=": operator.ge, ">": operator.gt, "<=": operator.le, "<": operator.lt, "==": operator.eq,
       "!=": operator.ne}
COMPACT_GATE = re.compile(r"^\s*(?:metrics\.)?(?P<metric>[\w\-./()]+)\s*(?P<op>>=|<=|==|!=|>|<)\s*(?P<value>[-+0-9.eE]+)\s*$")


@dataclass
class Gate:
    kind: str                    # "metric" | "beats_champion" | "dataset_tag"
    metric: str = ""
    op: str = ">="
    value: float = 0.0
    tag: str = ""

    def describe(self) -> str:
        if self.kind == "metric":
            return f"metrics.{self.metric} {self.op} {self.value:g}"
        if self.kind == "beats_champion":
            return f"beats the current champion on {self.metric}"
        return f"dataset tagged {self.tag!r}"


@dataclass
class StageRule:
    stage: str
    role: str = "admin"
    promotes_from: Optional[str] = None
    gates: list = field(default_factory=list)
    deploy: dict = field(default_factory=dict)


@dataclass
class RuleResult:
    rule: str
    passed: bool
    detail: str = ""

    def to_dict(self) -> dict:
        return {"rule": self.rule, "passed": self.passed, "detail": self.detail}


def _line_of(text: str, needle: str) -> int:
    for number, line in enumerate(text.splitlines(), start=1):
        if needle in line:
            return number
    return 0


def _bad(path: Path, text: str, needle: str, what: str) -> InvalidInput:
    line = _line_of(text, needle)
    where = f"{path.name}:{line}" if line else path.name
    return InvalidInput(f"{where}: {what}",
                        hint="gates look like \"metrics.mAP50-95 >= 0.5\", {metric, op, value}, "
                             "{beats_champion = \"mAP50-95\"} or {dataset_tag = \"reviewed\"}")


def _parse_gate(raw, path: Path, text: str) -> Gate:
    if isinstance(raw, str):
        match = COMPACT_GATE.match(raw)
        if not match:
            raise _bad(path, text, raw, f"cannot read the gate {raw!r}")
        return Gate("metric", match["metric"], match["op"], float(match["value"]))
    if not isinstance(raw, dict):
        raise _bad(path, text, "gates", f"a gate must be a string or a table, not {raw!r}")
    if "beats_champion" in raw:
        return Gate("beats_champion", metric=str(raw["beats_champion"]))
    if "dataset_tag" in raw:
        return Gate("dataset_tag", tag=str(raw["dataset_tag"]))
    if "metric" in raw:
        op = raw.get("op", ">=")
        if op not in OPS:
            raise _bad(path, text, f'"{op}"', f"unknown operator {op!r} (use one of {', '.join(OPS)})")
        try:
            value = float(raw["value"])
        except (KeyError, TypeError, ValueError):
            raise _bad(path, text, str(raw["metric"]), f"the gate on {raw['metric']} needs a number `value`") from None
        return Gate("metric", str(raw["metric"]).removeprefix("metrics."), op, value)
    raise _bad(path, text, "gates", f"unknown gate {raw!r}")


class Rules(dict):
    """stage -> StageRule, and `models`: model -> stage -> StageRule (the stage's, overridden)."""

    def __init__(self, stages: dict, models: Optional[dict] = None):
        super().__init__(stages)
        self.models = models or {}


def load(root, text: Optional[str] = None) -> Rules:
    """stage -> StageRule from the working tree's rules.toml (or from `text`, e.g. an old revision);
    the model-scoped rules in `.models`."""
    path = Path(root) / RULES_FILE
    if text is None:
        data = read_toml(path)
        text = path.read_text(encoding="utf-8") if path.exists() else ""
    else:
        import tomllib
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise InvalidInput(f"{path.name}: {exc}", hint="fix the TOML syntax") from exc
    raw_stages = data.get("stages") or {}
    stages = {stage: _stage_rule(stage, raw, f"stages.{stage}", path, text) for stage, raw in raw_stages.items()}
    models = {}
    for model, stage, raw in _model_tables(data, path, text):
        merged = {**(raw_stages.get(stage) or {}), **raw}   # key by key: the model's keys win
        models.setdefault(model, {})[stage] = _stage_rule(stage, merged, f"models.{model}.stages.{stage}", path, text)
    logger.debug("stage rules (%s): %s; model-scoped: %s", RULES_FILE,
                 {s: (r.role, [g.describe() for g in r.gates]) for s, r in stages.items()},
                 {m: {s: [g.describe() for g in r.gates] for s, r in by.items()} for m, by in models.items()})
    return Rules(stages, models)


def _stage_rule(stage: str, raw, where: str, path: Path, text: str) -> StageRule:
    if not isinstance(raw, dict):
        raise _bad(path, text, where, f"[{where}] must be a table")
    gates = raw.get("gates") or []
    if not isinstance(gates, list):
        raise _bad(path, text, "gates", f"gates of [{where}] must be a list")
    return StageRule(stage, str(raw.get("role", "admin")), raw.get("promotes_from"),
                     [_parse_gate(g, path, text) for g in gates], dict(raw.get("deploy") or {}))


def _model_tables(data: dict, path: Path, text: str):
    """(model, stage, table) of each `[models.<model>.stages.<stage>]`."""
    models = data.get("models") or {}
    if not isinstance(models, dict):
        raise _bad(path, text, "models", "`models` must be a table: [models.NAME.stages.STAGE]")
    for model, section in models.items():
        if not isinstance(section, dict) or not isinstance(section.get("stages", {}), dict):
            raise _bad(path, text, f"models.{model}", f"[models.{model}] holds only [models.{model}.stages.STAGE] tables")
        for stage, raw in (section.get("stages") or {}).items():
            yield model, stage, raw


def for_stage(rules: dict, stage: str, model: Optional[str] = None) -> StageRule:
    """The rule of `stage` for `model`: its own `[models.<model>.stages.<stage>]` if it has one."""
    scoped = (getattr(rules, "models", {}).get(model) or {}).get(stage) if model else None
    return scoped or rules.get(stage) or StageRule(stage)


def metric_of(manifest: dict, metric: str) -> Optional[float]:
    value = (manifest.get("metrics") or {}).get(metric.removeprefix("metrics."))
    return float(value) if isinstance(value, (int, float)) else None


def check_metric(gate: Gate, manifest: dict) -> RuleResult:
    value = metric_of(manifest, gate.metric)
    if value is None:
        return RuleResult(gate.describe(), False, f"{gate.metric} was not recorded for this version")
    passed = OPS[gate.op](value, gate.value)
    return RuleResult(gate.describe(), passed, f"{gate.metric} = {value:.4g}")


def check_beats(gate: Gate, manifest: dict, champion: Optional[dict]) -> RuleResult:
    if champion is None:
        return RuleResult(gate.describe(), True, "no current champion")
    ours, theirs = metric_of(manifest, gate.metric), metric_of(champion, gate.metric)
    label = f"{ours if ours is None else f'{ours:.4g}'} vs {champion['version']}'s " \
            f"{theirs if theirs is None else f'{theirs:.4g}'}"
    if ours is None:
        return RuleResult(gate.describe(), False, f"{gate.metric} was not recorded for this version")
    return RuleResult(gate.describe(), theirs is None or ours > theirs, label)


def check_dataset_tag(gate: Gate, dataset_tags: Optional[list], dataset: Optional[dict]) -> RuleResult:
    if not dataset:
        return RuleResult(gate.describe(), False, "this version has no dataset lineage")
    if dataset_tags is None:
        return RuleResult(gate.describe(), False, f"dataset {dataset.get('name')} has no metadata")
    passed = gate.tag in dataset_tags
    return RuleResult(gate.describe(), passed,
                      f"{dataset.get('name')} tags: {', '.join(dataset_tags) or 'none'}")


def evaluate(rule: StageRule, manifest: dict, *, champion: Optional[dict], current_stages: list,
             user: str, role: str, dataset_tags: Optional[list]) -> list[RuleResult]:
    """Every rule of the stage, each with pass/fail and what it saw."""
    from ..repo.roles import allows

    results = [RuleResult(f"role {rule.role}", allows(role, rule.role), f"{user} is {role}")]
    if rule.promotes_from:
        results.append(RuleResult(f"promotes from {rule.promotes_from}", rule.promotes_from in current_stages,
                                  f"this version is in: {', '.join(current_stages) or 'no stage'}"))
    for gate in rule.gates:
        if gate.kind == "metric":
            results.append(check_metric(gate, manifest))
        elif gate.kind == "beats_champion":
            results.append(check_beats(gate, manifest, champion))
        else:
            results.append(check_dataset_tag(gate, dataset_tags, (manifest.get("lineage") or {}).get("dataset")))
    return results
