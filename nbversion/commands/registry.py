"""Registry verbs: register, promote, demote, registry, resolve, deploys, audit [verify], report."""
from __future__ import annotations

from . import Verb, count


def _register_args(p):
    p.add_argument("name", metavar="NAME", help="model name (letters, digits, - and _)")
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--version", dest="set_version", metavar="X.Y.Z", help="an explicit version, above the latest")
    which.add_argument("--bump", choices=["major", "minor", "patch"], help="next version after the latest")
    p.add_argument("--from", dest="source", required=True, action="append", metavar="RUN|FILE|DIR|MODEL[@REV]",
                   help="a training run id, a weights file, a folder of files, or a versioned model; "
                        "repeat it to register several files as one version")
    p.add_argument("--rename", action="store_true", help="store the model file as model<suffix> (best.pt -> model.pt)")
    p.add_argument("--model-file", default=None, metavar="NAME",
                   help="which file is the model, when a folder holds more than one")
    p.add_argument("-m", "--message", default="", help="why this version exists")


def _one_or_all(sources: list):
    """One `--from` is a run, a model, a file or a folder; several are files of one version."""
    return sources[0] if len(sources) == 1 else sources


def _promote_args(p):
    p.add_argument("ref", metavar="NAME@vX.Y.Z", help="the version to promote")
    p.add_argument("--stage", default="champion", help="stage to assign (default: champion)")
    p.add_argument("--force", action="store_true", help="admins only: promote past failing gates (audited)")


def _demote_args(p):
    p.add_argument("ref", metavar="NAME@vX.Y.Z", help="the version that holds the stage (NAME@champion works)")
    p.add_argument("--stage", default="champion", help="stage to take away (default: champion)")
    p.add_argument("--no-rollback", dest="rollback", action="store_false",
                   help="leave the stage empty instead of giving it back to the former holder")


def _registry_args(p):
    p.add_argument("name", nargs="?", default=None, metavar="NAME", help="only this model")
    p.add_argument("--stage", default=None, help="only the versions holding this stage (e.g. champion)")
    p.add_argument("-n", "--limit", dest="n", type=count, default=None, metavar="N", help="only the first N versions")


def _resolve_args(p):
    p.add_argument("ref", metavar="NAME@champion|NAME@vX.Y.Z|NAME@latest",
                   help="a bare NAME honours $MODEL_VERSION (default champion)")
    p.add_argument("--at", default=None, metavar="DATE", help="which version held the stage at this date/time")


def _audit_args(p):
    p.add_argument("what", nargs="?", choices=["verify"], default=None,
                   help="`verify`: check the hash chain, roles, rules, stage tags and versions")
    p.add_argument("--user", default=None, help="only entries by this user")
    p.add_argument("--action", default=None, help="only this action (register, promote, denied...)")
    p.add_argument("--since", default=None, metavar="DATE", help="only entries at or after this date")
    p.add_argument("-n", type=count, default=None, metavar="N", help="only the last N matching entries")


def _run_audit(ws, a, ev):
    if a.what == "verify":
        return ws.audit_verify(on_event=ev)
    return ws.audit(user=a.user, action=a.action, since=a.since, limit=a.n)


def _report_args(p):
    p.add_argument("--format", choices=["html", "json"], default="html")
    p.add_argument("--out", default=None, metavar="FILE", help="default: nbversion-report.html|json")


VERBS = [
    Verb("register", "register an immutable semver version of model weights", _register_args,
         lambda ws, a, ev: ws.register(a.name, a.set_version, a.bump, _one_or_all(a.source), a.message, on_event=ev,
                                       rename=a.rename, model_file=a.model_file)),
    Verb("promote", "assign a stage (default champion) behind roles and gates, then run deploy hooks",
         _promote_args, lambda ws, a, ev: ws.promote(a.ref, a.stage, force=a.force, on_event=ev)),
    Verb("demote", "take a stage away from a version; the former holder gets it back",
         _demote_args, lambda ws, a, ev: ws.demote(a.ref, a.stage, rollback=a.rollback, on_event=ev)),
    Verb("registry", "registered versions, stages, champion and metrics", _registry_args,
         lambda ws, a, ev: ws.registry(a.name, stage=a.stage, limit=a.n)),
    Verb("resolve", "the version a reference means now (or --at a date) and a local path to its weights",
         _resolve_args, lambda ws, a, ev: ws.resolve(a.ref, at=a.at)),
    Verb("deploys", "deploy hook history", _registry_args, lambda ws, a, ev: ws.deploys(a.name)),
    Verb("audit", "audit log entries (filters), or `audit verify`", _audit_args, _run_audit),
    Verb("report", "standalone HTML (or JSON) report: registry, champions, deploys, audit",
         _report_args, lambda ws, a, ev: ws.report(a.format, a.out)),
]
