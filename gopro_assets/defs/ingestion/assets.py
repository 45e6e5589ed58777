"""Landing zone -> Delta: subscribers, consent and exclusion events, uploads, deals,
buyer payments and payouts, with every bad row in ``quarantine_rows`` (contract §2–3).

One multi-asset ingests all tabular kinds in a fixed order inside one step: uploads are
checked against the subscribers just ingested, and the shared ``quarantine_rows`` table
has a single writer.
"""

import dagster as dg

from gopro_assets.domain.ingestion import landing
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

# The Arrow schema each table is written with (the column schema shown in the UI before
# the first materialization; the materialization repeats it from the Delta log).
SCHEMAS = {
    **{name: kind.schema for name, kind in landing.LANDING_KINDS.items()},
    "license_deals": landing.DEAL_SCHEMA,
    "license_batches": landing.BATCH_SCHEMA,
    QUARANTINE: landing.QUARANTINE_SCHEMA,
}
_SUBSCRIBER = "Subscriber id (subscribers.subscriber_id)."
_EVENT_AT = "When it happened, UTC (landing timestamps must carry an offset)."
COLUMN_DOCS = {
    "subscribers": {
        "subscriber_id": "Subscriber id; upsert key (the last row in file order wins).",
        "email": "E-mail address: personal data, kept only here and in the payout export.",
        "country": "ISO 3166-1 alpha-2 country; only US subscribers are eligible (R1).",
        "subscribed_at": "Subscription start, UTC.",
        "cancelled_at": "Cancellation, UTC; null while the subscription is active (R1).",
        "invited_at": "Invitation to the licensing program, UTC; null = not invited (R1).",
    },
    "consent_events": {
        "event_id": "Event id; the first occurrence wins.",
        "subscriber_id": _SUBSCRIBER,
        "event_at": _EVENT_AT,
        "action": "opt_in or opt_out (R1).",
        "excluded_buyers": "Buyer ids this opt_in excludes (R1); empty for opt_out.",
    },
    "clip_exclusions": {
        "event_id": "Event id; the first occurrence wins.",
        "subscriber_id": _SUBSCRIBER,
        "clip_id": "The clip excluded or included again.",
        "event_at": _EVENT_AT,
        "action": "exclude or include (R1b).",
    },
    "uploads": {
        "clip_id": "Clip id; the first occurrence wins.",
        "subscriber_id": "Owner; must be a known subscriber (contract §3).",
        "object_key": "Video path under footage/ in the landing zone.",
        "uploaded_at": "Upload time, UTC: decides the footage partition and batch eligibility (R5).",
        "published": "True when the owner published the clip (deals may want unpublished only).",
        "activity": "Activity label (surf, ski, ...) or null.",
        "mount": "Camera mount (drone, helmet, handheld) or null; drone means the aerial tier (R3).",
    },
    "buyer_payments": {
        "payment_id": "Payment id from the buyer's remittance.",
        "deal_id": "Deal paid for.",
        "batch_id": "Batch paid for (R13 buyer side).",
        "amount_cents": "Amount received, integer US cents.",
        "received_at": "When the payment was received, UTC.",
    },
    "payouts": {
        "payout_id": "Payout id; the same id twice is reported as duplicate (R13).",
        "subscriber_id": _SUBSCRIBER,
        "statement_month": "Statement month paid, YYYY-MM.",
        "amount_cents": "Amount paid, integer US cents.",
        "paid_at": "When the payout was made, UTC.",
    },
    "license_deals": {
        "deal_id": "Deal id (one deal file each).",
        "buyer_id": "Buyer id, matched against consent_events.excluded_buyers (R1).",
        "buyer_name": "Buyer's display name.",
        "signed_at": "Signature date, UTC.",
        "pricing_model": "per_minute (tier prices) or flat_fee (fee per batch).",
        **{
            f"price_{t}_cents": f"Price per minute of {t} footage, cents; null = {t} is not licensable in this deal."
            for t in ("aerial", "uhd", "hd", "sd")
        },
        "min_short_side_px": "Criterion: minimum short side in pixels; null = any.",
        "min_fps": "Criterion: minimum frame rate; null = any.",
        "activities": "Criterion: allowed activities; null = any activity.",
        "unpublished_only": "Criterion: only clips never published.",
        "min_duration_s": "Criterion: minimum duration in seconds; null = any.",
    },
    "license_batches": {
        "deal_id": "Deal the batch belongs to.",
        "batch_id": "Batch id within the deal.",
        "cutoff_at": "Cutoff, UTC: the batch is due once it has passed and is then frozen (R5, R12).",
        "max_minutes": "Minute cap of the batch (R6); null = no cap.",
        "fee_cents": "Flat fee of the batch (flat_fee deals), cents.",
        "revenue_month": "UTC month of cutoff_at, YYYY-MM (R10).",
    },
    QUARANTINE: {
        "source": "Landing file, relative to the landing root.",
        "position": "Physical line number in the file; 0 = the whole file was rejected.",
        "raw": "The rejected text (a whole rejected file is cut to 2,000 characters).",
        "reason": "Why it was rejected, in words.",
    },
}


def _spec(name: str) -> dg.AssetSpec:
    return dg.AssetSpec(
        name,
        description=TABLE_DOCS[name],
        group_name="ingestion",
        owners=[OWNER],
        kinds={"delta", "python"},
        tags={"contains_pii": "true"} if name == "subscribers" else {},
        metadata={"dagster/column_schema": column_schema(SCHEMAS[name], COLUMN_DOCS[name])},
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
                name,
                COLUMN_DOCS[name],
                files_seen=report.files_seen,
                files_ingested=len(report.files_ingested),
                rows_quarantined=report.quarantined,
            ),
        )
    deal_report = ingest_deals(store, root)
    context.log.info(f"deals: {deal_report.rows} deal(s), {deal_report.quarantined} quarantined")
    yield dg.MaterializeResult(
        asset_key="license_deals",
        metadata=table_metadata(
            store, "license_deals", COLUMN_DOCS["license_deals"], files_seen=deal_report.files_seen
        ),
    )
    yield dg.MaterializeResult(
        asset_key="license_batches", metadata=table_metadata(store, "license_batches", COLUMN_DOCS["license_batches"])
    )
    quarantine = store.read(QUARANTINE, schema=landing.QUARANTINE_SCHEMA, columns=["source"])
    by_kind = {}
    for src in quarantine.column("source").to_pylist():
        by_kind[src.split("/", 1)[0]] = by_kind.get(src.split("/", 1)[0], 0) + 1
    yield dg.MaterializeResult(
        asset_key=QUARANTINE,
        metadata=table_metadata(
            store, QUARANTINE, COLUMN_DOCS[QUARANTINE], quarantined_by_folder=dg.MetadataValue.json(by_kind)
        ),
    )
