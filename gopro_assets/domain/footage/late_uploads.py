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
    uploads_version: int | None = None  # the version of the uploads table compared


def footage_backlog(store, first_day: date, since_version: int | None = None) -> FootageBacklog:
    """Compare the uploads table with the footage rows, on (clip_id, object_key, upload day).

    An upload is probed when it has an inventory row or a quarantine row with those three
    values (a telemetry warning comes with an inventory row). A day is behind when one of
    its uploads is not probed (it arrived after the day ran) or one of its footage rows
    matches no upload any more (an upload row rebuilt since). Anything dated before
    ``first_day`` belongs to it (contract §1).

    ``since_version``: the uploads version an earlier comparison covered. Then only the
    upload days of the rows that changed since (read from the data files the two versions
    do not share) are compared, so a night costs its new uploads, not the whole history;
    the whole table is compared when it is None or cannot be read any more.
    """
    version = store.version(UPLOADS)
    if version is None:
        return FootageBacklog(frozenset(), frozenset())
    con = duck.connect()
    try:
        days = _changed_upload_days(con, store, first_day, since_version, version)
        if days is not None and not days:  # nothing changed since: no table read at all
            return FootageBacklog(frozenset(), frozenset(), version)
        prune = None if days is None else "upload_day IN (" + ", ".join(f"'{d.isoformat()}'" for d in days) + ")"
        con.register(UPLOADS, store.dataset(UPLOADS, version))
        for table, schema in ((INVENTORY, INVENTORY_SCHEMA), (FOOTAGE_QUARANTINE, FOOTAGE_QUARANTINE_SCHEMA)):
            ds = store.read_dataset(table, prune=prune)
            con.register(table, ds if ds is not None else schema.empty_table())
        only_days = "true" if prune is None else prune
        rows = con.sql(
            f"""
            WITH upload AS (
                SELECT * FROM (
                    SELECT clip_id, object_key,
                           greatest(CAST(uploaded_at AS DATE), DATE '{first_day.isoformat()}') AS upload_day
                    FROM {UPLOADS}
                ) WHERE {only_days}
            ),
            footage AS (
                SELECT * FROM (
                    SELECT clip_id, object_key, upload_day FROM {INVENTORY}
                    UNION ALL
                    SELECT clip_id, object_key, upload_day FROM {FOOTAGE_QUARANTINE}
                ) WHERE {only_days}
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
        uploads_version=version,
    )


def _changed_upload_days(con, store, first_day: date, since: int | None, now: int | None) -> list[date] | None:
    """The upload days of the uploads rows that differ between versions ``since`` and
    ``now``; None (compare every day) when there is no earlier version or it is gone."""
    if since is None or now is None or since > now:
        return None
    if since == now:
        return []
    try:
        added, removed = store.files_between(UPLOADS, since, now)
    except LookupError:
        return None
    con.register("uploads_added", added)
    con.register("uploads_removed", removed)
    rows = con.sql(
        f"""
        SELECT DISTINCT greatest(CAST(uploaded_at AS DATE), DATE '{first_day.isoformat()}') FROM (
            (SELECT * FROM uploads_added EXCEPT ALL SELECT * FROM uploads_removed)
            UNION ALL
            (SELECT * FROM uploads_removed EXCEPT ALL SELECT * FROM uploads_added))
        """
    ).fetchall()
    return sorted(day for (day,) in rows)


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
