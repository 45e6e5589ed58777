"""Machinery shared by the crash and concurrency tests and ``benchmarks/crash_soak.py``:
run the real ``gopro-lake materialize`` in a subprocess on a temporary lake, kill it
with SIGKILL (the whole process group: probe workers are spawned children), and compare
lakes.

A lake is compared as rows (sorted JSON of every Delta table, like
``test_pipeline.snapshot_lake``) plus the bytes of every file that is not part of a Delta
table (finance exports, model artefacts). Columns named ``input_versions`` hold Delta
version numbers: after a crash and a re-run the log has extra commits, so the numbers may
legitimately differ; they are left out of the row comparison and checked separately by
:func:`check_recorded_versions` (the snapshot a batch names must hold the same rows).
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from deltalake import DeltaTable

REPO = Path(__file__).resolve().parents[1]
VERSION_COLUMNS = {"input_versions"}  # Delta version numbers: compared by what they name
DEMO = {"subscribers": 8, "clips": 6, "seed": 7}
# A short horizon keeps a run (and so the test) short, but covers every stage: ingestion,
# 59 daily partitions of footage and consent, the February and March batches of three
# deals, revenue, allocations, two statement months, reconciliation and the exports.
START_DATE, THROUGH = "2025-02-01", "2025-03-31"


def cli() -> list[str]:
    script = Path(sys.executable).with_name("gopro-lake")
    return [str(script)] if script.exists() else [sys.executable, "-m", "gopro_assets.cli"]


def build_landing(path: Path) -> Path:
    """The demo landing zone at its documented minimum size (8 subscribers, 6 clips)."""
    from gopro_assets.lib.demo import generate_demo

    generate_demo(path, **DEMO)
    return path


@dataclass
class Lake:
    """One lake + exports + Dagster instance, all under ``root``, reading ``landing``."""

    root: Path
    landing: Path
    start_date: str = START_DATE

    @property
    def lake(self) -> Path:
        return self.root / "lake"

    @property
    def exports(self) -> Path:
        return self.root / "exports"

    @property
    def home(self) -> Path:
        return self.root / "dagster_home"

    def env(self) -> dict:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("GOPRO_", "DAGSTER_"))}
        env.update({
            "GOPRO_LANDING": str(self.landing), "GOPRO_LAKE": str(self.lake), "GOPRO_EXPORTS": str(self.exports),
            "DAGSTER_HOME": str(self.home), "GOPRO_START_DATE": self.start_date, "DAGSTER_DISABLE_TELEMETRY": "1",
            "PYTHONUNBUFFERED": "1",
        })
        return env

    def reset(self) -> None:
        for p in (self.lake, self.exports, self.home):
            shutil.rmtree(p, ignore_errors=True)


@dataclass
class Attempt:
    returncode: int | None
    killed_after: float | None
    seconds: float
    log: str
    stages: list[tuple[float, str]] = field(default_factory=list)  # (offset, progress line)


def start(lake: Lake, through: str = THROUGH, log_path: Path | None = None) -> tuple[subprocess.Popen, Path]:
    lake.root.mkdir(parents=True, exist_ok=True)
    log_path = log_path or lake.root / f"attempt-{time.time_ns()}.log"
    out = open(log_path, "wb")
    proc = subprocess.Popen(
        [*cli(), "materialize", "--through", through], env=lake.env(), cwd=lake.root,
        stdout=out, stderr=subprocess.STDOUT, start_new_session=True,  # own process group
    )
    out.close()
    return proc, log_path


def kill_group(proc: subprocess.Popen, timeout: float = 30.0) -> None:
    """SIGKILL the process and everything in its group, and wait until all are gone."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.killpg(proc.pid, 0)
        except ProcessLookupError:
            return
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            return
        time.sleep(0.05)
    raise RuntimeError(f"process group {proc.pid} survived SIGKILL for {timeout}s")


def _stage_lines(log: str) -> list[str]:
    return [line for line in log.splitlines() if "] [" in line and "/" in line.split("] [", 1)[1][:6]]


def run(lake: Lake, through: str = THROUGH, kill_after: float | None = None, timeout: float = 900.0) -> Attempt:
    """One ``gopro-lake materialize``; SIGKILLed ``kill_after`` seconds after it started
    (None: let it finish)."""
    started = time.monotonic()
    proc, log_path = start(lake, through)
    deadline = started + (kill_after if kill_after is not None else timeout)
    while proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    killed = None
    if proc.poll() is None:
        if kill_after is None:
            kill_group(proc)
            raise TimeoutError(f"materialize did not finish in {timeout}s; log: {log_path}")
        killed = time.monotonic() - started
        kill_group(proc)
    else:
        kill_group(proc)  # reap any child left behind by a finished run
    log = log_path.read_text(errors="replace")
    return Attempt(None if killed else proc.returncode, killed, time.monotonic() - started, log)


# -- comparing lakes -------------------------------------------------------------------------


def delta_tables(lake_dir: Path) -> list[str]:
    if not lake_dir.exists():
        return []
    return sorted(p.name for p in lake_dir.iterdir() if (p / "_delta_log").is_dir())


def has_commit(table_dir: Path) -> bool:
    return any(p.suffix == ".json" and p.stem.isdigit() for p in (table_dir / "_delta_log").iterdir())


def read_rows(lake_dir: Path, table: str, version: int | None = None) -> list[dict]:
    """Every row, opened the way any Delta reader would (raises on a broken table)."""
    dt = DeltaTable(str(lake_dir / table), version=version)
    return dt.to_pyarrow_table().to_pylist()


def row_key(row: dict) -> str:
    return json.dumps({k: v for k, v in row.items() if k not in VERSION_COLUMNS}, sort_keys=True, default=str)


def snapshot(lake: Lake) -> dict:
    """{table: sorted rows as JSON (version columns left out)} + {file: sha of bytes}."""
    import hashlib

    out: dict[str, object] = {}
    for table in delta_tables(lake.lake):
        if not has_commit(lake.lake / table):
            out[table] = "<no commit>"
            continue
        out[table] = sorted(row_key(r) for r in read_rows(lake.lake, table))
    files = {}
    tables = set(delta_tables(lake.lake))
    for base, label in ((lake.lake, "lake"), (lake.exports, "exports")):
        if not base.exists():
            continue
        for p in sorted(base.rglob("*")):
            rel = p.relative_to(base)
            if p.is_file() and not (label == "lake" and rel.parts[0] in tables):
                files[f"{label}/{rel.as_posix()}"] = hashlib.sha256(p.read_bytes()).hexdigest()[:16]
    out["__files__"] = files
    return out


def diff(expected: dict, got: dict, limit: int = 6) -> list[str]:
    """Human-readable differences between two snapshots (empty when identical)."""
    problems = []
    for name in sorted(set(expected) | set(got)):
        e, g = expected.get(name), got.get(name)
        if e == g:
            continue
        if name == "__files__":
            for f in sorted(set(e or {}) | set(g or {})):
                if (e or {}).get(f) != (g or {}).get(f):
                    problems.append(f"file {f}: expected {(e or {}).get(f)}, got {(g or {}).get(f)}")
            continue
        if e is None or g is None or isinstance(e, str) or isinstance(g, str):
            problems.append(f"table {name}: expected {'absent' if e is None else e if isinstance(e, str) else f'{len(e)} rows'}, "
                            f"got {'absent' if g is None else g if isinstance(g, str) else f'{len(g)} rows'}")
            continue
        missing = _multiset_minus(e, g)
        extra = _multiset_minus(g, e)
        problems.append(f"table {name}: {len(missing)} row(s) missing, {len(extra)} extra; "
                        f"missing e.g. {missing[:limit]}; extra e.g. {extra[:limit]}")
    return problems


def _multiset_minus(a: list[str], b: list[str]) -> list[str]:
    from collections import Counter

    return sorted((Counter(a) - Counter(b)).elements())


def check_intermediate(clean: dict, lake: Lake) -> list[str]:
    """After a kill: every table opens, and holds no row the finished lake would not hold
    (no partial or duplicated write is visible). Rows may be missing: the run stopped."""
    problems = []
    for table in delta_tables(lake.lake):
        if not has_commit(lake.lake / table):
            continue  # a table whose first commit never happened is not a table yet
        try:
            rows = [row_key(r) for r in read_rows(lake.lake, table)]
        except Exception as exc:  # noqa: BLE001 - any failure to open is the finding
            problems.append(f"table {table} does not open: {type(exc).__name__}: {exc}")
            continue
        if table not in clean:
            problems.append(f"table {table} exists but the finished lake has no such table")
            continue
        extra = _multiset_minus(rows, clean[table])
        if extra:
            problems.append(f"table {table}: {len(extra)} row(s) a finished run never writes, e.g. {extra[:3]}")
    for f in check_files_intermediate(clean, lake):
        problems.append(f)
    return problems


def check_files_intermediate(clean: dict, lake: Lake) -> list[str]:
    """Files outside Delta tables are either absent or exactly the finished bytes."""
    now = snapshot_files_only(lake)
    expected = clean["__files__"]
    out = []
    for f, digest in now.items():
        if f not in expected:
            out.append(f"file {f} is not in the finished lake (a leftover temp file?)")
        elif expected[f] != digest:
            out.append(f"file {f} holds bytes a finished run never writes")
    return out


def snapshot_files_only(lake: Lake) -> dict:
    import hashlib

    files = {}
    tables = set(delta_tables(lake.lake))
    for base, label in ((lake.lake, "lake"), (lake.exports, "exports")):
        if not base.exists():
            continue
        for p in sorted(base.rglob("*")):
            rel = p.relative_to(base)
            if p.is_file() and not (label == "lake" and rel.parts[0] in tables):
                files[f"{label}/{rel.as_posix()}"] = hashlib.sha256(p.read_bytes()).hexdigest()[:16]
    return files


def check_recorded_versions(clean: Lake, crashed: Lake) -> list[str]:
    """``delivered_batches.input_versions`` may name other version numbers after a crash,
    but each must name a snapshot with the same rows as the clean run's (for
    ``deal_deliveries``: leaving out the batch's own rows, which a crashed attempt may
    have written before it could mark the batch delivered). The eligibility check time-travels
    to these versions, so they must be true."""
    problems = []
    by_batch = {}
    for lake in (clean, crashed):
        for r in read_rows(lake.lake, "delivered_batches"):
            by_batch.setdefault((r["deal_id"], r["batch_id"]), []).append(json.loads(r["input_versions"]))
    cache: dict = {}

    def content(lake: Lake, table: str, version: int, batch) -> list[str]:
        key = (str(lake.lake), table, version)
        if key not in cache:
            cache[key] = read_rows(lake.lake, table, version)
        rows = cache[key]
        if table == "deal_deliveries":
            rows = [r for r in rows if (r["deal_id"], r["batch_id"]) != batch]
        return sorted(row_key(r) for r in rows)

    for batch, (v_clean, v_crash) in ((b, v) for b, v in by_batch.items() if len(v) == 2):
        if set(v_clean) != set(v_crash):
            problems.append(f"batch {batch}: recorded tables differ: {sorted(v_clean)} vs {sorted(v_crash)}")
            continue
        for table in sorted(v_clean):
            if v_clean[table] is None or v_crash[table] is None:
                if v_clean[table] != v_crash[table]:
                    problems.append(f"batch {batch}: {table} version {v_clean[table]} vs {v_crash[table]}")
                continue
            if content(clean, table, v_clean[table], batch) != content(crashed, table, v_crash[table], batch):
                problems.append(f"batch {batch}: {table}@{v_crash[table]} does not hold the rows the clean run "
                                f"computed the batch from ({table}@{v_clean[table]})")
    for batch, versions in by_batch.items():
        if len(versions) != 2:
            problems.append(f"batch {batch} delivered {len(versions)} time(s) across the two lakes (expected once in each)")
    return problems


def dagster_runs(lake: Lake) -> dict[str, int]:
    """Run counts by status in the lake's Dagster instance (read in a subprocess so the
    caller's DAGSTER_HOME is untouched)."""
    code = (
        "import collections, json, dagster as dg\n"
        "with dg.DagsterInstance.get() as i:\n"
        "    print(json.dumps(collections.Counter(r.status.value for r in i.get_runs())))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], env=lake.env(), capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def kill_delays(n: int, clean_seconds: float, rng: random.Random, earliest: float = 1.0) -> list[float]:
    """``n`` kill delays spread over a clean run's duration: one uniform draw in each of
    ``n`` equal slices (stratified), shuffled, so every part of the run gets kill points."""
    span = max(clean_seconds - earliest, 1.0)
    delays = [earliest + span * (i + rng.random()) / n for i in range(n)]
    rng.shuffle(delays)
    return delays
