"""Weekly lake maintenance: compact small files (OPTIMIZE) and delete files no version
within the retention window needs (VACUUM), on every Delta table of the lake.

Why weekly: a nightly run adds a few small files per table (one commit per partition
write); compaction keeps scans fast, and vacuum keeps storage from growing with every
rewrite of a partition. Retention defaults to 7 days (168 h): time travel and readers
older than that may break, so it is never lowered below delta-rs's own safety default
unless a run config asks for it explicitly. Tables whose versions ``delivered_batches``
pins for its audit check (subscribers, consent_events, clip_exclusions) are compacted
but never vacuumed. Plan and numbers: docs/DEPLOYMENT.md.
"""

import json
import os
import time

import dagster as dg
from dagster_aws.s3 import S3Resource

from gopro_assets.lake.storage import is_s3
from gopro_assets.shared.resources import LakehouseResource
from gopro_assets.shared.s3 import delta_tables

MAINTENANCE_TAG = "gopro/maintenance"
PINNING_TABLE = "delivered_batches"


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


def pinned_tables(store) -> set[str]:
    """Tables whose old versions must stay readable: those named in
    ``delivered_batches.input_versions`` (R12 audit by Delta time travel)."""
    if not store.exists(PINNING_TABLE):
        return set()
    pinned: set[str] = set()
    for text in store.read(PINNING_TABLE, columns=["input_versions"]).column(0).to_pylist():
        pinned |= set(json.loads(text or "{}"))
    return pinned


class LakeMaintenanceConfig(dg.Config):
    retention_hours: int = 168
    tables: list[str] = []  # empty: every Delta table under the lake


@dg.op(
    description="OPTIMIZE (compact) then VACUUM every Delta table of the lake; metrics per table.",
    tags={"kind": "delta"},
    pool="lake_maintenance",  # deploy/dagster.yaml: pools (one compaction at a time)
)
def optimize_and_vacuum_lake(
    context: dg.OpExecutionContext, config: LakeMaintenanceConfig, lakehouse: LakehouseResource, s3: S3Resource
) -> dg.Output[dict]:
    store = lakehouse.store()
    # dagster-aws's S3Resource finds the tables on S3 (a delimiter listing of the lake).
    tables = config.tables or lake_tables(store.root, s3.get_client() if is_s3(store.root) else None)
    pinned = pinned_tables(store)
    summary: dict[str, dict] = {}
    for table in tables:
        started = time.monotonic()
        if table in pinned:
            # Compact only: VACUUM would delete files of the versions delivered_batches
            # recorded, which the deliveries' blocking check reads back by time travel.
            dt = store.table(table)
            metrics = dt.optimize.compact() if dt is not None else {}
        else:
            metrics = store.optimize_and_vacuum(table, retention_hours=config.retention_hours) or {}
        summary[table] = {
            "files_removed": int(metrics.get("numFilesRemoved", 0)),
            "files_added": int(metrics.get("numFilesAdded", 0)),
            "vacuumed": table not in pinned,
            "version": store.version(table),
            "seconds": round(time.monotonic() - started, 2),
        }
        context.log.info(
            f"{table}: compacted {summary[table]['files_removed']} file(s) into "
            f"{summary[table]['files_added']}, now version {summary[table]['version']}"
            + ("" if summary[table]["vacuumed"] else "; not vacuumed (versions pinned by delivered_batches)")
        )
    return dg.Output(
        summary,
        metadata={
            "tables": len(summary),
            "files_removed": sum(s["files_removed"] for s in summary.values()),
            "files_added": sum(s["files_added"] for s in summary.values()),
            "per_table": dg.MetadataValue.json(summary),
        },
    )


@dg.job(
    name="lake_maintenance_job",
    description="Weekly OPTIMIZE + VACUUM of every Delta table in the lake (docs/DEPLOYMENT.md).",
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
