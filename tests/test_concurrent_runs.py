"""Two writers on one lake: two `gopro-lake materialize` started together, a schedule tick
overlapping a manual run, and two processes racing to freeze the same batches. Each ends
with the tables of a single run, or one side refuses with a clear message; never a
batch delivered twice, never money counted twice (docs/RELIABILITY.md, "Concurrent runs").
"""

from __future__ import annotations

import multiprocessing
import shutil
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from datetime import date, timedelta

import pytest

from gopro_tools import crash_harness as ch

pytestmark = pytest.mark.integration

REFUSAL = "another materialize run is in progress (run id "
# Steps in the lake_writer pool (gopro_assets/shared/concurrency.py) that both runs execute.
POOL_STEPS = {
    "ingest_landing",
    "deal_deliveries",
    "batch_revenue",
    "revenue_share_allocations",
    "consent_snapshots",
    "buyer_receivables",
}


@pytest.fixture(scope="module")
def landing(tmp_path_factory):
    return ch.build_landing(tmp_path_factory.mktemp("landing") / "landing")


@pytest.fixture(scope="module")
def clean(landing, tmp_path_factory):
    """A single run through THROUGH on a fresh lake: what every scenario must end with."""
    lake = ch.Lake(tmp_path_factory.mktemp("clean"), landing)
    attempt = ch.run(lake)
    assert attempt.returncode == 0, attempt.log[-4000:]
    return ch.snapshot(lake)


def assert_money_once(lake: ch.Lake) -> None:
    batches = Counter((r["deal_id"], r["batch_id"]) for r in ch.read_rows(lake.lake, "delivered_batches"))
    assert batches and max(batches.values()) == 1, batches
    clips = Counter((r["deal_id"], r["clip_id"]) for r in ch.read_rows(lake.lake, "deal_deliveries"))
    assert max(clips.values()) == 1, [k for k, n in clips.items() if n > 1]
    revenue = Counter((r["deal_id"], r["batch_id"]) for r in ch.read_rows(lake.lake, "batch_revenue"))
    assert max(revenue.values()) == 1


@pytest.mark.system  # two real CLI runs at once: minutes
def test_two_materialize_started_together_end_like_one_run(landing, clean, tmp_path):
    lake = ch.Lake(tmp_path, landing)
    (a, log_a), (b, log_b) = ch.start(lake), ch.start(lake)
    codes = [a.wait(timeout=900), b.wait(timeout=900)]
    logs = [log_a.read_text(), log_b.read_text()]
    ch.kill_group(a), ch.kill_group(b)
    assert sorted(codes) in ([0, 0], [0, 3]), (codes, [log[-3000:] for log in logs])
    for code, log in zip(codes, logs):
        if code == 3:  # refused up front, before writing anything, and said why
            assert REFUSAL in log, log[-2000:]
    assert ch.diff(clean, ch.snapshot(lake)) == []
    assert_money_once(lake)
    print(f"\nexit codes {codes} (3 = refused)")


@pytest.mark.system  # a real scheduled run and a CLI
def test_materialize_refuses_while_a_scheduled_run_is_in_progress(landing, tmp_path):
    lake = ch.Lake(tmp_path, landing)
    gate = tmp_path / "let-the-scheduled-run-go-on"
    scheduled, scheduled_log = ch.start_scheduled(lake, hold=gate)
    try:
        run = ch.wait_for_run(
            lake, lambda r: r.tags.get("dagster/schedule_name") == "nightly_schedule" and r.status.value == "STARTED"
        )
        attempt = ch.run(lake, timeout=300)
        gate.touch()
        assert attempt.returncode == 3, attempt.log[-3000:]
        assert REFUSAL + run.run_id in attempt.log, attempt.log[-2000:]
        assert "schedule nightly_schedule" in attempt.log
        assert not any(line.startswith("[") and "] [1/" in line for line in attempt.log.splitlines())  # no run started
    finally:
        gate.touch()
        assert scheduled.wait(timeout=900) == 0, scheduled_log.read_text()[-3000:]
        ch.kill_group(scheduled)


@pytest.mark.system  # a real schedule tick and CLI run: minutes
def test_schedule_tick_overlapping_a_manual_run_ends_like_one_run(landing, clean, tmp_path):
    """The lake is up to date through the day before; the nightly tick for THROUGH starts
    while a manual `materialize --through THROUGH` is running (schedules do not ask the
    CLI). Their lake_writer steps take turns (the pool), the March batches are frozen
    once, and the tables are those of one run."""
    lake = ch.Lake(tmp_path, landing)
    day_before = (date.fromisoformat(ch.THROUGH) - timedelta(days=1)).isoformat()
    assert ch.run(lake, through=day_before).returncode == 0

    manual, manual_log = ch.start(lake)
    ch.wait_for_run(
        lake,
        lambda r: (
            r.tags.get("gopro/materialize") == "cli"
            and r.status.value == "STARTED"
            and r.tags.get("gopro/through") == ch.THROUGH
        ),
    )
    scheduled, scheduled_log = ch.start_scheduled(lake)
    assert manual.wait(timeout=900) == 0, manual_log.read_text()[-3000:]
    assert scheduled.wait(timeout=900) == 0, scheduled_log.read_text()[-3000:]
    ch.kill_group(manual), ch.kill_group(scheduled)

    got = ch.snapshot(lake)
    # The run through the day before trained a model on February: its artefacts stay
    # beside the current ones (model versions are kept, latest.json names the served one).
    current = {f.rsplit("/", 1)[0] for f in clean["__files__"] if f.startswith("lake/_models/") and f.count("/") > 3}
    got["__files__"] = {
        f: h
        for f, h in got["__files__"].items()
        if not (f.startswith("lake/_models/") and f.count("/") > 3 and f.rsplit("/", 1)[0] not in current)
    }
    assert ch.diff(clean, got) == []
    assert_money_once(lake)
    # The two runs really overlapped, and their lake_writer steps never did.
    assert_pool_turns(lake)


def assert_pool_turns(lake: ch.Lake) -> None:
    with ch.instance(lake) as inst:
        records = inst.get_run_records()
    scheduled = [r for r in records if r.dagster_run.tags.get("dagster/schedule_name")]
    manual = [
        r
        for r in records
        if r.dagster_run.tags.get("gopro/materialize") == "cli"
        and r.dagster_run.tags.get("gopro/through") == ch.THROUGH
    ]
    assert len(scheduled) == 1 and manual
    tick = scheduled[0]
    assert min(r.start_time for r in manual) < tick.end_time and tick.start_time < max(r.end_time for r in manual)
    intervals = ch.pool_step_intervals(lake, POOL_STEPS)
    assert tick.dagster_run.run_id in {run for _, _, run, _ in intervals}
    for (_, e1, r1, k1), (s2, _, r2, k2) in zip(intervals, intervals[1:]):
        assert e1 <= s2, f"{k1} of run {r1} and {k2} of run {r2} overlapped"


# -- what the CLI does before it starts (gopro_assets/shared/concurrency.py), without a CLI ----------


def _instance_with_runs(tmp_path, runs: list[tuple[str, dict]]):
    """An instance (the CLI's dagster.yaml) holding runs with the given statuses and tags."""
    import dagster as dg

    from gopro_assets.shared.concurrency import DAGSTER_YAML

    home = tmp_path / "home"
    home.mkdir()
    (home / "dagster.yaml").write_text(DAGSTER_YAML)
    instance = dg.DagsterInstance.from_config(str(home))

    @dg.op
    def noop():
        pass

    @dg.job
    def a_job():
        noop()

    made = [instance.create_run_for_job(a_job, status=dg.DagsterRunStatus(status), tags=tags) for status, tags in runs]
    return instance, made


def _dead_pid() -> int:
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_a_killed_cli_run_is_closed_and_its_pool_slot_freed(tmp_path):
    """A SIGKILLed CLI leaves its run STARTED and its lake_writer slot claimed: every
    later run would wait for the slot forever. The next CLI closes the run and frees it."""
    from gopro_assets.shared import concurrency as cc

    dead = {**cc.session_tags(), cc.PROCESS_TAG: cc.process_tag(_dead_pid())}
    instance, (killed, mine_earlier) = _instance_with_runs(
        tmp_path, [("STARTED", dead), ("SUCCESS", cc.session_tags())]
    )
    storage = instance.event_log_storage
    assert storage.get_pool_config().default_pool_limit == 1
    storage.initialize_concurrency_limit_to_default(cc.LAKE_WRITER_POOL)  # as a run's first claim does
    storage.claim_concurrency_slot(cc.LAKE_WRITER_POOL, killed.run_id, "deal_deliveries")
    assert [s.run_id for s in storage.get_concurrency_info(cc.LAKE_WRITER_POOL).claimed_slots] == [killed.run_id]

    done = cc.recover_abandoned_runs(instance)
    assert any("marked failed" in line for line in done) and any("freed" in line for line in done), done
    assert instance.get_run_by_id(killed.run_id).status.value == "FAILURE"
    assert storage.get_concurrency_info(cc.LAKE_WRITER_POOL).claimed_slots == []
    assert cc.busy_runs(instance) == []  # this process's own earlier run does not block it
    assert cc.recover_abandoned_runs(instance) == []  # nothing left to do
    instance.dispose()


def test_in_progress_runs_and_live_clis_between_runs_block_a_new_cli(tmp_path):
    import subprocess
    import sys

    from gopro_assets.shared import concurrency as cc

    other_cli = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        live = {**cc.session_tags(), cc.PROCESS_TAG: cc.process_tag(other_cli.pid)}
        instance, (scheduled, between) = _instance_with_runs(
            tmp_path,
            [
                ("STARTED", {"dagster/schedule_name": "nightly_schedule"}),
                ("SUCCESS", live),  # a live CLI between two of its runs
            ],
        )
        busy = {b.run_id: b for b in cc.busy_runs(instance)}
        assert set(busy) == {scheduled.run_id, between.run_id}
        message = busy[scheduled.run_id].message()
        assert message.startswith(REFUSAL + scheduled.run_id) and "schedule nightly_schedule" in message
        assert f"pid {other_cli.pid}" in busy[between.run_id].message()
        instance.dispose()
    finally:
        other_cli.kill()
        other_cli.wait()


def test_cli_writes_the_pool_limit_and_upgrades_its_old_dagster_yaml(tmp_path, monkeypatch):
    from gopro_assets import cli
    from gopro_assets.shared.concurrency import DAGSTER_YAML

    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "fresh"))
    assert (cli.ensure_dagster_home() / "dagster.yaml").read_text() == DAGSTER_YAML
    old = tmp_path / "old"
    old.mkdir()
    (old / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")  # what earlier CLIs wrote
    monkeypatch.setenv("DAGSTER_HOME", str(old))
    assert (cli.ensure_dagster_home() / "dagster.yaml").read_text() == DAGSTER_YAML
    custom = tmp_path / "custom"
    custom.mkdir()
    (custom / "dagster.yaml").write_text("telemetry:\n  enabled: true\n")
    monkeypatch.setenv("DAGSTER_HOME", str(custom))
    assert (cli.ensure_dagster_home() / "dagster.yaml").read_text() == "telemetry:\n  enabled: true\n"
    assert sorted(p.name for p in tmp_path.rglob("*")) == [
        "custom",
        "dagster.yaml",
        "dagster.yaml",
        "dagster.yaml",
        "fresh",
        "old",
    ]  # no temp file left


# -- two processes racing to freeze the same batches (no Dagster, no pool) -------------------


def _prepare_upstream(landing, lake_dir) -> None:
    """Everything deliveries read: ingestion, the inventory, the consent intervals and the exclusion timeline."""
    from gopro_assets.domain.footage.inventory import refresh_inventory
    from gopro_assets.domain.footage.probe import probe_many
    from gopro_assets.domain.ingestion import landing as landing_lib
    from gopro_assets.domain.ingestion.ingest import INGEST_ORDER, ingest_deals, ingest_kind, known_subscriber_validator
    from gopro_assets.lake.delta_store import DeltaStore
    from gopro_assets.lake.storage import FileRoot
    from gopro_assets.settings import end_of_day
    from gopro_tools.pipeline import run_sql

    store, root = DeltaStore(str(lake_dir)), FileRoot(str(landing))
    for name in INGEST_ORDER:
        validate = known_subscriber_validator(store) if name == "uploads" else None
        ingest_kind(store, root, landing_lib.LANDING_KINDS[name], validate=validate)
    ingest_deals(store, root)
    first, through = date.fromisoformat(ch.START_DATE), date.fromisoformat(ch.THROUGH)
    days = [first + timedelta(days=i) for i in range((through - first).days + 1)]
    refresh_inventory(store, str(landing), days, first, probe_many)
    base = {
        "as_of": end_of_day(through).isoformat(),
        "share_rate_num": 1,
        "share_rate_den": 2,
        "min_payout_cents": 1000,
        "review_days": 7,
    }
    run_sql(store, "consent_snapshots", base)
    run_sql(store, "int_clip_exclusion_timeline", base)


def _deliver_due(lake_dir: str, barrier, where: str) -> int:
    """Freeze every due batch (the deal_deliveries asset's loop). ``where`` lines the two
    processes up: "due" after both listed the due batches, "marker" at every marker
    insert after both passed the delivered check (the last line of defence)."""
    from gopro_assets.domain.licensing import deliveries
    from gopro_assets.lake.delta_store import DeltaStore
    from gopro_assets.settings import end_of_day

    store = DeltaStore(lake_dir)
    deliveries.ensure_tables(store)
    deals = {d["deal_id"]: d for d in store.read("license_deals").to_pylist()}
    due = deliveries.due_batches(store, end_of_day(date.fromisoformat(ch.THROUGH)))
    if where == "marker":
        deliveries.is_delivered = lambda *a, **k: False
        real = DeltaStore.insert_new

        def synced(self, *a, **k):
            barrier.wait(120)
            return real(self, *a, **k)

        DeltaStore.insert_new = synced
    elif barrier is not None:
        barrier.wait(120)
    frozen = 0
    for batch in due:
        if batch["deal_id"] in deals:
            frozen += deliveries.deliver_batch(store, batch, deals[batch["deal_id"]], 7) is not None
    return frozen


@pytest.fixture(scope="module")
def upstream(landing, tmp_path_factory):
    lake_dir = tmp_path_factory.mktemp("upstream") / "lake"
    _prepare_upstream(landing, lake_dir)
    return lake_dir


def _frozen_tables(lake_dir) -> dict:
    return {
        t: sorted(ch.row_key(r) for r in ch.read_rows(lake_dir, t)) for t in ("deal_deliveries", "delivered_batches")
    }


@pytest.mark.system  # two spawned processes racing on a real lake
@pytest.mark.parametrize("where", ["due", "marker"])
def test_two_processes_racing_freeze_each_batch_once(upstream, tmp_path, where):
    alone, raced = tmp_path / "alone", tmp_path / "raced"
    shutil.copytree(upstream, alone)
    shutil.copytree(upstream, raced)
    expected_batches = _deliver_due(str(alone), None, "alone")  # one process: the reference
    assert expected_batches > 0
    ctx = multiprocessing.get_context("spawn")  # deltalake does not survive fork
    with ctx.Manager() as manager:
        barrier = manager.Barrier(2)
        # an executor, not multiprocessing.Pool: a worker that dies fails the test, never hangs it
        with ProcessPoolExecutor(2, mp_context=ctx) as pool:
            started = time.monotonic()
            frozen = list(pool.map(_deliver_due, [str(raced)] * 2, [barrier] * 2, [where] * 2, timeout=600))
    assert sum(frozen) == expected_batches, frozen  # each batch frozen by exactly one of them
    assert _frozen_tables(raced) == _frozen_tables(alone)
    assert max(Counter((r["deal_id"], r["batch_id"]) for r in ch.read_rows(raced, "delivered_batches")).values()) == 1
    print(f"\n{where}: {frozen} batches frozen per process in {time.monotonic() - started:.1f}s")
