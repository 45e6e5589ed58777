"""Weekly lake maintenance: compact small files (OPTIMIZE), delete files no version
within the retention window needs (VACUUM), and checkpoint the log, on every Delta table
of the lake.

Why weekly: a nightly run adds a few small files per table (one commit per partition
write); compaction keeps scans fast, and vacuum keeps storage from growing with every
rewrite of a partition. Retention (docs/RELIABILITY.md, "Retention"):

* The tables whose versions are pinned (``lake/retention.py``: explain's money tables,
  what ``delivered_batches`` records, the incremental models' inputs, and any table named
  in the versions recorded in the lake) get the audit properties first if they lack them:
  8 years of ``delta.logRetentionDuration`` and ``delta.deletedFileRetentionDuration``,
  expired-log cleanup off.
* VACUUM never uses a window shorter than a table's ``deletedFileRetentionDuration``
  (``retention_hours`` in the run config applies to the other tables; default 168 h, the
  Delta default), with delta-rs enforcing it too, and it keeps the files of every version
  that ``delivered_batches`` and the current statement rows record, however old.
* The checkpoint deletes expired log files only where the table allows it.

Plan and numbers: docs/DEPLOYMENT.md.
"""

import json
import os
import time

import dagster as dg
from dagster_aws.s3 import S3Resource

from gopro_assets.lake import retention
from gopro_assets.lake.storage import is_s3
from gopro_assets.shared.resources import LakehouseResource
from gopro_assets.shared.s3 import delta_tables

MAINTENANCE_TAG = "gopro/maintenance"
# Tables whose rows record {table: Delta version} in an ``input_versions`` column: every
# delivered batch (R12 audit), every statement row (gopro-lake explain).
PINNING_TABLES = ("delivered_batches", "revenue_share_statements")


def lake_tables(lake_root: str, s3_client=None) -> list[str]:
    """Names of the Delta tables directly under the lake (local folder or ``s3://``)."""
    if is_s3(lake_root):
        if s3_client is None:
            from gopro_assets.shared.s3 import s3_client_from_env

            s3_client = s3_client_from_env()
        return delta_tables(s3_client, lake_root)
    if not os.path.isdir(lake_root):
        return []
    return sorted(n for n in os.listdir(lake_root) if os.path.isdir(os.path.join(lake_root, n, "_delta_log")))


def pinned_versions(store) -> dict[str, set[int]]:
    """{table: versions} recorded in the current rows of ``delivered_batches`` and
    ``revenue_share_statements`` (``input_versions``): versions the R12 check and
    ``gopro-lake explain`` read back by time travel."""
    pinned: dict[str, set[int]] = {}
    for pinning in PINNING_TABLES:
        if not store.exists(pinning) or "input_versions" not in store.dataset(pinning).schema.names:
            continue
        for text in store.read(pinning, columns=["input_versions"]).column(0).to_pylist():
            for table, version in json.loads(text or "{}").items():
                pinned.setdefault(table, set())
                if version is not None:
                    pinned[table].add(int(version))
    return pinned


def pinned_tables(store) -> set[str]:
    """Tables whose old versions must stay readable: the audited tables of
    ``lake/retention.py`` and every table named in the recorded versions."""
    return set(retention.AUDITED_TABLES) | set(pinned_versions(store))


class LakeMaintenanceConfig(dg.Config):
    # VACUUM window for tables without a retention of their own; a table's
    # delta.deletedFileRetentionDuration (8 years on the audited tables) is a floor.
    retention_hours: int = 168
    tables: list[str] = []  # empty: every Delta table under the lake


def maintain_table(store, table: str, audited: bool, keep_versions: set[int], retention_hours: int) -> dict:
    """Audit properties (audited tables only), OPTIMIZE, VACUUM, checkpoint: one table."""
    started = time.monotonic()
    properties_set = {}
    if audited:
        properties_set = retention.missing_audit_properties(store.properties(table))
        if properties_set:
            store.set_properties(table, properties_set)
    metrics = store.optimize_and_vacuum(table, retention_hours=retention_hours, keep_versions=keep_versions)
    vacuum = metrics.get("vacuum", {})
    return {
        "files_removed": int(metrics.get("numFilesRemoved", 0)),
        "files_added": int(metrics.get("numFilesAdded", 0)),
        "audited": audited,
        "properties_set": properties_set,
        "vacuum_retention_hours": vacuum.get("retention_hours"),
        "files_vacuumed": vacuum.get("files_deleted", 0),
        "kept_versions": vacuum.get("kept_versions", []),
        **store.checkpoint(table),
        "version": store.version(table),
        "seconds": round(time.monotonic() - started, 2),
    }


@dg.op(
    description="Audit retention properties, OPTIMIZE (compact), VACUUM and a log checkpoint on every Delta table "
    "of the lake; metrics per table.",
    tags={"kind": "delta"},
    pool="lake_maintenance",  # deploy/dagster.yaml: pools (one compaction at a time)
)
def optimize_and_vacuum_lake(
    context: dg.OpExecutionContext, config: LakeMaintenanceConfig, lakehouse: LakehouseResource, s3: S3Resource
) -> dg.Output[dict]:
    store = lakehouse.store()
    # dagster-aws's S3Resource finds the tables on S3 (a delimiter listing of the lake).
    tables = config.tables or lake_tables(store.root, s3.get_client() if is_s3(store.root) else None)
    pins = pinned_versions(store)
    audited = pinned_tables(store)
    summary: dict[str, dict] = {}
    failed: dict[str, str] = {}
    for table in tables:
        try:
            summary[table] = s = maintain_table(
                store, table, table in audited, pins.get(table, set()), config.retention_hours
            )
        except Exception as exc:  # noqa: BLE001 - maintain the other tables, then fail the run
            failed[table] = f"{type(exc).__name__}: {exc}"
            context.log.error(f"{table}: maintenance failed (the other tables go on): {failed[table]}")
            continue
        floor_note = ""
        if s["vacuum_retention_hours"] is not None and s["vacuum_retention_hours"] > config.retention_hours:
            floor_note = (
                f" (asked {config.retention_hours} h; the table's delta.deletedFileRetentionDuration is the floor)"
            )
        context.log.info(
            f"{table}: "
            + (f"set {s['properties_set']}; " if s["properties_set"] else "")
            + f"compacted {s['files_removed']} file(s) into {s['files_added']}; "
            f"vacuum window {s['vacuum_retention_hours']} h{floor_note}, {s['files_vacuumed']} file(s) deleted"
            + (f", files of {len(s['kept_versions'])} pinned version(s) kept" if s["kept_versions"] else "")
            + f"; checkpoint at version {s['checkpoint_version']}, expired-log cleanup {s['log_cleanup']}"
        )
    if failed:
        raise dg.Failure(
            description=f"lake maintenance failed for {len(failed)} table(s): {sorted(failed)}",
            metadata={"errors": dg.MetadataValue.json(failed), "per_table": dg.MetadataValue.json(summary)},
        )
    return dg.Output(
        summary,
        metadata={
            "tables": len(summary),
            "files_removed": sum(s["files_removed"] for s in summary.values()),
            "files_added": sum(s["files_added"] for s in summary.values()),
            "files_vacuumed": sum(s["files_vacuumed"] for s in summary.values()),
            "audited_tables": sum(s["audited"] for s in summary.values()),
            "per_table": dg.MetadataValue.json(summary),
        },
    )


@dg.job(
    name="lake_maintenance_job",
    description="Weekly OPTIMIZE + VACUUM + checkpoint of every Delta table in the lake, keeping the versions the "
    "audit pins (docs/DEPLOYMENT.md, docs/RELIABILITY.md).",
    tags={MAINTENANCE_TAG: "lake"},
    # A compaction commit can lose a race with a concurrent writer (a conflict error);
    # compaction is idempotent, so the step is simply retried.
    op_retry_policy=dg.RetryPolicy(max_retries=2, delay=60),
    executor_def=dg.in_process_executor,
)
def lake_maintenance_job():
    optimize_and_vacuum_lake()


lake_maintenance_schedule = dg.ScheduleDefinition(
    name="lake_maintenance_schedule",
    job=lake_maintenance_job,
    # Sundays 06:00 Los Angeles: after the 02:00 nightly and any 04:00 monthly close.
    cron_schedule="0 6 * * 0",
    execution_timezone="America/Los_Angeles",
    description="Every Sunday 06:00 Los Angeles time: lake_maintenance_job (OPTIMIZE + VACUUM).",
)
