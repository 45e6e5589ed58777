"""Delta retention keeps the audit promises (docs/RELIABILITY.md, "Retention").

The versions that ``delivered_batches``, the statement rows and the incremental models
record stay readable through the weekly maintenance job (OPTIMIZE, VACUUM, checkpoint and
expired-log cleanup), even when the job is asked for a 0-hour VACUUM window and the lake's
log files are two years old; the tables whose versions are pinned carry the audit
properties of ``lake/retention.py``, on creation and, for tables that predate them, once
the maintenance job has run. Real Delta tables, the real SQL models, the real job.
"""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime

import dagster as dg
import pyarrow as pa
import pytest
from conftest import month_vars, run_sql_model, write_rows
from deltalake import DeltaTable, write_deltalake
from test_explain import BATCHES, DELIVERIES, batch, delivery
from test_incremental_models import scope

from gopro_assets.defs.operations.maintenance import lake_maintenance_job, pinned_versions
from gopro_assets.domain.finance import explain as explain_lib
from gopro_assets.domain.finance.explain import explain, render_text
from gopro_assets.domain.licensing import deliveries as deliveries_lib
from gopro_assets.domain.licensing.deliveries import DELIVERED_BATCH_SCHEMA, DELIVERY_SCHEMA
from gopro_assets.lake import retention
from gopro_assets.lake.delta_store import DeltaStore
from gopro_assets.shared.resources import LakehouseResource
from gopro_assets.shared.s3 import s3_resource_from_env
from gopro_assets.sql_engine.runner import discover

MAR = datetime(2025, 3, 20, 12, tzinfo=UTC)
TWO_YEARS = 2 * 365 * 86400
SUBSCRIBERS = pa.schema([("subscriber_id", pa.string()), ("country", pa.string())])
RETENTION_KEYS = (retention.LOG_RETENTION, retention.DELETED_FILE_RETENTION, retention.EXPIRED_LOG_CLEANUP)


def run_maintenance(store: DeltaStore, retention_hours: int | None = None) -> dict:
    """lake_maintenance_job as the schedule runs it (execute_in_process), on ``store``'s lake."""
    base = os.path.dirname(store.root)
    lakehouse = LakehouseResource(landing=f"{base}/landing", lake=store.root, exports=f"{base}/exports")
    job = dg.Definitions(
        jobs=[lake_maintenance_job], resources={"lakehouse": lakehouse, "s3": s3_resource_from_env()}
    ).resolve_job_def(lake_maintenance_job.name)
    config = {} if retention_hours is None else {"retention_hours": retention_hours}
    result = job.execute_in_process(run_config={"ops": {"optimize_and_vacuum_lake": {"config": config}}})
    assert result.success
    return result.output_for_node("optimize_and_vacuum_lake")


def age_lake(root: str, seconds: int) -> None:
    """Set back the modification time of every file of the lake (log and data) by ``seconds``:
    expired-log cleanup judges log files by it."""
    then = time.time() - seconds
    for folder, _, files in os.walk(root):
        for name in files:
            os.utime(os.path.join(folder, name), (then, then))


def rows(store: DeltaStore, table: str, version: int) -> list:
    return sorted(map(str, store.read(table, version=version).to_pylist()))


def test_audited_tables_cover_every_table_whose_versions_are_recorded():
    """The static list that gives new tables their retention at creation names every table
    the code pins: what a batch records, what explain reads back, what an incremental
    model diffs against. (The maintenance job also audits any table it finds recorded.)"""
    recorded = set(deliveries_lib.INPUTS) | {"consent_events", "clip_exclusions", deliveries_lib.DELIVERED_BATCHES}
    recorded |= set(explain_lib.INPUT_TABLES) | {explain_lib.STATEMENTS}
    recorded |= {t for m in discover() for t in (m.changed_keys or {})}
    assert recorded <= retention.AUDITED_TABLES, recorded - retention.AUDITED_TABLES


def test_retention_properties_on_new_and_on_existing_tables(tmp_path):
    store = DeltaStore(str(tmp_path / "lake"))
    # New tables: DeltaStore creates an audited table with the audit properties, any other
    # with Delta's defaults.
    write_rows(store, "delivered_batches", BATCHES[:1], DELIVERED_BATCH_SCHEMA)
    store.append("footage_quarantine", pa.table({"object_key": ["a.MP4"]}))
    assert store.properties("delivered_batches") == retention.AUDIT_PROPERTIES
    assert not set(store.properties("footage_quarantine")) & set(RETENTION_KEYS)

    # Existing tables, written before the policy (no properties, shorter ones, a longer one),
    # and a table that only the recorded versions name ("alpha", pinned by a batch).
    lake = store.root
    one = pa.table({"k": [1]})
    write_deltalake(f"{lake}/subscribers", one)
    write_deltalake(
        f"{lake}/consent_events",
        one,
        configuration={retention.LOG_RETENTION: "interval 30 days", retention.EXPIRED_LOG_CLEANUP: "true"},
    )
    write_deltalake(f"{lake}/clip_exclusions", one, configuration={retention.LOG_RETENTION: "interval 520 weeks"})
    write_deltalake(f"{lake}/alpha", one)
    write_deltalake(f"{lake}/scratch", one)
    store.insert_new(
        "delivered_batches",
        pa.Table.from_pylist([BATCHES[1] | {"input_versions": '{"alpha": 0}'}], schema=DELIVERED_BATCH_SCHEMA),
        key=["deal_id", "batch_id"],
    )
    versions = {t: store.version(t) for t in ("subscribers", "consent_events", "clip_exclusions", "alpha", "scratch")}

    summary = run_maintenance(store)
    audit = retention.AUDIT_PROPERTIES
    for table in ("subscribers", "consent_events", "alpha"):
        assert store.properties(table) == audit, table
        assert summary[table]["properties_set"] == audit and summary[table]["audited"]
        assert store.version(table) == versions[table] + 1  # one commit: ALTER TABLE SET TBLPROPERTIES
    # a longer log retention is kept; the missing ones are added
    assert store.properties("clip_exclusions") == audit | {retention.LOG_RETENTION: "interval 520 weeks"}
    assert set(summary["clip_exclusions"]["properties_set"]) == {
        retention.DELETED_FILE_RETENTION,
        retention.EXPIRED_LOG_CLEANUP,
    }
    assert summary["delivered_batches"]["properties_set"] == {}  # created with them
    assert not set(store.properties("scratch")) & set(RETENTION_KEYS) and not summary["scratch"]["audited"]
    assert store.version("scratch") == versions["scratch"]
    assert summary["subscribers"]["log_cleanup"] == "off (log kept)"
    assert summary["scratch"]["log_cleanup"] == "log files older than 30 days removed"

    # A second run finds every table compliant and commits nothing anywhere: versions that
    # statements record do not move because of maintenance alone.
    before = {t: store.version(t) for t in summary}
    again = run_maintenance(store)
    assert all(s["properties_set"] == {} for s in again.values())
    assert {t: store.version(t) for t in again} == before


def test_log_retention_keeps_old_versions_through_checkpoints(tmp_path):
    """Delta deletes expired log files after each checkpoint (delta-rs: every
    ``delta.checkpointInterval`` commits, here 5). With Delta's 30-day default, versions
    before the checkpoint are gone once their log files are older than that; with the
    audit properties, or with the 8-year logRetentionDuration alone, they stay."""
    durations_only = {k: v for k, v in retention.AUDIT_PROPERTIES.items() if k != retention.EXPIRED_LOG_CLEANUP}
    tables = {"default": {}, "audit": retention.AUDIT_PROPERTIES, "durations_only": durations_only}
    loadable = {}
    for name, properties in tables.items():
        uri = str(tmp_path / name)
        write_deltalake(uri, pa.table({"v": [0]}), configuration=properties | {"delta.checkpointInterval": "5"})
        for v in range(1, 4):
            write_deltalake(uri, pa.table({"v": [v]}), mode="overwrite")
        age_lake(uri, TWO_YEARS)
        for v in range(4, 11):  # checkpoints at versions 5 and 10, each followed by log cleanup
            write_deltalake(uri, pa.table({"v": [v]}), mode="overwrite")
        loadable[name] = []
        for v in range(11):
            try:
                assert DeltaTable(uri, version=v).to_pyarrow_table().column("v").to_pylist() == [v]
                loadable[name].append(v)
            except Exception:  # noqa: BLE001, S112 - the version's log is gone
                continue
    assert loadable["default"] == list(range(4, 11))  # the versions whose log was older than 30 days: lost
    assert loadable["audit"] == loadable["durations_only"] == list(range(11))


@pytest.fixture
def lake(store):
    """The lake of tests/test_explain.py (January and February statements), plus a
    ``subscribers`` table whose version 1 every batch records."""
    write_rows(store, "subscribers", [{"subscriber_id": s, "country": "US"} for s in ("s1", "s2", "s3")], SUBSCRIBERS)
    pinned = [b | {"input_versions": '{"subscribers": 1}'} for b in BATCHES]
    write_rows(store, "deal_deliveries", DELIVERIES, DELIVERY_SCHEMA)
    write_rows(store, "delivered_batches", pinned, DELIVERED_BATCH_SCHEMA)
    run_sql_model(store, "batch_revenue")
    run_sql_model(store, "revenue_share_allocations")
    run_sql_model(store, "revenue_share_statements", **month_vars("2025-01"))
    run_sql_model(store, "revenue_share_statements", **month_vars("2025-02"))
    return store


def test_a_past_statement_is_explained_exactly_after_optimize_and_vacuum(lake):
    store = lake
    # February as it stands now, and every version it (and the batches) pins.
    feb_version = store.version("revenue_share_statements")
    old = {s: explain(store, s, "2025-02") for s in ("s1", "s2")}
    old_text = {s: render_text(e) for s, e in old.items()}
    assert old["s1"].total_cents == 1713 and old["s2"].total_cents == 408 + 102
    pins = {t: v for t, v in old["s1"].input_versions.items() if v is not None}
    pins["revenue_share_statements"] = feb_version
    pins["subscribers"] = 1
    snapshot = {t: rows(store, t, v) for t, v in pins.items()}
    assert scope(store, model="revenue_share_allocations")["full_refresh"] is False

    # March: a batch is delivered as deliver_batch does it (its deliveries replace their
    # batch's rows, its marker is MERGEd in), a subscriber arrives, the money models run
    # again: every input of February has new versions and February's rows are rewritten.
    march = [delivery("D1", "B3", "i", "s2", "hd", 90, 200, MAR)]
    store.replace_where(
        "deal_deliveries", pa.Table.from_pylist(march, schema=DELIVERY_SCHEMA), "deal_id = 'D1' AND batch_id = 'B3'"
    )
    marker = batch("D1", "B3", MAR, "per_minute") | {"input_versions": '{"subscribers": 2}'}
    store.upsert("subscribers", pa.table({"subscriber_id": ["s4"], "country": ["CA"]}), key=["subscriber_id"])
    store.insert_new(
        "delivered_batches", pa.Table.from_pylist([marker], schema=DELIVERED_BATCH_SCHEMA), key=["deal_id", "batch_id"]
    )
    run_sql_model(store, "batch_revenue")
    run_sql_model(store, "revenue_share_allocations")
    run_sql_model(store, "revenue_share_statements", **month_vars("2025-02"))
    run_sql_model(store, "revenue_share_statements", **month_vars("2025-03"))
    assert store.version("revenue_share_statements") > feb_version
    assert all(store.version(t) > v for t, v in pins.items())
    assert explain(store, "s1", "2025-02").input_versions != old["s1"].input_versions

    # A table nobody pins, written a few times: the job must really vacuum and clean there.
    for v in range(4):
        store.overwrite("scratch", pa.table({"v": [v]}))
    # The lake is two years old: every log file is past Delta's 30-day log retention.
    age_lake(store.root, TWO_YEARS)

    # The weekly job, asked for the shortest VACUUM window there is.
    summary = run_maintenance(store, retention_hours=0)

    # It compacted the files the pinned versions read (deal_deliveries: February's file and
    # March's into one; subscribers; delivered_batches), so only retention keeps them.
    for table in ("deal_deliveries", "subscribers", "delivered_batches"):
        assert summary[table]["files_removed"] >= 2 and summary[table]["files_added"] == 1, (table, summary[table])
    for table in pins:
        s = summary[table]
        assert s["audited"] and s["vacuum_retention_hours"] == retention.AUDIT_RETENTION_HOURS, (table, s)
        assert s["files_vacuumed"] == 0 and s["log_cleanup"] == "off (log kept)", (table, s)
    assert pinned_versions(store)["subscribers"] == {1, 2}
    # what a 0-hour VACUUM would delete now includes files of the pinned versions
    dt = store.table("deal_deliveries")
    due = {os.path.basename(f) for f in dt.vacuum(retention_hours=0, enforce_retention_duration=False, dry_run=True)}
    assert due & {os.path.basename(f) for f in store.table("deal_deliveries", pins["deal_deliveries"]).file_uris()}
    # ... and the unpinned table really was vacuumed and its expired log cleaned
    assert summary["scratch"]["files_vacuumed"] > 0 and summary["scratch"]["vacuum_retention_hours"] == 0
    with pytest.raises(Exception):  # noqa: B017 - version 1's log (and file) are gone
        store.read("scratch", version=1)

    # The past statement is explained exactly as before: same lines, same cents.
    for s in ("s1", "s2"):
        again = explain(store, s, "2025-02", as_of_version=feb_version)
        assert again == old[s] and render_text(again) == old_text[s]
    # Every pinned version still loads, with the rows it had.
    assert {t: rows(store, t, v) for t, v in pins.items()} == snapshot
    # The incremental allocations still diff against the versions of their last run
    # (OPTIMIZE changed no row: nothing to re-split, no full refresh).
    assert scope(store, model="revenue_share_allocations") == {
        "full_refresh": False,
        "delivered_batches": [],
        "batch_revenue": [],
    }
