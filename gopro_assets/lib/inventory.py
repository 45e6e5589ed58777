"""Footage inventory rules: tier (R3), billable seconds (R2) and duplicates (R4)."""

from __future__ import annotations

import math
from datetime import date, datetime

import pyarrow as pa

TIER_RANK = {"aerial": 4, "uhd": 3, "hd": 2, "sd": 1}  # R3: aerial > uhd > hd > sd

INVENTORY_SCHEMA = pa.schema([
    ("clip_id", pa.string()),
    ("subscriber_id", pa.string()),
    ("object_key", pa.string()),
    ("uploaded_at", pa.timestamp("us", tz="UTC")),
    ("published", pa.bool_()),
    ("activity", pa.string()),
    ("mount", pa.string()),
    ("duration_s", pa.float64()),
    ("billable_seconds", pa.int64()),
    ("width", pa.int64()),
    ("height", pa.int64()),
    ("short_side_px", pa.int64()),
    ("fps", pa.float64()),
    ("codec", pa.string()),
    ("bit_rate", pa.int64()),
    ("size_bytes", pa.int64()),
    ("fingerprint", pa.string()),
    ("tier", pa.string()),
    ("is_duplicate", pa.bool_()),
    ("duplicate_of", pa.string()),
    ("upload_day", pa.date32()),
])

FOOTAGE_QUARANTINE_SCHEMA = pa.schema([
    ("clip_id", pa.string()),
    ("subscriber_id", pa.string()),
    ("object_key", pa.string()),
    ("reason", pa.string()),
    ("upload_day", pa.date32()),
])


def tier(mount: str | None, short_side_px: int) -> str:
    """R3: aerial if mounted on a drone, else by the short side of the frame."""
    if mount == "drone":
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
