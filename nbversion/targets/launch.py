"""`train --on NAME`: check what must travel, then start the training detached on the target.

Travels: the workspace at the current commit (git, through the team remote `push` uses), only
the dataset version the run needs (DVC objects, through the same remote), and nothing else. The
host's nbversion must have the same major.minor version. Every check comes before anything is
written, here or there.
"""
from __future__ import annotations

import base64
import json
import logging
import os
import shlex
from pathlib import Path
from typing import Optional

from ..core.artifacts.dataset_meta import DATASETS_DIR, pointer_at
from ..core.backends import _git, _git_sync
from ..core.repo import identity, names, refs
from ..core.repo.cell import current_cell
from ..core.storage import remotes as storage_remotes
from ..errors import NbversionError, NotFound, UncommittedChanges, UsageError
from ..extras import require
from ..training import presets, runs
from . import objects, settings, urls
from .ssh import Host

logger = logging.getLogger(__name__)

LOG_DIR = ".nbversion/tmp"     # the host's log of `target exec` (git-ignored there too)


def runnable(root, name: str):
    target = settings.load(root, name)
    if target.url.kind not in urls.RUNNABLE:
        raise UsageError(f"target {name} is a {target.url.kind}:// target: training there is not supported yet "
                         f"(this version runs {' and '.join(k + '://' for k in urls.RUNNABLE)} targets)",
                         hint="train on an ssh:// target (`nbversion target add NAME ssh://host/path`) or here")
    return target


def workdir(root, target) -> str:
    """The host's clone of this workspace: PATH/<folder name>-<first commit>, the same for every clone."""
    first = _git._run(root, "rev-list", "--max-parents=0", "HEAD").split()[-1][:12]
    safe = "".join(c if c.isalnum() or c in "-_." else "-" for c in Path(root).name)[:40] or "workspace"
    return f"{target.url.path}/{safe}-{first}"


def team_remote(root) -> tuple[str, str, str]:
    """(DVC remote name, git remote name, git URL) `nbversion push` uses."""
    name, has_data = storage_remotes._resolve_remote(root, None)
    git_remote = storage_remotes._history_remote(root, name, False)
    if not has_data or not git_remote:
        raise NotFound(f"remote {name!r} does not hold both data and history: a target fetches both from it",
                       hint="add a team remote with `nbversion remote add team URL` (a folder or ssh://) and push")
    return name, git_remote, _git_sync.remotes(root)[git_remote]


def dataset_lineage(root, ref: str) -> dict:
    """{"name", "rev", "md5", "commit"} of --data, refused when that version is not committed."""
    name, rev = refs.split_ref(ref)
    names.check_readable_name(name, "dataset")
    commit = refs.resolve(root, DATASETS_DIR, name, rev)
    at_commit = pointer_at(root, DATASETS_DIR, name, commit)
    if not rev:
        try:
            working = pointer_at(root, DATASETS_DIR, name, None)
        except (NotFound, OSError):
            working = None
        from ..core.backends import uncommitted   # edited files under an unchanged pointer count too

        if working is None or working.md5 != at_commit.md5 or not uncommitted.matches_pointer(root, working):
            raise UncommittedChanges(f"--data {ref}: the working copy of dataset {name} is not committed, and a "
                                     "target trains on committed versions only",
                                     hint="commit it (`nbversion commit`), push it (`nbversion push`), then train again")
    return {"name": name, "rev": rev or "latest", "md5": at_commit.md5, "commit": commit}


def check_pushed(root, remote: str, git_remote: str, lineage: dict, ref: str) -> str:
    head = _git.head(root)
    if head is None or not _git_sync.reachable_from_remote(root, git_remote, head):
        raise NbversionError(f"the current commit {(head or '')[:8]} is not pushed to {git_remote}: the target "
                             "clones the workspace from there", hint="run `nbversion push`, then train again")
    missing = objects.missing_on_remote(root, remote, {lineage["md5"]})
    if missing:
        raise NbversionError(f"--data {ref}: {len(missing)} object(s) of that dataset version are not on the DVC "
                             f"remote {remote!r}", hint="run `nbversion push` (it sends the data first), then train again")
    return head


def local_version() -> str:
    """This install's version (what `nbversion --version` prints: pyproject's), read without
    importing the package's __init__, which imports the presentation layers."""
    from importlib.metadata import version
    return version("nbversion")


def check_host_version(host: Host) -> str:
    __version__ = local_version()
    proc = host.run("nbversion --version", check=False, what="nbversion --version")
    if proc.returncode == 255:
        host.run("true", what="connecting")   # raises the connection error with its hint
    theirs = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else ""
    if proc.returncode != 0 or not theirs:
        raise NbversionError(f"target {host.target.name}: nbversion is not installed on {host.url.login} "
                             f"(`nbversion --version` there: {(proc.stderr.strip() or 'no output')[-200:]})",
                             hint=f"install nbversion {__version__} with its yolo extra on the host "
                                  "(`pip install 'nbversion[yolo]'`), on the PATH of its SSH sessions")
    if theirs.split(".")[:2] != __version__.split(".")[:2]:
        raise NbversionError(f"target {host.target.name}: nbversion {theirs} on {host.url.login} does not match "
                             f"this workspace's {__version__} (same major.minor needed)",
                             hint=f"install nbversion {'.'.join(__version__.split('.')[:2])}.x on the host")
    return theirs


def check_model(model: str) -> dict:
    if model.endswith((".yaml", ".yml")):
        return {"kind": "config", "ref": model}
    if model.endswith(".pt") and "/" not in model and "@" not in model and not Path(model).exists():
        return {"kind": "download", "ref": model}
    raise UsageError(f"--model {model}: a target trains from a yolov8n.yaml config or a published name "
                     "(yolov8n.pt) in this version", hint="train here for a weights file or a registry model")


def start_script(workdir_path: str, git_url: str, commit: str, run_id: str, spec: dict, fresh: bool,
                 detach=None) -> str:
    """The host's shell script: prepare the clone, then start `target exec` (`detach(command, log)` prints
    an id; by default a detached process's pid, Slurm's batch job id for a slurm:// target)."""
    q = shlex.quote
    encoded = base64.b64encode(json.dumps(spec).encode()).decode()
    log = f"{LOG_DIR}/target-{run_id}.log"
    prepare = (f"mkdir -p {q(workdir_path)} && cd {q(workdir_path)} && "
               f"{{ [ -d .git ] || git init -q . ; }} && git fetch -q {q(git_url)} '+refs/heads/*:refs/remotes/team/*' && "
               f"git checkout -q -f --detach {q(commit)} && ") if fresh else f"cd {q(workdir_path)} && "
    stale = f"runs/{run_id}/target.json runs/{run_id}/STOP"   # an earlier attempt's end must not be read as this one's
    command = f"nbversion target exec {q(run_id)} {q(encoded)}"
    # only the training goes to the background, its output away from ssh's: ssh returns at once
    detach = detach or (lambda command, log: f"setsid nohup {command} > {q(log)} 2>&1 < /dev/null &\necho $!")
    return f"set -e; {prepare}mkdir -p {LOG_DIR} && rm -f {stale}\n" + detach(command, log)


def start_on(host, where: str, git_url: str, commit: str, run_id: str, spec: dict, fresh: bool) -> dict:
    """Start the training on the host; returns what the run record keeps of it (the pid, or Slurm's job)."""
    kind, what = host.url.kind, "starting the training" if fresh else "resuming the training"
    if kind == "slurm":   # sbatch instead of a detached process
        from . import slurm
        out = host.run(start_script(where, git_url, commit, run_id, spec, fresh,
                                    slurm.detach(host.url.options, where, run_id)), what=what, timeout=900)
        return {"status": "queued", "target_job": out.stdout.strip().splitlines()[-1], "target_reason": None}
    out = host.run(start_script(where, git_url, commit, run_id, spec, fresh), what=what, timeout=900)
    return {"status": "running", "target_pid": int(out.stdout.strip().splitlines()[-1])}


def train_on(ws, on: str, data: str, model: str = "yolov8n.yaml", epochs: Optional[int] = None,
             imgsz: Optional[int] = None, batch: Optional[int] = None, device: str = "auto",
             name: Optional[str] = None, extra: Optional[dict] = None, wait: bool = False, on_event=None,
             callbacks: Optional[dict] = None, preset: Optional[str] = None):
    """`train(..., on=NAME)`: the same training on target NAME; the notebook commits its outcome."""
    from ..training import _yolo
    from ..training.runner import _new_run_folder, check_extra
    from . import follow

    if callbacks:
        raise UsageError("callbacks run in this process; a target trains in another one",
                         hint="leave callbacks out with on=NAME")
    target = runnable(ws.root, on)
    require("yolo", "train")
    identity.require(ws.root, "contributor", "train")
    named, extra, chosen = presets.apply(ws.root, preset, {"epochs": epochs, "imgsz": imgsz, "batch": batch},
                                         dict(extra or {}))
    extra = check_extra(extra)
    base_model = check_model(model)
    lineage = dataset_lineage(ws.root, data)
    remote, git_remote, git_url = team_remote(ws.root)
    commit = check_pushed(ws.root, remote, git_remote, lineage, data)
    ray = target.url.kind == "ray"   # the Ray Jobs API (ray_launch.py); otherwise SSH
    if ray:
        from . import ray_launch
    host = None if ray else Host(target)
    host_version = ray_launch.check_version(target) if ray else check_host_version(host)
    if target.url.kind == "slurm":
        from .slurm import check_cluster
        check_cluster(host)
    params = {**named, **extra}
    folder = _new_run_folder(ws.root, name, model)
    run_id = folder.name
    cell = current_cell.get()
    record = {
        "id": run_id, "status": "queued", "device": device, "target": on, "preset": chosen.lineage() if chosen else None,
        "params": {"data": data, "model": model, **({"preset": chosen.name} if chosen else {}), **params},
        "ultralytics_version": _yolo.version(), "model": model, "base_model": base_model,
        "epochs": [], "best_epoch": None, "metrics": {}, "dataset": lineage, "commit": commit,
        "cell": cell.to_dict() if cell else None, "started_at": runs.now(), "ended_at": None, "error": None,
        "pid": os.getpid(), "host": os.uname().nodename,
        "weights": {"best": f"runs/{run_id}/weights/best.pt", "last": f"runs/{run_id}/weights/last.pt"}}
    args = {"epochs": named["epochs"], "imgsz": named["imgsz"], "batch": named["batch"], "device": device, **extra}
    spec = {"record": record, "remote": remote, "dataset_md5": lineage["md5"], "weights": model, "model": model,
            "args": args}
    where = ray_launch.workdir(ws.root, target) if ray else workdir(ws.root, target)
    folder.mkdir(parents=True)
    (folder / ".gitignore").write_text("/data\n")
    runs.write(ws.root, {**record, "target_host": {"login": target.url.login, "workdir": where,
                                                    "nbversion": host_version}})
    try:
        if ray:
            started = {"status": "running",
                       "target_jobs": [ray_launch.start(target, run_id, where, git_url, commit, spec, [])]}
        else:
            started = start_on(host, where, git_url, commit, run_id, spec, fresh=True)
    except BaseException:
        import shutil
        shutil.rmtree(folder, ignore_errors=True)
        raise
    runs.update(ws.root, run_id, **started)
    return follow.start(ws, run_id, wait, on_event)


def resume_on(ws, run_id: str, record: dict, wait: bool = False, on_event=None):
    """`runs resume RUN` of a run trained on a target: resumed there, from the host's checkpoint."""
    from ..training.runner import RESUMABLE
    from . import follow

    status = runs.effective_status(record)
    if status in runs.LIVE or status == "commit failed":
        return follow.start(ws, run_id, wait, on_event)   # reattach: finishes (or retries) the commit
    if status not in RESUMABLE:
        raise UsageError(f"run {run_id} is {status}; only a stopped or failed run can be resumed",
                         hint="start a new run with `nbversion train --on TARGET`")
    target = runnable(ws.root, record["target"])
    remote, _, _ = team_remote(ws.root)
    if target.url.kind == "ray":   # resubmitted as a new job on the same cluster (ray_launch.py)
        from .ray_launch import resume
        return resume(ws, target, run_id, record, remote, wait, on_event)
    host = Host(target)
    check_host_version(host)
    where = (record.get("target_host") or {}).get("workdir") or workdir(ws.root, target)
    found = host.run(f"test -f {shlex.quote(where)}/runs/{run_id}/weights/resume.pt -o "
                     f"-f {shlex.quote(where)}/runs/{run_id}/weights/last.pt", check=False)
    if found.returncode != 0:
        raise NotFound(f"run {run_id}: no checkpoint left on target {record['target']} ({where}/runs/{run_id}/weights)",
                       hint="start a new run with `nbversion train --on TARGET`")
    device = record.get("device") or "cpu"
    spec = {"remote": remote, "resume": True, "model": record["model"], "dataset_md5": record["dataset"]["md5"],
            "args": {"device": device, **({"workers": 0, "amp": False} if device == "cpu" else {})}}
    (runs.run_dir(ws.root, run_id) / runs.STOP_FILE).unlink(missing_ok=True)
    started = start_on(host, where, "", "", run_id, spec, fresh=False)
    runs.update(ws.root, run_id, error=None, ended_at=None, pid=os.getpid(), host=os.uname().nodename,
                resumed_at=runs.now(), **started)
    return follow.start(ws, run_id, wait, on_event)
