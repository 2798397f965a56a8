"""Issue 17: `nbversion export` against plain `YOLO(pt).export(...)`, and ONNX Runtime against
PyTorch inference on the CPU.

    python -m benchmarks.bench_export                    # tiny model, 320 px, CPU (a minute)
    python -m benchmarks.bench_export --imgsz 640 --images 32

One fresh process trains a tiny model (1 epoch of the generated dataset) with `nbversion train`,
then: the export time of each format both ways (ours includes the copy to a temp folder and the
`model add` commit; the box check is timed apart), and the inference time per image of the .pt,
the ONNX and the TorchScript file on the same validation images at the same size, each after a
warm-up image, taking turns image by image, 3 rounds (Ultralytics' pre-process + inference +
post-process, the median).
Export times are the best of 2 in the process (the first call imports DVC, onnx, ...).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from ._util import bench_env, scratch

FORMATS = ("onnx", "torchscript")
REPEATS = 2
TINY = {"nbs": 4, "warmup_epochs": 0, "optimizer": "AdamW", "lr0": 0.003, "mosaic": 0, "plots": False, "seed": 0}


def _best_of(result: dict, key: str, seconds: float) -> None:
    result[key] = min(result.get(key, seconds), seconds)


def _inference_ms(files: dict, images: list, imgsz: int, rounds: int = 3) -> dict:
    """Median ms per image of each model, the models taking turns image by image (a busy machine
    slows them alike), each warmed up first."""
    import statistics

    from ultralytics import YOLO

    models = {label: YOLO(str(path), task="detect") for label, path in files.items()}
    kwargs = {"imgsz": imgsz, "conf": 0.25, "device": "cpu", "verbose": False}
    for model in models.values():
        model.predict(str(images[0]), **kwargs)
    times = {label: [] for label in models}
    for _ in range(rounds):
        for image in images:
            for label, model in models.items():
                speed = model.predict(str(image), **kwargs)[0].speed
                times[label].append(sum(v for v in speed.values() if v is not None))
    return {label: statistics.median(values) for label, values in times.items()}


def _child(args) -> None:
    import nbversion as nbv
    from nbversion.demo import make_dataset
    from nbversion.training import _yolo

    work = Path(args.work)
    _yolo.prepare()
    from ultralytics import YOLO

    source = make_dataset(work / "data", train=args.images, val=args.images, size=args.imgsz, seed=0)
    ws = nbv.init(work / "project")
    ws.dataset_add("bench", source)
    run = ws.train("bench", "yolov8n.yaml", epochs=1, imgsz=args.imgsz, batch=8, device="cpu", extra=TINY, wait=True)
    best = ws.root / run.record["weights"]["best"]
    result = {}
    for fmt in FORMATS:
        for attempt in range(REPEATS):   # the first call of a process imports DVC, onnx...: best of REPEATS
            plain = work / "plain" / f"{fmt}-{attempt}" / best.name
            plain.parent.mkdir(parents=True)
            shutil.copyfile(best, plain)
            start = time.perf_counter()
            written = YOLO(str(plain)).export(format=fmt, imgsz=args.imgsz, device="cpu", verbose=False)
            _best_of(result, f"{fmt}_plain_s", time.perf_counter() - start)
            start = time.perf_counter()
            ws.export(run.run_id, format=fmt, imgsz=args.imgsz, check=False, name=f"bench-{fmt}-{attempt}")
            _best_of(result, f"{fmt}_ours_s", time.perf_counter() - start)
            start = time.perf_counter()
            ws.export(run.run_id, format=fmt, imgsz=args.imgsz, name=f"bench-{fmt}-checked-{attempt}")
            _best_of(result, f"{fmt}_checked_s", time.perf_counter() - start)
        result[f"{fmt}_file"] = str(written)
    images = sorted((source / "images" / "val").iterdir())
    files = {"pt": best, "onnx": result["onnx_file"], "torchscript": result["torchscript_file"]}
    result.update({f"{label}_ms": ms for label, ms in _inference_ms(files, images, args.imgsz).items()})
    result["images"] = len(images)
    print("RESULT " + json.dumps(result))


def main(argv=None) -> list[dict]:
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=int(os.environ.get("BENCH_EXPORT_IMAGES", 16)))
    parser.add_argument("--imgsz", type=int, default=320)
    parser.add_argument("--child", action="store_true")
    parser.add_argument("--work", default=None)
    args = parser.parse_args(argv)
    if args.child:
        _child(args)
        return []
    with scratch("export") as work:
        cmd = [sys.executable, "-m", "benchmarks.bench_export", "--child", "--work", str(work),
               "--images", str(args.images), "--imgsz", str(args.imgsz)]
        env = dict(bench_env(), YOLO_CONFIG_DIR=str(work / "yolo"), YOLO_OFFLINE="true", YOLO_AUTOINSTALL="false")
        proc = subprocess.run(cmd, cwd=Path(__file__).resolve().parents[1], env=env, capture_output=True, text=True)
        lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
        if proc.returncode or not lines:
            raise RuntimeError(f"bench_export failed:\n{proc.stderr[-3000:]}")
        r = json.loads(lines[-1][len("RESULT "):])
    scale = f"yolov8n, {args.imgsz} px, CPU"
    rows = []
    for fmt in FORMATS:
        rows.append({"benchmark": f"export {fmt} ({scale}), into a model version", "nbversion": f"{r[fmt + '_ours_s']:.2f} s",
                     "baseline": f"{r[fmt + '_plain_s']:.2f} s", "ratio": f"{r[fmt + '_ours_s'] / r[fmt + '_plain_s']:.2f}x",
                     "goal": "(YOLO(pt).export + model add)"})
        rows.append({"benchmark": f"export {fmt} with the box check (4 images)", "nbversion": f"{r[fmt + '_checked_s']:.2f} s",
                     "baseline": f"{r[fmt + '_plain_s']:.2f} s", "ratio": f"{r[fmt + '_checked_s'] / r[fmt + '_plain_s']:.2f}x",
                     "goal": ""})
    for fmt in FORMATS:
        rows.append({"benchmark": f"inference per image, {fmt} vs PyTorch .pt (median, {r['images']} images x 3, {scale})",
                     "nbversion": f"{r[fmt + '_ms']:.1f} ms", "baseline": f"{r['pt_ms']:.1f} ms",
                     "ratio": f"{r[fmt + '_ms'] / r['pt_ms']:.2f}x", "goal": "(after a warm-up)"})
    return rows


if __name__ == "__main__":
    rows = main(sys.argv[1:])
    if rows:
        from ._util import machine
        from .report import print_rows
        print(machine())
        print_rows(rows)
        print(json.dumps(rows))
