"""Remote, integrity and retention verbs: remote, push, pull, clone, verify, gc, backup, exp."""
from __future__ import annotations

import os

from . import Verb, add_json_flag, count, days


def _none(parser):
    pass


def _json(arguments):
    """Subverbs get `--json` after them too (`nbversion exp list --json`), like top-level verbs."""
    def fill(parser):
        arguments(parser)
        add_json_flag(parser)
    return fill


def _remote_add_args(p):
    p.add_argument("name", metavar="NAME", help="one name for history (git) and data (DVC)")
    p.add_argument("url", metavar="URL", help="a folder, ssh://[user@]host[:port]/path or s3://bucket/prefix")
    p.add_argument("--git", dest="git_url", default=None, metavar="GIT_URL",
                   help="where history goes (default: URL/git for folders and ssh; required for s3)")
    p.add_argument("--endpoint-url", default=None, metavar="URL", help="S3-compatible store (MinIO, moto...)")
    p.add_argument("--keyfile", default=None, metavar="FILE", help="SSH private key (kept out of git)")
    p.add_argument("--no-default", dest="default", action="store_false", help="do not make it the default remote")


def _transfer_args(p):
    p.add_argument("remote", nargs="?", default=None, metavar="REMOTE", help="default: the default remote")
    which = p.add_mutually_exclusive_group()
    which.add_argument("--all-versions", action="store_true", help="data of every commit, all branches")
    which.add_argument("--registered", action="store_true", help="only data of registered versions and stages")


def _pull_args(p):
    _transfer_args(p)
    p.add_argument("--abort", action="store_true",
                   help="undo a merge left unfinished (by `git merge` or `git pull`) instead of pulling")


def _clone_args(p):
    p.add_argument("url", metavar="URL", help="a remote folder, ssh:// URL, or any git URL")
    p.add_argument("directory", metavar="DIR", help="new folder to clone into")
    p.add_argument("--keyfile", default=None, metavar="FILE", help="SSH private key")
    p.add_argument("--all-versions", action="store_true", help="fetch the data of every commit too")


def _verify_args(p):
    p.add_argument("--repair", action="store_true", help="fetch missing or corrupted objects from a remote, "
                                                         "drop a torn audit line, clear a stale lock")
    p.add_argument("--remote", default=None, metavar="NAME", help="remote to check against / repair from")
    p.add_argument("--check-remote", action="store_true", help="also check every needed object is on the remote")


def _gc_args(p):
    p.add_argument("--keep-last", type=count, default=None, metavar="N", help="newest versions kept per path (config: gc.keep_last)")
    p.add_argument("--older-than", type=days, default=None, metavar="DAYS",
                   help="versions younger than this are kept (config: gc.older_than_days)")
    p.add_argument("--dry-run", action="store_true", help="list what would go and how many bytes")
    p.add_argument("--remote", default=None, metavar="NAME", help="also remove from this remote (admins)")


def _passphrase(args, confirm: bool = False):
    """From the environment, else a prompt on the terminal (never a command-line flag: shell history)."""
    from ..core.storage.backup import PASSPHRASE_ENV

    if os.environ.get(PASSPHRASE_ENV):
        return os.environ[PASSPHRASE_ENV]
    import getpass
    first = getpass.getpass("backup passphrase: ")
    if confirm and getpass.getpass("again: ") != first:
        from ..errors import UsageError
        raise UsageError("the passphrases differ", hint="type the same passphrase twice")
    return first


def _require_crypto(what: str) -> None:
    from ..extras import require

    require("remotes", what, ("cryptography",))


def _backup_create_args(p):
    p.add_argument("--out", default=None, metavar="FILE", help="default: ../<workspace>-backup-<time>.tar.gz")
    p.add_argument("--encrypt", action="store_true", help="AES-256-GCM with a passphrase ($NBVERSION_BACKUP_PASSPHRASE or prompt)")
    p.add_argument("--since", default=None, metavar="BACKUP", help="store only objects not in this earlier backup")


def _run_backup_create(ws, a, ev):
    from ..core.storage import crypto

    needs = a.encrypt or (a.since and os.path.exists(a.since) and crypto.is_encrypted(a.since))
    if needs:   # before the passphrase prompt, not after it
        _require_crypto("backup create --encrypt")
    secret = _passphrase(a, confirm=a.encrypt) if needs else None
    return ws.backup_create(out=a.out, encrypt=a.encrypt, passphrase=secret, since=a.since, on_event=ev)


def _backup_restore_args(p):
    p.add_argument("archive", metavar="FILE", help="a backup made by `backup create`")
    p.add_argument("directory", metavar="DIR", help="new folder for the restored workspace")


def _run_backup_restore(ws, a, ev):
    from ..core.storage import backup, crypto

    needs = os.path.exists(a.archive) and crypto.is_encrypted(a.archive)
    if needs:
        _require_crypto("restoring an encrypted backup")
    secret = _passphrase(a) if needs else None
    return backup.restore(a.archive, a.directory, passphrase=secret, on_event=ev)


def _run_remote_list(ws, a, ev):
    from ..core.storage.remotes import remote_list
    return remote_list(ws)


def _run_clone(ws, a, ev):
    from ..core.storage.clone import clone
    return clone(a.url, a.directory, keyfile=a.keyfile, all_versions=a.all_versions, on_event=ev)


def _exp_name_args(p):
    p.add_argument("name", metavar="NAME", help="experiment name (branch exp/NAME)")


def _exp_compare_args(p):
    p.add_argument("--metric", default=None, metavar="M", help="only this metric; the best row is highlighted")


def _exp_best_args(p):
    p.add_argument("--metric", required=True, metavar="M", help="as stored: mAP50-95, mAP50, val_box_loss... (Ultralytics' metrics/mAP50-95(B) works too)")
    order = p.add_mutually_exclusive_group()
    order.add_argument("--lower", dest="lower", action="store_const", const=True, default=None,
                       help="lower is better (default: guessed, e.g. for *loss*)")
    order.add_argument("--higher", dest="lower", action="store_const", const=False, help="higher is better")


def _guard_args(p):
    p.add_argument("remote", metavar="REMOTE", help="a remote's name (`nbversion remote list`)")


def _run_pre_receive(ws, a, ev):
    import sys
    from pathlib import Path
    from ..core.audit.receive import pre_receive
    from ..errors import UsageError

    if sys.stdin is None or sys.stdin.isatty():   # typed by hand, or a notebook: no push to read
        raise UsageError("`guard pre-receive` reads a push from git on stdin",
                         hint="`nbversion guard install REMOTE` installs the hook that runs it")
    # git runs the hook in the bare repository and says so in GIT_DIR
    return pre_receive(Path(os.environ.get("GIT_DIR", ".")), sys.stdin.read())


VERBS = [
    Verb("remote", "where history and data are shared", _none, None, subverbs=[
        Verb("add", "add a remote: a folder, ssh:// or s3:// (history + data under one name)", _json(_remote_add_args),
             lambda ws, a, ev: ws.remote_add(a.name, a.url, git_url=a.git_url, endpoint_url=a.endpoint_url,
                                             keyfile=a.keyfile, default=a.default, on_event=ev)),
        Verb("list", "remotes with their data and history URLs", _json(_none),
             _run_remote_list),
    ]),
    Verb("push", "send data (first), then the branch and tags, to a remote", _transfer_args,
         lambda ws, a, ev: ws.push(a.remote, all_versions=a.all_versions, registered=a.registered, on_event=ev)),
    Verb("pull", "fetch history and tags, merge diverged work, then the data of the checkout", _pull_args,
         lambda ws, a, ev: ws.pull(a.remote, all_versions=a.all_versions, registered=a.registered,
                                   abort=a.abort, on_event=ev)),
    Verb("clone", "git clone a remote and fetch the data the checkout needs", _clone_args, _run_clone,
         needs_workspace=False),
    Verb("verify", "check tags, manifests, pointers, cache hashes (and remote); --repair fixes", _verify_args,
         lambda ws, a, ev: ws.verify(repair=a.repair, remote=a.remote, check_remote_presence=a.check_remote,
                                     on_event=ev)),
    Verb("gc", "remove data outside the retention policy; never registered, staged or tagged versions", _gc_args,
         lambda ws, a, ev: ws.gc(keep_last=a.keep_last, older_than=a.older_than, dry_run=a.dry_run,
                                 remote=a.remote, on_event=ev)),
    Verb("guard", "make a remote refuse pushes that fail `audit verify` (a pre-receive hook)", _none, None, subverbs=[
        Verb("install", "put the guard's pre-receive hook on REMOTE (a folder or ssh:// remote; admins)",
             _json(_guard_args), lambda ws, a, ev: ws.guard_install(a.remote, on_event=ev)),
        Verb("remove", "take the guard's hook off REMOTE (admins)", _json(_guard_args),
             lambda ws, a, ev: ws.guard_remove(a.remote, on_event=ev)),
        Verb("status", "whether REMOTE verifies pushes, and with which nbversion", _json(_guard_args),
             lambda ws, a, ev: ws.guard_status(a.remote)),
        Verb("pre-receive", "run by the installed hook: verify git's `OLD NEW REF` lines on stdin", _json(_none),
             _run_pre_receive, needs_workspace=False),
    ]),
    Verb("backup", "one archive of history and the data that matters", _none, None, subverbs=[
        Verb("create", "write a backup (git bundle + needed DVC objects + report)", _json(_backup_create_args),
             _run_backup_create),
        Verb("restore", "rebuild a workspace from a backup", _json(_backup_restore_args), _run_backup_restore,
             needs_workspace=False),
    ]),
    Verb("exp", "experiments as branches", _none, None, subverbs=[
        Verb("new", "start experiment branch exp/NAME from here", _json(_exp_name_args),
             lambda ws, a, ev: ws.exp_new(a.name, on_event=ev)),
        Verb("list", "experiment branches with runs and versions", _json(_none), lambda ws, a, ev: ws.exp_list()),
        Verb("compare", "runs and registered versions of each branch side by side", _json(_exp_compare_args),
             lambda ws, a, ev: ws.exp_compare(metric=a.metric)),
        Verb("best", "the run or version with the best metric, on any branch", _json(_exp_best_args),
             lambda ws, a, ev: ws.exp_best(a.metric, lower_is_better=a.lower)),
        Verb("merge", "merge an experiment; .meta.json and the audit log resolved by rule", _json(_exp_name_args),
             lambda ws, a, ev: ws.exp_merge(a.name, on_event=ev)),
    ]),
]
