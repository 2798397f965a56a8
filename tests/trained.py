"""One real trained workspace per test module, built with the verbs and copied per test.

`dataset add demo` of the generated demo dataset, then a real 1-epoch Ultralytics training on
the CPU (`train(..., wait=True)`), which commits its own run. Tests that need a finished run
copy this folder (`copy_workspace`) instead of writing a run record by hand.
"""
from __future__ import annotations

import contextlib
import json
import queue
import shutil
import threading
from pathlib import Path

import pytest

from conftest import USER
from test_training import TINY


def isolated_env(mp: pytest.MonkeyPatch, home: Path) -> None:
    """What conftest's `isolated_home` does, for a module-scoped fixture (built before it)."""
    home.mkdir(parents=True, exist_ok=True)
    (home / ".gitconfig").write_text(f"[user]\n\temail = {USER}\n\tname = Tester\n[init]\n\tdefaultBranch = main\n")
    for key, value in {"HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config"),
                       "GIT_CONFIG_GLOBAL": str(home / ".gitconfig"), "GIT_CONFIG_NOSYSTEM": "1",
                       "DVC_NO_ANALYTICS": "1", "YOLO_OFFLINE": "true", "YOLO_CONFIG_DIR": str(home / "yolo"),
                       "YOLO_AUTOINSTALL": "false"}.items():
        mp.setenv(key, value)
    for var in ("NBVERSION_USER", "JUPYTERHUB_USER", "GIT_DIR", "GIT_WORK_TREE"):
        mp.delenv(var, raising=False)


def tiny_train(ws, epochs=1, wait=True, **kw):
    """The same tiny CPU training as test_training (64 px, batch 4)."""
    return ws.train("demo", "yolov8n.yaml", epochs=epochs, imgsz=64, batch=4, device="cpu",
                    extra=dict(TINY), wait=wait, **kw)


def build_trained_workspace(base: Path) -> tuple[Path, str]:
    """`dataset add demo` + one finished 1-epoch run; returns (workspace root, run id)."""
    import nbversion as nbv
    from nbversion.demo import make_dataset

    with pytest.MonkeyPatch.context() as mp:
        isolated_env(mp, base / "home")
        ws = nbv.init(base / "trained")
        mp.chdir(ws.root)
        ws.dataset_add("demo", make_dataset(base / "demo-src"))
        run = tiny_train(ws)
        assert run.record["status"] == "done", run.record
    return ws.root, run.run_id


def copy_workspace(template: Path, dest: Path):
    """A private copy of the trained workspace at `dest` (replacing what is there), opened."""
    import nbversion as nbv

    if dest.exists():
        shutil.rmtree(dest)
    shutil.copytree(template, dest, symlinks=True)
    return nbv.open(dest)


class HeldTraining:
    """A real training in this process (its pid is alive), held at the start of every epoch after
    the first until `release()`: run.json then records exactly the epochs finished so far."""

    def __init__(self, ws, epochs: int = 3):
        self.ws, self.reached, self.go = ws, queue.Queue(), threading.Semaphore(0)
        self.run = tiny_train(ws, epochs=epochs, wait=False, callbacks={"on_train_epoch_start": self._gate})
        self.run_id = self.run.run_id
        self.wait_held()

    def _gate(self, trainer):
        if trainer.epoch >= 1:                   # Ultralytics counts from 0: epoch 1 is recorded
            self.reached.put(trainer.epoch)
            self.go.acquire(timeout=300)

    def wait_held(self) -> int:
        return self.reached.get(timeout=300)

    def release(self):
        self.go.release()

    def record(self) -> dict:
        return json.loads((self.ws.root / "runs" / self.run_id / "run.json").read_text())

    def finish(self):
        """Stop it (as the user would) and let it commit itself."""
        if not self.run.finished.is_set():
            self.ws.runs_stop(self.run_id)
            for _ in range(10):
                self.release()
            self.run.wait(timeout=300)


@pytest.fixture(scope="module")
def trained_template(tmp_path_factory):
    """Built once per module with the verbs: `dataset add demo` + a real 1-epoch training."""
    return build_trained_workspace(tmp_path_factory.mktemp("trained"))


@pytest.fixture
def trained(ws, trained_template, monkeypatch):
    """The test's workspace (same path) replaced by a copy of the trained one: (ws, finished run id)."""
    root, run_id = trained_template
    copied = copy_workspace(root, ws.root)
    monkeypatch.chdir(copied.root)
    return copied, run_id


@contextlib.contextmanager
def held_training(ws, epochs: int = 3):
    live = HeldTraining(ws, epochs)
    try:
        yield live
    finally:
        live.finish()
