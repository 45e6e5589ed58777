"""Parallel writers on the same Delta tables: several daily-partition runs at once, each
with Dagster's multiprocess executor (forkserver), lose no row and duplicate none; a Delta
commit that loses a race is retried (DeltaStore._write)."""

from __future__ import annotations

import json
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

import dagster as dg
import pyarrow as pa
import pytest
from conftest import encode_mp4
from deltalake.exceptions import CommitFailedError

from gopro_assets.definitions import defs
from gopro_assets.defs.ingestion.assets import ingest_landing
from gopro_assets.lake import delta_store
from gopro_assets.lake.delta_store import DeltaStore
from gopro_assets.shared.partitions import THROUGH_TAG

DAYS = ["2025-01-02", "2025-01-03", "2025-01-04"]
SUBSCRIBERS = ["s1", "s2", "s3"]
CLIPS_PER_DAY = 2
SCHEMA = pa.schema([("day", pa.string()), ("i", pa.int64())])


# -- the retry -----------------------------------------------------------------------
def test_write_retries_a_lost_commit_race_then_gives_up(tmp_path, monkeypatch):
    calls = []
    real = delta_store.write_deltalake

    def flaky(*args, **kwargs):
        calls.append(kwargs.get("mode"))
        if len(calls) <= 2:
            raise CommitFailedError("Commit failed: a concurrent transactions added new data.")
        return real(*args, **kwargs)

    store = DeltaStore(str(tmp_path / "lake"))
    store.append("t", pa.Table.from_pylist([{"day": "d0", "i": 0}], schema=SCHEMA))
    monkeypatch.setattr(delta_store, "write_deltalake", flaky)
    monkeypatch.setattr(delta_store.time, "sleep", lambda s: None)
    store.append("t", pa.Table.from_pylist([{"day": "d1", "i": 1}], schema=SCHEMA))
    assert len(calls) == 3 and store.read("t").num_rows == 2  # two lost races, then one commit

    def always(*args, **kwargs):
        calls.append("x")
        raise CommitFailedError("conflict")

    monkeypatch.setattr(delta_store, "write_deltalake", always)
    calls.clear()
    with pytest.raises(CommitFailedError):
        store.replace_where("t", pa.Table.from_pylist([{"day": "d1", "i": 2}], schema=SCHEMA), "day = 'd1'")
    assert len(calls) == delta_store.COMMIT_RETRIES + 1  # bounded


def _replace_day_repeatedly(args) -> int:
    root, day, value = args
    store = DeltaStore(root)
    for rep in range(3):
        rows = [{"day": day, "i": value * 100 + rep * 10 + k} for k in range(3)]
        store.replace_where("t", pa.Table.from_pylist(rows, schema=SCHEMA), f"day = '{day}'", partition_by=["day"])
    return value


@pytest.mark.system  # spawned writer processes: slow on 2 cores
def test_concurrent_replace_where_on_same_and_other_partitions(tmp_path):
    """Four spawned processes replace partitions at once, two of them the SAME partition
    (real commit conflicts, retried): every partition ends with exactly one writer's rows."""
    # ProcessPoolExecutor, not multiprocessing.Pool: a Pool whose worker dies (CI once saw
    # one vanish mid-round, most likely deltalake's native runtime aborting the process)
    # waits for the lost task forever; the executor reports BrokenProcessPool instead, and
    # the round is run once more on a fresh lake. A wrong row count still fails.
    for attempt in range(2):
        root = str(tmp_path / f"lake{attempt}")
        jobs = [(root, "d1", 1), (root, "d1", 2), (root, "d2", 3), (root, "d3", 4)]
        try:
            with ProcessPoolExecutor(4, mp_context=multiprocessing.get_context("spawn")) as pool:
                assert sorted(pool.map(_replace_day_repeatedly, jobs, timeout=300)) == [1, 2, 3, 4]
            break
        except BrokenProcessPool:
            if attempt:
                raise
    rows = DeltaStore(root).read("t").to_pylist()
    by_day: dict[str, list[int]] = {}
    for r in rows:
        by_day.setdefault(r["day"], []).append(r["i"])
    assert sorted(by_day) == ["d1", "d2", "d3"]
    for day, values in by_day.items():
        assert len(values) == 3, (day, values)  # one writer's last rows, never two writers' rows
        assert len({v // 100 for v in values}) == 1 and len({(v // 10) % 10 for v in values}) == 1
    assert sorted(by_day["d2"]) == [320, 321, 322] and sorted(by_day["d3"]) == [420, 421, 422]


def _first_write(args) -> None:
    root, operation, barrier = args
    store = DeltaStore(root)
    rows = pa.Table.from_pylist([{"day": "d1", "i": i} for i in range(3)], schema=SCHEMA)
    barrier.wait()  # both writers find no table, then write at once
    if operation == "replace_where":
        store.replace_where("t", rows, "day = 'd1'", partition_by=["day"])
    elif operation == "overwrite":
        store.overwrite("t", rows)
    elif operation == "upsert":
        store.upsert("t", rows, key=["i"])
    else:
        store.insert_new("t", rows, key=["i"])


@pytest.mark.system  # 4 x 4 rounds of two spawned writers: minutes on 2 cores
@pytest.mark.parametrize("operation", ["replace_where", "overwrite", "upsert", "insert_new"])
def test_two_writers_creating_the_same_table_keep_each_row_once(tmp_path, operation):
    """delta-rs rebases a losing first commit onto the winner's version 0 without a
    conflict, which once left a racing day of consent_snapshots twice (two CLIs started
    together). DeltaStore creates tables empty first, so the writes conflict and retry."""
    ctx = multiprocessing.get_context("spawn")
    for attempt in range(4):
        root = str(tmp_path / f"lake{attempt}")
        with ctx.Manager() as manager:
            barrier = manager.Barrier(2)
            with ProcessPoolExecutor(2, mp_context=ctx) as pool:
                list(pool.map(_first_write, [(root, operation, barrier)] * 2))
        assert sorted(r["i"] for r in DeltaStore(root).read("t").to_pylist()) == [0, 1, 2], attempt


# -- parallel partition runs through Dagster -------------------------------------------
def build_landing(root) -> dict[str, list[str]]:
    """Three subscribers; CLIPS_PER_DAY distinct clips uploaded on each day of DAYS."""
    (root / "subscribers").mkdir(parents=True)
    (root / "subscribers/s.csv").write_text(
        "subscriber_id,email,country,subscribed_at,cancelled_at,invited_at\n"
        + "".join(f"{s},{s}@example.com,US,2024-12-01T00:00:00Z,,2024-12-15T00:00:00Z\n" for s in SUBSCRIBERS)
    )
    (root / "consent_events").mkdir()
    (root / "consent_events/c.jsonl").write_text(
        "".join(
            json.dumps(
                {"event_id": f"e{i}", "subscriber_id": s, "event_at": f"2025-01-0{2 + i}T12:00:00Z", "action": "opt_in"}
            )
            + "\n"
            for i, s in enumerate(SUBSCRIBERS)
        )
    )
    uploads, by_day = [], {}
    for d, day in enumerate(DAYS):
        for k in range(CLIPS_PER_DAY):
            clip = f"c{d}{k}"
            owner = SUBSCRIBERS[(d + k) % len(SUBSCRIBERS)]
            encode_mp4(root / f"footage/{owner}/{clip}.MP4", seconds=2, shade=30 * d + 7 * k + 1)
            uploads.append(
                {
                    "clip_id": clip,
                    "subscriber_id": owner,
                    "object_key": f"{owner}/{clip}.MP4",
                    "uploaded_at": f"{day}T0{k + 1}:00:00Z",
                    "published": False,
                    "activity": "surf",
                    "mount": None,
                }
            )
            by_day.setdefault(day, []).append(clip)
    (root / "uploads").mkdir()
    (root / "uploads/u.jsonl").write_text("".join(json.dumps(u) + "\n" for u in uploads))
    return by_day


def _run_day(day: str) -> tuple[str, bool, str]:
    """One run of daily_partitions_job for ``day`` (in a spawned process, like a run
    worker): steps in parallel processes, against the instance in DAGSTER_HOME."""
    import dagster as dg

    job = dg.build_reconstructable_job("gopro_assets.definitions", "resolved_daily_partitions_job")
    with dg.DagsterInstance.get() as instance:
        result = dg.execute_job(job, instance, tags={"dagster/partition": day, THROUGH_TAG: day})
        return day, result.success, result.run_id


@pytest.mark.integration
@pytest.mark.system  # three real multiprocess Dagster runs at once
def test_parallel_partition_runs_keep_every_row_exactly_once(tmp_path, monkeypatch):
    by_day = build_landing(tmp_path / "landing")
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    # The code location (and so every spawned run and step process) reads these.
    for name, value in {
        "GOPRO_LANDING": tmp_path / "landing",
        "GOPRO_LAKE": tmp_path / "lake",
        "GOPRO_EXPORTS": tmp_path / "exports",
        "DAGSTER_HOME": home,
    }.items():
        monkeypatch.setenv(name, str(value))
    monkeypatch.setenv("DAGSTER_DISABLE_TELEMETRY", "1")

    from gopro_assets.shared.resources import LakehouseResource

    lakehouse = LakehouseResource(
        landing=str(tmp_path / "landing"), lake=str(tmp_path / "lake"), exports=str(tmp_path / "exports")
    )
    with dg.DagsterInstance.get() as instance:
        upstream = dg.materialize(
            list(defs.assets),
            selection=[*ingest_landing.keys, dg.AssetKey("consent_snapshots")],
            instance=instance,
            resources={"lakehouse": lakehouse},
        )
        assert upstream.success

    # Three runs at once, each writing its own day into footage_inventory,
    # footage_quarantine and consent_daily, its two steps in parallel processes.
    # (Not multiprocessing.Pool: its daemonic workers may not start the step processes.)
    with ProcessPoolExecutor(len(DAYS), mp_context=multiprocessing.get_context("spawn")) as pool:
        outcomes = list(pool.map(_run_day, DAYS))
    assert all(ok for _, ok, _ in outcomes), outcomes

    with dg.DagsterInstance.get() as instance:
        records = {
            r.dagster_run.run_id: r for r in instance.get_run_records(dg.RunsFilter(job_name="daily_partitions_job"))
        }
        assert len(records) == len(DAYS)
        assert all(r.dagster_run.status == dg.DagsterRunStatus.SUCCESS for r in records.values())
        # The runs really overlapped in time.
        assert max(r.start_time for r in records.values()) < min(r.end_time for r in records.values())
        # Inside each run, the footage and consent steps ran in their own spawned processes.
        assert defs.resolve_job_def("daily_partitions_job").executor_def.name == "multiprocess"
        for _, _, run_id in outcomes:
            events = [e.dagster_event for e in instance.all_logs(run_id) if e.dagster_event]
            step_pids = {e.step_key: e.pid for e in events if e.event_type == dg.DagsterEventType.STEP_START}
            run_pid = next(e.pid for e in events if e.event_type == dg.DagsterEventType.RUN_START)
            pids = {step_pids["footage_inventory"], step_pids["consent_daily"], run_pid}
            assert len(pids) == 3, (step_pids, run_pid)

    store = DeltaStore(str(tmp_path / "lake"))
    inventory = store.read("footage_inventory").to_pylist()
    got = sorted((r["upload_day"].isoformat(), r["clip_id"]) for r in inventory)
    assert got == sorted((day, clip) for day, clips in by_day.items() for clip in clips)  # all there, once each
    assert not any(r["is_duplicate"] for r in inventory)
    assert store.read("footage_quarantine").num_rows == 0
    # s1, s2, s3 opt in at noon on the three days, each then in their review window
    daily = store.read("consent_daily").to_pylist()
    counts = {(r["snapshot_date"].isoformat(), r["ineligible_reason"]): r["subscribers"] for r in daily}
    assert counts == {
        ("2025-01-02", "in_review_window"): 1,
        ("2025-01-02", "not_opted_in"): 2,
        ("2025-01-03", "in_review_window"): 2,
        ("2025-01-03", "not_opted_in"): 1,
        ("2025-01-04", "in_review_window"): 3,
    }
    # One commit per run and table at least (the writers did not overwrite each other).
    assert len(store.table("footage_inventory").history()) >= len(DAYS)
