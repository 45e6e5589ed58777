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
import re
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from deltalake import DeltaTable

REPO = Path(__file__).resolve().parents[1]
VERSION_COLUMNS = {"input_versions"}  # Delta version numbers: compared by what they name
# Columns naming a lake's own data files (footage_fingerprint_index.day_files): another lake
# has other file names; checked by check_fingerprint_index instead.
FILE_NAME_COLUMNS = {"day_files"}
TEMP_FILE = re.compile(r"^\..+\.tmp-\d+$")  # FileRoot.write_bytes: ".<name>.tmp-<pid>"
DEMO = {"subscribers": 8, "clips": 6, "seed": 7}
# A short horizon keeps a run (and so the test) short, but covers every stage: ingestion,
# 59 daily partitions of footage and consent, the February and March batches of three
# deals, revenue, allocations, two statement months, reconciliation and the exports.
START_DATE, THROUGH = "2025-02-01", "2025-03-31"


def cli() -> list[str]:
    script = Path(sys.executable).with_name("gopro-lake")
    return [str(script)] if script.exists() else [sys.executable, "-m", "gopro_assets.cli"]


def build_landing(path: Path) -> Path:
    """The demo landing zone at its documented minimum size (8 subscribers, 6 clips).

    The generator is deterministic (docs/DEMO_DATA.md), so its output is cached in the
    temp folder under a hash of its source and arguments and copied from there.
    """
    import hashlib
    import tempfile

    from gopro_tools import demo_landing as demo

    key = hashlib.sha256(Path(demo.__file__).read_bytes() + json.dumps(DEMO, sort_keys=True).encode()).hexdigest()[:16]
    cached = Path(tempfile.gettempdir()) / f"gopro-demo-landing-{key}"
    if not cached.exists():
        building = cached.with_name(f"{cached.name}.building-{os.getpid()}")
        shutil.rmtree(building, ignore_errors=True)
        demo.generate_demo(building, **DEMO)
        try:
            building.rename(cached)
        except OSError:  # another process cached it first
            shutil.rmtree(building, ignore_errors=True)
    shutil.copytree(cached, path)
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
        env.update(
            {
                "GOPRO_LANDING": str(self.landing),
                "GOPRO_LAKE": str(self.lake),
                "GOPRO_EXPORTS": str(self.exports),
                "DAGSTER_HOME": str(self.home),
                "GOPRO_START_DATE": self.start_date,
                "DAGSTER_DISABLE_TELEMETRY": "1",
                "PYTHONUNBUFFERED": "1",
            }
        )
        return env

    def reset(self) -> None:
        for p in (self.lake, self.exports, self.home):
            shutil.rmtree(p, ignore_errors=True)


@dataclass
class Attempt:
    returncode: int | None  # None when killed
    killed_after: float | None
    seconds: float
    log: str
    first_run_at: float | None = None  # seconds until the CLI announced its first Dagster run

    @property
    def where(self) -> str:
        """What the CLI was doing when it stopped: its last progress line."""
        lines = [ln.split("] ", 1)[1] for ln in self.log.splitlines() if ln.startswith("[") and "] [" in ln]
        if not lines:
            return "start-up, before the first run"
        last = lines[-1]
        stage = last.split(" ", 1)[0]  # "[3/4]"
        return f"{stage} between runs" if " done in " in last else f"{stage} {last.split(' ', 1)[1].split(':', 1)[0]}"


def start(lake: Lake, through: str = THROUGH, log_path: Path | None = None) -> tuple[subprocess.Popen, Path]:
    lake.root.mkdir(parents=True, exist_ok=True)
    log_path = log_path or lake.root / f"attempt-{time.time_ns()}.log"
    out = open(log_path, "wb")  # noqa: SIM115 - the child process writes to it after we return
    proc = subprocess.Popen(
        [*cli(), "materialize", "--through", through],
        env=lake.env(),
        cwd=lake.root,
        stdout=out,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # own process group
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


def run(lake: Lake, through: str = THROUGH, kill_after: float | None = None, timeout: float = 900.0) -> Attempt:
    """One ``gopro-lake materialize``; SIGKILLed ``kill_after`` seconds after it started
    (None: let it finish)."""
    started = time.monotonic()
    proc, log_path = start(lake, through)
    deadline = started + (kill_after if kill_after is not None else timeout)
    first_run_at = None
    while proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
        if first_run_at is None and b"] [1/" in log_path.read_bytes():
            first_run_at = time.monotonic() - started
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
    return Attempt(None if killed else proc.returncode, killed, time.monotonic() - started, log, first_run_at)


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
    return json.dumps(
        {k: v for k, v in row.items() if k not in VERSION_COLUMNS | FILE_NAME_COLUMNS}, sort_keys=True, default=str
    )


def snapshot(lake: Lake) -> dict:
    """{table: sorted rows as JSON (version columns left out)} + {file: sha of bytes}."""
    out: dict[str, object] = {}
    for table in delta_tables(lake.lake):
        if not has_commit(lake.lake / table):
            out[table] = "<no commit>"
            continue
        out[table] = sorted(row_key(r) for r in read_rows(lake.lake, table))
    out["__files__"] = snapshot_files_only(lake)
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
            problems.append(
                f"table {name}: expected {'absent' if e is None else e if isinstance(e, str) else f'{len(e)} rows'}, "
                f"got {'absent' if g is None else g if isinstance(g, str) else f'{len(g)} rows'}"
            )
            continue
        missing = _multiset_minus(e, g)
        extra = _multiset_minus(g, e)
        problems.append(
            f"table {name}: {len(missing)} row(s) missing, {len(extra)} extra; "
            f"missing e.g. {missing[:limit]}; extra e.g. {extra[:limit]}"
        )
    return problems


def _multiset_minus(a: list[str], b: list[str]) -> list[str]:
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
        if TEMP_FILE.match(f.rsplit("/", 1)[-1]):
            continue  # a write cut before its rename: hidden, and removed by the next write of that file
        if f not in expected:
            out.append(f"file {f} is not in the finished lake")
        elif expected[f] != digest:
            out.append(f"file {f} holds bytes a finished run never writes")
    return out


def snapshot_files_only(lake: Lake) -> dict:
    """{file: sha of its bytes} for every file outside the Delta tables (the lake's own
    root path, which a model pointer records, is replaced by a placeholder)."""
    import hashlib

    root = str(lake.root).encode()
    files = {}
    tables = set(delta_tables(lake.lake))
    for base, label in ((lake.lake, "lake"), (lake.exports, "exports")):
        if not base.exists():
            continue
        for p in sorted(base.rglob("*")):
            rel = p.relative_to(base)
            if p.is_file() and not (label == "lake" and rel.parts[0] in tables):
                files[f"{label}/{rel.as_posix()}"] = hashlib.sha256(
                    p.read_bytes().replace(root, b"<root>")
                ).hexdigest()[:16]
    return files


def check_fingerprint_index(lake: Lake) -> list[str]:
    """After the converging run the R4 fingerprint index describes every inventory
    partition as it is (domain/footage/fingerprint_index.py): no partition is left to read whole."""
    from gopro_assets.domain.footage import fingerprint_index
    from gopro_assets.lake.delta_store import DeltaStore

    stale = fingerprint_index.rows_with_fingerprints(
        DeltaStore(str(lake.lake)), ["fp1:none"], ["clip_id"]
    ).unindexed_days
    return (
        [f"the fingerprint index does not describe the inventory partitions {sorted(map(str, stale))}"] if stale else []
    )


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
                problems.append(
                    f"batch {batch}: {table}@{v_crash[table]} does not hold the rows the clean run "
                    f"computed the batch from ({table}@{v_clean[table]})"
                )
    for batch, versions in by_batch.items():
        if len(versions) != 2:
            problems.append(
                f"batch {batch} delivered {len(versions)} time(s) across the two lakes (expected once in each)"
            )
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


def kill_delays(n: int, clean: Attempt, rng: random.Random) -> list[float]:
    """``n`` kill delays spread over a clean run, from the moment it starts its first
    Dagster run (nothing is written before) to its end: one uniform draw in each of ``n``
    equal slices (stratified), shuffled, so every stage gets kill points."""
    earliest = clean.first_run_at or 1.0
    span = max(clean.seconds - earliest, 1.0)
    delays = [earliest + span * (i + rng.random()) / n for i in range(n)]
    rng.shuffle(delays)
    return delays


@dataclass
class ChainResult:
    kills: int = 0
    finished_early: int = 0  # attempts that completed before their kill moment
    where: Counter = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)
    converged: bool = False


def crash_chain(
    lake: Lake, clean_lake: Lake, clean: dict, clean_run: Attempt, kills: int, rng: random.Random, on_kill=None
) -> ChainResult:
    """SIGKILL ``kills`` attempts on one lake (each restarting on what the last one left),
    checking the lake after every kill; then one attempt runs to the end and the lake
    must equal the clean run's."""
    result = ChainResult()
    delays: list[float] = []
    while result.kills < kills:
        if not delays:
            delays = kill_delays(kills, clean_run, rng)
        delay = delays.pop()
        attempt = run(lake, kill_after=delay)
        problems = check_intermediate(clean, lake)
        if attempt.killed_after is None:  # a restart can be faster than the clean run
            result.finished_early += 1
            if attempt.returncode != 0:
                problems.append(f"an attempt exited {attempt.returncode}:\n{attempt.log[-3000:]}")
        else:
            result.kills += 1
            result.where[attempt.where] += 1
        result.problems += [f"{lake.root.name}, kill at {delay:.1f}s ({attempt.where}): {p}" for p in problems]
        if on_kill:
            on_kill(lake, delay, attempt, problems)
    final = run(lake)
    problems = [] if final.returncode == 0 else [f"the converging run exited {final.returncode}:\n{final.log[-3000:]}"]
    problems += diff(clean, snapshot(lake))
    if not problems:
        problems += check_recorded_versions(clean_lake, lake)
        problems += check_fingerprint_index(lake)
        unfinished = {s: n for s, n in dagster_runs(lake).items() if s not in ("SUCCESS", "FAILURE", "CANCELED")}
        if unfinished:
            problems.append(f"Dagster runs left unfinished after the converging run: {unfinished}")
    result.converged = not problems
    result.problems += [f"{lake.root.name}, converging run: {p}" for p in problems]
    return result


# -- a schedule tick, as the daemon would launch it ----------------------------------------

SCHEDULED_RUN = """
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import dagster as dg

from gopro_assets.defs.finance import monthly_close
from gopro_assets.defs.ingestion import automation as landing_automation
from gopro_assets.defs.operations import nightly
from gopro_assets.definitions import defs
from gopro_assets.defs.ingestion import assets as ingestion_assets

if len(sys.argv) > 2:
    # Test hook, not production code: the run's first ingestion step waits until the test
    # creates this file, so the run is surely in progress while the test looks at it.
    gate, ingest_kind = Path(sys.argv[2]), ingestion_assets.ingest_kind

    def held_ingest_kind(*args, **kwargs):
        while not gate.exists():
            time.sleep(0.1)
        return ingest_kind(*args, **kwargs)

    ingestion_assets.ingest_kind = held_ingest_kind

day = datetime.fromisoformat(sys.argv[1]).replace(tzinfo=timezone.utc)
at = day + timedelta(days=1, hours=10)  # 02:00 in Los Angeles the next day
with dg.build_schedule_context(scheduled_execution_time=at, repository_def=defs.get_repository_def()) as context:
    data = nightly.nightly_schedule.evaluate_tick(context)
request = data.run_requests[0]
tags = {**nightly.nightly_schedule.tags, **request.tags, "dagster/schedule_name": "nightly_schedule"}
with dg.DagsterInstance.get() as instance:
    result = defs.resolve_job_def("nightly_job").execute_in_process(
        instance=instance, partition_key=request.partition_key, tags=tags, raise_on_error=False)
print("scheduled run", result.run_id, "success" if result.success else "FAILED", flush=True)
sys.exit(0 if result.success else 1)
"""


def start_scheduled(lake: Lake, day: str = THROUGH, hold: Path | None = None) -> tuple[subprocess.Popen, Path]:
    """The nightly schedule's tick for ``day``, run like the daemon runs it: the schedule
    decides the run request, the run executes nightly_job in process on the instance.
    With ``hold``, its ingestion waits until that file exists."""
    from gopro_assets.shared.concurrency import DAGSTER_YAML

    lake.home.mkdir(parents=True, exist_ok=True)  # the deployment's instance, as the CLI writes it
    if not (lake.home / "dagster.yaml").exists():
        (lake.home / "dagster.yaml").write_text(DAGSTER_YAML)
    # Create and migrate the instance's SQLite storages here, once: two processes opening a
    # fresh home at once (the run and wait_for_run) can break its schema ("more than one
    # head present"), which is why the CLI opens it under a lock (cli._open_instance).
    with instance(lake) as inst:
        inst.get_runs(limit=1)
        inst.event_log_storage.get_pool_limits()
    log_path = lake.root / f"scheduled-{time.time_ns()}.log"
    out = open(log_path, "wb")  # noqa: SIM115 - the child process writes to it after we return
    proc = subprocess.Popen(
        [sys.executable, "-c", SCHEDULED_RUN, day, *([str(hold)] if hold else [])],
        env=lake.env(),
        cwd=lake.root,
        stdout=out,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    out.close()
    return proc, log_path


def instance(lake: Lake):
    """The lake's Dagster instance, opened from its folder (the caller's DAGSTER_HOME is untouched)."""
    import dagster as dg

    return dg.DagsterInstance.from_config(str(lake.home))


def wait_for_run(lake: Lake, predicate, timeout: float = 300.0):
    """Poll the instance until a run satisfies ``predicate``; returns it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (lake.home / "dagster.yaml").exists() and (lake.home / "history").exists():
            with instance(lake) as inst:
                for run in inst.get_runs(limit=20):
                    if predicate(run):
                        return run
        time.sleep(0.2)
    raise TimeoutError("no such run appeared")


def pool_step_intervals(lake: Lake, pool_steps: set[str]) -> list[tuple[float, float, str, str]]:
    """(start, end, run id, step) of every step of ``pool_steps`` in every run."""
    import dagster as dg

    out = []
    with instance(lake) as inst:
        for run in inst.get_runs():
            starts = {}
            for record in inst.all_logs(run.run_id):
                ev = record.dagster_event
                if ev is None or ev.step_key not in pool_steps:
                    continue
                if ev.event_type == dg.DagsterEventType.STEP_START:
                    starts[ev.step_key] = record.timestamp
                elif ev.event_type in (dg.DagsterEventType.STEP_SUCCESS, dg.DagsterEventType.STEP_FAILURE):
                    out.append((starts.pop(ev.step_key), record.timestamp, run.run_id, ev.step_key))
    return sorted(out)
