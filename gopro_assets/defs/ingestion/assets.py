"""Landing zone -> Delta: subscribers, consent and exclusion events, uploads, deals,
buyer payments and payouts, with every bad row in ``quarantine_rows`` (contract §2–3).

One multi-asset ingests all tabular kinds in a fixed order inside one step: uploads are
checked against the subscribers just ingested, and the shared ``quarantine_rows`` table
has a single writer.
"""

import dagster as dg

from gopro_assets.domain.ingestion import landing
from gopro_assets.domain.ingestion import tables as decl
from gopro_assets.domain.ingestion.ingest import (
    INGEST_ORDER,
    QUARANTINE,
    ingest_deals,
    ingest_kind,
    known_subscriber_validator,
)
from gopro_assets.shared.concurrency import LAKE_WRITER_POOL
from gopro_assets.shared.metadata import column_schema, table_metadata
from gopro_assets.shared.resources import LakehouseResource

OWNER = "team:data-platform"

TABLE_DOCS = {
    "subscribers": "Cloud subscribers (upsert by subscriber_id, last row in file order wins). The only table with e-mail.",
    "consent_events": "Opt-in / opt-out events, deduplicated by event_id (first occurrence wins).",
    "clip_exclusions": "Per-clip exclude / include events from the review window, deduplicated by event_id.",
    "uploads": "Upload rows for clips in the cloud, deduplicated by clip_id; owners must be known subscribers.",
    "buyer_payments": "Payments received from buyers, per batch (R13 buyer side).",
    "payouts": "Payouts made to subscribers per statement month (R13 contributor side).",
    "license_deals": "License deals from deals/*.json: buyer, pricing model, tier prices and criteria.",
    "license_batches": "Delivery batches of each deal: cutoff, minute cap, flat fee and revenue month (R10).",
    "quarantine_rows": "Every bad landing row or file with its source path, position, raw text and a readable reason.",
}

# Each table's columns (name, Arrow type, description) are declared once, in
# gopro_assets/domain/ingestion/tables.py: the column schema shown in the UI before the first
# materialization comes from there; the materialization repeats it from the Delta log.
TABLES = {name: decl.TABLES[name] for name in TABLE_DOCS}


def _spec(name: str) -> dg.AssetSpec:
    return dg.AssetSpec(
        name,
        description=TABLE_DOCS[name],
        group_name="ingestion",
        owners=[OWNER],
        kinds={"delta", "python"},
        tags={"contains_pii": "true"} if name == "subscribers" else {},
        metadata={"dagster/column_schema": column_schema(TABLES[name])},
    )


@dg.multi_asset(
    name="ingest_landing",
    specs=[_spec(n) for n in [*INGEST_ORDER, "license_deals", "license_batches", "quarantine_rows"]],
    description="Ingest new landing files (tracked by path + SHA-256; re-ingesting changes nothing).",
    # one ingestion at a time across runs: quarantine_rows is replaced per file by a
    # delete and an append, which two writers could interleave (gopro_assets/shared/concurrency.py)
    pool=LAKE_WRITER_POOL,
)
def ingest_landing(context: dg.AssetExecutionContext, lakehouse: LakehouseResource):
    store, root = lakehouse.store(), lakehouse.landing_root()
    reports = []
    for name in INGEST_ORDER:
        validate = known_subscriber_validator(store) if name == "uploads" else None
        report = ingest_kind(store, root, landing.LANDING_KINDS[name], validate=validate)
        context.log.info(
            f"{name}: {len(report.files_ingested)} new file(s), {report.rows} row(s), {report.quarantined} quarantined"
        )
        reports.append(report)
        yield dg.MaterializeResult(
            asset_key=name,
            metadata=table_metadata(
                store,
                TABLES[name],
                files_seen=report.files_seen,
                files_ingested=len(report.files_ingested),
                rows_quarantined=report.quarantined,
            ),
        )
    deal_report = ingest_deals(store, root)
    context.log.info(f"deals: {deal_report.rows} deal(s), {deal_report.quarantined} quarantined")
    yield dg.MaterializeResult(
        asset_key="license_deals",
        metadata=table_metadata(store, TABLES["license_deals"], files_seen=deal_report.files_seen),
    )
    yield dg.MaterializeResult(asset_key="license_batches", metadata=table_metadata(store, TABLES["license_batches"]))
    quarantine = store.read(QUARANTINE, schema=landing.QUARANTINE_SCHEMA, columns=["source"])
    by_kind = {}
    for src in quarantine.column("source").to_pylist():
        by_kind[src.split("/", 1)[0]] = by_kind.get(src.split("/", 1)[0], 0) + 1
    yield dg.MaterializeResult(
        asset_key=QUARANTINE,
        metadata=table_metadata(store, TABLES[QUARANTINE], quarantined_by_folder=dg.MetadataValue.json(by_kind)),
    )
