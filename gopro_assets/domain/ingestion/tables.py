"""The ingestion tables, declared once (contract §2–3): the six landing kinds, deals and
batches, ``quarantine_rows`` and ``ingested_files``.

The parser's field list (``landing.py``), the Delta schema and the Dagster column schema
(``defs/ingestion/assets.py``) all come from these declarations
(``gopro_assets/domain/tables.py``). A parsed column's ``kind`` says how its landing
value is read; the order of the parsed columns is the order of the contract's fields.
"""

from __future__ import annotations

import pyarrow as pa

from gopro_assets.domain.tables import TS, Column, Table

TIERS = ("aerial", "uhd", "hd", "sd")

_STR, _INT = pa.string(), pa.int64()
_SUBSCRIBER = "Subscriber id (subscribers.subscriber_id)."
_EVENT_AT = "When it happened, UTC (landing timestamps must carry an offset)."

# Lineage of every landing row: the file (relative to the landing root) and its physical
# line (0 for a deal file). Not shown in the Dagster column schema (leading underscore).
SOURCE_COLUMNS = (
    Column("_source_path", _STR, "Landing file of the row, relative to the landing root."),
    Column("_source_line", _INT, "Physical line of the row in its file; 0 for a deal file."),
)

SUBSCRIBERS = Table(
    "subscribers",
    (
        Column("subscriber_id", _STR, "Subscriber id; upsert key (the last row in file order wins).", kind="id"),
        Column("email", _STR, "E-mail address: personal data, kept only here and in the payout export.", kind="text"),
        Column("country", _STR, "ISO 3166-1 alpha-2 country; only US subscribers are eligible (R1).", kind="country"),
        Column("subscribed_at", TS, "Subscription start, UTC.", kind="timestamp"),
        Column(
            "cancelled_at",
            TS,
            "Cancellation, UTC; null while the subscription is active (R1).",
            kind="timestamp",
            required=False,
        ),
        Column(
            "invited_at",
            TS,
            "Invitation to the licensing program, UTC; null = not invited (R1).",
            kind="timestamp",
            required=False,
        ),
        *SOURCE_COLUMNS,
    ),
)

CONSENT_EVENTS = Table(
    "consent_events",
    (
        Column("event_id", _STR, "Event id; the first occurrence wins.", kind="id"),
        Column("subscriber_id", _STR, _SUBSCRIBER, kind="id"),
        Column("event_at", TS, _EVENT_AT, kind="timestamp"),
        Column("action", _STR, "opt_in or opt_out (R1).", kind="enum", values=("opt_in", "opt_out")),
        Column(
            "excluded_buyers",
            pa.list_(_STR),
            "Buyer ids this opt_in excludes (R1); empty for opt_out.",
            kind="id_list",
            required=False,
            default=list,
        ),
        *SOURCE_COLUMNS,
    ),
)

CLIP_EXCLUSIONS = Table(
    "clip_exclusions",
    (
        Column("event_id", _STR, "Event id; the first occurrence wins.", kind="id"),
        Column("subscriber_id", _STR, _SUBSCRIBER, kind="id"),
        Column("clip_id", _STR, "The clip excluded or included again.", kind="id"),
        Column("event_at", TS, _EVENT_AT, kind="timestamp"),
        Column("action", _STR, "exclude or include (R1b).", kind="enum", values=("exclude", "include")),
        *SOURCE_COLUMNS,
    ),
)

UPLOADS = Table(
    "uploads",
    (
        Column("clip_id", _STR, "Clip id; the first occurrence wins.", kind="id"),
        Column("subscriber_id", _STR, "Owner; must be a known subscriber (contract §3).", kind="id"),
        Column("object_key", _STR, "Video path under footage/ in the landing zone.", kind="object_key"),
        Column(
            "uploaded_at",
            TS,
            "Upload time, UTC: decides the footage partition and batch eligibility (R5).",
            kind="timestamp",
        ),
        Column(
            "published",
            pa.bool_(),
            "True when the owner published the clip (deals may want unpublished only).",
            kind="bool",
        ),
        Column("activity", _STR, "Activity label (surf, ski, ...) or null.", kind="text", required=False),
        Column(
            "mount",
            _STR,
            "Camera mount (drone, helmet, handheld) or null; drone means the aerial tier (R3).",
            kind="text",
            required=False,
        ),
        *SOURCE_COLUMNS,
    ),
)

BUYER_PAYMENTS = Table(
    "buyer_payments",
    (
        Column("payment_id", _STR, "Payment id from the buyer's remittance.", kind="id"),
        Column("deal_id", _STR, "Deal paid for.", kind="id"),
        Column("batch_id", _STR, "Batch paid for (R13 buyer side).", kind="id"),
        Column("amount_cents", _INT, "Amount received, integer US cents.", kind="cents"),
        Column("received_at", TS, "When the payment was received, UTC.", kind="timestamp"),
        *SOURCE_COLUMNS,
    ),
)

PAYOUTS = Table(
    "payouts",
    (
        Column("payout_id", _STR, "Payout id; the same id twice is reported as duplicate (R13).", kind="id"),
        Column("subscriber_id", _STR, _SUBSCRIBER, kind="id"),
        Column("statement_month", _STR, "Statement month paid, YYYY-MM.", kind="month"),
        Column("amount_cents", _INT, "Amount paid, integer US cents.", kind="cents"),
        Column("paid_at", TS, "When the payout was made, UTC.", kind="timestamp"),
        *SOURCE_COLUMNS,
    ),
)

# deals/*.json: one nested object per file (landing.parse_deal). The kinds of the top-level
# keys are read from here; pricing and criteria are flattened into columns by the parser.
LICENSE_DEALS = Table(
    "license_deals",
    (
        Column("deal_id", _STR, "Deal id (one deal file each).", kind="id"),
        Column("buyer_id", _STR, "Buyer id, matched against consent_events.excluded_buyers (R1).", kind="id"),
        Column("buyer_name", _STR, "Buyer's display name.", kind="text"),
        Column("signed_at", TS, "Signature date, UTC.", kind="timestamp"),
        Column("pricing_model", _STR, "per_minute (tier prices) or flat_fee (fee per batch)."),
        *(
            Column(
                f"price_{t}_cents",
                _INT,
                f"Price per minute of {t} footage, cents; null = {t} is not licensable in this deal.",
            )
            for t in TIERS
        ),
        Column("min_short_side_px", _INT, "Criterion: minimum short side in pixels; null = any."),
        Column("min_fps", pa.float64(), "Criterion: minimum frame rate; null = any."),
        Column("activities", pa.list_(_STR), "Criterion: allowed activities; null = any activity."),
        Column("unpublished_only", pa.bool_(), "Criterion: only clips never published."),
        Column("min_duration_s", pa.float64(), "Criterion: minimum duration in seconds; null = any."),
        # contract v2 (§2): telemetry criteria, whole recordings (R5, R6, R15) and the sensor bonus (R7)
        Column("requires_gps", pa.bool_(), "Criterion (v2): only clips with has_gps; null or false = any (R5)."),
        Column("requires_imu", pa.bool_(), "Criterion (v2): only clips with has_imu; null or false = any (R5)."),
        Column(
            "camera_models",
            pa.list_(_STR),
            "Criterion (v2): allowed camera models, compared with camera_model ignoring case; null = any (R5).",
        ),
        Column(
            "location_cells",
            pa.list_(_STR),
            "Criterion (v2): geohash prefixes (lower case); a clip qualifies when its location_cell begins "
            "with one of them; null = anywhere (R5).",
        ),
        Column(
            "whole_recordings",
            pa.bool_(),
            "Criterion (v2): the unit of selection is the whole recording, every chapter delivered together "
            "(R6, R15); null or false = clip by clip.",
        ),
        Column(
            "sensor_bonus_cents",
            _INT,
            "Pricing (v2, per_minute only): cents per minute added to the tier price of a clip with has_gps and "
            "has_imu (R7); null = no bonus.",
        ),
        *SOURCE_COLUMNS,
    ),
)

LICENSE_BATCHES = Table(
    "license_batches",
    (
        Column("deal_id", _STR, "Deal the batch belongs to."),
        Column("batch_id", _STR, "Batch id within the deal.", kind="id"),
        Column(
            "cutoff_at",
            TS,
            "Cutoff, UTC: the batch is due once it has passed and is then frozen (R5, R12).",
            kind="timestamp",
        ),
        Column("max_minutes", _INT, "Minute cap of the batch (R6); null = no cap."),
        Column("fee_cents", _INT, "Flat fee of the batch (flat_fee deals), cents."),
        Column("revenue_month", _STR, "UTC month of cutoff_at, YYYY-MM (R10)."),
        *SOURCE_COLUMNS,
    ),
)

QUARANTINE_ROWS = Table(
    "quarantine_rows",
    (
        Column("source", _STR, "Landing file, relative to the landing root."),
        Column("position", _INT, "Physical line number in the file; 0 = the whole file was rejected."),
        Column("raw", _STR, "The rejected text (a whole rejected file is cut to 2,000 characters)."),
        Column("reason", _STR, "Why it was rejected, in words."),
    ),
)

INGESTED_FILES = Table(
    "ingested_files",
    (
        Column("kind", _STR, "Landing kind (subscribers, uploads, deals, ...)."),
        Column("path", _STR, "Landing file, relative to the landing root."),
        Column("sha256", _STR, "SHA-256 of the file's content when it was ingested."),
        Column("rows", _INT, "Valid rows the file gave."),
        Column("quarantined", _INT, "Quarantine entries the file gave."),
        # size and modification time of the file when it was hashed: a file listed with the
        # same two is not read and hashed again (ingest.changed_files)
        Column("size_bytes", _INT, "File size in bytes when it was hashed."),
        Column("mtime_ns", _INT, "File modification time (ns) when it was hashed."),
    ),
)

LANDING_TABLES = (SUBSCRIBERS, CONSENT_EVENTS, CLIP_EXCLUSIONS, UPLOADS, BUYER_PAYMENTS, PAYOUTS)
TABLES = {t.name: t for t in (*LANDING_TABLES, LICENSE_DEALS, LICENSE_BATCHES, QUARANTINE_ROWS, INGESTED_FILES)}
