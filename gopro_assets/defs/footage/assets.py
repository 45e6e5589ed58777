"""footage_inventory: every uploaded clip probed from its own video headers (R2–R4), with
its GoPro telemetry (R2b) and its recording and chapter (R15).

Daily partitions by upload day: the nightly run probes that day's uploads, and again the
already-materialized days whose uploads arrived late (``late_days``, docs/AUTOMATION.md);
a clip already probed in an earlier run of the same partition is reused, not probed again.
``footage_recordings`` (recordings.py) is built from the whole inventory afterwards.
"""

from datetime import date

import dagster as dg

from gopro_assets.domain.footage.inventory import refresh_inventory
from gopro_assets.domain.footage.late_uploads import (
    FootageBacklog,
    contiguous_ranges,
    footage_backlog,
    late_upload_days,
)
from gopro_assets.domain.footage.probe import probe_many
from gopro_assets.domain.footage.tables import FOOTAGE_INVENTORY, FOOTAGE_QUARANTINE_TABLE
from gopro_assets.shared.metadata import column_schema, per_partition, table_metadata, without_bulky
from gopro_assets.shared.partitions import (
    LATE_UPLOADS_TAG,
    PROBE_LATE_UPLOADS,
    START,
    daily_partitions,
    partition_days,
    single_run,
)
from gopro_assets.shared.resources import LakehouseResource

PROBE_TIMEOUT_S = 60.0

# Columns (name, Arrow type, description) declared once in gopro_assets/domain/footage/tables.py.
TABLES = {t.name: t for t in (FOOTAGE_INVENTORY, FOOTAGE_QUARANTINE_TABLE)}


def _spec(name: str, description: str, partitions_def=daily_partitions) -> dg.AssetSpec:
    return dg.AssetSpec(
        name,
        deps=["uploads"],
        description=description,
        group_name="footage",
        owners=["team:data-platform"],
        kinds={"delta", "python", "pyav"},
        partitions_def=partitions_def,
        metadata={"dagster/column_schema": column_schema(TABLES[name])},
    )


@dg.multi_asset(
    specs=[
        _spec(
            "footage_inventory",
            "One row per probed clip: technical metadata from the video's own headers (R2), GoPro telemetry "
            "facts (camera, GPS cell, IMU, drone; R2b), tier (R3), content fingerprint and duplicate flags (R4), "
            "recording and chapter (R15). Partitioned by upload day.",
        ),
        # One table for every upload day, recorded as ONE unpartitioned asset: written by the
        # same step as the inventory (its rows are replaced day by day with the inventory's),
        # but nothing downstream reads it by day, and a daily-partitioned twin would make a
        # catch-up over ~700 days record ~700 more materializations (docs/PERFORMANCE.md).
        _spec(
            "footage_quarantine",
            "Uploads whose video is missing, empty, unreadable, stream-less, zero-length "
            "or outside the landing zone, with the reason (contract §3, severity error: never licensable); and "
            "clips whose telemetry track cannot be parsed (R2b, severity warning: still in the inventory and "
            "licensable). One table for all upload days; each run replaces the rows of the days it probed.",
            partitions_def=None,
        ),
    ],
    backfill_policy=single_run,
)
def footage_inventory(context: dg.AssetExecutionContext, lakehouse: LakehouseResource):
    store = lakehouse.store()
    days = partition_days(context)
    late, checked = ([], {})
    if context.run.tags.get(LATE_UPLOADS_TAG) == PROBE_LATE_UPLOADS:
        backlog = footage_backlog(store, START, since_version=last_uploads_version_checked(context))
        late = late_days(context, backlog, days)
        # the next night compares only the uploads that change after this version
        checked = {UPLOADS_VERSION_CHECKED: backlog.uploads_version} if backlog.uploads_version is not None else {}
    report = refresh_days(context, lakehouse, days)
    late_reports = [
        (late_range, refresh_days(context, lakehouse, late_range)) for late_range in contiguous_ranges(late)
    ]
    # Each day probed again is recorded as a materialization of its own partition, by this
    # run: the UI and the lineage show which run last wrote it (docs/AUTOMATION.md).
    for late_range, late_report in late_reports:
        metadata = {
            **table_metadata(store, FOOTAGE_INVENTORY),
            "partition_rows": late_report["rows"],
            "probed_now": late_report["probed_now"],
            "late_uploads_of_days": f"{late_range[0]}..{late_range[-1]}",
        }
        for day in late_range:
            context.log_event(
                dg.AssetMaterialization(
                    asset_key="footage_inventory",
                    partition=day.isoformat(),
                    description="Uploads of this day arrived after it was materialized: probed again by this run.",
                    metadata=without_bulky(metadata) if len(late_range) > 1 else metadata,
                )
            )
    reports = [report, *(r for _, r in late_reports)]
    yield dg.MaterializeResult(
        asset_key="footage_quarantine",
        metadata={
            **table_metadata(store, FOOTAGE_QUARANTINE_TABLE),
            "quarantined_in_partitions": sum(len(r["quarantined"]) for r in reports),
            "telemetry_warnings_in_partitions": sum(len(r["telemetry_warnings"]) for r in reports),
        },
    )
    yield dg.MaterializeResult(
        asset_key="footage_inventory",
        metadata=per_partition(
            context,
            {
                **table_metadata(store, FOOTAGE_INVENTORY),
                "partition_rows": report["rows"],
                "probed_now": report["probed_now"],
                "duplicates_in_partitions": report["duplicates"],
                "with_telemetry_in_partitions": report["with_telemetry"],
                "late_upload_days_probed_again": len(late),
                **checked,
            },
        ),
    )


# Metadata key of footage_inventory's nightly materialization: the uploads version whose
# late uploads that run probed (footage_backlog compares only what changed since).
UPLOADS_VERSION_CHECKED = "uploads_version_checked"


def last_uploads_version_checked(context: dg.AssetExecutionContext) -> int | None:
    """The uploads version the last footage_inventory materialization checked for late
    uploads; None when it was another kind of run (then every day is compared)."""
    event = context.instance.get_latest_materialization_event(dg.AssetKey("footage_inventory"))
    entry = event.asset_materialization.metadata.get(UPLOADS_VERSION_CHECKED) if event else None
    value = getattr(entry, "value", None)
    return value if isinstance(value, int) else None


def late_days(context: dg.AssetExecutionContext, backlog: FootageBacklog, run_days: list[date]) -> list[date]:
    """The upload days, besides the run's own, already materialized (in Dagster or in the
    lake) whose footage is behind the uploads table (``backlog``): uploads that arrived
    after their day ran."""
    candidates = sorted(backlog.behind - set(run_days))
    if not candidates:
        return []
    status = context.instance.get_status_by_partition(
        dg.AssetKey("footage_inventory"), [d.isoformat() for d in candidates], daily_partitions
    )
    materialized = {d for d in candidates if (status or {}).get(d.isoformat()) == dg.AssetPartitionStatus.MATERIALIZED}
    late = late_upload_days(backlog.behind, materialized | backlog.processed, run_days)
    if late:
        context.log.info(
            f"{len(late)} upload day(s) already materialized have uploads that arrived since: probing them again "
            f"({', '.join(d.isoformat() for d in late[:20])}{' ...' if len(late) > 20 else ''})"
        )
    missing = [d for d in candidates if d not in late]
    if missing:  # never materialized: not late, missing (gopro-lake materialize or a backfill builds them)
        context.log.info(
            f"{len(missing)} upload day(s) with uploads were never materialized ({missing[0]}..{missing[-1]}): "
            "left to gopro-lake materialize or a backfill of daily_partitions_job"
        )
    return late


def refresh_days(context: dg.AssetExecutionContext, lakehouse: LakehouseResource, days: list[date]) -> dict:
    """Probe the uploads of consecutive ``days`` and rewrite those partitions (R2–R4), logging what happened."""
    report = refresh_inventory(
        lakehouse.store(), lakehouse.landing_uri, days, START, probe_many, timeout_s=PROBE_TIMEOUT_S
    )
    context.log.info(
        f"{report['uploads']} upload(s) in {days[0]}..{days[-1]}: probed {report['probed_now']}, "
        f"reused {report['reused']}, re-labelled {report['relabelled_elsewhere']} duplicate(s) elsewhere"
    )
    for table, columns in report["columns_added"].items():
        context.log.info(f"{table}: added column(s) {', '.join(columns)} (schema evolution, docs/FOOTAGE.md)")
    for q in report["quarantined"]:
        context.log.info(f"quarantined clip {q['clip_id']} ({q['object_key']}): {q['reason']}")
    if report["quarantined"]:  # one warning line for the lot; each clip is a row of the table (and a line above)
        context.log.warning(
            f"{len(report['quarantined'])} upload(s) of {days[0]}..{days[-1]} quarantined (video missing, empty, "
            "unreadable or outside the landing zone): read table footage_quarantine"
        )
    # R2b: the reason names the payload and the fault, never a value (values include coordinates)
    for q in report["telemetry_warnings"]:
        context.log.info(f"telemetry of clip {q['clip_id']} ({q['object_key']}) not read: {q['reason']}")
    if report["telemetry_warnings"]:
        context.log.warning(
            f"{len(report['telemetry_warnings'])} clip(s) of {days[0]}..{days[-1]} have a telemetry track that "
            "cannot be parsed: they stay licensable with telemetry = false (footage_quarantine, severity warning)"
        )
    return report
