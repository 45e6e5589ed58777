"""Checks on the valuations: every clip valued, estimates finite and non-negative, and
the served model's backtest evidence."""

import json
import math

import dagster as dg

from gopro_assets.domain.valuation import model as lib
from gopro_assets.lake import duck
from gopro_assets.lake.storage import FileRoot
from gopro_assets.shared.resources import LakehouseResource


@dg.asset_check(
    asset="clip_valuations",
    blocking=True,
    description="Every footage_inventory clip has exactly one valuation (ERROR), unless no model could be "
    "trained yet because nothing was delivered (WARN).",
)
def every_inventory_clip_valued(lakehouse: LakehouseResource) -> dg.AssetCheckResult:
    store = lakehouse.store()
    con = duck.connect()
    try:
        for table in ("footage_inventory", "clip_valuations"):
            con.register(table, store.dataset(table))
        missing = (
            con.sql("SELECT clip_id FROM footage_inventory ANTI JOIN clip_valuations USING (clip_id) ORDER BY clip_id")
            .to_arrow_table()
            .column("clip_id")
            .to_pylist()
        )
        twice = (
            con.sql("SELECT clip_id FROM clip_valuations GROUP BY clip_id HAVING count(*) > 1 ORDER BY clip_id")
            .to_arrow_table()
            .column("clip_id")
            .to_pylist()
        )
    finally:
        con.close()
    pointer = lib.read_pointer(store.root)
    no_model = pointer.get("version") is None
    return dg.AssetCheckResult(
        passed=not missing and not twice,
        severity=dg.AssetCheckSeverity.WARN if no_model else dg.AssetCheckSeverity.ERROR,
        metadata={
            "clips_without_valuation": len(missing),
            "clips_valued_twice": len(twice),
            "sample": dg.MetadataValue.json((missing + twice)[:20]),
            "model": pointer.get("version") or f"none: {pointer.get('reason')}",
        },
    )


@dg.asset_check(
    asset="clip_valuations",
    blocking=True,
    description="Predicted prices and values are finite and >= 0, and value = price * billable_seconds / 60.",
)
def valuations_finite_and_consistent(lakehouse: LakehouseResource) -> dg.AssetCheckResult:
    rows = lakehouse.store().read("clip_valuations").to_pylist()
    bad = [
        r["clip_id"]
        for r in rows
        if r["predicted_cents_per_minute"] is None
        or not math.isfinite(r["predicted_cents_per_minute"])
        or r["predicted_cents_per_minute"] < 0
        or not math.isclose(
            r["predicted_value_cents"],
            r["predicted_cents_per_minute"] * r["billable_seconds"] / 60,
            rel_tol=1e-9,
            abs_tol=1e-9,
        )
    ]
    return dg.AssetCheckResult(
        passed=not bad, metadata={"offending_rows": len(bad), "sample": dg.MetadataValue.json(bad[:20])}
    )


@dg.asset_check(
    asset="clip_value_model",
    description="The served model beat the tier-mean baseline in the time-based backtest (WARN: the "
    "baseline is served instead when it did not).",
)
def model_beats_baseline_in_backtest(lakehouse: LakehouseResource) -> dg.AssetCheckResult:
    root = FileRoot(lakehouse.store().root)
    pointer = lib.read_pointer(root.root)
    if pointer.get("version") is None:
        return dg.AssetCheckResult(
            passed=False, severity=dg.AssetCheckSeverity.WARN, metadata={"reason": pointer.get("reason", "")}
        )
    metrics = json.loads(root.read_bytes(f"{lib.MODEL_DIR}/{pointer['version']}/metrics.json"))
    bt = metrics.get("backtest") or {}
    return dg.AssetCheckResult(
        passed=metrics["model_kind"] == "gradient_boosting",
        severity=dg.AssetCheckSeverity.WARN,
        metadata={
            "model_kind": metrics["model_kind"],
            "reason": metrics["reason"],
            **{
                k: dg.MetadataValue.float(float(v))
                for k, v in bt.items()
                if k.endswith(("_mae", "_r2")) and v is not None
            },
        },
    )
