"""Issue 7: plain `YOLO(...).train(...)` against `nbversion train` (same data, seed, epochs).

    python -m benchmarks.bench_training                      # tiny, CPU (seconds)
    python -m benchmarks.bench_training --images 3000 --imgsz 320 --batch 32 --device 0   # GPU

Each side trains in its own fresh process. "overhead" compares wall time from the call to the
end of training (our run record, events and live chart included; the final DVC add + commit is
shown apart). "epoch update" is the delay from Ultralytics' epoch end to the live chart's new
image, the worst epoch of the run.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from ._util import bench_env, scratch

TINY = {"nbs": 4, "warmup_epochs": 0, "optimizer": "AdamW", "lr0": 0.003, "mosaic": 0, "plots": False,
        "seed": 0, "deterministic": True, "val": True}


def _plain(args, work: Path) -> dict:
    from nbversion.training import _yolo

    _yolo.prepare()
    from ultralytics import YOLO

    start = time.perf_counter()
    model = YOLO("yolov8n.yaml")
    model.train(data=str(work / "data.yaml"), epochs=args.epochs, imgsz=args.imgsz, batch=args.batch,
                device=args.device, project=str(work / "plain"), name="run", exist_ok=True,
                **({"amp": False, "workers": 0} if args.device == "cpu" else {}), **TINY)
    return {"train_s": time.perf_counter() - start}


def _ours(args, work: Path) -> dict:
    import nbversion as nbv
    from nbversion.training import _yolo

    _yolo.prepare()
    ws = nbv.open(work / "project")
    image_times, epoch_ends, trained_at = [], [], []

    def on_event(event):
        if event.stage == "epoch":
            epoch_ends.append(event.data["at"])
        elif event.stage == "train" and (event.data or {}).get("status") == "finishing":
            trained_at.append(time.perf_counter())

    start = time.perf_counter()
    run = ws.train("bench", "yolov8n.yaml", epochs=args.epochs, imgsz=args.imgsz, batch=args.batch,
                   device=args.device, extra=TINY, wait=False, on_event=on_event)
    chart = None
    if args.child == "widget":   # what a notebook shows, drawing live
        chart = run.widget(render=True, champion=None)
        chart.image.observe(lambda change: image_times.append(time.time()), "value")
    run.wait()
    total = time.perf_counter() - start
    trained = trained_at[0] - start
    result = {"train_s": trained, "commit_s": total - trained, "status": run.status}
    if chart is not None:
        chart.flush(30)
        result["epoch_update_s"] = max(min((t for t in image_times if t >= end), default=float("nan")) - end
                                       for end in epoch_ends)
    return result


def _child(args) -> None:
    work = Path(args.work)
    result = _plain(args, work) if args.child == "plain" else _ours(args, work)
    print("RESULT " + json.dumps(result))


def _prepare(work: Path, args) -> None:
    import nbversion as nbv
    from nbversion.demo import make_dataset

    source = make_dataset(work / "data", train=args.images, val=max(args.images // 5, 8), size=args.imgsz, seed=0)
    (work / "data.yaml").write_text((source / "data.yaml").read_text().replace("path: .", f"path: {source}"))
    ws = nbv.init(work / "project")
    ws.dataset_add("bench", source)


def _spawn(kind: str, work: Path, args) -> dict:
    cmd = [sys.executable, "-m", "benchmarks.bench_training", "--child", kind, "--work", str(work),
           "--images", str(args.images), "--imgsz", str(args.imgsz), "--batch", str(args.batch),
           "--epochs", str(args.epochs), "--device", args.device]
    env = dict(bench_env(), YOLO_CONFIG_DIR=str(work / "yolo"))
    proc = subprocess.run(cmd, cwd=Path(__file__).resolve().parents[1], env=env, capture_output=True, text=True)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    if proc.returncode or not lines:
        raise RuntimeError(f"{kind} failed:\n{proc.stderr[-3000:]}")
    return json.loads(lines[-1][len("RESULT "):])


def main(argv=None) -> list[dict]:
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=int(os.environ.get("BENCH_TRAIN_IMAGES", 32)))
    parser.add_argument("--imgsz", type=int, default=64)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--device", default=os.environ.get("BENCH_TRAIN_DEVICE", "cpu"))
    parser.add_argument("--child", choices=["plain", "ours", "widget"], default=None)
    parser.add_argument("--work", default=None)
    args = parser.parse_args(argv)
    if args.child:
        _child(args)
        return []
    with scratch("train") as work:
        _prepare(work, args)
        plain = _spawn("plain", work, args)
        ours = _spawn("ours", work, args)
        widget = _spawn("widget", work, args)
    scale = f"{args.images} imgs, {args.imgsz}px, {args.epochs} epochs, {args.device}"
    overhead = lambda side: f"{(side['train_s'] - plain['train_s']) / plain['train_s'] * 100:+.1f} %"
    return [
        {"benchmark": f"train, waited as from the CLI ({scale})", "nbversion": f"{ours['train_s']:.2f} s",
         "baseline": f"{plain['train_s']:.2f} s", "ratio": overhead(ours), "goal": "<= +2 %"},
        {"benchmark": f"train with the live chart drawing ({scale})", "nbversion": f"{widget['train_s']:.2f} s",
         "baseline": f"{plain['train_s']:.2f} s", "ratio": overhead(widget), "goal": "<= +2 %"},
        {"benchmark": "run end: DVC add weights + audit + commit", "nbversion": f"{ours['commit_s']:.2f} s",
         "baseline": "", "ratio": "", "goal": "(after training)"},
        {"benchmark": "epoch end -> live chart image updated (worst epoch)",
         "nbversion": f"{widget['epoch_update_s'] * 1000:.0f} ms", "baseline": "", "ratio": "", "goal": "<= 1000 ms"},
    ]


if __name__ == "__main__":
    rows = main(sys.argv[1:])
    if rows:
        from ._util import machine
        from .report import print_rows
        print(machine())
        print_rows(rows)
