"""Jobs, schedules and the landing sensor (docs/AUTOMATION.md), evaluated with Dagster's
own contexts on a persistent test instance, and the nightly and monthly-close jobs run
for real on a tiny landing zone."""

import json
from datetime import UTC, date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import dagster as dg
import pytest
from conftest import encode_mp4

from gopro_assets.definitions import defs
from gopro_assets.defs.finance import monthly_close
from gopro_assets.defs.ingestion import automation as landing_automation
from gopro_assets.defs.operations import nightly as nightly_automation
from gopro_assets.lake.delta_store import DeltaStore
from gopro_assets.shared.partitions import THROUGH_TAG, daily_partitions, monthly_partitions
from gopro_assets.shared.resources import LakehouseResource

UTC = UTC
LA = ZoneInfo("America/Los_Angeles")


# -- a tiny landing zone: one clip uploaded and sold on the last day of February ----------
def build_tiny_landing(root: Path) -> None:
    """s1 (US, invited, opted in on Jan 2) uploads a 12 s SD clip on 2025-02-28; deal D1
    buys SD at 100 cents/minute in batch B1, cut off later that day: gross 20, pool 10."""
    files = {
        "subscribers/2025-01.csv": "subscriber_id,email,country,subscribed_at,cancelled_at,invited_at\n"
        "s1,one@example.com,US,2024-12-01T00:00:00Z,,2024-12-15T00:00:00Z\n",
        "consent_events/2025-01.jsonl": json.dumps(
            {"event_id": "e1", "subscriber_id": "s1", "event_at": "2025-01-02T00:00:00Z", "action": "opt_in"}
        )
        + "\n",
        "uploads/2025-02.jsonl": json.dumps(
            {
                "clip_id": "c1",
                "subscriber_id": "s1",
                "object_key": "s1/GH010001.MP4",
                "uploaded_at": "2025-02-28T08:00:00Z",
                "published": False,
                "activity": "surf",
                "mount": "helmet",
            }
        )
        + "\n",
        "deals/D1.json": json.dumps(
            {
                "deal_id": "D1",
                "buyer_id": "acme-ai",
                "buyer_name": "Acme AI",
                "signed_at": "2025-01-01T00:00:00Z",
                "pricing": {"model": "per_minute", "tier_prices_cents": {"sd": 100}},
                "batches": [{"batch_id": "B1", "cutoff_at": "2025-02-28T20:00:00Z", "max_minutes": None}],
            }
        ),
        "buyer_payments/p.csv": "payment_id,deal_id,batch_id,amount_cents,received_at\n",
        "payouts/p.csv": "payout_id,subscriber_id,statement_month,amount_cents,paid_at\n",
    }
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    encode_mp4(root / "footage/s1/GH010001.MP4", width=64, height=36, fps=1, seconds=12, shade=20)


def lakehouse_at(tmp_path: Path) -> LakehouseResource:
    return LakehouseResource(
        landing=str(tmp_path / "landing"), lake=str(tmp_path / "lake"), exports=str(tmp_path / "exports")
    )


def defs_on(lakehouse: LakehouseResource) -> dg.Definitions:
    """The code location's own assets, checks and jobs, bound to a test lake."""
    return dg.Definitions(
        assets=list(defs.assets),
        asset_checks=list(defs.asset_checks),
        jobs=[landing_automation.ingestion_job, nightly_automation.nightly_job, monthly_close.monthly_close_job],
        resources={"lakehouse": lakehouse},
    )


def tick(schedule: dg.ScheduleDefinition, at: datetime, instance: dg.DagsterInstance | None = None):
    # with the code location's repository, as the daemon evaluates it (partition keys resolve)
    with dg.build_schedule_context(
        instance=instance, scheduled_execution_time=at, repository_def=defs.get_repository_def()
    ) as context:
        return schedule.evaluate_tick(context)


def only_request(data) -> dg.RunRequest:
    assert data.skip_message is None, data.skip_message
    assert len(data.run_requests) == 1
    return data.run_requests[0]


# -- jobs ----------------------------------------------------------------------------
def test_jobs_split_the_graph_by_partitions_and_keep_dependency_order():
    graph = defs.resolve_asset_graph()
    nightly = defs.resolve_job_def("nightly_job")
    close = defs.resolve_job_def("monthly_close_job")
    ingestion = defs.resolve_job_def("ingestion_job")
    n_keys = set(nightly.asset_layer.executable_asset_keys)
    c_keys = set(close.asset_layer.executable_asset_keys)
    assert nightly.partitions_def == daily_partitions
    assert close.partitions_def == monthly_partitions
    assert ingestion.partitions_def is None
    # every run of a job carries its tag, however it is started (the run queue limits them)
    assert [j.run_tags.get("gopro/automation") for j in (ingestion, nightly, close)] == [
        "ingestion",
        "nightly",
        "monthly_close",
    ]
    # every materializable asset is in exactly one of the two scheduled jobs
    materializable = {k for k in graph.get_all_asset_keys() if graph.get(k).is_materializable}
    assert n_keys | c_keys == materializable and not n_keys & c_keys
    # the chain runs in the nightly; the monthly models and their exports in the close
    names = {k.to_user_string() for k in n_keys}
    assert {
        "subscribers",
        "uploads",
        "license_batches",
        "footage_inventory",
        "footage_quarantine",
        "consent_snapshots",
        "consent_daily",
        "deal_deliveries",
        "batch_revenue",
        "revenue_share_allocations",
        "buyer_receivables",
    } <= names
    assert {"revenue_share_statements", "payout_reconciliation"} <= {k.to_user_string() for k in c_keys}
    # nothing in the nightly waits for the close (the close only reads what the nightly built)
    for key in n_keys:
        assert not set(graph.get(key).parent_keys) & c_keys, key
    assert {k.to_user_string() for k in ingestion.asset_layer.executable_asset_keys} == {
        "subscribers",
        "consent_events",
        "clip_exclusions",
        "uploads",
        "buyer_payments",
        "payouts",
        "license_deals",
        "license_batches",
        "quarantine_rows",
    }
    # the blocking checks run inside the jobs, so a failed check stops what is downstream
    checks = {(k.asset_key.to_user_string(), k.name) for k in nightly.asset_layer.asset_graph.asset_check_keys}
    assert ("deal_deliveries", "delivered_owners_eligible_at_cutoff") in checks


def test_schedules_and_sensor_are_registered_and_off_until_enabled():
    repo = defs.get_repository_def()
    assert {s.name for s in repo.schedule_defs} >= {"nightly_schedule", "monthly_close_schedule"}
    assert "landing_sensor" in {s.name for s in repo.sensor_defs}
    assert nightly_automation.nightly_schedule.job_name == "nightly_job"
    assert monthly_close.monthly_close_schedule.job_name == "monthly_close_job"
    assert landing_automation.landing_sensor.job_name == "ingestion_job"
    for d in [nightly_automation.nightly_schedule, monthly_close.monthly_close_schedule]:
        assert d.default_status == dg.DefaultScheduleStatus.STOPPED
    assert landing_automation.landing_sensor.default_status == dg.DefaultSensorStatus.STOPPED


# -- the nightly schedule --------------------------------------------------------------
def test_nightly_runs_at_two_in_los_angeles_winter_and_summer():
    s = nightly_automation.nightly_schedule
    assert s.execution_timezone == "America/Los_Angeles"
    minute, hour = s.cron_schedule.split()[:2]
    assert (minute, hour) == ("0", "2")
    # 02:00 in Los Angeles is 10:00 UTC in winter (PST) and 09:00 UTC in summer (PDT)
    assert datetime(2025, 1, 15, 2, tzinfo=LA).astimezone(UTC).hour == 10
    assert datetime(2025, 7, 15, 2, tzinfo=LA).astimezone(UTC).hour == 9

    winter = only_request(tick(s, datetime(2025, 1, 15, 10, 0, tzinfo=UTC)))
    assert winter.partition_key == "2025-01-14"
    assert winter.tags[THROUGH_TAG] == "2025-01-14"
    assert winter.run_key == "nightly-2025-01-14"
    summer = only_request(tick(s, datetime(2025, 7, 15, 9, 0, tzinfo=UTC)))
    assert (summer.partition_key, summer.tags[THROUGH_TAG]) == ("2025-07-14", "2025-07-14")
    # the same ticks expressed in Los Angeles time give the same requests
    assert only_request(tick(s, datetime(2025, 1, 15, 2, 0, tzinfo=LA))).partition_key == "2025-01-14"
    # spring forward (2025-03-09): 02:00 does not exist, Dagster ticks at 03:00 PDT
    assert only_request(tick(s, datetime(2025, 3, 9, 3, 0, tzinfo=LA))).partition_key == "2025-03-08"
    # New Year: the nightly of January 1st closes December 31st
    assert only_request(tick(s, datetime(2026, 1, 1, 2, 0, tzinfo=LA))).partition_key == "2025-12-31"


def test_nightly_before_the_first_partition_skips():
    data = tick(nightly_automation.nightly_schedule, datetime(2025, 1, 1, 2, 0, tzinfo=LA))
    assert not data.run_requests and "before the first partition" in data.skip_message


# -- nightly and monthly close, for real -----------------------------------------------------
@pytest.mark.integration
@pytest.mark.system  # real nightly and monthly-close runs
def test_nightly_run_then_monthly_close_for_february(tmp_path):
    build_tiny_landing(tmp_path / "landing")
    lakehouse = lakehouse_at(tmp_path)
    local = defs_on(lakehouse)
    close_tick = datetime(2025, 3, 1, 4, 0, tzinfo=LA)
    with dg.instance_for_test() as instance:
        # 04:00 on March 1st with no nightly through Feb 28 yet: the close waits
        waiting = tick(monthly_close.monthly_close_schedule, close_tick, instance)
        assert not waiting.run_requests and "2025-02-28 has not run" in waiting.skip_message

        # the nightly tick of March 1st, 02:00 LA = 10:00 UTC: Feb 28, run as the daemon would
        nightly = only_request(
            tick(nightly_automation.nightly_schedule, datetime(2025, 3, 1, 10, 0, tzinfo=UTC), instance)
        )
        assert (nightly.partition_key, nightly.tags[THROUGH_TAG]) == ("2025-02-28", "2025-02-28")
        result = local.resolve_job_def("nightly_job").execute_in_process(
            instance=instance, partition_key=nightly.partition_key, tags=nightly.tags, raise_on_error=False
        )
        assert result.success
        run = instance.get_run_by_id(result.run_id)
        assert (run.job_name, run.tags["gopro/automation"], run.tags["dagster/partition"]) == (
            "nightly_job",
            "nightly",
            "2025-02-28",
        )
        done = {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}
        assert {"uploads", "footage_inventory", "consent_snapshots", "deal_deliveries", "batch_revenue"} <= done
        assert not done & {"revenue_share_statements", "payout_reconciliation"}
        store = DeltaStore(lakehouse.lake)
        assert [
            (r["batch_id"], r["gross_cents"], r["pool_cents"]) for r in store.read("batch_revenue").to_pylist()
        ] == [("B1", 20, 10)]
        # what the UI shows for a SQL model: row count, column schema and column lineage
        revenue = next(
            e for e in result.get_asset_materialization_events() if e.asset_key == dg.AssetKey("batch_revenue")
        ).materialization.metadata
        assert revenue["dagster/row_count"].value == 1
        assert "gross_cents" in {c.name for c in revenue["dagster/column_schema"].value.columns}
        lineage = revenue["dagster/column_lineage"].value.deps_by_column
        assert {d.asset_key.to_user_string() for d in lineage["gross_cents"]} >= {"deal_deliveries"}
        # ingestion first, then the day's partition, then the unpartitioned models after it
        order = [e.asset_key.to_user_string() for e in result.get_asset_materialization_events()]
        assert (
            order.index("uploads")
            < order.index("footage_inventory")
            < order.index("deal_deliveries")
            < order.index("batch_revenue")
        )

        # 04:00 LA on March 1st closes February
        close = only_request(tick(monthly_close.monthly_close_schedule, close_tick, instance))
        assert (close.partition_key, close.tags[THROUGH_TAG], close.run_key) == (
            "2025-02-01",
            "2025-02-28",
            "close-2025-02",
        )
        result = local.resolve_job_def("monthly_close_job").execute_in_process(
            instance=instance, partition_key=close.partition_key, tags=close.tags, raise_on_error=False
        )
        assert result.success
        statements = store.read("revenue_share_statements").to_pylist()
        assert [
            (r["statement_month"], r["subscriber_id"], r["earned_cents"], r["carried_forward_cents"])
            for r in statements
        ] == [("2025-02", "s1", 10, 10)]
        assert {r["statement_month"] for r in store.read("payout_reconciliation").to_pylist()} <= {"2025-02"}

        # the later ticks of that day see the close run and skip
        later = tick(monthly_close.monthly_close_schedule, datetime(2025, 3, 1, 5, 0, tzinfo=LA), instance)
        assert not later.run_requests and "already has a close run" in later.skip_message


def test_monthly_close_waits_for_a_failed_nightly():
    with dg.instance_for_test() as instance:
        instance.create_run_for_job(
            defs.resolve_job_def("nightly_job"),
            status=dg.DagsterRunStatus.FAILURE,
            tags={THROUGH_TAG: "2025-02-28", "dagster/partition": "2025-02-28"},
        )
        data = tick(monthly_close.monthly_close_schedule, datetime(2025, 3, 1, 4, 0, tzinfo=LA), instance)
        assert not data.run_requests and "FAILURE" in data.skip_message


def test_monthly_close_month_boundaries():
    assert monthly_close.monthly_close_schedule.execution_timezone == "America/Los_Angeles"
    assert monthly_close.monthly_close_schedule.cron_schedule.split()[1:3] == ["4-23", "1"]
    assert monthly_close.month_closed_at(datetime(2025, 3, 1, 4, tzinfo=LA)) == date(2025, 2, 28)
    assert monthly_close.month_closed_at(datetime(2024, 3, 1, 4, tzinfo=LA)) == date(2024, 2, 29)
    assert monthly_close.month_closed_at(datetime(2026, 1, 1, 4, tzinfo=LA)) == date(2025, 12, 31)
    # 04:00 LA on the 1st is already the 1st in UTC as well (11:00 or 12:00)
    assert monthly_close.month_closed_at(datetime(2025, 8, 1, 11, 0, tzinfo=UTC)) == date(2025, 7, 31)


# -- the landing sensor --------------------------------------------------------------------
def sense(lakehouse: LakehouseResource, instance: dg.DagsterInstance, cursor: str | None):
    context = dg.build_sensor_context(cursor=cursor, instance=instance, resources={"lakehouse": lakehouse})
    return landing_automation.landing_sensor(context)


def test_landing_sensor_requests_ingestion_once_per_new_listing(tmp_path):
    landing = tmp_path / "landing"
    landing.mkdir()
    lakehouse = lakehouse_at(tmp_path)
    with dg.instance_for_test() as instance:
        empty = sense(lakehouse, instance, None)
        assert isinstance(empty, dg.SkipReason) and "no landing files" in empty.skip_message

        (landing / "subscribers").mkdir()
        (landing / "subscribers" / "2025-01.csv").write_text(
            "subscriber_id,email,country,subscribed_at,cancelled_at,invited_at\n"
        )
        first = sense(lakehouse, instance, None)
        assert isinstance(first, dg.SensorResult) and len(first.run_requests) == 1
        cursor, key = first.cursor, first.run_requests[0].run_key
        assert key.startswith("landing-") and first.run_requests[0].tags["gopro/landing_files"] == "1"
        # the run key is a function of the listing: a lost cursor update cannot start a second run
        assert sense(lakehouse, instance, None).run_requests[0].run_key == key

        same = sense(lakehouse, instance, cursor)
        assert isinstance(same, dg.SkipReason) and "no new or changed files" in same.skip_message
        # a video alone is not something ingestion reads: no run
        encode_mp4(landing / "footage" / "s1" / "GH010001.MP4")
        assert isinstance(sense(lakehouse, instance, cursor), dg.SkipReason)
        # a file of a kind the sensor does not know is ignored too
        (landing / "subscribers" / "notes.txt").write_text("hello")
        assert isinstance(sense(lakehouse, instance, cursor), dg.SkipReason)

        (landing / "uploads").mkdir()
        (landing / "uploads" / "2025-01.jsonl").write_text("{}\n")
        second = sense(lakehouse, instance, cursor)
        assert isinstance(second, dg.SensorResult) and second.cursor != cursor
        assert second.run_requests[0].run_key != key

        # a file that grows (appended rows) is a change as well
        with open(landing / "uploads" / "2025-01.jsonl", "a") as f:
            f.write("{}\n")
        third = sense(lakehouse, instance, second.cursor)
        assert isinstance(third, dg.SensorResult) and third.cursor not in (cursor, second.cursor)


def test_landing_sensor_waits_while_ingestion_is_running(tmp_path):
    landing = tmp_path / "landing"
    (landing / "deals").mkdir(parents=True)
    (landing / "deals" / "D1.json").write_text("{}")
    lakehouse = lakehouse_at(tmp_path)
    with dg.instance_for_test() as instance:
        run = instance.create_run_for_job(defs.resolve_job_def("ingestion_job"), status=dg.DagsterRunStatus.STARTED)
        busy = sense(lakehouse, instance, None)
        assert isinstance(busy, dg.SkipReason) and run.run_id in busy.skip_message
        instance.report_run_failed(run)
        assert isinstance(sense(lakehouse, instance, None), dg.SensorResult)


@pytest.mark.integration
def test_landing_sensor_request_runs_the_ingestion_job(tmp_path):
    build_tiny_landing(tmp_path / "landing")
    lakehouse = lakehouse_at(tmp_path)
    with dg.instance_for_test() as instance:
        request = sense(lakehouse, instance, None).run_requests[0]
        result = (
            defs_on(lakehouse)
            .resolve_job_def("ingestion_job")
            .execute_in_process(instance=instance, tags=request.tags, raise_on_error=False)
        )
        assert result.success
        store = DeltaStore(lakehouse.lake)
        assert store.read("uploads").num_rows == 1 and store.read("license_batches").num_rows == 1
