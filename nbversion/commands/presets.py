"""Preset verbs: `presets list|show` (a preset is applied with `train --preset NAME`)."""
from __future__ import annotations

from . import Verb


def _show_args(p):
    p.add_argument("name", metavar="NAME", help="a preset (see `presets list`)")


VERBS = [
    Verb("presets", "training hyperparameter presets: list, show", lambda p: None, None, subverbs=[
        Verb("list", "built-in and workspace presets, with the arguments each sets", lambda p: None,
             lambda ws, a, ev: ws.presets_list()),
        Verb("show", "one preset: its file, source and values", _show_args,
             lambda ws, a, ev: ws.presets_show(a.name)),
    ]),
]
