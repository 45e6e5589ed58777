"""footage_inventory: every uploaded clip probed from its own video headers (R2–R4).

Daily partitions by upload day: the nightly run probes only that day's uploads; a clip
already probed in an earlier run of the same partition is reused, not probed again.
"""


from datetime import date, timedelta

import dagster as dg
import pyarrow as pa
import pyarrow.compute as pc

from gopro_assets.lib import landing
from gopro_assets.lib.delta_store import in_list
from gopro_assets.lib.inventory import (
    FOOTAGE_QUARANTINE_SCHEMA,
    INVENTORY_SCHEMA,
    billable_seconds,
    mark_duplicates,
    tier,
    upload_day,
)
from gopro_assets.lib.probe import probe_many
from gopro_assets.metadata import table_metadata
from gopro_assets.partitions import START, daily_partitions, partition_days, single_run
from gopro_assets.resources import LakehouseResource

PROBE_TIMEOUT_S = 60.0

INVENTORY_DOCS = {
    "clip_id": "Clip id from the upload row.",
    "duration_s": "Duration probed from the container header (R2), seconds.",
    "billable_seconds": "floor(duration_s) (R2).",
    "short_side_px": "min(width, height) (R2).",
    "fingerprint": "Content fingerprint over size, head, tail and 16 samples (R4, docs/FINGERPRINT.md).",
    "tier": "aerial | uhd | hd | sd (R3).",
    "is_duplicate": "True when an earlier upload has the same fingerprint (R4); never licensed.",
    "duplicate_of": "clip_id of the original when is_duplicate.",
    "upload_day": "Daily partition (UTC day of uploaded_at; earlier uploads go to the first partition).",
}


def _range_predicate(days: list[date]) -> str:
    return f"upload_day >= '{days[0].isoformat()}' AND upload_day <= '{days[-1].isoformat()}'"


def _uploads_for(store, days: list[date]) -> list[dict]:
    hi = days[-1] + timedelta(days=1)
    hi_ts = pa.scalar(f"{hi.isoformat()}T00:00:00+00:00").cast(pa.timestamp("us", tz="UTC"))
    flt = pc.field("uploaded_at") < hi_ts
    if days[0] > START:
        lo_ts = pa.scalar(f"{days[0].isoformat()}T00:00:00+00:00").cast(pa.timestamp("us", tz="UTC"))
        flt = flt & (pc.field("uploaded_at") >= lo_ts)
    rows = store.read("uploads", filter=flt, schema=landing.LANDING_KINDS["uploads"].schema).to_pylist()
    for r in rows:
        r["upload_day"] = upload_day(r["uploaded_at"], START)
    return rows


def _spec(name: str, description: str) -> dg.AssetSpec:
    return dg.AssetSpec(
        name, deps=["uploads"], description=description, group_name="footage",
        owners=["team:data-platform"], kinds={"delta", "python", "pyav"}, partitions_def=daily_partitions,
    )


@dg.multi_asset(
    specs=[
        _spec("footage_inventory", "One row per probed clip: technical metadata from the video's own headers (R2), "
              "tier (R3), content fingerprint and duplicate flags (R4). Partitioned by upload day."),
        _spec("footage_quarantine", "Uploads whose video is missing, empty, unreadable, stream-less, zero-length "
              "or outside the landing zone, with the reason (contract §3)."),
    ],
    partitions_def=daily_partitions,
    backfill_policy=single_run,
)
def footage_inventory(context: dg.AssetExecutionContext, lakehouse: LakehouseResource):
    store = lakehouse.store()
    days = partition_days(context)
    uploads = _uploads_for(store, days)

    # Reuse earlier probes of the same clips (same object) in these partitions.
    existing = store.read("footage_inventory", schema=INVENTORY_SCHEMA, filter=(
        (pc.field("upload_day") >= pa.scalar(days[0], pa.date32())) & (pc.field("upload_day") <= pa.scalar(days[-1], pa.date32()))
    )).to_pylist()
    probed = {(r["clip_id"], r["object_key"]): r for r in existing}
    to_probe = [u for u in uploads if (u["clip_id"], u["object_key"]) not in probed]
    results = probe_many(lakehouse.landing_uri, [u["object_key"] for u in to_probe], timeout_s=PROBE_TIMEOUT_S)
    context.log.info(f"{len(uploads)} upload(s) in {days[0]}..{days[-1]}; probed {len(to_probe)}, reused {len(uploads) - len(to_probe)}")

    rows, quarantine = [], []
    for u in uploads:
        prior = probed.get((u["clip_id"], u["object_key"]))
        if prior is not None:
            rows.append({**prior, **{k: u[k] for k in ("subscriber_id", "uploaded_at", "published", "activity", "mount", "upload_day")}})
    for u, res in zip(to_probe, results):
        base = {k: u[k] for k in ("clip_id", "subscriber_id", "object_key", "upload_day")}
        if not res.ok:
            quarantine.append({**base, "reason": res.reason})
            continue
        short_side = min(res.width, res.height)
        rows.append({
            **base,
            **{k: u[k] for k in ("uploaded_at", "published", "activity", "mount")},
            "duration_s": res.duration_s, "billable_seconds": billable_seconds(res.duration_s),
            "width": res.width, "height": res.height, "short_side_px": short_side, "fps": res.fps,
            "codec": res.codec, "bit_rate": res.bit_rate, "size_bytes": res.size_bytes,
            "fingerprint": res.fingerprint, "tier": tier(u["mount"], short_side),
        })

    fingerprints = sorted({r["fingerprint"] for r in rows})
    others = []
    if fingerprints and store.exists("footage_inventory"):
        others = store.read(
            "footage_inventory", columns=["clip_id", "uploaded_at", "fingerprint", "upload_day"],
            filter=pc.field("fingerprint").isin(fingerprints),
        ).to_pylist()
        others = [o for o in others if not days[0] <= o["upload_day"] <= days[-1]]
    mark_duplicates(rows, others)
    rows.sort(key=lambda r: (r["upload_day"], r["uploaded_at"], r["clip_id"]))

    predicate = _range_predicate(days)
    store.replace_where("footage_inventory", landing.to_arrow(rows, INVENTORY_SCHEMA), predicate, partition_by=["upload_day"])
    store.replace_where("footage_quarantine", landing.to_arrow(quarantine, FOOTAGE_QUARANTINE_SCHEMA), predicate, partition_by=["upload_day"])
    for q in quarantine:
        context.log.warning(f"quarantined clip {q['clip_id']} ({q['object_key']}): {q['reason']}")
    yield dg.MaterializeResult(
        asset_key="footage_quarantine",
        metadata={**table_metadata(store, "footage_quarantine"), "quarantined_in_partitions": len(quarantine)},
    )
    yield dg.MaterializeResult(
        asset_key="footage_inventory",
        metadata={
            **table_metadata(store, "footage_inventory", INVENTORY_DOCS),
            "partition_rows": len(rows),
            "probed_now": len(to_probe),
            "duplicates_in_partitions": sum(r["is_duplicate"] for r in rows),
        }
    )
