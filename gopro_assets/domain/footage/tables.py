"""The footage domain's Delta tables: names and Arrow schemas."""

import pyarrow as pa

INVENTORY, FOOTAGE_QUARANTINE = "footage_inventory", "footage_quarantine"

INVENTORY_SCHEMA = pa.schema(
    [
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
    ]
)

FOOTAGE_QUARANTINE_SCHEMA = pa.schema(
    [
        ("clip_id", pa.string()),
        ("subscriber_id", pa.string()),
        ("object_key", pa.string()),
        ("reason", pa.string()),
        ("upload_day", pa.date32()),
    ]
)
