"""The machine during a training: CPU, RAM, disk and GPU samples taken off the training thread.

A daemon thread wakes every `interval` seconds (NBVERSION_SYSTEM_INTERVAL, default 5; 0 turns
sampling off), reads psutil (and nvidia-ml-py when it imports and sees a GPU) and keeps one flat
dict per sample. It never writes run.json itself: the run's observer puts the samples into the
record with each epoch, and the final record takes them all (one writer of run.json).

Its own cost is measured, not assumed: the thread's CPU time (`time.thread_time`) over its wall
time is `system_cost` in the run record; the goal is at most 0.5 % of one core.
"""
from __future__ import annotations

import logging
import os
import re
import threading
import time
from pathlib import Path
from typing import Optional

logger = logging.getLogger(__name__)

DEFAULT_INTERVAL = 5.0
# run.json is rewritten with each epoch: a long run keeps every other sample once it has this many
MAX_SAMPLES = 2000
MB = 1024 * 1024
GB = 1024 * MB
# per field: what `runs show` calls it and its unit
FIELDS = {"cpu": ("CPU of the training (% of one core)", "%"), "cpu_machine": ("CPU of the machine", "%"),
          "ram_mb": ("RAM of the training", "MB"), "ram_machine_mb": ("RAM used on the machine", "MB"),
          "disk_free_gb": ("disk free (workspace)", "GB"), "gpu_util": ("GPU utilisation", "%"),
          "gpu_mem_mb": ("GPU memory used", "MB"), "gpu_temp": ("GPU temperature", "°C")}


def interval_from_env() -> float:
    """NBVERSION_SYSTEM_INTERVAL in seconds; a value that is not a number is the default."""
    text = os.environ.get("NBVERSION_SYSTEM_INTERVAL", "")
    try:
        return max(float(text), 0.0) if text.strip() else DEFAULT_INTERVAL
    except ValueError:
        logger.debug("NBVERSION_SYSTEM_INTERVAL=%r is not a number: sampling every %s s", text, DEFAULT_INTERVAL)
        return DEFAULT_INTERVAL


class _Gpus:
    """nvidia-ml-py's view of the run's GPUs; `None` from `open` when there is nothing to read."""

    def __init__(self, nvml, handles: list):
        self.nvml, self.handles = nvml, handles

    @classmethod
    def open(cls, device: str) -> Optional["_Gpus"]:
        indexes = [int(d) for d in str(device or "").split(",") if d.strip().isdigit()]
        if not indexes:   # a CPU training: its GPUs (if any) are someone else's business
            return None
        try:
            import pynvml
        except ImportError:   # nvidia-ml-py not installed: no GPU fields, not an error
            return None
        try:
            pynvml.nvmlInit()
            physical = _physical_indexes(indexes)
            return cls(pynvml, [pynvml.nvmlDeviceGetHandleByIndex(i) for i in physical])
        except Exception:   # no driver, no such GPU: the CPU figures are still worth having
            logger.debug("nvidia-ml-py sees no GPU %s", device, exc_info=True)
            return None

    def read(self) -> dict:
        sample = {}
        for n, handle in enumerate(self.handles):
            prefix = "gpu" if len(self.handles) == 1 else f"gpu{n}"
            try:
                util = self.nvml.nvmlDeviceGetUtilizationRates(handle)
                memory = self.nvml.nvmlDeviceGetMemoryInfo(handle)
                sample.update({f"{prefix}_util": float(util.gpu), f"{prefix}_mem_mb": round(memory.used / MB),
                               f"{prefix}_mem_total_mb": round(memory.total / MB)})
                sample[f"{prefix}_temp"] = float(self.nvml.nvmlDeviceGetTemperature(handle, self.nvml.NVML_TEMPERATURE_GPU))
            except Exception:   # one failed read (a GPU fell off the bus): the next sample tries again
                logger.debug("GPU read failed", exc_info=True)
        return sample

    def close(self) -> None:
        try:
            self.nvml.nvmlShutdown()
        except Exception:
            logger.debug("nvmlShutdown failed", exc_info=True)


def _physical_indexes(indexes: list[int]) -> list[int]:
    """torch's GPU n is the n-th of CUDA_VISIBLE_DEVICES; NVML counts every GPU of the machine."""
    visible = [v.strip() for v in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if v.strip()]
    if visible and all(v.isdigit() for v in visible):
        return [int(visible[i]) if i < len(visible) else i for i in indexes]
    return indexes


class SystemSampler:
    """Samples in a daemon thread from `start()` until `stop()`; `samples` and `cost()` after."""

    def __init__(self, workspace_root, device: str = "cpu", interval: Optional[float] = None,
                 run_id: str = "", prior: Optional[list] = None):
        self.root, self.device, self.run_id = Path(workspace_root), device, run_id
        self.interval = interval_from_env() if interval is None else interval
        self.prior = list(prior or [])   # a resumed run keeps the samples of its earlier part
        # a resumed run's clock continues where the earlier part stopped
        self.offset = (self.prior[-1].get("t", 0) + self.interval) if self.prior else 0.0
        self.samples: list[dict] = []
        self.latest: Optional[dict] = None
        self.cpu_s = 0.0
        self.setup_s = 0.0
        self.taken = 0
        self.started = self.ended = None
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        return self.interval > 0

    def start(self) -> "SystemSampler":
        if not self.enabled:
            return self
        self.started = time.monotonic()
        self._thread = threading.Thread(target=self._loop, name=f"nbversion-system-{self.run_id}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Take the last sample and end the thread (called however the training ended)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        if self.started is not None and self.ended is None:
            self.ended = time.monotonic()

    def series(self) -> list:
        with self._lock:
            return self.prior + list(self.samples)

    def cost(self) -> Optional[dict]:
        """The sampler's own CPU time over its wall time (this part of the run)."""
        if self.started is None:
            return None
        wall = (self.ended or time.monotonic()) - self.started
        return {"cpu_s": round(self.cpu_s, 4), "setup_s": round(self.setup_s, 4), "wall_s": round(wall, 2),
                "samples": self.taken,
                "interval_s": self.interval, "share": round(self.cpu_s / wall, 6) if wall > 0 else None}

    # --- the thread -----------------------------------------------------------------------
    def _loop(self) -> None:
        begun = time.thread_time()
        probe = None
        try:
            probe = _Probe(self.root, self.device)
            # opening the probe (importing psutil, starting NVML) is paid once per process and
            # would dominate a short run's share: reported apart as `setup_s`
            self.setup_s, begun = time.thread_time() - begun, time.thread_time()
            while not self._stop.wait(self.interval):
                self._take(probe)
            self._take(probe)   # the end of the run: a short training still gets one sample
        except Exception:   # the sampler is a bystander: whatever happens, training goes on
            logger.debug("system sampling of run %s stopped", self.run_id, exc_info=True)
        finally:
            if probe is not None:
                probe.close()
            self.cpu_s = time.thread_time() - begun

    def _take(self, probe: "_Probe") -> None:
        sample = {"t": round(self.offset + time.monotonic() - self.started, 1), **probe.read()}
        with self._lock:
            self.taken += 1
            if len(self.samples) >= MAX_SAMPLES:   # 2000 at 5 s: after ~3 h, halve the resolution
                self.samples = self.samples[::2]
            self.samples.append(sample)
            self.latest = sample


class _Probe:
    """What one sample reads; built in the sampler thread so that opening NVML costs it, not training."""

    def __init__(self, root: Path, device: str):
        import psutil

        self.psutil, self.root = psutil, root
        self.me = psutil.Process()
        self.tree: dict[int, object] = {}
        self.me.cpu_percent(None)   # the first reading of a process or the machine is a baseline
        psutil.cpu_percent(None)
        self.gpus = _Gpus.open(device)

    def read(self) -> dict:
        psutil = self.psutil
        cpu, rss = self.me.cpu_percent(None), self.me.memory_info().rss
        try:
            children = self.me.children(recursive=True)   # data loader workers
        except psutil.Error:
            children = []
        alive = {}
        for child in children:
            known = self.tree.get(child.pid, child)   # cpu_percent measures since its own last call
            try:
                share = known.cpu_percent(None)        # a new child's first call is a baseline: 0.0
                rss += known.memory_info().rss
            except psutil.Error:   # it ended between the listing and the reading
                continue
            cpu += share
            alive[child.pid] = known
        self.tree = alive
        memory = psutil.virtual_memory()
        sample = {"cpu": round(cpu, 1), "cpu_machine": round(psutil.cpu_percent(None), 1),
                  "ram_mb": round(rss / MB), "ram_machine_mb": round((memory.total - memory.available) / MB),
                  "ram_total_mb": round(memory.total / MB),
                  "disk_free_gb": round(psutil.disk_usage(str(self.root)).free / GB, 2)}
        if self.gpus is not None:
            sample.update(self.gpus.read())
        return sample

    def close(self) -> None:
        if self.gpus is not None:
            self.gpus.close()


def field_name(key: str) -> str:
    """gpu0_util, gpu1_util (several GPUs) -> gpu_util, the entry of FIELDS that describes it."""
    return re.sub(r"^gpu\d+_", "gpu_", key)


def summary(series: list) -> dict:
    """{field: {"min", "avg", "max"}} over the samples, in FIELDS' order (what `runs show` prints)."""
    order = list(FIELDS)
    keys = sorted({k for s in series for k in s if k != "t"},
                  key=lambda k: (order.index(field_name(k)) if field_name(k) in order else len(order), k))
    table = {}
    for key in keys:
        values = [s[key] for s in series if isinstance(s.get(key), (int, float))]
        if values:
            table[key] = {"min": min(values), "avg": round(sum(values) / len(values), 2), "max": max(values)}
    return table


def describe_sample(sample: Optional[dict]) -> str:
    """One short line for the live widget: CPU, RAM, disk, GPU."""
    if not sample:
        return ""
    parts = [f"CPU {sample.get('cpu', 0):.0f}% (machine {sample.get('cpu_machine', 0):.0f}%)",
             f"RAM {sample.get('ram_mb', 0) / 1024:.1f} GB (machine {sample.get('ram_machine_mb', 0) / 1024:.1f}"
             f"/{sample.get('ram_total_mb', 0) / 1024:.0f} GB)",
             f"disk free {sample.get('disk_free_gb', 0):.1f} GB"]
    if "gpu_util" in sample:
        parts.append(f"GPU {sample['gpu_util']:.0f}% {sample.get('gpu_mem_mb', 0) / 1024:.1f}"
                     f"/{sample.get('gpu_mem_total_mb', 0) / 1024:.0f} GB {sample.get('gpu_temp', 0):.0f}°C")
    return " · ".join(parts)
