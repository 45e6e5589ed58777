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
        Column("tier", _STR, "aerial | uhd | hd | sd (R3): aerial when mount is drone or is_drone."),
        Column(
            "is_duplicate", pa.bool_(), "True when an earlier upload has the same fingerprint (R4); never licensed."
        ),
        Column("duplicate_of", _STR, "clip_id of the original when is_duplicate."),
        # R2b: from the GoPro telemetry track (handler "GoPro MET", GPMF) and the container
        # (domain/footage/telemetry.py, docs/TELEMETRY.md); nulls/false without the track.
        Column(
            "telemetry",
            pa.bool_(),
            "True when the file has a GoPro telemetry track (gpmd, 'GoPro MET') holding a GPMF payload (R2b); "
            "false without one and when the track cannot be parsed (then telemetry_warning says why).",
        ),
        Column(
            "camera_model",
            _STR,
            "Camera model from the firmware prefix (HD7 -> HERO7 Black, H19 -> MAX, ...), else the DVNM of "
            "GPMF device 1; null without telemetry (R2b).",
        ),
        Column("firmware", _STR, "Firmware string: the container tag firmware, else GPMF FIRM/FMWR (R2b)."),
        Column(
            "recorded_at",
            TS,
            "Container creation_time as the camera wrote it: GoPro writes camera-local time labelled UTC, kept "
            "unconverted, so it is NOT a true UTC instant (R2b, docs/FOOTAGE.md).",
        ),
        Column("has_gps", pa.bool_(), "A GPS5 sample with GPSF >= 2 or a GPS9 sample with fix >= 2 (R2b)."),
        Column("has_imu", pa.bool_(), "ACCL and GYRO both hold samples in the first payload (R2b)."),
        Column("is_drone", pa.bool_(), "A GPMF device whose DVNM contains Karma, in the first payload (R2b, R3)."),
        Column(
            "location_cell",
            _STR,
            "Precision-5 geohash (about 5 km) of the median point of the first payload with a GPS fix: where the "
            "recording starts. Null without GPS. Exact coordinates are stored nowhere (R2b).",
        ),
        Column(
            "telemetry_warning",
            _STR,
            "Why a telemetry track could not be read (null otherwise); the same reason is in footage_quarantine "
            "with severity warning. The clip stays licensable (R2b).",
        ),
        # R15: from the object_key's file name (domain/footage/recordings.py, docs/FOOTAGE.md)
        Column(
            "recording_id",
            _STR,
            "<subscriber_id>:<folder>/G<family><NNNN> for a camera chapter name (GH/GX<CC><NNNN>, GOPR<NNNN>, "
            "GP<CC><NNNN>), else <subscriber_id>:<clip_id> (R15).",
        ),
        Column(
            "chapter", _INT, "Chapter number in the recording: CC for GH/GX, 1 for GOPR, CC+1 for GP, else 1 (R15)."
        ),
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
            "outside footage/ (severity error); or why its telemetry track could not be read (severity warning).",
        ),
        Column(
            "severity",
            _STR,
            "error: the clip is not in footage_inventory and never licensable (contract §3); warning: its "
            "telemetry track could not be parsed, the clip is in the inventory with telemetry = false and stays "
            "licensable (R2b). Whatever means 'quarantined' reads severity = 'error' only.",
        ),
        Column("upload_day", pa.date32(), _UPLOAD_DAY),
    ),
)

# R15: one row per recording, from the whole inventory (domain/footage/recordings.py).
FOOTAGE_RECORDINGS = Table(
    "footage_recordings",
    (
        Column("recording_id", _STR, "The recording (footage_inventory.recording_id, R15)."),
        Column("subscriber_id", _STR, "Owner of the recording's clips."),
        Column(
            "chapters",
            _INT,
            "Chapters that count: in the inventory (probed, not quarantined with severity error) and not "
            "duplicates (R4).",
        ),
        Column("complete", pa.bool_(), "The counted chapters are exactly 1..n, each once (R15)."),
        Column("recording_duration_s", pa.float64(), "Sum of the counted chapters' duration_s (R15)."),
        Column(
            "billable_seconds",
            _INT,
            "Sum of the counted chapters' billable_seconds (each floor(duration_s), as R6 and R7 sum them).",
        ),
        Column("first_clip_id", _STR, "clip_id of the counted chapter 1; null when chapter 1 does not count."),
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
RECORDINGS = FOOTAGE_RECORDINGS.name
INVENTORY_SCHEMA = FOOTAGE_INVENTORY.schema
FOOTAGE_QUARANTINE_SCHEMA = FOOTAGE_QUARANTINE_TABLE.schema
RECORDINGS_SCHEMA = FOOTAGE_RECORDINGS.schema
