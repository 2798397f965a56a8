"""Record the Ultralytics callbacks of a real 3-epoch CPU run into recorded_callbacks.json.

    .venv/bin/python tests/data/record_callbacks.py

tests/test_train_widget.py replays them through a fake trainer, so UI tests take milliseconds.
Each entry is what `nbversion.training.progress.trainer_state` reads from the trainer.
"""
import json
import os
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> None:
    scratch = Path(tempfile.mkdtemp(prefix="nbv-record-"))
    os.environ.setdefault("HOME", str(scratch / "home"))
    os.environ["YOLO_CONFIG_DIR"] = str(scratch / "yolo")
    import nbversion as nbv
    from nbversion.demo import make_dataset
    from nbversion.training.progress import CALLBACKS, trainer_state

    ws = nbv.init(scratch / "project")
    ws.dataset_add("demo", make_dataset(scratch / "demo"))
    states = []
    recorder = {name: (lambda trainer, name=name: states.append(trainer_state(name, trainer))) for name in CALLBACKS}
    run = ws.train("demo", "yolov8n.yaml", epochs=3, imgsz=64, batch=4, device="cpu", wait=True,
                   extra={"nbs": 4, "warmup_epochs": 0, "optimizer": "AdamW", "lr0": 0.003, "mosaic": 0,
                          "plots": False}, callbacks=recorder)
    assert run.status == "done", run.record.get("error")
    (HERE / "recorded_callbacks.json").write_text(json.dumps(states, indent=1) + "\n")
    print(f"{len(states)} callbacks recorded", file=sys.stderr)


if __name__ == "__main__":
    main()
