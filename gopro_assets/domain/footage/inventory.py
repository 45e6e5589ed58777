"""Footage inventory rules: tier (R3), billable seconds (R2), duplicates (R4), the telemetry
columns (R2b) and the recording of each clip (R15), and the inventory's daily refresh."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta

import pyarrow as pa

from gopro_assets.domain.footage import fingerprint_index
from gopro_assets.domain.footage.recordings import chapter_of
from gopro_assets.domain.footage.tables import (
    FOOTAGE_QUARANTINE,
    FOOTAGE_QUARANTINE_SCHEMA,
    INVENTORY,
    INVENTORY_SCHEMA,
)
from gopro_assets.domain.footage.telemetry import NO_TELEMETRY

TIER_RANK = {"aerial": 4, "uhd": 3, "hd": 2, "sd": 1}  # R3: aerial > uhd > hd > sd

# footage_quarantine.severity: "error" = not licensable (contract §3); "warning" = the
# telemetry track could not be read, the clip stays in the inventory and licensable (R2b).
ERROR, WARNING = "error", "warning"


def tier(mount: str | None, short_side_px: int, is_drone: bool | None = False) -> str:
    """R3: aerial if mounted on a drone (the upload row's mount) or flown by one (the
    telemetry's is_drone, R2b), else by the short side of the frame."""
    if mount == "drone" or is_drone:
        return "aerial"
    if short_side_px >= 2160:
        return "uhd"
    if short_side_px >= 1080:
        return "hd"
    return "sd"


def billable_seconds(duration_s: float) -> int:
    """R2: whole seconds only, rounded down."""
    return math.floor(duration_s)


def upload_day(uploaded_at: datetime, first_day: date) -> date:
    """Partition day of an upload; anything before the first day belongs to it (contract §1)."""
    return max(uploaded_at.date(), first_day)


def mark_duplicates(current: list[dict], others: list[dict]) -> list[dict]:
    """R4: among clips sharing a fingerprint, the first uploaded (by uploaded_at, then
    clip_id) is the original; every other one is a duplicate of it.

    ``current`` rows get ``is_duplicate``/``duplicate_of`` set; ``others`` are rows already
    in the inventory outside the partitions being written (only their fingerprint,
    uploaded_at and clip_id matter).
    """
    first: dict[str, tuple] = {}
    for row in [*others, *current]:
        key = (row["uploaded_at"], row["clip_id"])
        fp = row["fingerprint"]
        if fp not in first or key < first[fp]:
            first[fp] = key
    for row in current:
        original = first[row["fingerprint"]][1]
        row["is_duplicate"] = original != row["clip_id"]
        row["duplicate_of"] = original if row["is_duplicate"] else None
    return current


_UPLOAD_FIELDS = ("subscriber_id", "uploaded_at", "published", "activity", "mount", "upload_day")


def _utc_midnight(day: date):

    return pa.scalar(f"{day.isoformat()}T00:00:00+00:00").cast(pa.timestamp("us", tz="UTC"))


def uploads_for_days(store, days: list[date], first_day: date) -> list[dict]:
    """Upload rows whose partition day is in ``days`` (sorted); the first partition also
    takes everything uploaded before it (contract §1)."""
    import pyarrow.compute as pc

    from gopro_assets.domain.ingestion import landing

    flt = pc.field("uploaded_at") < _utc_midnight(days[-1] + timedelta(days=1))
    prune = f"uploaded_at < '{days[-1] + timedelta(days=1)}T00:00:00Z'"
    if days[0] > first_day:
        flt = flt & (pc.field("uploaded_at") >= _utc_midnight(days[0]))
        prune += f" AND uploaded_at >= '{days[0]}T00:00:00Z'"
    rows = store.read("uploads", filter=flt, schema=landing.LANDING_KINDS["uploads"].schema, prune=prune).to_pylist()
    for r in rows:
        r["upload_day"] = upload_day(r["uploaded_at"], first_day)
    return rows


def recorded_at(creation_time: str | None) -> datetime | None:
    """R2b ``recorded_at``: the container's ``creation_time`` as written. GoPro writes the
    camera's local time labelled UTC; it is kept, not converted (docs/FOOTAGE.md). A value
    without an offset is read as UTC (what the label would be); one that is not an
    ISO-8601 instant (a hostile or broken tag) gives null."""
    if not creation_time:
        return None
    try:
        t = datetime.fromisoformat(creation_time.strip())
    except (ValueError, TypeError):
        return None
    return t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)


def telemetry_columns(summary) -> dict:
    """The inventory's R2b columns from a probe's telemetry summary (None: no telemetry)."""
    cols = (summary or NO_TELEMETRY).columns()
    cols["recorded_at"] = recorded_at(cols["recorded_at"])
    return cols


def derived_columns(row: dict) -> dict:
    """The columns computed from other columns of an inventory row: tier (R3, which reads
    is_drone) and the recording (R15, from subscriber_id, clip_id and object_key). Set on
    every row written, so a reused row follows the rules of the code that writes it."""
    chapter = chapter_of(row["subscriber_id"], row["clip_id"], row["object_key"])
    return {
        "tier": tier(row["mount"], row["short_side_px"], row.get("is_drone")),
        "recording_id": chapter.recording_id,
        "chapter": chapter.chapter,
    }


def inventory_row(upload: dict, probe) -> dict:
    """An inventory row from an upload row and its successful probe (R2, R2b, R3, R15)."""
    short_side = min(probe.width, probe.height)
    row = {
        "clip_id": upload["clip_id"],
        "object_key": upload["object_key"],
        **{k: upload[k] for k in _UPLOAD_FIELDS},
        "duration_s": probe.duration_s,
        "billable_seconds": billable_seconds(probe.duration_s),
        "width": probe.width,
        "height": probe.height,
        "short_side_px": short_side,
        "fps": probe.fps,
        "codec": probe.codec,
        "bit_rate": probe.bit_rate,
        "size_bytes": probe.size_bytes,
        "fingerprint": probe.fingerprint,
        **telemetry_columns(probe.telemetry),
    }
    return row | derived_columns(row)


def _quarantine_row(upload: dict, reason: str, severity: str) -> dict:
    keys = ("clip_id", "subscriber_id", "object_key", "upload_day")
    return {**{k: upload[k] for k in keys}, "reason": reason, "severity": severity}


def _days(first: date, last: date) -> list[date]:
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


def refresh_inventory(
    store, landing_uri: str, days: list[date], first_day: date, probe_many, timeout_s: float = 60.0
) -> dict:
    """Probe the uploads of ``days`` and rewrite those inventory partitions (R2–R4).

    Clips already probed in these partitions (same clip_id and object_key) are reused.
    Duplicates are judged against the whole inventory; a row of another partition that
    turns out to be a later copy of a clip written now is re-flagged in place, so the
    inventory never holds two originals of one fingerprint.

    Quarantine (``footage_quarantine``): a clip whose video cannot be probed gets a row of
    severity ``error`` and no inventory row; a clip whose telemetry track cannot be read
    keeps its inventory row (``telemetry = false``, ``telemetry_warning`` set) and gets a
    row of severity ``warning`` (R2b).

    Existing lakes (docs/FOOTAGE.md): the inventory and quarantine tables get the columns
    this version declares and they lack (``DeltaStore.add_missing_columns``; old quarantine
    rows were all errors and are marked so). A stored row without the R2b columns
    (``telemetry`` null: probed before telemetry was read) is not reused: its clip is
    probed again, so a run over its day fills them.
    """
    import pyarrow.compute as pc

    from gopro_assets.domain.ingestion import landing
    from gopro_assets.lake.delta_store import sql_literal

    evolved = {
        INVENTORY: store.add_missing_columns(INVENTORY, INVENTORY_SCHEMA),
        FOOTAGE_QUARANTINE: store.add_missing_columns(
            FOOTAGE_QUARANTINE, FOOTAGE_QUARANTINE_SCHEMA, fill={"severity": f"'{ERROR}'"}
        ),
    }
    uploads = uploads_for_days(store, days, first_day)
    in_range = (pc.field("upload_day") >= pa.scalar(days[0], pa.date32())) & (
        pc.field("upload_day") <= pa.scalar(days[-1], pa.date32())
    )
    predicate = f"upload_day >= '{days[0].isoformat()}' AND upload_day <= '{days[-1].isoformat()}'"
    existing = store.read(INVENTORY, schema=INVENTORY_SCHEMA, filter=in_range, prune=predicate).to_pylist()
    # reused only when probed by a version that reads telemetry (R2b columns present)
    probed = {(r["clip_id"], r["object_key"]): r for r in existing if r.get("telemetry") is not None}
    to_probe = [u for u in uploads if (u["clip_id"], u["object_key"]) not in probed]
    results = probe_many(landing_uri, [u["object_key"] for u in to_probe], timeout_s=timeout_s)

    rows, quarantine = [], []
    for u in uploads:
        prior = probed.get((u["clip_id"], u["object_key"]))
        if prior is not None:
            row = {**prior, **{k: u[k] for k in _UPLOAD_FIELDS}}
            rows.append(row | derived_columns(row))
    for u, res in zip(to_probe, results):
        if res.ok:
            rows.append(inventory_row(u, res))
        else:
            quarantine.append(_quarantine_row(u, res.reason, ERROR))
    warnings = [_quarantine_row(r, r["telemetry_warning"], WARNING) for r in rows if r.get("telemetry_warning")]

    fingerprints = sorted({r["fingerprint"] for r in rows})
    # R4 against the whole inventory, through the fingerprint index (domain/footage/fingerprint_index.py):
    # only the partitions that may hold one of these fingerprints are read
    lookup = fingerprint_index.rows_with_fingerprints(
        store, fingerprints, ["clip_id", "uploaded_at", "fingerprint", "upload_day", "is_duplicate", "duplicate_of"]
    )
    others = [o for o in lookup.rows.to_pylist() if not days[0] <= o["upload_day"] <= days[-1]]
    mark_duplicates(rows, others)
    rows.sort(key=lambda r: (r["upload_day"], r["uploaded_at"], r["clip_id"]))

    store.replace_where(INVENTORY, landing.to_arrow(rows, INVENTORY_SCHEMA), predicate, partition_by=["upload_day"])
    flagged = sorted(quarantine + warnings, key=lambda q: (q["upload_day"], q["clip_id"], q["severity"]))
    store.replace_where(
        FOOTAGE_QUARANTINE,
        landing.to_arrow(flagged, FOOTAGE_QUARANTINE_SCHEMA),
        predicate,
        partition_by=["upload_day"],
    )

    # Rows elsewhere that are later copies of a clip written now (a late, older upload).
    relabelled, rewritten = 0, set()
    for o in mark_duplicates([dict(o) for o in others], rows):
        stored = next(x for x in others if x["clip_id"] == o["clip_id"])
        if (o["is_duplicate"], o["duplicate_of"]) != (stored["is_duplicate"], stored["duplicate_of"]):
            store.table(INVENTORY).update(
                predicate=f"clip_id = {sql_literal(o['clip_id'])}",
                updates={
                    "is_duplicate": str(o["is_duplicate"]).lower(),
                    "duplicate_of": sql_literal(o["duplicate_of"]) if o["duplicate_of"] else "NULL",
                },
            )
            relabelled += 1
            rewritten.add(o["upload_day"])
    # the partitions written now, and those read whole because the index did not describe them
    fingerprint_index.reindex(store, set(_days(days[0], days[-1])) | lookup.unindexed_days | rewritten)
    return {
        "uploads": len(uploads),
        "probed_now": len(to_probe),
        "reused": len(uploads) - len(to_probe),
        "rows": len(rows),
        "quarantined": quarantine,
        "telemetry_warnings": warnings,
        "duplicates": sum(r["is_duplicate"] for r in rows),
        "with_telemetry": sum(bool(r["telemetry"]) for r in rows),
        "columns_added": {t: cols for t, cols in evolved.items() if cols},
        "relabelled_elsewhere": relabelled,
    }
