"""Checks on ingested landing data: one property each."""

import dagster as dg

from gopro_assets.domain.ingestion import landing
from gopro_assets.shared.resources import LakehouseResource


@dg.asset_check(
    asset="quarantine_rows", description="Every quarantined row says where it came from and why (contract §3)."
)
def quarantine_rows_are_explained(lakehouse: LakehouseResource) -> dg.AssetCheckResult:
    table = lakehouse.store().read("quarantine_rows", schema=landing.QUARANTINE_SCHEMA)
    bad = [r for r in table.to_pylist() if not r["source"] or not (r["reason"] or "").strip() or r["position"] is None]
    return dg.AssetCheckResult(
        passed=not bad,
        severity=dg.AssetCheckSeverity.ERROR,
        metadata={"quarantined_rows": table.num_rows, "unexplained": len(bad)},
    )


@dg.asset_check(asset="uploads", blocking=True, description="Every upload's owner is a known subscriber (contract §3).")
def uploads_have_known_owners(lakehouse: LakehouseResource) -> dg.AssetCheckResult:
    store = lakehouse.store()
    known = set(
        store.read("subscribers", columns=["subscriber_id"], schema=landing.LANDING_KINDS["subscribers"].schema)
        .column("subscriber_id")
        .to_pylist()
    )
    owners = store.read(
        "uploads", columns=["clip_id", "subscriber_id"], schema=landing.LANDING_KINDS["uploads"].schema
    ).to_pylist()
    orphans = [u for u in owners if u["subscriber_id"] not in known]
    return dg.AssetCheckResult(
        passed=not orphans, metadata={"orphans": len(orphans), "sample": dg.MetadataValue.json(orphans[:20])}
    )


@dg.asset_check(
    asset="subscribers", description="E-mail stays in subscribers: no other ingested table has an email column."
)
def email_only_in_subscribers(lakehouse: LakehouseResource) -> dg.AssetCheckResult:
    store = lakehouse.store()
    leaking = [
        n
        for n in landing.LANDING_KINDS
        if n != "subscribers" and store.exists(n) and "email" in store.table(n).schema().to_arrow().names
    ]
    return dg.AssetCheckResult(passed=not leaking, metadata={"tables_with_email": dg.MetadataValue.json(leaking)})
