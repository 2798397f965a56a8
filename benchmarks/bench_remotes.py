"""Issue 9: push / pull against `dvc push` / `dvc pull` on the same remote, and `verify` of 100 versions.

    python -m benchmarks.bench_remotes [--size-mb 1024] [--files 100] [--small 5000] [--versions 100] [--s3]

The folder remote is always measured, with a big dataset (`--size-mb` in `--files` files) and with
`--small` files of 2 KB (issue 16: 100,000 in `make bench-large`; 0 skips them); `--s3` adds an S3
server on loopback (moto, in memory, so keep the size modest: it is capped at --s3-max-mb).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

from ._util import BIN, bench_env, drop_caches, ours_repo, row, run, scratch

NBV = str(BIN / "nbversion")
DVC = str(BIN / "dvc")


SMALL_FILE = 2048


def _write_dataset(folder: Path, megabytes: int, files: int, per_file: int = 0) -> None:
    folder.mkdir(parents=True)
    per_file = per_file or max(1, megabytes * (1 << 20) // files)
    for i in range(files):
        (folder / f"{i:06d}.bin").write_bytes(os.urandom(per_file))


def _workspace_with_data(path: Path, megabytes: int, files: int, per_file: int = 0) -> Path:
    ours_repo(path)
    _write_dataset(path / "datasets" / "big", megabytes, files, per_file)
    subprocess.run([NBV, "commit", "-m", "big dataset"], cwd=path, env=bench_env(), check=True, capture_output=True)
    return path


def _clone_for(tmp: Path, name: str, ours: bool) -> Path:
    target = tmp / name
    subprocess.run(["git", "clone", "-q", str(tmp / "remote" / "git"), str(target)], check=True, env=bench_env())
    if ours:   # a plain git clone calls the history remote `origin`; nbversion uses one name for both
        subprocess.run(["git", "remote", "rename", "origin", "team"], cwd=target, check=True)
    return target


def bench_folder(megabytes: int, files: int, rounds: int = 2, per_file: int = 0) -> list[dict]:
    """Best of `rounds`, alternating which tool goes first: on a shared disk the one that runs
    right after a 1 GB write pays for its writeback, whichever it is. `per_file`: bytes per
    file (the small-files rows) instead of `megabytes` split in `files`."""
    pushes, pulls = {"ours": [], "raw": []}, {"ours": [], "raw": []}
    with scratch("remotes") as tmp:
        ws = _workspace_with_data(tmp / "ws", megabytes, files, per_file)
        run([NBV, "remote", "add", "team", str(tmp / "remote")], ws)
        for r in range(rounds):
            run([DVC, "remote", "add", "-f", f"raw{r}", str(tmp / f"raw-remote{r}")], ws)
            run([DVC, "remote", "add", "-f", f"ours{r}", str(tmp / f"ours-remote{r}")], ws)
            subprocess.run(["git", "remote", "add", f"ours{r}", str(tmp / "remote" / "git")], cwd=ws, check=True)
        for r in range(rounds):
            order = ["raw", "ours"] if r % 2 == 0 else ["ours", "raw"]
            for who in order:
                drop_caches()
                cmd = [DVC, "push", "-q", "-r", f"raw{r}"] if who == "raw" else [NBV, "push", f"ours{r}"]
                pushes[who].append(run(cmd, ws))
        run([NBV, "push"], ws)   # the shared remote the clones pull from
        for r in range(rounds):
            order = ["raw", "ours"] if r % 2 == 0 else ["ours", "raw"]
            for who in order:
                clone = _clone_for(tmp, f"{who}{r}", who == "ours")
                drop_caches()
                pulls[who].append(run([DVC, "pull", "-q"] if who == "raw" else [NBV, "pull"], clone))
    size = f"{files} files of {per_file // 1024} KB" if per_file else f"{megabytes} MB in {files} files"
    goal = "<= 1.0x" if per_file else "<= 1.05x"
    label = f"{size}, folder remote, best of {rounds}"
    return [row(f"push {label}", min(pushes["ours"]), min(pushes["raw"]), goal),
            row(f"pull {label}", min(pulls["ours"]), min(pulls["raw"]), goal)]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def bench_s3(megabytes: int, files: int) -> list[dict]:
    import logging

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)   # one line per request otherwise
    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    creds = {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench", "AWS_DEFAULT_REGION": "us-east-1"}
    os.environ.update(creds)
    endpoint = f"http://127.0.0.1:{port}"
    try:
        import boto3
        boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket="bench")
        with scratch("s3") as tmp:
            ws = _workspace_with_data(tmp / "ws", megabytes, files)
            subprocess.run(["git", "init", "-q", "--bare", str(tmp / "history.git")], check=True)
            run([NBV, "remote", "add", "s3", "s3://bench/ours", "--git", str(tmp / "history.git"),
                 "--endpoint-url", endpoint], ws)
            run([DVC, "remote", "add", "raw", "s3://bench/raw"], ws)
            run([DVC, "remote", "modify", "raw", "endpointurl", endpoint], ws)
            t_raw_push = run([DVC, "push", "-q", "-r", "raw"], ws)
            t_push = run([NBV, "push"], ws)
            shutil.rmtree(ws / ".dvc" / "cache")
            t_raw_pull = run([DVC, "pull", "-q", "-r", "raw", "--force"], ws)
            shutil.rmtree(ws / ".dvc" / "cache")
            t_pull = run([NBV, "pull"], ws)
    finally:
        server.stop()
    label = f"{megabytes} MB in {files} files, S3 (moto on loopback)"
    return [row(f"push {label}", t_push, t_raw_push, "<= 1.1x"),
            row(f"pull {label}", t_pull, t_raw_pull, "<= 1.1x")]


def _fake_versions(root: Path, versions: int) -> None:
    """`versions` registered versions in the documented format, written directly (no training): manifest
    keys are relative to the version folder (`files/best.pt`), as `verify` reads them."""
    env = bench_env()
    cache = root / ".dvc" / "cache" / "files" / "md5"
    for v in range(versions):
        weights = os.urandom(64 * 1024)
        md5 = hashlib.md5(weights).hexdigest()
        (cache / md5[:2]).mkdir(parents=True, exist_ok=True)
        (cache / md5[:2] / md5[2:]).write_bytes(weights)
        listing = json.dumps([{"md5": md5, "relpath": "best.pt"}], sort_keys=True).encode()
        dir_md5 = hashlib.md5(listing).hexdigest()
        (cache / dir_md5[:2]).mkdir(parents=True, exist_ok=True)
        (cache / dir_md5[:2] / (dir_md5[2:] + ".dir")).write_bytes(listing)
        base = root / "registry" / "yolo" / f"v1.{v}.0"
        base.mkdir(parents=True)
        (base / "files.dvc").write_text(f"outs:\n- md5: {dir_md5}.dir\n  size: {len(weights)}\n  nfiles: 1\n"
                                        f"  hash: md5\n  path: files\n")
        (base / "manifest.json").write_text(json.dumps({"name": "yolo", "version": f"1.{v}.0",
                                                        "files": {"files/best.pt": {"md5": md5, "size": len(weights)}}}))
        subprocess.run(["git", "add", "-A"], cwd=root, env=env, check=True)
        subprocess.run(["git", "commit", "-qm", f"register v1.{v}.0"], cwd=root, env=env, check=True)
        subprocess.run(["git", "tag", "-a", f"yolo@v1.{v}.0", "-m", f"Registering artifact yolo version v1.{v}.0"],
                       cwd=root, env=env, check=True)


def bench_verify(versions: int) -> list[dict]:
    with scratch("verify") as tmp:
        root = ours_repo(tmp / "ws")
        _fake_versions(root, versions)
        drop_caches()
        t_cli = run([NBV, "verify"], root)
        code = ("import time, nbversion as nbv; ws = nbv.open('.'); t = time.perf_counter(); "
                "r = ws.verify(); print(time.perf_counter() - t, len(r.problems))")
        out = subprocess.run([str(BIN / "python"), "-c", code], cwd=root, env=bench_env(),
                             capture_output=True, text=True, check=True).stdout.split()
    if out[1] != "0":
        raise RuntimeError(f"verify found {out[1]} problem(s) in the generated workspace")
    return [row(f"verify, {versions} registered versions (API, no remote)", float(out[0]), None, "< 5 s"),
            row(f"verify, {versions} registered versions (CLI process)", t_cli, None, "< 5 s")]


def main(argv=None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size-mb", type=int, default=1024, help="dataset size for push/pull")
    parser.add_argument("--files", type=int, default=100, help="number of files the dataset is split into")
    parser.add_argument("--small", type=int, default=5000, help="small files (2 KB) for push/pull; 0: none")
    parser.add_argument("--versions", type=int, default=100, help="registered versions for verify")
    parser.add_argument("--rounds", type=int, default=2, help="push/pull rounds (best is reported)")
    parser.add_argument("--s3", action="store_true", help="also measure an S3 server on loopback (moto)")
    parser.add_argument("--s3-max-mb", type=int, default=200, help="cap of the S3 dataset size (moto is in memory)")
    args = parser.parse_args(argv)
    rows = bench_folder(args.size_mb, args.files, args.rounds)
    if args.small:
        rows += bench_folder(0, args.small, args.rounds, per_file=SMALL_FILE)
    if args.s3:
        rows += bench_s3(min(args.size_mb, args.s3_max_mb), args.files)
    rows += bench_verify(args.versions)
    return rows


if __name__ == "__main__":
    from .report import print_rows

    print_rows(main())
