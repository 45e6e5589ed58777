"""Benchmarks of the lakehouse at scale: ``python -m benchmarks run --scale small|medium|large``.

Scripts, not timed tests: each run generates its own synthetic data, measures every figure
beside its reference in the same run, prints a table and writes
``benchmarks/results/<scale>.json``. What is measured and why: docs/PERFORMANCE.md.

This module holds what the four benchmarks share: the scales, the figure records, running
a measured step in a fresh subprocess (wall time and peak RSS of that process alone) and
the description of the machine.
"""

from __future__ import annotations

import json
import os
import platform
import resource
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).resolve().parent / "results"


@dataclass(frozen=True)
class Scale:
    name: str
    subscribers: int
    clips_per_year: int  # the money path's year of uploads
    probe_small_files: int  # small real MP4s for files/s
    probe_distinct_encodes: int  # distinct encodes the small files are copied from
    big_file_seconds: tuple[int, int]  # (1080p60, 4K30) durations of the big real MP4s
    ffprobe_files: int  # files ffprobe is run on (it is slow: a subset is enough)
    history_days: tuple[int, int] = (7, 365)  # incremental: short and long history
    demo: bool = True  # run the Dagster demo benchmark by default
    batch_months: int = 12  # monthly batches per deal (the money path runs through the last one)


SCALES = {
    # a smoke test of the scripts themselves (seconds); figures are meaningless here
    "tiny": Scale("tiny", 300, 3_000, 6, 3, (1, 1), 3, (3, 12), demo=False, batch_months=2),
    "small": Scale("small", 20_000, 200_000, 1_000, 24, (40, 20), 40),
    "medium": Scale("medium", 200_000, 2_000_000, 2_000, 40, (120, 60), 60),
    # the size: 1M subscribers, 10M clips, 12 monthly batches per deal
    "large": Scale("large", 1_000_000, 10_000_000, 4_000, 40, (180, 90), 60),
}


@dataclass
class Figure:
    """One measured figure beside its reference and target."""

    bench: str
    name: str
    value: float
    unit: str
    reference: str = ""  # what it is compared with
    reference_value: float | None = None
    target: str = ""  # the goal, in words
    ok: bool | None = None  # whether the target is met (None: informational)
    note: str = ""
    detail: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return asdict(self)


def machine() -> dict:
    """The machine and its load: figures on a shared 2-core box are only comparable with these."""
    info = {"nproc": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()}
    try:
        info["cpu_model"] = next(
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        )
    except (OSError, StopIteration):
        info["cpu_model"] = platform.processor()
    try:
        mem = {line.split(":")[0]: line.split()[1] for line in Path("/proc/meminfo").read_text().splitlines()}
        info["mem_total_gb"] = round(int(mem["MemTotal"]) / 1024 / 1024, 1)
        info["mem_available_gb"] = round(int(mem["MemAvailable"]) / 1024 / 1024, 1)
    except (OSError, KeyError):
        pass
    info["loadavg"] = list(os.getloadavg())
    versions = {}
    for mod in ("dagster", "duckdb", "deltalake", "pyarrow", "av", "polars"):
        try:
            versions[mod] = __import__(mod).__version__
        except Exception:  # noqa: BLE001 - informational
            pass
    info["versions"] = versions
    return info


def peak_rss_bytes() -> int:
    """Peak RSS of this process so far.

    ``VmHWM`` (the high-water mark of this process image) and not ``ru_maxrss``: Linux
    carries the parent's peak over ``fork``+``exec`` into ``ru_maxrss``, so a worker started
    by a big parent would report the parent's peak.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


RESULT_PREFIX = "BENCH-RESULT "


def emit(result: dict) -> None:
    """Worker side: hand a JSON result (plus this process's peak RSS) to the parent."""
    result = {**result, "peak_rss_bytes": peak_rss_bytes()}
    sys.stdout.write(RESULT_PREFIX + json.dumps(result, default=str) + "\n")
    sys.stdout.flush()


def run_worker(module: str, args: dict, env: dict | None = None, timeout: float | None = None, log=None) -> dict:
    """Run ``python -m <module> --worker '<json>'`` in a fresh process (its own peak RSS,
    no warm caches of the parent) and return its JSON result with the wall time."""
    cmd = [sys.executable, "-m", module, "--worker", json.dumps(args, default=str)]
    started = time.monotonic()
    proc = subprocess.run(
        cmd, cwd=REPO, env={**os.environ, **(env or {})}, capture_output=True, text=True, timeout=timeout
    )
    wall = time.monotonic() - started
    lines = [line for line in proc.stdout.splitlines() if line.startswith(RESULT_PREFIX)]
    if proc.returncode != 0 or not lines:
        tail = "\n".join((proc.stdout + "\n" + proc.stderr).splitlines()[-40:])
        raise RuntimeError(f"worker {module} failed (exit {proc.returncode}):\n{tail}")
    result = json.loads(lines[-1][len(RESULT_PREFIX) :])
    result["process_wall_s"] = wall
    if log is not None:
        log(
            f"    worker {module} {args.get('task', '')}: {wall:.1f}s, peak RSS {result['peak_rss_bytes'] / 2**20:.0f} MiB"
        )
    return result


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)
