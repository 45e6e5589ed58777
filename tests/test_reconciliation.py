"""R13 reconciliation: buyer_receivables (buyer side), payout_reconciliation (contributor
side), and the month-level money invariants (data tests that are blocking asset checks)
failing on inconsistent data. Real SQL models over real Delta tables in tmp_path.

Choices where the contract is silent are in docs/MONEY_CHOICES.md.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pyarrow as pa
import pyarrow.compute as pc
from conftest import month_vars, run_sql_model, write_rows

from gopro_assets.domain.ingestion.landing import LANDING_KINDS
from gopro_assets.domain.licensing.deliveries import DELIVERED_BATCH_SCHEMA, DELIVERY_SCHEMA
from gopro_assets.sql_engine.runner import SQL_ROOT, connect_for_model, load_model, run_model, run_tests

CUTOFF = datetime(2025, 3, 20, 12, tzinfo=UTC)
PAID_AT = datetime(2025, 4, 5, tzinfo=UTC)
PAYMENTS_SCHEMA = LANDING_KINDS["buyer_payments"].schema
PAYOUTS_SCHEMA = LANDING_KINDS["payouts"].schema
VARS = {"share_rate_num": 1, "share_rate_den": 2, "min_payout_cents": 1000}

STATEMENT_SCHEMA = pa.schema(
    [
        ("statement_month", pa.string()),
        ("subscriber_id", pa.string()),
        ("opening_balance_cents", pa.int64()),
        ("earned_cents", pa.int64()),
        ("total_cents", pa.int64()),
        ("payable_cents", pa.int64()),
        ("carried_forward_cents", pa.int64()),
        ("clips_licensed", pa.int64()),
        ("billable_seconds", pa.int64()),
    ]
)


# -- helpers ---------------------------------------------------------------------
def flat_fee_batches(
    store, fees: dict[str, int], month: str = "2025-03", subscriber_seconds: dict | None = None
) -> None:
    """Deal D1, one flat-fee batch per entry of ``fees`` (batch_id -> fee); each batch
    delivers one 10 s clip of s1 unless ``subscriber_seconds`` says otherwise."""
    deliveries, batches = [], []
    for b, fee in fees.items():
        for sub, secs in (subscriber_seconds or {"s1": 10}).items():
            deliveries.append(
                {
                    "deal_id": "D1",
                    "batch_id": b,
                    "clip_id": f"{b}-{sub}",
                    "subscriber_id": sub,
                    "tier": "hd",
                    "billable_seconds": secs,
                    "tier_price_cents": None,
                    "revenue_month": month,
                    "cutoff_at": CUTOFF,
                    "selection_rank": 1,
                }
            )
        batches.append(
            {
                "deal_id": "D1",
                "batch_id": b,
                "buyer_id": "acme-ai",
                "pricing_model": "flat_fee",
                "cutoff_at": CUTOFF,
                "revenue_month": month,
                "max_minutes": None,
                "fee_cents": fee,
                "clips": 1,
                "billable_seconds": 10,
                "candidates": 1,
                "input_versions": "{}",
            }
        )
    write_rows(store, "deal_deliveries", deliveries, DELIVERY_SCHEMA)
    write_rows(store, "delivered_batches", batches, DELIVERED_BATCH_SCHEMA)


def payment(
    pid: str, batch: str, amount: int, line: int, deal: str = "D1", path: str = "buyer_payments/2025-04.csv"
) -> dict:
    return {
        "payment_id": pid,
        "deal_id": deal,
        "batch_id": batch,
        "amount_cents": amount,
        "received_at": PAID_AT,
        "_source_path": path,
        "_source_line": line,
    }


def payout(
    pid: str, sub: str, amount: int, line: int, month: str = "2025-03", path: str = "payouts/2025-04.csv"
) -> dict:
    return {
        "payout_id": pid,
        "subscriber_id": sub,
        "statement_month": month,
        "amount_cents": amount,
        "paid_at": PAID_AT,
        "_source_path": path,
        "_source_line": line,
    }


def statement(sub: str, payable: int, carried: int = 0, month: str = "2025-03") -> dict:
    total = payable + carried
    return {
        "statement_month": month,
        "subscriber_id": sub,
        "opening_balance_cents": 0,
        "earned_cents": total,
        "total_cents": total,
        "payable_cents": payable,
        "carried_forward_cents": carried,
        "clips_licensed": 1,
        "billable_seconds": 10,
    }


def model(name: str):
    return load_model(next(SQL_ROOT.glob(f"*/{name}.sql")))


def offending(store, name: str, result: pa.Table | None = None, **variables) -> dict[str, tuple[int, list]]:
    """Run a model (or take a doctored ``result``) and return its data tests as
    {test name: (offending row count, sample rows)}."""
    m = model(name)
    con = connect_for_model(store, m, VARS | variables)
    if result is None:
        result = run_model(con, m)
    return {t.name: (n, rows) for t, n, rows in run_tests(con, m, result)}


def set_value(table: pa.Table, column: str, row: int, value) -> pa.Table:
    values = table[column].to_pylist()
    values[row] = value
    return table.set_column(
        table.schema.get_field_index(column), column, pa.array(values, table.schema.field(column).type)
    )


# -- buyer side ---------------------------------------------------------------------------
def test_r13_buyer_receivables_statuses_and_duplicate_payment_counted_once(store):
    # gross of every batch = its fee (flat_fee, R7)
    flat_fee_batches(store, {"B-paid": 1000, "B-partial": 1000, "B-unpaid": 1000, "B-over": 1000, "B-dup": 1000})
    run_sql_model(store, "batch_revenue")
    write_rows(
        store,
        "buyer_payments",
        [
            payment("P1", "B-paid", 600, 2),
            payment("P2", "B-paid", 400, 3),  # 600 + 400 = 1000 == 1000 -> paid
            payment("P3", "B-partial", 300, 4),  # 300 < 1000 -> partial
            payment("P4", "B-over", 1200, 5),  # 1200 > 1000 -> overpaid
            payment("P5", "B-dup", 1000, 6),  # P5 twice: counted once
            payment("P5", "B-dup", 1000, 2, path="buyer_payments/2025-05.csv"),  # (a re-sent copy in a later file)
            payment("P6", "B9", 500, 7, deal="D9"),  # no such delivered batch -> unknown_batch
        ],
        PAYMENTS_SCHEMA,
    )
    rows = {r["batch_id"]: r for r in run_sql_model(store, "buyer_receivables").to_pylist()}
    got = {
        b: (r["status"], r["gross_cents"], r["received_cents"], r["difference_cents"], r["payments"])
        for b, r in rows.items()
    }
    assert got == {
        "B-paid": ("paid", 1000, 1000, 0, 2),
        "B-partial": ("partial", 1000, 300, -700, 1),  # 300 - 1000 = -700
        "B-unpaid": ("unpaid", 1000, 0, -1000, 0),  # nothing received
        "B-over": ("overpaid", 1000, 1200, 200, 1),  # 1200 - 1000 = +200
        "B-dup": ("paid", 1000, 1000, 0, 1),  # 1000 once, not 2000 (would be "overpaid")
        "B9": ("unknown_batch", 0, 500, 500, 1),  # gross 0 for an unknown batch
    }
    assert rows["B9"]["deal_id"] == "D9" and rows["B9"]["revenue_month"] is None
    assert rows["B-paid"]["revenue_month"] == "2025-03"


def test_r13_buyer_receivables_edge_cases(store):
    # empty per_minute batch: gross 0, nothing received -> nothing owed -> "paid" (settled)
    # refund: +1000 then -400 for B-ref (gross 1000) -> received 600 -> partial
    # payment for a batch id that exists in another deal only -> unknown_batch (deal and batch must both match)
    flat_fee_batches(store, {"B-ref": 1000})
    br = store.read("delivered_batches").to_pylist()
    br.append(
        br[0]
        | {"batch_id": "B-empty", "pricing_model": "per_minute", "fee_cents": None, "clips": 0, "billable_seconds": 0}
    )
    write_rows(store, "delivered_batches", br, DELIVERED_BATCH_SCHEMA)
    run_sql_model(store, "batch_revenue")
    write_rows(
        store,
        "buyer_payments",
        [payment("P1", "B-ref", 1000, 2), payment("P2", "B-ref", -400, 3), payment("P3", "B-ref", 50, 4, deal="D2")],
        PAYMENTS_SCHEMA,
    )
    rows = {
        (r["deal_id"], r["batch_id"]): (r["status"], r["gross_cents"], r["received_cents"])
        for r in run_sql_model(store, "buyer_receivables").to_pylist()
    }
    assert rows == {
        ("D1", "B-empty"): ("paid", 0, 0),
        ("D1", "B-ref"): ("partial", 1000, 600),
        ("D2", "B-ref"): ("unknown_batch", 0, 50),
    }


# -- contributor side -------------------------------------------------------------------------
def test_r13_payout_reconciliation_statuses(store):
    write_rows(
        store,
        "revenue_share_statements",
        [
            statement("s-match", 1200),
            statement("s-unpaid", 1500),
            statement("s-under", 2000),
            statement("s-over", 1000),
            statement("s-dup", 1100),
            statement("s-carry", 0, carried=500),  # carried forward: no payable statement
            statement("s-match", 9999, month="2025-02"),  # another month: not part of March
        ],
        STATEMENT_SCHEMA,
    )
    write_rows(
        store,
        "payouts",
        [
            payout("PO1", "s-match", 1200, 2),  # 1200 == 1200 -> matched
            payout("PO2", "s-under", 1500, 3),  # 1500 < 2000 -> underpaid (-500)
            payout("PO3", "s-over", 1300, 4),  # 1300 > 1000 -> overpaid (+300)
            payout("PO4", "s-dup", 1100, 5),  # PO4 twice -> duplicate, counted once: 1100
            payout("PO4", "s-dup", 1100, 6),
            payout("PO5", "s-carry", 500, 7),  # no payable statement (balance carried) -> unexpected
            payout("PO6", "s-ghost", 700, 8),  # no statement at all -> unexpected
            payout("PO7", "s-match", 9999, 2, month="2025-02", path="payouts/2025-03.csv"),  # February's payout
        ],
        PAYOUTS_SCHEMA,
    )
    rows = run_sql_model(store, "payout_reconciliation", **month_vars("2025-03")).to_pylist()
    assert {r["statement_month"] for r in rows} == {"2025-03"}
    got = {
        r["subscriber_id"]: (r["status"], r["payable_cents"], r["paid_cents"], r["difference_cents"], r["payouts"])
        for r in rows
    }
    assert got == {
        "s-match": ("matched", 1200, 1200, 0, 1),
        "s-unpaid": ("unpaid", 1500, 0, -1500, 0),
        "s-under": ("underpaid", 2000, 1500, -500, 1),
        "s-over": ("overpaid", 1000, 1300, 300, 1),
        "s-dup": ("duplicate", 1100, 1100, 0, 1),
        "s-carry": ("unexpected", 0, 500, 500, 1),
        "s-ghost": ("unexpected", 0, 700, 700, 1),
    }
    # February is its own partition: 9999 payable, 9999 paid -> matched
    feb = run_sql_model(store, "payout_reconciliation", **month_vars("2025-02")).to_pylist()
    assert [(r["subscriber_id"], r["status"]) for r in feb] == [("s-match", "matched")]
    assert sorted(set(store.read("payout_reconciliation")["statement_month"].to_pylist())) == ["2025-02", "2025-03"]


def test_r13_same_payout_id_under_two_months_is_a_duplicate_counted_once(store):
    # PO1 (1200 for s1) was filed for March, and the same PO1 again in a later file under
    # April. The payout_id is one payment: both months show "duplicate"; it counts as paid
    # only where it first appears (March, file order), so April's paid is 0.
    write_rows(
        store,
        "revenue_share_statements",
        [statement("s1", 1200), statement("s1", 1000, month="2025-04")],
        STATEMENT_SCHEMA,
    )
    write_rows(
        store,
        "payouts",
        [payout("PO1", "s1", 1200, 2), payout("PO1", "s1", 1200, 2, month="2025-04", path="payouts/2025-05.csv")],
        PAYOUTS_SCHEMA,
    )
    mar = run_sql_model(store, "payout_reconciliation", **month_vars("2025-03")).to_pylist()
    apr = run_sql_model(store, "payout_reconciliation", **month_vars("2025-04")).to_pylist()
    assert [(r["status"], r["payable_cents"], r["paid_cents"]) for r in mar] == [("duplicate", 1200, 1200)]
    assert [(r["status"], r["payable_cents"], r["paid_cents"]) for r in apr] == [("duplicate", 1000, 0)]


# -- month-level invariants fail on inconsistent data ------------------------------------------
def consistent_month(store) -> None:
    # B1 (March): fee 1000 -> pool 500 over s1 (10 s) and s2 (20 s), W = 30:
    #   s1 500*10/30 = 5000/30  = 166.67 -> floor 166, remainder 20/30
    #   s2 500*20/30 = 10000/30 = 333.33 -> floor 333, remainder 10/30
    #   floors 499, leftover 1 -> s1 (larger remainder) -> s1 167, s2 333 (sum 500)
    flat_fee_batches(store, {"B1": 1000}, subscriber_seconds={"s1": 10, "s2": 20})
    run_sql_model(store, "batch_revenue")
    alloc = run_sql_model(store, "revenue_share_allocations")
    assert dict(zip(alloc["subscriber_id"].to_pylist(), alloc["allocated_cents"].to_pylist())) == {"s1": 167, "s2": 333}


def test_r13_allocations_sum_to_pool_check_fails_when_a_cent_goes_missing(store):
    consistent_month(store)
    m = model("revenue_share_allocations")
    con = connect_for_model(store, m, VARS)
    good = run_model(con, m)
    assert {t.name: n for t, n, _ in run_tests(con, m, good)}["allocations_sum_to_pool"] == 0
    # drop a cent from s2: 167 + 332 = 499 != pool 500
    bad = set_value(good, "allocated_cents", 1, 332)
    results = {t.name: (t.severity, n, rows) for t, n, rows in run_tests(con, m, bad)}
    severity, n, rows = results["allocations_sum_to_pool"]
    assert (severity, n) == ("error", 1)
    assert (rows[0]["batch_id"], rows[0]["pool_cents"], int(rows[0]["allocated"])) == ("B1", 500, 499)
    # a batch whose allocations vanished entirely is caught too (LEFT JOIN: allocated 0)
    results = offending(store, "revenue_share_allocations", result=good.slice(0, 0))
    assert results["allocations_sum_to_pool"][0] == 1


def conserves_money(row: dict) -> bool:
    """The identity the old check ``statement_conserves_money`` tested (opening + earned =
    total = payable + carried, never both): the model computes it itself, so a line can
    hold it and still be wrong."""
    total = row["opening_balance_cents"] + row["earned_cents"]
    return row["total_cents"] == total == row["payable_cents"] + row["carried_forward_cents"] and not (
        row["payable_cents"] and row["carried_forward_cents"]
    )


def test_r11_statement_check_recomputes_lines_from_allocations_and_the_previous_month(store):
    # March: s1 earned 167, s2 333 (consistent_month), both below the 1000 minimum -> carried.
    # April: nothing earned; each opens with March's carried amount and carries it again.
    check = "statement_matches_allocations_and_previous_month"
    consistent_month(store)
    m = model("revenue_share_statements")
    run_sql_model(store, "revenue_share_statements", **month_vars("2025-03"))
    march_con = connect_for_model(store, m, VARS | month_vars("2025-03"))
    march = run_model(march_con, m)
    assert march.select(["subscriber_id", "earned_cents", "carried_forward_cents"]).to_pylist() == [
        {"subscriber_id": "s1", "earned_cents": 167, "carried_forward_cents": 167},
        {"subscriber_id": "s2", "earned_cents": 333, "carried_forward_cents": 333},
    ]
    assert {t.name: n for t, n, _ in run_tests(march_con, m, march)}[check] == 0
    april_con = connect_for_model(store, m, VARS | month_vars("2025-04"))
    april = run_model(april_con, m)
    assert april.select(["subscriber_id", "opening_balance_cents", "carried_forward_cents"]).to_pylist() == [
        {"subscriber_id": "s1", "opening_balance_cents": 167, "carried_forward_cents": 167},
        {"subscriber_id": "s2", "opening_balance_cents": 333, "carried_forward_cents": 333},
    ]
    assert {t.name: n for t, n, _ in run_tests(april_con, m, april)}[check] == 0

    def offending(con, rows: pa.Table) -> tuple[int, list]:
        return {t.name: (n, sample) for t, n, sample in run_tests(con, m, rows)}[check]

    def corrupt(rows: pa.Table, i: int, **values) -> pa.Table:
        for column, value in values.items():
            rows = set_value(rows, column, i, value)
        return rows

    # (1) R10/R11: March's s1 line earned 160, not the 167 allocated to s1; the line itself
    # balances (0 + 160 = 160 carried), so only the allocations show the 7 lost cents
    bad = corrupt(march, 0, earned_cents=160, total_cents=160, carried_forward_cents=160)
    assert conserves_money(bad.to_pylist()[0])
    n, rows = offending(march_con, bad)
    assert n == 1 and (rows[0]["subscriber_id"], rows[0]["earned_cents"], rows[0]["expected_earned_cents"]) == (
        "s1",
        160,
        167,
    )
    # (2) R11: April's s2 line opens with 300, not March's carried 333 (balanced line again)
    bad = corrupt(april, 1, opening_balance_cents=300, total_cents=300, carried_forward_cents=300)
    assert conserves_money(bad.to_pylist()[1])
    n, rows = offending(april_con, bad)
    assert n == 1 and (rows[0]["subscriber_id"], rows[0]["expected_opening_cents"]) == ("s2", 333)
    # (3) a line missing: s1's April balance vanished
    n, rows = offending(april_con, april.slice(1, 1))
    assert n == 1 and rows[0]["subscriber_id"] == "s1" and rows[0]["missing"]
    # (4) what the old identity caught is caught too: 7 cents lost between total and carried,
    # payable and carried both set (money created), a total that is not opening + earned
    for i, values in [(0, {"carried_forward_cents": 160}), (1, {"payable_cents": 333}), (0, {"total_cents": 999})]:
        assert offending(march_con, corrupt(march, i, **values))[0] == 1, values
    # (5) an input corrupted instead: March's stored carried amount for s1 changed to 500 after
    # April was computed -> April's s1 line (opening 167) no longer continues it
    stored = store.read("revenue_share_statements")
    store.overwrite("revenue_share_statements", corrupt(stored, 0, carried_forward_cents=500, total_cents=500))
    april_con = connect_for_model(store, m, VARS | month_vars("2025-04"))
    n, rows = offending(april_con, april)
    assert n == 1 and (rows[0]["subscriber_id"], rows[0]["expected_opening_cents"]) == ("s1", 500)


def test_r13_month_pools_equal_allocations_check_fails_on_inconsistent_data(store):
    consistent_month(store)
    run_sql_model(store, "revenue_share_statements", **month_vars("2025-03"))
    m = model("revenue_share_statements")
    variables = VARS | month_vars("2025-03")

    def check(result=None) -> tuple[int, list]:
        # sums leave DuckDB as HUGEINT and reach the sample rows as text: compare with int()
        con = connect_for_model(store, m, variables)
        res = run_model(con, m) if result is None else result
        return {t.name: (n, rows) for t, n, rows in run_tests(con, m, res)}["month_pools_equal_allocations"]

    assert check()[0] == 0  # consistent: pools 500 == allocations 500 == earned 500
    # (1) statements earned less than was allocated: s2 earned 300 instead of 333
    con = connect_for_model(store, m, variables)
    good = run_model(con, m)
    n, rows = check(set_value(good, "earned_cents", 1, 300))
    assert n == 1 and tuple(int(rows[0][k]) for k in ("pools", "allocated", "earned")) == (500, 500, 467)
    # (2) a pool that no allocation covers: batch_revenue says 501 for the month, allocations 500
    br = store.read("batch_revenue")
    store.overwrite("batch_revenue", set_value(br, "pool_cents", 0, 501))
    n, rows = check()
    assert n == 1 and tuple(int(rows[0][k]) for k in ("pools", "allocated", "earned")) == (501, 500, 500)
    # (3) an allocation row in the month with no pool behind it (another batch, 25 cents)
    store.overwrite("batch_revenue", br)
    alloc = store.read("revenue_share_allocations")
    extra = alloc.slice(0, 1)
    extra = set_value(set_value(extra, "batch_id", 0, "B-ghost"), "allocated_cents", 0, 25)
    store.overwrite("revenue_share_allocations", pa.concat_tables([alloc, extra]))
    n, rows = check()
    # statements re-run from the doctored allocations: earned 525 == allocated 525 != pools 500
    assert n == 1 and tuple(int(rows[0][k]) for k in ("pools", "allocated", "earned")) == (500, 525, 525)
    assert int(pc.sum(store.read("revenue_share_allocations")["allocated_cents"]).as_py()) == 525
