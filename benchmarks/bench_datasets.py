"""Issue 5: `dataset add` of a YOLO dataset against `dvc add` of the same folder, and `dataset diff`.

    python -m benchmarks.bench_datasets [--images 10000]

Baseline: the same folder already inside a plain git + DVC repo, `dvc add` + `git add` +
`git commit`. Ours: `nbversion dataset add NAME SRC` (finds the layout, validates every label
and decodes every image, copies, `dvc add`, metadata, audit, commit).
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys

from ._util import BIN, bench_env, drop_caches, ours_repo, raw_repo, row, run, scratch

NBV = str(BIN / "nbversion")
DVC = str(BIN / "dvc")


def _make(dest, images: int):
    from nbversion.demo import make_dataset

    val = images // 5
    return make_dataset(dest, train=images - val, val=val, size=64)


def _change_one_percent(src, images: int) -> None:
    """1% of the images: a third added, a third deleted, a third relabelled."""
    import numpy as np

    from nbversion.demo import edit_labels, make_image, write_label

    step = max(1, images // 300)
    edit_labels(src, step)          # first: the new images below would sort first
    rng = np.random.default_rng(7)
    for i in range(step):
        image, lines = make_image(rng, 64)
        image.save(src / "images" / "train" / f"extra_{i:05d}.png")
        write_label(src / "labels" / "train" / f"extra_{i:05d}.txt", lines)
    for path in sorted((src / "images" / "val").glob("*.png"))[:step]:
        path.unlink()
        (src / "labels" / "val" / f"{path.stem}.txt").unlink()


def _time_add(src, tmp, attempt: int) -> tuple[float, float]:
    """One `dvc add` + commit of the folder in a raw repo, one `dataset add` in a workspace."""
    raw, ours = raw_repo(tmp / f"raw{attempt}"), ours_repo(tmp / f"ours{attempt}")
    subprocess.run(["cp", "-a", str(src), str(raw / "shapes")], check=True)
    drop_caches()
    t_raw = run([DVC, "add", "-q", "shapes"], raw) + run(["git", "add", "-A"], raw) \
        + run(["git", "commit", "-qm", "shapes"], raw)
    drop_caches()
    t_ours = run([NBV, "dataset", "add", "shapes", str(src)], ours)
    return t_ours, t_raw


def bench_add(images: int, runs: int) -> list[dict]:
    with scratch("datasets") as tmp:
        src = _make(tmp / "src", images)
        # best of `runs` for both: a shared machine adds noise to single runs
        times = [_time_add(src, tmp, attempt) for attempt in range(runs)]
        t_ours, t_raw = min(t for t, _ in times), min(r for _, r in times)
        ours = tmp / "ours0"
        add_row = row(f"dataset add, {images} images (validated) vs dvc add + git commit, best of {runs}",
                      t_ours, t_raw, "<= 1.2x")
        _change_one_percent(src, images)
        run([NBV, "dataset", "add", "shapes", str(src)], ours)
        code = ("import sys, time, nbversion as nbv; ws = nbv.open(sys.argv[1]); "
                "t = time.perf_counter(); d = ws.dataset_diff('shapes', '~1', '~0'); "
                "print(time.perf_counter() - t, len(d.images_added), len(d.labels_changed))")
        out = subprocess.run([sys.executable, "-c", code, str(ours)], env=bench_env(), check=True,
                             capture_output=True, text=True).stdout.split()
        t_cli = run([NBV, "dataset", "diff", "shapes", "~1", "~0"], ours)
        t_dvc_diff = run([DVC, "diff", "HEAD~1", "HEAD"], ours)
    diff_row = row(f"dataset diff, 1% of {images} images changed (API; {out[1]} added, {out[2]} relabelled)",
                   float(out[0]), t_dvc_diff, "< 1 s")
    cli_row = row("dataset diff, same (CLI process) vs `dvc diff`", t_cli, t_dvc_diff, "")
    return [add_row, diff_row, cli_row]


def main(argv=None) -> list[dict]:
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=int(os.environ.get("BENCH_IMAGES", 10000)))
    parser.add_argument("--runs", type=int, default=int(os.environ.get("BENCH_RUNS", 2)))
    args = parser.parse_args(argv)
    return bench_add(args.images, args.runs)


if __name__ == "__main__":
    from ._util import machine
    from .report import print_rows
    print(machine())
    print_rows(main())
