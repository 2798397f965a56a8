"""Workspace verbs: init, status, commit, log, diff, checkout, whoami, user."""
from __future__ import annotations

from . import Verb, count


def _none(parser):
    pass


def _init_args(p):
    p.add_argument("path", nargs="?", default=None, help="folder to initialise (default: here)")


def _run_init(ws, args, on_event):
    from ..core.repo.init import init
    return init(args.path, on_event=on_event)


def _commit_args(p):
    p.add_argument("-m", "--message", required=True, help="what changed, for the history")
    p.add_argument("paths", nargs="*", metavar="PATH", help="only these paths (default: everything)")


def _log_args(p):
    p.add_argument("-n", type=count, default=None, metavar="N", help="show the last N commits")
    p.add_argument("paths", nargs="*", metavar="PATH", help="only commits touching these paths")


def _diff_args(p):
    p.add_argument("rev_a", nargs="?", default=None, metavar="REV_A", help="default: HEAD")
    p.add_argument("rev_b", nargs="?", default=None, metavar="REV_B", help="default: the working tree")


def _checkout_args(p):
    p.add_argument("rev", metavar="REV", help="a commit, branch, tag or HEAD~N")
    p.add_argument("paths", nargs="*", metavar="PATH", help="restore only these paths")
    p.add_argument("-f", "--force", action="store_true", help="discard uncommitted changes")


def _user_add_args(p):
    p.add_argument("user_id", metavar="ID", help="an identity (e-mail or JupyterHub name)")
    p.add_argument("--role", required=True, choices=["admin", "contributor", "viewer"])
    p.add_argument("--key", default=None, metavar="PUBKEY_OR_PATH",
                   help="their SSH public key (file or text), for signed mode")


def _unprotect_args(p):
    p.add_argument("paths", nargs="+", metavar="PATH",
                   help="files or folders to give a private writable copy (core.link = hardlink)")


VERBS = [
    Verb("init", "make this folder (or an existing git repo) an nbversion workspace",
         _init_args, _run_init, needs_workspace=False),
    Verb("status", "new / modified / deleted paths, git and DVC alike",
         _none, lambda ws, a, ev: ws.status(on_event=ev)),
    Verb("commit", "record changes: data to DVC, the rest to git, one commit",
         _commit_args, lambda ws, a, ev: ws.commit(a.message, a.paths, on_event=ev)),
    Verb("log", "history with data changes and the notebook cell of each commit",
         _log_args, lambda ws, a, ev: ws.log(a.n, paths=a.paths)),
    Verb("diff", "files added / removed / modified between two versions, data included",
         _diff_args, lambda ws, a, ev: ws.diff(a.rev_a, a.rev_b)),
    Verb("checkout", "restore code and data of a version (all, or only PATHs)",
         _checkout_args, lambda ws, a, ev: ws.checkout(a.rev, a.paths, force=a.force, on_event=ev)),
    Verb("unprotect", "make read-only data files (hard links into the cache) private writable copies",
         _unprotect_args, lambda ws, a, ev: ws.unprotect(a.paths)),
    Verb("whoami", "your identity and role in this workspace", _none, lambda ws, a, ev: ws.whoami()),
    Verb("security", "signed mode: require SSH-signed changes", _none, None, subverbs=[
        Verb("require-signing", "require every change to be signed by a listed key (admins only)", _none,
             lambda ws, a, ev: ws.require_signing()),
        Verb("status", "whether signing is required, and whose keys are listed", _none,
             lambda ws, a, ev: ws.security_status()),
    ]),
    Verb("user", "manage who may do what", _none, None, subverbs=[
        Verb("add", "give ID a role (admins only)", _user_add_args,
             lambda ws, a, ev: ws.user_add(a.user_id, a.role, a.key)),
        Verb("list", "users and their roles", _none, lambda ws, a, ev: ws.user_list()),
    ]),
]
