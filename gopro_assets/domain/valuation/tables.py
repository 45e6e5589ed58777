"""The valuation table written from Python, declared once: names, Arrow types and
descriptions (gopro_assets/domain/tables.py). ``model.py`` writes it with the schema
derived here; defs/valuation/assets.py shows the same columns in Dagster."""

import pyarrow as pa

from gopro_assets.domain.tables import Column, Table

CLIP_VALUATIONS = Table(
    "clip_valuations",
    (
        Column("clip_id", pa.string(), "Clip of footage_inventory."),
        Column(
            "predicted_cents_per_minute",
            pa.float64(),
            "Estimated cents per minute one sale of the clip realises (DOUBLE, an estimate).",
        ),
        Column("billable_seconds", pa.int64(), "floor(duration_s) (R2)."),
        Column(
            "predicted_value_cents",
            pa.float64(),
            "predicted_cents_per_minute * billable_seconds / 60 (DOUBLE): one sale of the whole clip, an estimate, "
            "not money owed.",
        ),
        Column(
            "model_version",
            pa.string(),
            "clip_value_model version (latest revenue month + sha256 prefix of the artefact).",
        ),
        Column(
            "model_kind",
            pa.string(),
            "gradient_boosting, or tier_mean_baseline when the model did not beat it or history is too short.",
        ),
    ),
)
