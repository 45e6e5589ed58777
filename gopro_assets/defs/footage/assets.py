"""footage_inventory: every uploaded clip probed from its own video headers (R2–R4).

Daily partitions by upload day: the nightly run probes only that day's uploads; a clip
already probed in an earlier run of the same partition is reused, not probed again.
"""

import dagster as dg

from gopro_assets.domain.footage.inventory import FOOTAGE_QUARANTINE_SCHEMA, INVENTORY_SCHEMA, refresh_inventory
from gopro_assets.domain.footage.probe import probe_many
from gopro_assets.shared.metadata import column_schema, per_partition, table_metadata
from gopro_assets.shared.partitions import START, daily_partitions, partition_days, single_run
from gopro_assets.shared.resources import LakehouseResource

PROBE_TIMEOUT_S = 60.0

INVENTORY_DOCS = {
    "clip_id": "Clip id from the upload row.",
    "subscriber_id": "Owner (uploads.subscriber_id).",
    "object_key": "Video path under footage/ in the landing zone.",
    "uploaded_at": "Upload time, UTC (from the upload row).",
    "published": "True when the owner published the clip (from the upload row).",
    "activity": "Activity label or null (from the upload row).",
    "mount": "Camera mount or null (from the upload row); drone means aerial (R3).",
    "width": "Frame width in pixels, probed (R2).",
    "height": "Frame height in pixels, probed (R2).",
    "fps": "Average frame rate, probed (R2).",
    "codec": "Video codec name, probed (R2), e.g. h264, hevc.",
    "bit_rate": "Bit rate in bit/s, probed (R2).",
    "size_bytes": "File size in bytes (R2).",
    "duration_s": "Duration probed from the container header (R2), seconds.",
    "billable_seconds": "floor(duration_s) (R2).",
    "short_side_px": "min(width, height) (R2).",
    "fingerprint": "Content fingerprint over size, head, tail and 16 samples (R4, docs/FINGERPRINT.md).",
    "tier": "aerial | uhd | hd | sd (R3).",
    "is_duplicate": "True when an earlier upload has the same fingerprint (R4); never licensed.",
    "duplicate_of": "clip_id of the original when is_duplicate.",
    "upload_day": "Daily partition (UTC day of uploaded_at; earlier uploads go to the first partition).",
}
QUARANTINE_DOCS = {
    "clip_id": "Clip id from the upload row.",
    "subscriber_id": "Owner (uploads.subscriber_id).",
    "object_key": "Video path from the upload row (possibly the offending one).",
    "reason": "Why the video could not be probed: missing, empty, unreadable, no video stream, zero length, outside footage/.",
    "upload_day": INVENTORY_DOCS["upload_day"],
}
SCHEMAS = {
    "footage_inventory": (INVENTORY_SCHEMA, INVENTORY_DOCS),
    "footage_quarantine": (FOOTAGE_QUARANTINE_SCHEMA, QUARANTINE_DOCS),
}


def _spec(name: str, description: str, partitions_def=daily_partitions) -> dg.AssetSpec:
    return dg.AssetSpec(
        name,
        deps=["uploads"],
        description=description,
        group_name="footage",
        owners=["team:data-platform"],
        kinds={"delta", "python", "pyav"},
        partitions_def=partitions_def,
        metadata={"dagster/column_schema": column_schema(*SCHEMAS[name])},
    )


@dg.multi_asset(
    specs=[
        _spec(
            "footage_inventory",
            "One row per probed clip: technical metadata from the video's own headers (R2), "
            "tier (R3), content fingerprint and duplicate flags (R4). Partitioned by upload day.",
        ),
        # One table for every upload day, recorded as ONE unpartitioned asset: written by the
        # same step as the inventory (its rows are replaced day by day with the inventory's),
        # but nothing downstream reads it by day, and a daily-partitioned twin would make a
        # catch-up over ~700 days record ~700 more materializations (docs/PERFORMANCE.md).
        _spec(
            "footage_quarantine",
            "Uploads whose video is missing, empty, unreadable, stream-less, zero-length "
            "or outside the landing zone, with the reason (contract §3). One table for all upload days; "
            "each run replaces the rows of the days it probed.",
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
    for q in report["quarantined"]:
        context.log.warning(f"quarantined clip {q['clip_id']} ({q['object_key']}): {q['reason']}")
    yield dg.MaterializeResult(
        asset_key="footage_quarantine",
        metadata={
            **table_metadata(store, "footage_quarantine", QUARANTINE_DOCS),
            "quarantined_in_partitions": len(report["quarantined"]),
        },
    )
    yield dg.MaterializeResult(
        asset_key="footage_inventory",
        metadata=per_partition(
            context,
            {
                **table_metadata(store, "footage_inventory", INVENTORY_DOCS),
                "partition_rows": report["rows"],
                "probed_now": report["probed_now"],
                "duplicates_in_partitions": report["duplicates"],
            },
        ),
    )
