"""The licensing domain's Delta tables written from Python, declared once: names, Arrow
types and descriptions (gopro_assets/domain/tables.py). ``deliveries.py`` writes them with
the schemas derived here; defs/licensing/assets.py shows the same columns in Dagster."""

import pyarrow as pa

from gopro_assets.domain.tables import TS, Column, Table

_STR, _INT = pa.string(), pa.int64()

DEAL_DELIVERIES = Table(
    "deal_deliveries",
    (
        Column("deal_id", _STR, "Deal of the batch."),
        Column("batch_id", _STR, "Batch the clip was delivered in."),
        Column("clip_id", _STR, "Delivered clip (once per deal, R5)."),
        Column("subscriber_id", _STR, "Owner of the clip, paid from the batch's pool (R9)."),
        Column("tier", _STR, "Tier at delivery (R3)."),
        Column("billable_seconds", _INT, "floor(duration) at delivery (R2)."),
        Column("tier_price_cents", _INT, "Deal price per minute for the tier (per_minute deals; null for flat_fee)."),
        Column("revenue_month", _STR, "UTC month of the batch cutoff (R10)."),
        Column("cutoff_at", TS, "Batch cutoff, UTC: eligibility and exclusions are judged at this instant (R5)."),
        Column("selection_rank", _INT, "1-based position of the clip among the batch's licensable clips in R6 order."),
        # contract v2, frozen at delivery like the tier price (R12): a later deal edit or re-probe
        # never changes what a delivered batch earned. Null in rows delivered before v2.
        Column(
            "sensor_bonus_cents",
            _INT,
            "Sensor bonus per minute added to tier_price_cents for this clip (R7): the deal's "
            "pricing.sensor_bonus_cents when the clip has_gps and has_imu, else 0; null for flat_fee.",
        ),
        Column("has_gps", pa.bool_(), "The clip had a GPS fix at delivery (R2b; false without telemetry)."),
        Column("has_imu", pa.bool_(), "The clip had ACCL and GYRO samples at delivery (R2b; false without telemetry)."),
        Column("camera_model", _STR, "Camera model at delivery (R2b); null without telemetry."),
        Column(
            "recording_id",
            _STR,
            "Recording of the clip (R15); under whole_recordings every chapter of it is in this batch (R6).",
        ),
        Column("chapter", _INT, "Chapter number of the clip in its recording (R15)."),
    ),
)

DELIVERED_BATCHES = Table(
    "delivered_batches",
    (
        Column("deal_id", _STR, "Deal of the batch."),
        Column("batch_id", _STR, "Batch id within the deal."),
        Column("buyer_id", _STR, "Buyer of the deal (R1 exclusions are per buyer)."),
        Column("pricing_model", _STR, "per_minute or flat_fee (R7)."),
        Column("cutoff_at", TS, "Batch cutoff, UTC."),
        Column("revenue_month", _STR, "UTC month of the cutoff, YYYY-MM (R10)."),
        Column("max_minutes", _INT, "Minute cap of the batch; null = no cap (R6)."),
        Column("fee_cents", _INT, "Flat fee of the batch (flat_fee deals), cents."),
        Column("clips", _INT, "Clips delivered."),
        Column("billable_seconds", _INT, "Billable seconds delivered."),
        Column("candidates", _INT, "Licensable clips the selection chose from (R5)."),
        Column(
            "input_versions",
            _STR,
            "JSON {table: Delta version} the batch was computed from (time travel for the checks).",
        ),
        # contract v2, frozen with the batch terms (R12); null in batches delivered before v2
        Column(
            "sensor_bonus_cents",
            _INT,
            "The deal's sensor bonus per minute when the batch was delivered (R7): 0 when the per_minute deal "
            "has none, null for flat_fee.",
        ),
        Column("whole_recordings", pa.bool_(), "The batch was selected recording by recording (R6, R15)."),
    ),
)
