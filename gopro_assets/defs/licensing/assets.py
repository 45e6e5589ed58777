"""deal_deliveries: each due batch's manifest, chosen once (R5, R6) and then frozen (R12)."""

import dagster as dg

from gopro_assets.domain.licensing import deliveries as lib
from gopro_assets.domain.licensing import tables as decl
from gopro_assets.shared.concurrency import LAKE_WRITER_POOL
from gopro_assets.shared.metadata import column_schema, table_metadata
from gopro_assets.shared.partitions import as_of
from gopro_assets.shared.resources import LakehouseResource

# Columns (name, Arrow type, description) declared once in gopro_assets/domain/licensing/tables.py.
DELIVERIES, BATCH_LOG = decl.DEAL_DELIVERIES, decl.DELIVERED_BATCHES


@dg.multi_asset(
    specs=[
        dg.AssetSpec(
            "deal_deliveries",
            deps=[*[d for d in lib.INPUTS if d != lib.DELIVERIES]],
            description=(
                "The clips delivered in each batch (the manifest sent to the buyer): licensable clips (R5) "
                "chosen in R6 order under the batch's minute cap. A batch is chosen once, when its cutoff has "
                "passed, and never changes afterwards (R12)."
            ),
            group_name="licensing",
            owners=["team:data-platform"],
            kinds={"delta", "duckdb", "python"},
            metadata={"dagster/column_schema": column_schema(DELIVERIES)},
        ),
        dg.AssetSpec(
            "delivered_batches",
            deps=["deal_deliveries"],
            description="The frozen batch log: one row per delivered batch with its terms and the Delta versions it was computed from.",
            group_name="licensing",
            owners=["team:data-platform"],
            kinds={"delta", "python"},
            metadata={"dagster/column_schema": column_schema(BATCH_LOG)},
        ),
    ],
    pool=LAKE_WRITER_POOL,  # one writer of the frozen batches at a time (gopro_assets/shared/concurrency.py)
)
def deal_deliveries(context: dg.AssetExecutionContext, lakehouse: LakehouseResource):
    store = lakehouse.store()
    lib.ensure_tables(store)
    deals = {d["deal_id"]: d for d in store.read("license_deals").to_pylist()}
    delivered = []
    # batch by batch in cutoff order, the deal-independent part of R5 judged once per cutoff
    for batch, row in lib.deliver_due_batches(store, as_of(context), deals, lakehouse.review_window_days):
        if row is None:
            context.log.info(
                f"batch {batch['deal_id']}/{batch['batch_id']}: frozen meanwhile by another run, left as it is (R12)"
            )
            continue
        context.log.info(
            f"batch {row['deal_id']}/{row['batch_id']} (cutoff {row['cutoff_at']:%Y-%m-%d}): "
            f"{row['clips']} of {row['candidates']} licensable clip(s), {row['billable_seconds']} s"
        )
        delivered.append(f"{row['deal_id']}/{row['batch_id']}")
    yield dg.MaterializeResult(
        asset_key="deal_deliveries",
        metadata={
            **table_metadata(store, DELIVERIES),
            "batches_delivered_now": dg.MetadataValue.json(delivered),
        },
    )
    yield dg.MaterializeResult(asset_key="delivered_batches", metadata=table_metadata(store, BATCH_LOG))
