"""Late-arriving uploads: the upload days whose footage rows are behind the uploads table.

An upload row can land after its upload day's footage partition was materialized (a
camera that syncs days later, a landing file delivered late). Until that day is probed
again the clip has no inventory row, so no deal can license it (R5). The nightly run
re-probes exactly those days (``defs/footage/assets.py``, docs/AUTOMATION.md); a batch
frozen before the upload arrived keeps its deliveries (R12).
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import NamedTuple

from gopro_assets.domain.footage.tables import (
    FOOTAGE_QUARANTINE,
    FOOTAGE_QUARANTINE_SCHEMA,
    INVENTORY,
    INVENTORY_SCHEMA,
)
from gopro_assets.lake import duck

UPLOADS = "uploads"


class FootageBacklog(NamedTuple):
    """What the lake says about the footage partitions, by upload day."""

    behind: frozenset[date]  # an upload without its footage row, or a footage row without its upload
    processed: frozenset[date]  # a footage row (inventory or quarantine) exists: the footage step ran there


def footage_backlog(store, first_day: date) -> FootageBacklog:
    """Compare the uploads table with the footage rows, on (clip_id, object_key, upload day).

    An upload is probed when it has an inventory row or a quarantine row with those three
    values (a telemetry warning comes with an inventory row). A day is behind when one of
    its uploads is not probed (it arrived after the day ran) or one of its footage rows
    matches no upload any more (an upload row rebuilt since). Reads three columns of
    each table; anything dated before ``first_day`` belongs to it (contract §1).
    """
    uploads = store.dataset(UPLOADS)
    if uploads is None:
        return FootageBacklog(frozenset(), frozenset())
    con = duck.connect()
    try:
        con.register(UPLOADS, uploads)
        for table, schema in ((INVENTORY, INVENTORY_SCHEMA), (FOOTAGE_QUARANTINE, FOOTAGE_QUARANTINE_SCHEMA)):
            ds = store.dataset(table)
            con.register(table, ds if ds is not None else schema.empty_table())
        rows = con.sql(
            f"""
            WITH upload AS (
                SELECT clip_id, object_key,
                       greatest(CAST(uploaded_at AS DATE), DATE '{first_day.isoformat()}') AS upload_day
                FROM {UPLOADS}
            ),
            footage AS (
                SELECT clip_id, object_key, upload_day FROM {INVENTORY}
                UNION ALL
                SELECT clip_id, object_key, upload_day FROM {FOOTAGE_QUARANTINE}
            ),
            compared AS (
                SELECT coalesce(u.upload_day, f.upload_day) AS upload_day,
                       u.clip_id IS NULL OR f.clip_id IS NULL AS behind,
                       f.clip_id IS NOT NULL AS processed
                FROM upload AS u
                FULL OUTER JOIN footage AS f
                  ON u.clip_id = f.clip_id AND u.object_key = f.object_key AND u.upload_day = f.upload_day
            )
            SELECT upload_day, bool_or(behind) AS behind, bool_or(processed) AS processed
            FROM compared GROUP BY upload_day
            """
        ).fetchall()
    finally:
        con.close()
    return FootageBacklog(
        behind=frozenset(day for day, behind, _ in rows if behind),
        processed=frozenset(day for day, _, processed in rows if processed),
    )


def late_upload_days(behind: set[date], materialized: set[date], run_days: list[date]) -> list[date]:
    """The days a footage run probes besides its own: behind and already materialized.

    A day never materialized is not late, it is missing (``gopro-lake materialize`` or a
    backfill builds it); the run's own days are probed anyway.
    """
    return sorted((set(behind) & set(materialized)) - set(run_days))


def contiguous_ranges(days: list[date]) -> list[list[date]]:
    """Sorted ``days`` cut into runs of consecutive days (one footage refresh each)."""
    ranges: list[list[date]] = []
    for day in sorted(days):
        if ranges and day == ranges[-1][-1] + timedelta(days=1):
            ranges[-1].append(day)
        else:
            ranges.append([day])
    return ranges
