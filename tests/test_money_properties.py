"""Property tests (hypothesis) holding the SQL money models to the exact Python reference
in ``gopro_assets.domain.finance.money``: R7 gross, R8 pool, R9 largest remainder, R11 roll-forward.

Most properties run the real model SQL (with the real macros and data tests) on DuckDB
over Arrow tables registered directly, which keeps hundreds of examples fast; one
end-to-end property runs batch_revenue -> allocations -> statements on real Delta tables.
"""

from __future__ import annotations

import tempfile
from collections import defaultdict
from datetime import datetime
from fractions import Fraction

import pyarrow as pa
from conftest import month_vars, run_sql_model, write_rows
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gopro_assets.domain.finance.money import (
    largest_remainder,
    per_minute_gross,
    roll_forward,
    round_half_up,
    split_pool,
)
from gopro_assets.domain.licensing.deliveries import DELIVERED_BATCH_SCHEMA, DELIVERY_SCHEMA
from gopro_assets.lake.delta_store import DeltaStore
from gopro_assets.sql_engine.runner import SQL_ROOT, connect, load_model, register_full_refresh, run_model, run_tests

MODELS = {
    n: load_model(SQL_ROOT / "marts" / f"{n}.sql")
    for n in ("batch_revenue", "revenue_share_allocations", "revenue_share_statements")
}
NO_STORE = DeltaStore(tempfile.gettempdir() + "/no-lake-needed")  # connect(..., tables=[]) never reads it
SUBSCRIBERS = ["a", "b", "s1", "s10", "s2", "s9", "z"]  # "s10" < "s2" < "s9": ties follow string order
MONTHS = ["2025-01", "2025-02", "2025-03", "2025-04", "2025-05"]
FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def run_arrow(name: str, tables: dict[str, pa.Table], variables: dict) -> pa.Table:
    """Run one model on Arrow inputs; fail on any error-severity data test (its blocking check)."""
    model = MODELS[name]
    con = connect(NO_STORE, [], variables)
    for table, data in tables.items():
        con.register(table, data)
    if model.changed_keys:  # an incremental model (revenue_share_allocations): computed in full here
        register_full_refresh(con, model)
    result = run_model(con, model)
    failed = {t.name: rows for t, n, rows in run_tests(con, model, result) if n and t.severity == "error"}
    con.close()
    assert not failed, f"{name}: failed data tests {failed}"
    return result


# -- strategies ---------------------------------------------------------------------
# billable seconds 0..3600 and prices 0..500, often drawn from a few round values so that
# equal weights (and so tied remainders, R9's tie-break) come up regularly
seconds_st = st.one_of(st.sampled_from([0, 1, 10, 30, 60]), st.integers(0, 3600))
price_st = st.one_of(st.sampled_from([0, 100, 200, 300]), st.integers(0, 500))
deliveries_st = st.lists(
    st.tuples(st.sampled_from(SUBSCRIBERS), seconds_st, price_st),  # subscriber, seconds, price
    min_size=0,
    max_size=12,
)


@st.composite
def batches_st(draw):
    out = []
    for i in range(draw(st.integers(1, 3))):
        model = draw(st.sampled_from(["per_minute", "flat_fee"]))
        fee = draw(st.integers(0, 10**7)) if model == "flat_fee" else None
        if draw(st.booleans()):
            deliveries = draw(deliveries_st)
        else:  # equal weights: k distinct subscribers with identical clips -> remainders tie
            subs = draw(st.lists(st.sampled_from(SUBSCRIBERS), min_size=1, max_size=len(SUBSCRIBERS), unique=True))
            secs, price = draw(seconds_st), draw(price_st)
            deliveries = [(sub, secs, price) for sub in subs]
        out.append({"batch_id": f"B{i}", "model": model, "fee": fee, "deliveries": deliveries})
    return out


@st.composite
def share_rate_st(draw):
    den = draw(st.integers(1, 20))
    return Fraction(draw(st.integers(0, den)), den)


def lake_tables(batches: list[dict], month_of=lambda i: "2025-01") -> tuple[pa.Table, pa.Table]:
    deliveries, delivered = [], []
    for i, b in enumerate(batches):
        month = month_of(i)
        cutoff = datetime.fromisoformat(f"{month}-20T00:00:00+00:00")
        for j, (sub, secs, price) in enumerate(b["deliveries"]):
            deliveries.append(
                {
                    "deal_id": "D1",
                    "batch_id": b["batch_id"],
                    "clip_id": f"{b['batch_id']}-c{j}",
                    "subscriber_id": sub,
                    "tier": "hd",
                    "billable_seconds": secs,
                    "tier_price_cents": price if b["model"] == "per_minute" else None,
                    "revenue_month": month,
                    "cutoff_at": cutoff,
                    "selection_rank": j + 1,
                }
            )
        delivered.append(
            {
                "deal_id": "D1",
                "batch_id": b["batch_id"],
                "buyer_id": "acme-ai",
                "pricing_model": b["model"],
                "cutoff_at": cutoff,
                "revenue_month": month,
                "max_minutes": None,
                "fee_cents": b["fee"],
                "clips": len(b["deliveries"]),
                "billable_seconds": sum(d[1] for d in b["deliveries"]),
                "candidates": len(b["deliveries"]),
                "input_versions": "{}",
            }
        )
    return (
        pa.Table.from_pylist(deliveries, schema=DELIVERY_SCHEMA),
        pa.Table.from_pylist(delivered, schema=DELIVERED_BATCH_SCHEMA),
    )


def reference(b: dict, rate: Fraction) -> tuple[int, int, int, dict[str, Fraction | int], dict[str, int]]:
    """(gross, pool, platform, weights, allocations) of one batch by the Python reference."""
    weights: dict[str, Fraction | int] = defaultdict(int)
    if b["model"] == "per_minute":
        values = [Fraction(secs * price, 60) for _, secs, price in b["deliveries"]]
        gross = per_minute_gross(values)  # R7
        for (sub, _, _), v in zip(b["deliveries"], values):
            weights[sub] += v  # R9: sum of exact values
        is_break = False
    else:
        gross = b["fee"]  # R7
        for sub, secs, _ in b["deliveries"]:
            weights[sub] += secs  # R9: billable seconds
        is_break = sum(weights.values()) == 0  # no deliveries (or only 0 s): break, nothing pooled
    pool, platform = (0, gross) if is_break else split_pool(gross, rate)  # R8
    alloc = {k: v.cents for k, v in largest_remainder(pool, dict(weights)).items()}
    return gross, pool, platform, dict(weights), alloc


# -- money.sql macro ---------------------------------------------------------------------
@FAST
@given(n=st.integers(0, 10**30), d=st.integers(1, 10**18))
def test_r7_r8_round_half_up_macro_equals_python_reference(n, d):
    con = connect(NO_STORE, [], {})
    got = con.execute(
        "SELECT CAST(round_half_up_div(CAST(? AS HUGEINT), CAST(? AS HUGEINT)) AS VARCHAR)", [str(n), str(d)]
    ).fetchone()[0]
    con.close()
    assert int(got) == round_half_up(Fraction(n, d))
    assert int(got) in (n // d, n // d + 1)


# -- R7/R8/R9 on random batches ---------------------------------------------------------------
@FAST
@given(batches=batches_st(), rate=share_rate_st())
def test_r7_r8_r9_sql_allocations_sum_to_pool_and_equal_largest_remainder_reference(batches, rate):
    deliveries, delivered = lake_tables(batches)
    variables = {"share_rate_num": rate.numerator, "share_rate_den": rate.denominator}
    revenue = run_arrow("batch_revenue", {"deal_deliveries": deliveries, "delivered_batches": delivered}, variables)
    allocations = run_arrow(
        "revenue_share_allocations",
        {"deal_deliveries": deliveries, "delivered_batches": delivered, "batch_revenue": revenue},
        variables,
    )
    rev = {r["batch_id"]: r for r in revenue.to_pylist()}
    got: dict[str, dict[str, int]] = defaultdict(dict)
    for r in allocations.to_pylist():
        got[r["batch_id"]][r["subscriber_id"]] = r["allocated_cents"]
        assert r["allocated_cents"] == r["floor_cents"] + r["remainder_cents"] and r["remainder_cents"] in (0, 1)

    for b in batches:
        gross, pool, platform, weights, expected = reference(b, rate)
        r = rev[b["batch_id"]]
        assert (r["gross_cents"], r["pool_cents"], r["platform_cents"]) == (gross, pool, platform)  # R7, R8
        assert r["pool_cents"] + r["platform_cents"] == r["gross_cents"]
        alloc = got.get(b["batch_id"], {})
        assert set(alloc) == set(weights)  # one row per contributing subscriber
        assert sum(alloc.values()) == pool  # R9: exactly the pool
        total = sum(weights.values())
        for sub, cents in alloc.items():
            exact = Fraction(pool) * Fraction(weights[sub]) / total if total else Fraction(0)
            floor = exact.numerator // exact.denominator
            assert cents in (floor, floor + 1)  # R9: floor or floor + 1 of the exact share
        assert alloc == expected  # identical to lib.money.largest_remainder (incl. tie-breaks)


@FAST
@given(
    pool=st.integers(0, 10**9), weights=st.dictionaries(st.sampled_from(SUBSCRIBERS), st.integers(0, 10**6), min_size=1)
)
def test_r9_python_reference_largest_remainder_properties(pool, weights):
    alloc = largest_remainder(pool, weights)
    total = sum(weights.values())
    if total == 0:
        assert all(a.cents == 0 for a in alloc.values())
        return
    assert sum(a.cents for a in alloc.values()) == pool
    exact = {k: Fraction(pool * w, total) for k, w in weights.items()}
    for k, a in alloc.items():
        assert a.floor_cents == exact[k].numerator // exact[k].denominator and a.cents - a.floor_cents in (0, 1)
    # whoever got a bonus cent has a remainder >= everyone who did not (ties: smaller id first)
    got = sorted((k for k in alloc if alloc[k].bonus_cents), key=lambda k: (-alloc[k].remainder, k))
    missed = [k for k in alloc if not alloc[k].bonus_cents]
    for g in got:
        for m in missed:
            assert (-alloc[g].remainder, g) < (-alloc[m].remainder, m)


# -- R11 statements over random monthly earnings ------------------------------------------------
earnings_st = st.dictionaries(
    st.sampled_from(MONTHS),
    st.dictionaries(st.sampled_from(SUBSCRIBERS[:4]), st.integers(0, 1500), max_size=4),
    max_size=len(MONTHS),
)


def statement_inputs(earnings: dict[str, dict[str, int]]) -> dict[str, pa.Table]:
    """Allocations as given (one batch per month and subscriber, pool = its allocation)."""
    alloc, revenue, deliveries, delivered = [], [], [], []
    for month, by_sub in earnings.items():
        cutoff = datetime.fromisoformat(f"{month}-20T00:00:00+00:00")
        for sub, cents in by_sub.items():
            batch = f"B-{month}-{sub}"
            alloc.append(
                {
                    "deal_id": "D1",
                    "batch_id": batch,
                    "subscriber_id": sub,
                    "revenue_month": month,
                    "allocated_cents": cents,
                }
            )
            revenue.append({"deal_id": "D1", "batch_id": batch, "revenue_month": month, "pool_cents": cents})
            deliveries.append(
                {
                    "deal_id": "D1",
                    "batch_id": batch,
                    "clip_id": f"{batch}-c",
                    "subscriber_id": sub,
                    "tier": "hd",
                    "billable_seconds": 10,
                    "tier_price_cents": None,
                    "revenue_month": month,
                    "cutoff_at": cutoff,
                    "selection_rank": 1,
                }
            )
            delivered.append(
                {
                    "deal_id": "D1",
                    "batch_id": batch,
                    "buyer_id": "acme-ai",
                    "pricing_model": "flat_fee",
                    "cutoff_at": cutoff,
                    "revenue_month": month,
                    "fee_cents": 2 * cents,
                }
            )
    return {
        "revenue_share_allocations": pa.Table.from_pylist(
            alloc,
            schema=pa.schema(
                [
                    ("deal_id", pa.string()),
                    ("batch_id", pa.string()),
                    ("subscriber_id", pa.string()),
                    ("revenue_month", pa.string()),
                    ("allocated_cents", pa.int64()),
                ]
            ),
        ),
        "batch_revenue": pa.Table.from_pylist(
            revenue,
            schema=pa.schema(
                [
                    ("deal_id", pa.string()),
                    ("batch_id", pa.string()),
                    ("revenue_month", pa.string()),
                    ("pool_cents", pa.int64()),
                ]
            ),
        ),
        "deal_deliveries": pa.Table.from_pylist(deliveries, schema=DELIVERY_SCHEMA),
        "delivered_batches": pa.Table.from_pylist(delivered, schema=DELIVERED_BATCH_SCHEMA),
    }


def expected_statements(earnings, min_payout) -> dict[str, dict[str, tuple]]:
    """Month by month with lib.money.roll_forward; only rows with earned > 0 or opening > 0 (R11)."""
    carried: dict[str, int] = {}
    out = {}
    for month in MONTHS:
        earned = earnings.get(month, {})
        rows = {}
        for sub in sorted(set(carried) | set(earned)):
            opening, e = carried.get(sub, 0), earned.get(sub, 0)
            if e > 0 or opening > 0:
                line = roll_forward(opening, e, min_payout)
                rows[sub] = (
                    line.opening_balance_cents,
                    line.earned_cents,
                    line.total_cents,
                    line.payable_cents,
                    line.carried_forward_cents,
                )
        carried = {s: r[4] for s, r in rows.items()}
        out[month] = rows
    return out


STATEMENT_SCHEMA = pa.schema(
    [
        (c, pa.string() if t == "VARCHAR" else pa.int64())
        for c, t in MODELS["revenue_share_statements"].column_types.items()
    ]
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(earnings=earnings_st, min_payout=st.integers(0, 2500))
def test_r11_statements_conserve_money_and_match_roll_forward_month_by_month(earnings, min_payout):
    inputs = statement_inputs(earnings)
    expected = expected_statements(earnings, min_payout)
    history = STATEMENT_SCHEMA.empty_table()  # the model's own table: its earlier months
    for month in MONTHS:
        result = run_arrow(
            "revenue_share_statements",
            inputs | {"revenue_share_statements": history},
            {"min_payout_cents": min_payout, **month_vars(month)},
        )
        rows = {r["subscriber_id"]: r for r in result.to_pylist()}
        got = {
            s: (
                r["opening_balance_cents"],
                r["earned_cents"],
                r["total_cents"],
                r["payable_cents"],
                r["carried_forward_cents"],
            )
            for s, r in rows.items()
        }
        assert got == expected[month], month
        # conservation: sum(earned) + sum(opening) == sum(payable) + sum(carried), and the
        # month's earned equals the month's allocations (nothing lost, nothing invented)
        assert sum(v[1] + v[0] for v in got.values()) == sum(v[3] + v[4] for v in got.values())
        assert sum(v[1] for v in got.values()) == sum(earnings.get(month, {}).values())
        # opening balances are exactly last month's carried-forward amounts
        prev = {
            r["subscriber_id"]: r["carried_forward_cents"]
            for r in history.to_pylist()
            if r["statement_month"] == (MONTHS[MONTHS.index(month) - 1] if month != MONTHS[0] else None)
        }
        assert {s: v[0] for s, v in got.items() if v[0]} == {s: c for s, c in prev.items() if c}
        history = pa.concat_tables([history, result.select(STATEMENT_SCHEMA.names).cast(STATEMENT_SCHEMA)])


# -- end to end on Delta: random batches over three months -> statements ------------------------------
@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(batches=batches_st(), rate=share_rate_st(), min_payout=st.integers(0, 3000))
def test_r7_to_r11_end_to_end_on_delta_matches_reference(batches, rate, min_payout):
    months = MONTHS[:3]
    month_of = lambda i: months[i % 3]  # noqa: E731
    deliveries, delivered = lake_tables(batches, month_of)
    variables = {"share_rate_num": rate.numerator, "share_rate_den": rate.denominator, "min_payout_cents": min_payout}
    earnings: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for i, b in enumerate(batches):
        for sub, cents in reference(b, rate)[4].items():
            earnings[month_of(i)][sub] += cents
    expected = expected_statements({m: dict(e) for m, e in earnings.items()}, min_payout)
    with tempfile.TemporaryDirectory() as tmp:
        store = DeltaStore(tmp)
        write_rows(store, "deal_deliveries", deliveries.to_pylist(), DELIVERY_SCHEMA)
        write_rows(store, "delivered_batches", delivered.to_pylist(), DELIVERED_BATCH_SCHEMA)
        run_sql_model(store, "batch_revenue", **variables)
        run_sql_model(store, "revenue_share_allocations", **variables)
        for month in months:
            rows = run_sql_model(store, "revenue_share_statements", **variables, **month_vars(month)).to_pylist()
            got = {
                r["subscriber_id"]: (
                    r["opening_balance_cents"],
                    r["earned_cents"],
                    r["total_cents"],
                    r["payable_cents"],
                    r["carried_forward_cents"],
                )
                for r in rows
            }
            assert got == expected[month], month
