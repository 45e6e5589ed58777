"""Landing zone -> Delta: subscribers, consent and exclusion events, uploads, deals,
buyer payments and payouts, with every bad row in ``quarantine_rows`` (contract §2–3).

One multi-asset ingests all tabular kinds in a fixed order inside one step: uploads are
checked against the subscribers just ingested, and the shared ``quarantine_rows`` table
has a single writer.
"""


import dagster as dg
import pyarrow.compute as pc

from gopro_assets.lib import landing
from gopro_assets.lib.ingest import QUARANTINE, ingest_deals, ingest_kind
from gopro_assets.metadata import table_metadata
from gopro_assets.resources import LakehouseResource

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
GROUPS = {"license_deals": "licensing", "license_batches": "licensing"}
KINDS = {"subscribers": {"pii"}}


def _spec(name: str) -> dg.AssetSpec:
    return dg.AssetSpec(
        name,
        description=TABLE_DOCS[name],
        group_name=GROUPS.get(name, "ingestion"),
        owners=[OWNER],
        kinds={"delta", "python"},
        tags={"contains_pii": "true"} if name == "subscribers" else {},
    )


INGESTED_TABLES = ["subscribers", "consent_events", "clip_exclusions", "uploads", "buyer_payments", "payouts"]


def _known_subscriber_check(store):
    """Contract §3: an upload for an unknown subscriber is bad input."""
    known = set(store.read("subscribers", columns=["subscriber_id"], schema=landing.LANDING_KINDS["subscribers"].schema)
                .column("subscriber_id").to_pylist())

    def validate(rows):
        good, bad = [], []
        for r in rows:
            if r["subscriber_id"] in known:
                good.append(r)
            else:
                bad.append({
                    "source": r["_source_path"], "position": r["_source_line"],
                    "raw": r.get("_raw") or str({k: v for k, v in r.items() if not k.startswith("_")}),
                    "reason": f"upload {r['clip_id']!r} names unknown subscriber {r['subscriber_id']!r}",
                })
        return good, bad
    return validate


@dg.multi_asset(
    name="ingest_landing",
    specs=[_spec(n) for n in [*INGESTED_TABLES, "license_deals", "license_batches", "quarantine_rows"]],
    description="Ingest new landing files (tracked by path + SHA-256; re-ingesting changes nothing).",
)
def ingest_landing(context: dg.AssetExecutionContext, lakehouse: LakehouseResource):
    store, root = lakehouse.store(), lakehouse.landing_root()
    reports = []
    for name in INGESTED_TABLES:
        validate = _known_subscriber_check(store) if name == "uploads" else None
        report = ingest_kind(store, root, landing.LANDING_KINDS[name], validate=validate)
        context.log.info(f"{name}: {len(report.files_ingested)} new file(s), {report.rows} row(s), {report.quarantined} quarantined")
        reports.append(report)
        yield dg.MaterializeResult(
            asset_key=name,
            metadata=table_metadata(store, name, files_seen=report.files_seen,
                                    files_ingested=len(report.files_ingested), rows_quarantined=report.quarantined),
        )
    deal_report = ingest_deals(store, root)
    context.log.info(f"deals: {deal_report.rows} deal(s), {deal_report.quarantined} quarantined")
    yield dg.MaterializeResult(asset_key="license_deals", metadata=table_metadata(store, "license_deals", files_seen=deal_report.files_seen))
    yield dg.MaterializeResult(asset_key="license_batches", metadata=table_metadata(store, "license_batches"))
    quarantine = store.read(QUARANTINE, schema=landing.QUARANTINE_SCHEMA, columns=["source"])
    by_kind = {}
    for src in quarantine.column("source").to_pylist():
        by_kind[src.split("/", 1)[0]] = by_kind.get(src.split("/", 1)[0], 0) + 1
    yield dg.MaterializeResult(
        asset_key=QUARANTINE,
        metadata=table_metadata(store, QUARANTINE, quarantined_by_folder=dg.MetadataValue.json(by_kind)),
    )
