"""payout_export: the month's finance files (payout CSV, workbook, HTML report), written
under ``<exports>/<YYYY-MM>/`` once the month's blocking checks pass (docs/EXPORTS.md)."""

import csv
import io

import dagster as dg

from gopro_assets.defs.finance.export import build_months
from gopro_assets.defs.finance.gate import ExportRefused
from gopro_assets.domain.finance import exports as lib
from gopro_assets.shared.partitions import as_of, monthly_partitions, single_run
from gopro_assets.shared.resources import LakehouseResource

CHECK = "payout_files_match_statements"


def _verify_payout_file(lakehouse: LakehouseResource, month: str) -> dict:
    """Read the written payout file back and compare it with the statements table."""
    store = lakehouse.store()
    data = lakehouse.exports_root().read_bytes(lib.month_paths(month)["payouts"])
    rows = list(csv.DictReader(io.StringIO(data.decode("utf-8"))))
    statements = [
        r
        for r in store.read(
            "revenue_share_statements", columns=["statement_month", "subscriber_id", "payable_cents"]
        ).to_pylist()
        if r["statement_month"] == month and r["payable_cents"] > 0
    ]
    expected = {r["subscriber_id"]: r["payable_cents"] for r in statements}
    # the file holds each id as a spreadsheet-safe cell (lib.csv_text): map it back
    ids = {lib.csv_text(sid): sid for sid in expected}
    for r in rows:
        r["subscriber_id"] = ids.get(r["subscriber_id"], r["subscriber_id"])
    got = {r["subscriber_id"]: int(r["amount_cents"]) for r in rows}
    problems = []
    if got != expected:
        problems.append("subscribers or amounts differ from the statements")
    if any(r["amount_usd"] != lib.dollars(int(r["amount_cents"])) for r in rows):
        problems.append("amount_usd does not match amount_cents")
    if any(r["payout_reference"] != lib.payout_reference(month, r["subscriber_id"]) for r in rows):
        problems.append("payout reference is not the stable reference")
    return {
        "month": month,
        "rows": len(rows),
        "file_cents": sum(got.values()),
        "statement_cents": sum(expected.values()),
        "problems": problems,
    }


@dg.asset(
    name="payout_export",
    description=(
        "Finance exports of a statement month, written under <exports>/<YYYY-MM>/: the payout file (CSV, one row "
        "per payable subscriber with e-mail, owner-only), the finance workbook (summary, statements, reconciliation "
        "breaks, receivables) and a self-contained HTML report with plotly charts. Refused - the run fails and "
        "nothing is written - when a blocking check the month's money depends on fails. Byte-for-byte reproducible."
    ),
    group_name="finance",
    owners=["team:finance"],
    kinds={"python", "plotly", "excel"},
    tags={"contains_pii": "true"},
    deps=["revenue_share_statements", "payout_reconciliation", "buyer_receivables", "batch_revenue", "subscribers"],
    partitions_def=monthly_partitions,
    backfill_policy=single_run,
    check_specs=[
        dg.AssetCheckSpec(
            CHECK,
            asset="payout_export",
            description="The payout file read back equals the month's payable statements, cent for cent.",
        )
    ],
    metadata={"docs": dg.MetadataValue.path("docs/EXPORTS.md")},
)
def payout_export(context: dg.AssetExecutionContext, lakehouse: LakehouseResource):
    months = sorted(key[:7] for key in context.partition_keys)
    try:
        # every month of the range is gated before anything is written
        gates, built = build_months(lakehouse, months, now=as_of(context))
    except ExportRefused as exc:
        raise dg.Failure(description=str(exc), metadata={"months": dg.MetadataValue.json(months)}) from None
    root = lakehouse.exports_root()
    files, verified = {}, []
    for month in months:
        written = lib.write_files(root, built[month].files)
        files[month] = sorted(written.values())
        verified.append(_verify_payout_file(lakehouse, month))
        s = built[month].summary
        context.log.info(
            f"{month}: {s['payable_subscribers']} payout(s), ${lib.dollars(s['payable_cents'], grouping=True)}; "
            f"{len(gates[month].checks)} blocking checks passed"
        )
    yield dg.AssetCheckResult(
        check_name=CHECK,
        passed=all(not v["problems"] for v in verified),
        metadata={"months": dg.MetadataValue.json(verified)},
    )
    yield dg.MaterializeResult(
        metadata={
            "exports_root": dg.MetadataValue.path(root.root),
            "files": dg.MetadataValue.json(files),
            "payouts": dg.MetadataValue.int(sum(b.summary["payable_subscribers"] for b in built.values())),
            "payable_cents": dg.MetadataValue.int(sum(b.summary["payable_cents"] for b in built.values())),
            "checks_passed": dg.MetadataValue.json({m: g.checks for m, g in gates.items()}),
        }
    )
