"""The footage domain's Delta tables, declared once: names, Arrow types and descriptions
(gopro_assets/domain/tables.py). The schemas below and the Dagster column schemas
(defs/footage/assets.py) derive from these declarations."""

import pyarrow as pa

from gopro_assets.domain.tables import TS, Column, Table

_STR, _INT = pa.string(), pa.int64()
_UPLOAD_DAY = "Daily partition (UTC day of uploaded_at; earlier uploads go to the first partition)."

FOOTAGE_INVENTORY = Table(
    "footage_inventory",
    (
        Column("clip_id", _STR, "Clip id from the upload row."),
        Column("subscriber_id", _STR, "Owner (uploads.subscriber_id)."),
        Column("object_key", _STR, "Video path under footage/ in the landing zone."),
        Column("uploaded_at", TS, "Upload time, UTC (from the upload row)."),
        Column("published", pa.bool_(), "True when the owner published the clip (from the upload row)."),
        Column("activity", _STR, "Activity label or null (from the upload row)."),
        Column("mount", _STR, "Camera mount or null (from the upload row); drone means aerial (R3)."),
        Column("duration_s", pa.float64(), "Duration probed from the container header (R2), seconds."),
        Column("billable_seconds", _INT, "floor(duration_s) (R2)."),
        Column("width", _INT, "Frame width in pixels, probed (R2)."),
        Column("height", _INT, "Frame height in pixels, probed (R2)."),
        Column("short_side_px", _INT, "min(width, height) (R2)."),
        Column("fps", pa.float64(), "Average frame rate, probed (R2)."),
        Column("codec", _STR, "Video codec name, probed (R2), e.g. h264, hevc."),
        Column("bit_rate", _INT, "Bit rate in bit/s, probed (R2)."),
        Column("size_bytes", _INT, "File size in bytes (R2)."),
        Column(
            "fingerprint", _STR, "Content fingerprint over size, head, tail and 16 samples (R4, docs/FINGERPRINT.md)."
        ),
        Column("tier", _STR, "aerial | uhd | hd | sd (R3)."),
        Column(
            "is_duplicate", pa.bool_(), "True when an earlier upload has the same fingerprint (R4); never licensed."
        ),
        Column("duplicate_of", _STR, "clip_id of the original when is_duplicate."),
        Column("upload_day", pa.date32(), _UPLOAD_DAY),
    ),
)

FOOTAGE_QUARANTINE_TABLE = Table(
    "footage_quarantine",
    (
        Column("clip_id", _STR, "Clip id from the upload row."),
        Column("subscriber_id", _STR, "Owner (uploads.subscriber_id)."),
        Column("object_key", _STR, "Video path from the upload row (possibly the offending one)."),
        Column(
            "reason",
            _STR,
            "Why the video could not be probed: missing, empty, unreadable, no video stream, zero length, "
            "outside footage/.",
        ),
        Column("upload_day", pa.date32(), _UPLOAD_DAY),
    ),
)

# The index R4 reads instead of every inventory partition (fingerprint_index.py).
FINGERPRINT_INDEX = Table(
    "footage_fingerprint_index",
    (
        Column("fp_key", _INT, "63 bits of the MD5 of the fingerprint (DuckDB md5_number)."),
        Column("upload_day", pa.date32(), "The clip's inventory partition."),
        Column("day_files", _STR, "Token of the exact data files of that partition the row was read from."),
        Column("upload_month", _STR, "The index's own partition, YYYY-MM: a re-run of a day rewrites one month."),
    ),
)

# Names and schemas, derived from the declarations (kept for callers).
INVENTORY, FOOTAGE_QUARANTINE = FOOTAGE_INVENTORY.name, FOOTAGE_QUARANTINE_TABLE.name
INVENTORY_SCHEMA = FOOTAGE_INVENTORY.schema
FOOTAGE_QUARANTINE_SCHEMA = FOOTAGE_QUARANTINE_TABLE.schema
