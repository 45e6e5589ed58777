"""Blocking checks on the frozen deliveries (R5, R12)."""

import json

import dagster as dg

from gopro_assets.domain.licensing import deliveries as lib
from gopro_assets.lake import duck
from gopro_assets.shared.resources import LakehouseResource
from gopro_assets.sql_engine.runner import connect, fetch_arrow, query_text


@dg.asset_check(
    asset="deal_deliveries",
    blocking=True,
    description="A clip is delivered at most once per deal (R1b: once per deal, R5).",
)
def no_duplicate_delivery_within_deal(lakehouse: LakehouseResource) -> dg.AssetCheckResult:
    con = duck.connect()
    con.register("deal_deliveries", lakehouse.store().dataset(lib.DELIVERIES))
    dupes = (
        con.sql("""SELECT deal_id, clip_id, count(*) AS deliveries, list(batch_id) AS batches
                       FROM deal_deliveries GROUP BY deal_id, clip_id HAVING count(*) > 1 LIMIT 20""")
        .to_arrow_table()
        .to_pylist()
    )
    return dg.AssetCheckResult(passed=not dupes, metadata={"sample": dg.MetadataValue.json(dupes)})


@dg.asset_check(
    asset="deal_deliveries",
    blocking=True,
    description="Every delivered clip's owner was eligible at the batch cutoff for the buyer, past the review "
    "window, and the clip was not excluded, judged from the raw event log as the batch saw it "
    "(Delta time travel to the versions recorded in delivered_batches).",
)
def delivered_owners_eligible_at_cutoff(lakehouse: LakehouseResource) -> dg.AssetCheckResult:
    store = lakehouse.store()
    sql = query_text("check_delivery_eligibility")
    offending, batches = [], store.read(lib.DELIVERED_BATCHES).to_pylist()
    for batch in batches:
        versions = json.loads(batch["input_versions"])
        tables = ["subscribers", "consent_events", "clip_exclusions", lib.DELIVERIES]
        con = connect(
            store,
            tables,
            {
                "deal_id": batch["deal_id"],
                "batch_id": batch["batch_id"],
                "cutoff_at": batch["cutoff_at"].isoformat(),
                "buyer_id": batch["buyer_id"],
                "review_days": lakehouse.review_window_days,
            },
            versions={t: v for t, v in versions.items() if t in tables and t != lib.DELIVERIES},
        )
        offending.extend(fetch_arrow(con, sql).to_pylist())
        con.close()
    return dg.AssetCheckResult(
        passed=not offending,
        metadata={
            "batches_checked": len(batches),
            "offending_rows": len(offending),
            "sample": dg.MetadataValue.json([{k: str(v) for k, v in r.items()} for r in offending[:20]]),
        },
    )
