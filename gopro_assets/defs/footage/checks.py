"""Checks on the footage inventory: one property each (R2–R4)."""

import dagster as dg

from gopro_assets.lake import duck
from gopro_assets.shared.resources import LakehouseResource


def _offending(lakehouse: LakehouseResource, sql: str) -> list[dict]:
    ds = lakehouse.store().dataset("footage_inventory")
    if ds is None:
        return []
    con = duck.connect()
    con.register("footage_inventory", ds)
    return con.sql(sql + " LIMIT 20").to_arrow_table().to_pylist()


def _result(rows: list[dict], what: str) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(
        passed=not rows,
        metadata={
            "offending_rows": len(rows),
            "sample": dg.MetadataValue.json([{k: str(v) for k, v in r.items()} for r in rows]),
        },
        description=what,
    )


@dg.asset_check(
    asset="footage_inventory",
    blocking=True,
    description="billable_seconds == floor(duration_s) and short_side_px == min(width, height) (R2).",
)
def inventory_r2_derived_fields(lakehouse: LakehouseResource) -> dg.AssetCheckResult:
    return _result(
        _offending(
            lakehouse,
            """
        SELECT clip_id, duration_s, billable_seconds, width, height, short_side_px FROM footage_inventory
        WHERE billable_seconds <> floor(duration_s) OR short_side_px <> least(width, height) OR duration_s <= 0""",
        ),
        "R2",
    )


@dg.asset_check(asset="footage_inventory", blocking=True, description="tier follows R3 from mount and short side.")
def inventory_r3_tier(lakehouse: LakehouseResource) -> dg.AssetCheckResult:
    return _result(
        _offending(
            lakehouse,
            """
        SELECT clip_id, mount, short_side_px, tier FROM footage_inventory
        WHERE tier <> CASE WHEN mount = 'drone' THEN 'aerial' WHEN short_side_px >= 2160 THEN 'uhd'
                           WHEN short_side_px >= 1080 THEN 'hd' ELSE 'sd' END""",
        ),
        "R3",
    )


@dg.asset_check(
    asset="footage_inventory",
    blocking=True,
    description="Each fingerprint has exactly one original, the earliest upload (R4).",
)
def inventory_r4_one_original_per_fingerprint(lakehouse: LakehouseResource) -> dg.AssetCheckResult:
    return _result(
        _offending(
            lakehouse,
            """
        WITH firsts AS (
            SELECT fingerprint, arg_min(clip_id, (uploaded_at, clip_id)) AS original, count(*) FILTER (WHERE NOT is_duplicate) AS originals
            FROM footage_inventory GROUP BY fingerprint)
        SELECT i.clip_id, i.fingerprint, i.is_duplicate, i.duplicate_of, f.original, f.originals
        FROM footage_inventory i JOIN firsts f USING (fingerprint)
        WHERE f.originals <> 1 OR (i.is_duplicate AND i.duplicate_of IS DISTINCT FROM f.original)
           OR (NOT i.is_duplicate AND i.clip_id <> f.original)""",
        ),
        "R4",
    )


@dg.asset_check(asset="footage_inventory", description="clip_id is unique across all upload days.")
def inventory_clip_id_unique(lakehouse: LakehouseResource) -> dg.AssetCheckResult:
    return _result(
        _offending(
            lakehouse, "SELECT clip_id, count(*) AS n FROM footage_inventory GROUP BY clip_id HAVING count(*) > 1"
        ),
        "unique clip_id",
    )
