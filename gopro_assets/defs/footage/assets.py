"""footage_inventory: every uploaded clip probed from its own video headers (R2–R4), with
its GoPro telemetry (R2b) and its recording and chapter (R15).

Daily partitions by upload day: the nightly run probes only that day's uploads; a clip
already probed in an earlier run of the same partition is reused, not probed again.
``footage_recordings`` (recordings.py) is built from the whole inventory afterwards.
"""

import dagster as dg

from gopro_assets.domain.footage.inventory import refresh_inventory
from gopro_assets.domain.footage.probe import probe_many
from gopro_assets.domain.footage.tables import FOOTAGE_INVENTORY, FOOTAGE_QUARANTINE_TABLE
from gopro_assets.shared.metadata import column_schema, per_partition, table_metadata
from gopro_assets.shared.partitions import START, daily_partitions, partition_days, single_run
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
    report = refresh_inventory(store, lakehouse.landing_uri, days, START, probe_many, timeout_s=PROBE_TIMEOUT_S)
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
    yield dg.MaterializeResult(
        asset_key="footage_quarantine",
        metadata={
            **table_metadata(store, FOOTAGE_QUARANTINE_TABLE),
            "quarantined_in_partitions": len(report["quarantined"]),
            "telemetry_warnings_in_partitions": len(report["telemetry_warnings"]),
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
            },
        ),
    )
