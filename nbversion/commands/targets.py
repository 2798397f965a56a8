"""Training targets: `target add|list|remove`, and `target exec` (run on the host by `train --on`)."""
from __future__ import annotations

from . import Verb, add_json_flag


def _add_args(p):
    p.add_argument("name", metavar="NAME", help="the target's name, for `train --on NAME`")
    p.add_argument("url", metavar="URL", help="ssh://[user@]host[:port]/path | "
                   "slurm://[user@]login-host/path?partition=P&gpus=N&time=T | ray://head:8265")
    p.add_argument("--keyfile", default=None, metavar="FILE",
                   help="SSH private key, or a ray:// cluster's token file (kept out of git)")
    add_json_flag(p)


def _name_args(p):
    p.add_argument("name", metavar="NAME", help="a target's name (`target list`)")
    add_json_flag(p)


def _exec_args(p):
    p.add_argument("run_id", metavar="RUN")
    p.add_argument("spec", metavar="SPEC", help="base64 JSON written by `train --on`")
    add_json_flag(p)


def _run_exec(ws, a, ev):
    from ..targets.host import run_exec
    return run_exec(ws, a.run_id, a.spec)


VERBS = [
    Verb("target", "where trainings run: a GPU box over SSH, a Slurm cluster (Ray next)", lambda p: None, None, subverbs=[
        Verb("add", "add a training target (admins): ssh://, slurm:// or ray:// URL", _add_args,
             lambda ws, a, ev: ws.target_add(a.name, a.url, keyfile=a.keyfile)),
        Verb("list", "training targets with their URL", lambda p: add_json_flag(p), lambda ws, a, ev: ws.target_list()),
        Verb("remove", "remove a training target (admins)", _name_args, lambda ws, a, ev: ws.target_remove(a.name)),
        Verb("exec", "(run on the target host by `train --on`; not for people)", _exec_args, _run_exec),
    ]),
]
