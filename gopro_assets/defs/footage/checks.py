"""Checks on the footage inventory (R2–R4, R2b, R15) and the recordings (R15): one property each."""

import dagster as dg

from gopro_assets.domain.footage.tables import FOOTAGE_INVENTORY, FOOTAGE_RECORDINGS
from gopro_assets.lake import duck
from gopro_assets.shared.resources import LakehouseResource

TABLES = {t.name: t for t in (FOOTAGE_INVENTORY, FOOTAGE_RECORDINGS)}


def _offending(lakehouse: LakehouseResource, sql: str, tables: tuple[str, ...] = ("footage_inventory",)) -> list[dict]:
    store = lakehouse.store()
    datasets = {t: store.dataset(t) for t in tables}
    if datasets["footage_inventory"] is None:
        return []
    con = duck.connect()
    for table, ds in datasets.items():
        # (footage_recordings before its first run: empty, so every recording is missing)
        con.register(table, ds if ds is not None else TABLES[table].schema.empty_table())
    return con.sql(sql + " LIMIT 20").to_arrow_table().to_pylist()


def _result(rows: list[dict], what: str, severity: dg.AssetCheckSeverity = dg.AssetCheckSeverity.ERROR):
    return dg.AssetCheckResult(
        passed=not rows,
        severity=severity,
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


@dg.asset_check(
    asset="footage_inventory",
    blocking=True,
    description="tier follows R3 from mount, the telemetry's is_drone and the short side.",
)
def inventory_r3_tier(lakehouse: LakehouseResource) -> dg.AssetCheckResult:
    return _result(
        _offending(
            lakehouse,
            """
        SELECT clip_id, mount, is_drone, short_side_px, tier FROM footage_inventory
        WHERE tier <> CASE WHEN mount = 'drone' OR coalesce(is_drone, false) THEN 'aerial'
                           WHEN short_side_px >= 2160 THEN 'uhd'
                           WHEN short_side_px >= 1080 THEN 'hd' ELSE 'sd' END""",
        ),
        "R3",
    )


@dg.asset_check(
    asset="footage_inventory",
    blocking=True,
    description=(
        "R2b columns hang together: without telemetry every fact is null/false; has_gps exactly when there is a "
        "location_cell; a location_cell is a 5-character geohash (about 5 km: never a finer position)."
    ),
)
def inventory_r2b_telemetry_columns(lakehouse: LakehouseResource) -> dg.AssetCheckResult:
    return _result(
        _offending(
            lakehouse,
            """
        SELECT clip_id, telemetry, camera_model, has_gps, has_imu, is_drone, location_cell, telemetry_warning
        FROM footage_inventory
        WHERE telemetry IS NOT NULL AND (
              (NOT telemetry AND (camera_model IS NOT NULL OR firmware IS NOT NULL OR recorded_at IS NOT NULL
                                  OR has_gps OR has_imu OR is_drone OR location_cell IS NOT NULL))
           OR (telemetry AND telemetry_warning IS NOT NULL)
           OR has_gps IS DISTINCT FROM (location_cell IS NOT NULL)
           OR NOT regexp_full_match(coalesce(location_cell, '00000'), '[0-9b-hjkmnp-z]{5}'))""",
        ),
        "R2b",
    )


@dg.asset_check(
    asset="footage_inventory",
    description=(
        "Every row has its recording (R15). Rows probed before R15 have none until their day is materialized "
        "again (docs/FOOTAGE.md, Existing lakes): a warning, not a stop."
    ),
)
def inventory_rows_have_a_recording(lakehouse: LakehouseResource) -> dg.AssetCheckResult:
    return _result(
        _offending(
            lakehouse,
            """
        SELECT clip_id, upload_day, recording_id, chapter FROM footage_inventory
        WHERE recording_id IS NULL OR chapter IS NULL OR chapter NOT BETWEEN 1 AND 100
           OR NOT starts_with(recording_id, subscriber_id || ':')""",
        ),
        "R15",
        severity=dg.AssetCheckSeverity.WARN,
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


@dg.asset_check(
    asset="footage_recordings",
    blocking=True,
    description=(
        "Recomputed from footage_inventory on its own (R4 by first upload per fingerprint, R15 by the sorted list "
        "of chapter numbers): every recording of the inventory has one row, with the same chapters, complete "
        "flag and billable seconds; no row belongs to nothing."
    ),
)
def recordings_r15_complete_recomputed(lakehouse: LakehouseResource) -> dg.AssetCheckResult:
    return _result(
        _offending(
            lakehouse,
            """
        WITH originals AS (
            SELECT arg_min(clip_id, (uploaded_at, clip_id)) AS clip_id FROM footage_inventory GROUP BY fingerprint
        ),
        counted AS (
            SELECT recording_id, list_sort(list(chapter)) AS numbers, sum(billable_seconds) AS seconds
            FROM footage_inventory
            WHERE recording_id IS NOT NULL AND NOT is_duplicate AND clip_id IN (SELECT clip_id FROM originals)
            GROUP BY recording_id
        ),
        expected AS (
            SELECT r.recording_id, coalesce(len(c.numbers), 0) AS chapters,
                   coalesce(c.numbers = range(1, len(c.numbers) + 1), false) AS complete,
                   coalesce(c.seconds, 0) AS billable_seconds
            FROM (SELECT DISTINCT recording_id FROM footage_inventory WHERE recording_id IS NOT NULL) AS r
            LEFT JOIN counted AS c USING (recording_id)
        )
        SELECT coalesce(e.recording_id, s.recording_id) AS recording_id,
               e.chapters AS expected_chapters, s.chapters, e.complete AS expected_complete, s.complete,
               e.billable_seconds AS expected_billable_seconds, s.billable_seconds
        FROM expected AS e
        FULL OUTER JOIN footage_recordings AS s USING (recording_id)
        WHERE e.recording_id IS NULL OR s.recording_id IS NULL
           OR e.chapters IS DISTINCT FROM s.chapters
           OR e.complete IS DISTINCT FROM s.complete
           OR e.billable_seconds IS DISTINCT FROM s.billable_seconds""",
            tables=("footage_inventory", "footage_recordings"),
        ),
        "R15",
    )
