"""One parser definition per verb, shared by the CLI (`nbversion VERB`) and the magics (`%mv_VERB`).

Each module below lists its verbs as `Verb`s; nothing heavy is imported until a verb runs.
"""
from __future__ import annotations

import argparse
import importlib
import logging
from dataclasses import dataclass, field
from typing import Callable, Optional

from ..errors import UsageError

logger = logging.getLogger(__name__)

MODULES = ["workspace", "data", "registry", "training", "remotes", "presets", "targets"]


class HelpShown(Exception):
    """`--help` was asked for; the help text has been printed."""


class Parser(argparse.ArgumentParser):
    """argparse that raises instead of exiting, so a magic never kills the kernel."""

    def error(self, message):
        raise UsageError(f"{self.prog}: {message}", hint=f"see `{self.prog} --help`")

    def exit(self, status=0, message=None):
        if message:
            raise UsageError(message.strip())
        raise HelpShown()


@dataclass
class Verb:
    name: str
    help: str
    arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable                      # run(ws_or_None, args, on_event) -> Result
    needs_workspace: bool = True
    subverbs: list = field(default_factory=list)   # [Verb]: `dataset add`, `model list`...


def all_verbs() -> dict[str, Verb]:
    verbs = {}
    for name in MODULES:
        try:
            module = importlib.import_module(f"{__name__}.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"{__name__}.{name}":
                continue   # a verb family not built yet
            raise
        for verb in module.VERBS:
            verbs[verb.name] = verb
    return verbs


def _fill(parser: argparse.ArgumentParser, verb: Verb) -> None:
    if verb.subverbs:
        sub = parser.add_subparsers(dest="subverb", metavar="{" + ",".join(v.name for v in verb.subverbs) + "}",
                                    parser_class=Parser)
        sub.required = True
        for child in verb.subverbs:
            child_parser = sub.add_parser(child.name, help=child.help, description=child.help)
            _fill(child_parser, child)
            if "--json" not in child_parser._option_string_actions:
                add_json_flag(child_parser)   # `nbversion dataset list --json` works too
            child_parser.set_defaults(_verb=child)
    else:
        verb.arguments(parser)
        parser.set_defaults(_verb=verb)


def typed_value(text: str):
    """`key=value` values as the user means them: 3 -> int, 0.5 -> float, true -> bool, none -> None."""
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered in ("none", "null"):
        return None
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def count(text: str) -> int:
    """argparse type of -n N, --keep-last N, --samples N: a whole number, 0 or more (`-n -5` is a typo)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text} is negative: give a number of 0 or more")
    return value


def positive(text: str) -> int:
    """argparse type of --epochs, --imgsz: a whole number, 1 or more."""
    value = count(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text}: give a number of 1 or more")
    return value


def days(text: str) -> float:
    """argparse type of --older-than DAYS: a finite number, 0 or more (`nan` would keep or drop anything)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of days") from None
    if not 0.0 <= value < float("inf"):   # also refuses nan
        raise argparse.ArgumentTypeError(f"{text}: give a number of days, 0 or more")
    return value


def batch_size(text: str) -> int:
    """argparse type of --batch: 1 or more, or -1 (Ultralytics' AutoBatch); Ultralytics reads other values oddly."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1 and value != -1:
        raise argparse.ArgumentTypeError(f"{text}: give 1 or more, or -1 for AutoBatch")
    return value


def fraction(text: str) -> float:
    """argparse type of --conf, --iou: a number from 0 to 1."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0.0 <= value <= 1.0:   # also refuses nan
        raise argparse.ArgumentTypeError(f"{text} is outside 0..1")
    return value


def add_json_flag(parser: argparse.ArgumentParser, default=argparse.SUPPRESS) -> None:
    # SUPPRESS on verbs, so `nbversion --json VERB` and `nbversion VERB --json` both work
    parser.add_argument("--json", action="store_true", default=default, help="print JSON instead of a table")


def build_cli_parser() -> Parser:
    parser = Parser(prog="nbversion", description="git for datasets and models, over git + DVC")
    parser.add_argument("-C", dest="workspace", default=None, metavar="PATH",
                        help="run as if started in PATH (default: the current folder)")
    parser.add_argument("--version", dest="show_version", action="store_true", help="print the version and exit")
    parser.add_argument("-v", "--verbose", action="count", default=0,
                        help="show nbversion's debug log on stderr; -vv adds DVC's and git's")
    parser.add_argument("--log-file", metavar="FILE", default=None,
                        help="append the debug log to FILE (or set NBVERSION_LOG_FILE, or "
                             "log_file under [core] in .nbversion/config.toml)")
    add_json_flag(parser, default=False)
    sub = parser.add_subparsers(dest="verb", metavar="VERB", parser_class=Parser)
    for verb in all_verbs().values():
        verb_parser = sub.add_parser(verb.name, help=verb.help, description=verb.help)
        add_json_flag(verb_parser)
        _fill(verb_parser, verb)
    return parser


def build_magic_parser(name: str) -> Parser:
    verb = all_verbs()[name]
    parser = Parser(prog=f"%mv_{name}", description=verb.help)
    _fill(parser, verb)
    return parser


def dispatch(args, workspace_path: Optional[str] = None, on_event=None):
    from ..core.workspace import open_workspace

    verb: Verb = args._verb
    ws = open_workspace(workspace_path) if verb.needs_workspace else None
    logger.debug("%s in %s with %s", args.verb if hasattr(args, "verb") else verb, ws.root if ws else "(no workspace)",
                 {k: v for k, v in vars(args).items() if not k.startswith("_") and "passphrase" not in k})
    return verb.run(ws, args, on_event)
