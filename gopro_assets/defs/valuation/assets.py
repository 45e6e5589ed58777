"""Valuation: the clip value model (scikit-learn) and the valuation of every clip.

The features (``int_clip_features``), the realised prices (``int_delivery_prices``) and
the library roll-up (``library_valuation``) are SQL models in ``dbt_like_sql/``; the
learning is in ``gopro_assets/domain/valuation/model.py``. Valuations are estimates, never money
owed (docs/VALUATION.md).
"""

import dagster as dg

from gopro_assets.domain.valuation import model as lib
from gopro_assets.domain.valuation.tables import CLIP_VALUATIONS
from gopro_assets.shared.metadata import column_schema, table_metadata
from gopro_assets.shared.resources import LakehouseResource

OWNER = "team:data-platform"


def model_metadata(trained: lib.TrainedValuation, pointer: dict) -> dict:
    meta: dict = {
        "model_kind": trained.kind,
        "reason": trained.reason,
        "training_rows": dg.MetadataValue.int(trained.training_rows),
        "revenue_months": dg.MetadataValue.json(trained.months),
        "seed": dg.MetadataValue.int(lib.SEED),
        "features": dg.MetadataValue.json(lib.FEATURES),
    }
    if pointer.get("version"):
        meta |= {
            "model_version": pointer["version"],
            "artefact_path": dg.MetadataValue.path(pointer["uri"]),
            "artefact_sha256": pointer["sha256"],
            "artefact_bytes": dg.MetadataValue.int(len(trained.blob)),
        }
    bt = trained.backtest
    if bt is not None:
        meta |= {
            "train_months": dg.MetadataValue.json(bt.train_months),
            "test_months": dg.MetadataValue.json(bt.test_months),
            "train_rows": dg.MetadataValue.int(bt.train_rows),
            "test_rows": dg.MetadataValue.int(bt.test_rows),
            "test_clips_seen_in_training": dg.MetadataValue.int(bt.test_clips_seen_in_training),
            "model_beats_baseline": dg.MetadataValue.bool(bt.model_beats_baseline),
        }
        for name, figures in [
            ("model", bt.model),
            ("baseline", bt.baseline),
            ("per_minute_model", bt.model_per_minute),
            ("per_minute_baseline", bt.baseline_per_minute),
        ]:
            for stat in ("mae", "r2"):
                if figures.get(stat) is not None:
                    meta[f"{name}_{stat}"] = dg.MetadataValue.float(float(figures[stat]))
    free = trained.backtest_without_telemetry
    if free is not None:  # the same model without the telemetry features: what they add
        for name, figures in [("model", free.model), ("per_minute_model", free.model_per_minute)]:
            if figures.get("mae") is not None:
                meta[f"{name}_mae_without_telemetry"] = dg.MetadataValue.float(float(figures["mae"]))
    return meta


@dg.asset(
    deps=["int_clip_features", "int_delivery_prices"],
    group_name="valuation",
    owners=[OWNER],
    kinds={"sklearn", "python"},
    description=(
        "What a minute of footage is worth: a scikit-learn pipeline (one-hot categoricals + gradient boosting, "
        "Huber loss, fixed seed) trained on the realised cents per minute of delivered clips. Backtested on the "
        "latest revenue months after training on the earlier ones only, against a tier-mean baseline; MAE and R² "
        "of both are in the metadata. The backtest's winner is refitted on every month and stored as a versioned, "
        "content-addressed artefact under <lake>/_models/clip_value_model/<version>/model.pkl (docs/VALUATION.md)."
    ),
)
def clip_value_model(context: dg.AssetExecutionContext, lakehouse: LakehouseResource) -> dg.MaterializeResult:
    trained, pointer = lib.train_from_lake(lakehouse.store())
    context.log.info(f"clip_value_model {pointer.get('version')}: {trained.kind} ({trained.reason})")
    return dg.MaterializeResult(
        metadata=model_metadata(trained, pointer), data_version=dg.DataVersion(pointer.get("sha256") or "none")
    )


@dg.asset(
    deps=["clip_value_model", "int_clip_features"],
    group_name="valuation",
    owners=[OWNER],
    kinds={"delta", "python", "sklearn"},
    metadata={"dagster/column_schema": column_schema(CLIP_VALUATIONS)},
    description=(
        "Estimated value of every clip of footage_inventory (contract §5): predicted cents per minute from "
        "clip_value_model and predicted_value_cents = that * billable_seconds / 60 for one sale of the whole clip. "
        "Estimates for planning (DOUBLE), never money owed; duplicates are valued like any clip but never licensed."
    ),
)
def clip_valuations(context: dg.AssetExecutionContext, lakehouse: LakehouseResource) -> dg.MaterializeResult:
    store = lakehouse.store()
    table, pointer, inventory_clips = lib.value_lake(store)
    if pointer.get("version") is None:
        context.log.warning(f"no clip is valued: {pointer.get('reason')}")
    total = sum(v or 0.0 for v in table.column("predicted_value_cents").to_pylist())
    return dg.MaterializeResult(
        metadata={
            **table_metadata(store, CLIP_VALUATIONS),
            "model_version": pointer.get("version") or "none",
            "clips_valued": dg.MetadataValue.int(table.num_rows),
            "clips_in_inventory": dg.MetadataValue.int(inventory_clips),
            "predicted_value_cents_total": dg.MetadataValue.float(float(total)),
        }
    )
