"""R7 batch revenue, R8 contributor pool and R9 allocation, on the real SQL models
(`dbt_like_sql/marts/batch_revenue.sql`, `revenue_share_allocations.sql`) over real Delta
tables in tmp_path. Every expected amount is computed by hand in the comments; the Python
reference (`gopro_assets.domain.finance.money`) is checked against the same numbers.

Choices where the contract is silent are in docs/MONEY_CHOICES.md.
"""

from __future__ import annotations

from datetime import UTC, datetime
from fractions import Fraction

from conftest import run_sql_model, write_rows

from gopro_assets.domain.finance.money import largest_remainder, per_minute_gross, split_pool
from gopro_assets.domain.licensing.deliveries import DELIVERED_BATCH_SCHEMA, DELIVERY_SCHEMA
from gopro_assets.sql_engine.runner import SQL_ROOT, connect_for_model, load_model, run_model, run_tests

CUTOFF = datetime(2025, 1, 31, 23, 59, 59, tzinfo=UTC)


# -- helpers ---------------------------------------------------------------------
def delivery(
    clip: str,
    subscriber: str,
    seconds: int,
    price: int | None = None,
    *,
    deal: str = "D1",
    batch: str = "B1",
    tier: str = "hd",
    month: str = "2025-01",
    cutoff: datetime = CUTOFF,
) -> dict:
    return {
        "deal_id": deal,
        "batch_id": batch,
        "clip_id": clip,
        "subscriber_id": subscriber,
        "tier": tier,
        "billable_seconds": seconds,
        "tier_price_cents": price,
        "revenue_month": month,
        "cutoff_at": cutoff,
        "selection_rank": 1,
    }


def batch(
    deal: str, batch_id: str, model: str, fee: int | None = None, *, month: str = "2025-01", cutoff: datetime = CUTOFF
) -> dict:
    return {
        "deal_id": deal,
        "batch_id": batch_id,
        "buyer_id": "acme-ai",
        "pricing_model": model,
        "cutoff_at": cutoff,
        "revenue_month": month,
        "max_minutes": None,
        "fee_cents": fee,
        "clips": 0,
        "billable_seconds": 0,
        "candidates": 0,
        "input_versions": "{}",
    }


def lake(store, deliveries: list[dict], batches: list[dict]) -> None:
    write_rows(store, "deal_deliveries", deliveries, DELIVERY_SCHEMA)
    write_rows(store, "delivered_batches", batches, DELIVERED_BATCH_SCHEMA)


def revenue(store, **variables) -> dict[tuple[str, str], dict]:
    return {(r["deal_id"], r["batch_id"]): r for r in run_sql_model(store, "batch_revenue", **variables).to_pylist()}


def allocations(store, **variables) -> dict[tuple[str, str], dict[str, dict]]:
    run_sql_model(store, "batch_revenue", **variables)  # its input, with the same share rate
    out: dict[tuple[str, str], dict[str, dict]] = {}
    for r in run_sql_model(store, "revenue_share_allocations", **variables).to_pylist():
        out.setdefault((r["deal_id"], r["batch_id"]), {})[r["subscriber_id"]] = r
    return out


def cents(alloc: dict[str, dict]) -> dict[str, int]:
    return {s: r["allocated_cents"] for s, r in alloc.items()}


# -- R7 batch revenue --------------------------------------------------------------
def test_r7_per_minute_gross_is_sum_of_exact_fractions_then_round_half_up(store):
    lake(
        store,
        [delivery("a", "s1", 61, 200), delivery("b", "s2", 45, 100), delivery("c", "s2", 10, 300)],
        [batch("D1", "B1", "per_minute")],
    )
    # 61 s * 200 c/min / 60 = 12200/60 = 203.333...
    # 45 s * 100 c/min / 60 =  4500/60 =  75
    # 10 s * 300 c/min / 60 =  3000/60 =  50
    # sum = 19700/60 = 328.333... -> round_half_up -> 328
    r = revenue(store)[("D1", "B1")]
    assert (r["gross_cents"], r["clips"], r["billable_seconds"]) == (328, 3, 116)
    assert r["break_reason"] is None
    assert per_minute_gross([Fraction(12200, 60), Fraction(4500, 60), Fraction(3000, 60)]) == 328


def test_r7_per_minute_rounds_the_sum_not_each_delivery(store):
    # three 1-second clips at 30 c/min: each is exactly 30/60 = 0.5 cent
    #   sum of exact values = 1.5 -> round_half_up -> 2
    #   (rounding each delivery first would give 1+1+1 = 3; truncating would give 1)
    # another batch: 41 s and 20 s at 100 c/min = 4100/60 + 2000/60 = 6100/60 = 101.666... -> 102
    #   (per-delivery rounding: 68 + 33 = 101; floor of the sum: 101)
    lake(
        store,
        [
            delivery("a", "s1", 1, 30),
            delivery("b", "s2", 1, 30),
            delivery("c", "s3", 1, 30),
            delivery("d", "s1", 41, 100, batch="B2"),
            delivery("e", "s2", 20, 100, batch="B2"),
        ],
        [batch("D1", "B1", "per_minute"), batch("D1", "B2", "per_minute")],
    )
    r = revenue(store)
    assert r[("D1", "B1")]["gross_cents"] == 2
    assert r[("D1", "B2")]["gross_cents"] == 102


def test_r7_per_minute_exact_half_cent_total_rounds_up(store):
    # 5 s * 30 c/min / 60 = 150/60 = 2.5 exactly -> round HALF UP -> 3 (banker's rounding would give 2)
    # 1 s * 30 c/min / 60 = 0.5 exactly -> 1 (banker's rounding would give 0)
    lake(
        store,
        [delivery("a", "s1", 5, 30), delivery("b", "s1", 1, 30, batch="B2")],
        [batch("D1", "B1", "per_minute"), batch("D1", "B2", "per_minute")],
    )
    r = revenue(store)
    assert r[("D1", "B1")]["gross_cents"] == 3
    assert r[("D1", "B2")]["gross_cents"] == 1


def test_r7_empty_per_minute_batch_has_gross_zero_and_allocates_nothing(store):
    # no deliveries -> gross 0 -> pool round_half_up(0 * 1/2) = 0, platform 0 - 0 = 0
    lake(
        store,
        [delivery("a", "s1", 60, 100, deal="D2")],
        [batch("D1", "B1", "per_minute"), batch("D2", "B1", "per_minute")],
    )
    r = revenue(store)[("D1", "B1")]
    assert (r["gross_cents"], r["pool_cents"], r["platform_cents"], r["clips"], r["billable_seconds"]) == (
        0,
        0,
        0,
        0,
        0,
    )
    assert r["break_reason"] is None  # not a break under per_minute (R7)
    a = allocations(store)
    assert ("D1", "B1") not in a
    # the other batch: 60 s * 100 c/min / 60 = 100 -> pool 50, all to s1
    assert cents(a[("D2", "B1")]) == {"s1": 50}


def test_r7_flat_fee_gross_is_the_fee(store):
    # flat_fee: gross = fee_cents whatever the minutes: 777 (pool round_half_up(777/2 = 388.5) = 389)
    lake(store, [delivery("a", "s1", 3600, None), delivery("b", "s2", 1, None)], [batch("D1", "B1", "flat_fee", 777)])
    r = revenue(store)[("D1", "B1")]
    assert (r["gross_cents"], r["pool_cents"], r["platform_cents"]) == (777, 389, 388)
    assert r["break_reason"] is None


def test_r7_flat_fee_batch_without_deliveries_is_a_break_that_allocates_nothing(store):
    # R7: a flat_fee batch with no deliveries is a break. Chosen behaviour (batch_revenue.yml,
    # docs/MONEY_CHOICES.md): the fee stays in gross (the buyer owes it per the deal; receivables
    # show it), pool 0, platform = gross - pool = 777, break_reason set, no allocation rows.
    lake(
        store,
        [delivery("a", "s1", 10, None, deal="D2")],
        [batch("D1", "B1", "flat_fee", 777), batch("D2", "B1", "flat_fee", 1000)],
    )
    r = revenue(store)[("D1", "B1")]
    assert (r["gross_cents"], r["pool_cents"], r["platform_cents"], r["clips"]) == (777, 0, 777, 0)
    assert r["break_reason"] == "flat_fee_batch_without_deliveries"
    assert ("D1", "B1") not in allocations(store)

    # the break is reported by the model's warn-severity test (not blocking)
    model = load_model(SQL_ROOT / "marts" / "batch_revenue.sql")
    con = connect_for_model(store, model, {"share_rate_num": 1, "share_rate_den": 2})
    result = run_model(con, model)
    reported = {t.name: (t.severity, n, rows) for t, n, rows in run_tests(con, model, result)}
    severity, n, rows = reported["flat_fee_batch_without_deliveries"]
    assert (severity, n, rows[0]["deal_id"]) == ("warn", 1, "D1")
    assert all(n == 0 for name, (sev, n, _) in reported.items() if sev == "error")


def test_r7_flat_fee_batch_with_only_zero_second_clips_is_a_break_too(store):
    # weights (R9) would all be 0 s, so the pool could not be split: same break as no deliveries
    # (docs/MONEY_CHOICES.md). gross 500, pool 0, platform 500, nothing allocated (no row carries cents).
    lake(store, [delivery("a", "s1", 0, None)], [batch("D1", "B1", "flat_fee", 500)])
    r = revenue(store)[("D1", "B1")]
    assert (r["gross_cents"], r["pool_cents"], r["platform_cents"], r["clips"]) == (500, 0, 500, 1)
    assert r["break_reason"] == "flat_fee_batch_without_billable_seconds"
    a = allocations(store).get(("D1", "B1"), {})
    assert sum(cents(a).values()) == 0


# -- R8 contributor pool -------------------------------------------------------------
def test_r8_pool_rounds_half_up_with_rate_one_half_and_odd_gross(store):
    # gross 1001 * 1/2 = 500.5 -> round_half_up -> pool 501; platform = 1001 - 501 = 500
    # gross 1000 * 1/2 = 500 exactly -> pool 500; platform 500
    lake(
        store,
        [delivery("a", "s1", 10, None), delivery("b", "s1", 10, None, batch="B2")],
        [batch("D1", "B1", "flat_fee", 1001), batch("D1", "B2", "flat_fee", 1000)],
    )
    r = revenue(store)
    assert (r[("D1", "B1")]["pool_cents"], r[("D1", "B1")]["platform_cents"]) == (501, 500)
    assert (r[("D1", "B2")]["pool_cents"], r[("D1", "B2")]["platform_cents"]) == (500, 500)
    assert split_pool(1001, Fraction(1, 2)) == (501, 500)


def test_r8_pool_with_share_rate_three_tenths(store):
    # rate 3/10:
    #   gross 1001 * 3/10 = 300.3 -> 300, platform 701
    #   gross 1005 * 3/10 = 301.5 -> 302 (half up), platform 703
    #   gross 328 (per_minute, 19700/60 = 328.333 -> 328) * 3/10 = 98.4 -> 98, platform 230
    lake(
        store,
        [
            delivery("a", "s1", 10, None),
            delivery("b", "s1", 10, None, batch="B2"),
            delivery("c", "s1", 61, 200, deal="D2"),
            delivery("d", "s2", 45, 100, deal="D2"),
            delivery("e", "s2", 10, 300, deal="D2"),
        ],
        [batch("D1", "B1", "flat_fee", 1001), batch("D1", "B2", "flat_fee", 1005), batch("D2", "B1", "per_minute")],
    )
    r = revenue(store, share_rate_num=3, share_rate_den=10)
    assert (r[("D1", "B1")]["pool_cents"], r[("D1", "B1")]["platform_cents"]) == (300, 701)
    assert (r[("D1", "B2")]["pool_cents"], r[("D1", "B2")]["platform_cents"]) == (302, 703)
    assert (r[("D2", "B1")]["gross_cents"], r[("D2", "B1")]["pool_cents"], r[("D2", "B1")]["platform_cents"]) == (
        328,
        98,
        230,
    )
    assert split_pool(1005, Fraction(3, 10)) == (302, 703)
    # allocations follow the rate-3/10 pools: D2 splits 98 (see the R9 tests for the method)
    a = allocations(store, share_rate_num=3, share_rate_den=10)
    assert sum(cents(a[("D2", "B1")]).values()) == 98


def test_r8_share_rate_zero_and_one(store):
    # rate 0: pool round_half_up(1001 * 0) = 0, platform 1001; rate 1: pool 1001, platform 0
    lake(store, [delivery("a", "s1", 10, None)], [batch("D1", "B1", "flat_fee", 1001)])
    r0 = revenue(store, share_rate_num=0, share_rate_den=1)[("D1", "B1")]
    assert (r0["pool_cents"], r0["platform_cents"]) == (0, 1001)
    r1 = revenue(store, share_rate_num=1, share_rate_den=1)[("D1", "B1")]
    assert (r1["pool_cents"], r1["platform_cents"]) == (1001, 0)


def test_r8_large_amounts_stay_exact(store):
    # fee 10^12 cents at rate 3333333333333333/10^16 (what GOPRO_SHARE_RATE=0.3333333333333333 gives):
    # 10^12 * 3333333333333333 / 10^16 = 333333333333.3333 -> 333333333333; platform 666666666667.
    # gross * num = 3.3e27 would overflow int64: the macro computes in HUGEINT.
    lake(store, [delivery("a", "s1", 10, None), delivery("b", "s2", 20, None)], [batch("D1", "B1", "flat_fee", 10**12)])
    r = revenue(store, share_rate_num=3333333333333333, share_rate_den=10**16)[("D1", "B1")]
    assert (r["pool_cents"], r["platform_cents"]) == (333333333333, 666666666667)
    # R9 on the big pool: 333333333333 * 10/30 = 111111111111 exactly, * 20/30 = 222222222222 exactly
    a = allocations(store, share_rate_num=3333333333333333, share_rate_den=10**16)
    assert cents(a[("D1", "B1")]) == {"s1": 111111111111, "s2": 222222222222}


# -- R9 allocation -------------------------------------------------------------------
def test_r9_flat_fee_uneven_split_tie_in_remainders_goes_to_smaller_subscriber_id(store):
    # fee 1000 -> pool 500; weights (billable seconds) 10, 10, 10 -> W = 30
    # exact shares 500*10/30 = 166.666... each; floors 166+166+166 = 498; leftover 2
    # remainders all 2/3 (20/30): a tie, broken by smaller subscriber_id -> s1, s2 get +1
    # -> s1 167, s2 167, s3 166 (sum 500)
    lake(
        store,
        [delivery("x", "s3", 10, None), delivery("y", "s1", 10, None), delivery("z", "s2", 10, None)],
        [batch("D1", "B1", "flat_fee", 1000)],
    )
    a = allocations(store)[("D1", "B1")]
    assert cents(a) == {"s1": 167, "s2": 167, "s3": 166}
    assert {s: (r["floor_cents"], r["remainder_cents"], r["remainder_fraction"]) for s, r in a.items()} == {
        "s1": (166, 1, "20/30"),
        "s2": (166, 1, "20/30"),
        "s3": (166, 0, "20/30"),
    }
    assert {k: v.cents for k, v in largest_remainder(500, {"s1": 10, "s2": 10, "s3": 10}).items()} == cents(a)


def test_r9_tie_break_compares_subscriber_ids_as_strings(store):
    # subscriber_id is text, so "smaller" is string order: "s10" < "s9" (docs/MONEY_CHOICES.md).
    # fee 2 -> pool 1; weights 10 and 10 -> exact 0.5 each; floors 0, 0; leftover 1 -> "s10"
    lake(store, [delivery("x", "s9", 10, None), delivery("y", "s10", 10, None)], [batch("D1", "B1", "flat_fee", 2)])
    assert cents(allocations(store)[("D1", "B1")]) == {"s10": 1, "s9": 0}


def test_r9_leftover_cents_follow_remainders_not_weights(store):
    # fee 20 -> pool 10; weights (seconds) a=50, b=20, c=10 -> W = 80
    #   a: 10*50/80 = 500/80 = 6.25 -> floor 6, remainder 20/80
    #   b: 10*20/80 = 200/80 = 2.5  -> floor 2, remainder 40/80
    #   c: 10*10/80 = 100/80 = 1.25 -> floor 1, remainder 20/80
    # floors 6+2+1 = 9, leftover 1 -> largest remainder is b (not a, the largest weight)
    # -> a 6, b 3, c 1 (sum 10)
    lake(
        store,
        [delivery("x", "a", 50, None), delivery("y", "b", 20, None), delivery("z", "c", 10, None)],
        [batch("D1", "B1", "flat_fee", 20)],
    )
    a = allocations(store)[("D1", "B1")]
    assert cents(a) == {"a": 6, "b": 3, "c": 1}
    assert {s: r["remainder_fraction"] for s, r in a.items()} == {"a": "20/80", "b": "40/80", "c": "20/80"}
    assert {s: r["weight"] for s, r in a.items()} == {"a": "50", "b": "20", "c": "10"}


def test_r9_per_minute_weights_are_exact_values_not_rounded_or_seconds(store):
    # one 1-second clip each: a at 100 c/min, b at 300, c at 200
    #   exact values 100/60 = 1.666.., 300/60 = 5, 200/60 = 3.333..; sum 600/60 = 10 -> gross 10, pool 5
    #   exact shares (weights x60 = 100, 300, 200; W = 600):
    #     a 5*100/600 = 0.8333 (floor 0, rem 500/600), b 5*300/600 = 2.5 (floor 2, rem 300/600),
    #     c 5*200/600 = 1.6667 (floor 1, rem 400/600); floors 3, leftover 2 -> a and c
    #   -> a 1, b 2, c 2
    # weights rounded to cents (2, 5, 3) would give a 1, b 3, c 1; floored (1, 5, 3) a 0, b 3, c 2;
    # billable seconds (1, 1, 1) a 2, b 2, c 1 -- all different, so this pins exact weights.
    lake(
        store,
        [delivery("x", "a", 1, 100), delivery("y", "b", 1, 300), delivery("z", "c", 1, 200)],
        [batch("D1", "B1", "per_minute")],
    )
    r = revenue(store)[("D1", "B1")]
    assert (r["gross_cents"], r["pool_cents"]) == (10, 5)
    a = allocations(store)[("D1", "B1")]
    assert cents(a) == {"a": 1, "b": 2, "c": 2}
    assert {s: r["remainder_fraction"] for s, r in a.items()} == {"a": "500/600", "b": "300/600", "c": "400/600"}
    exact = {"a": Fraction(100, 60), "b": Fraction(300, 60), "c": Fraction(200, 60)}
    assert {k: v.cents for k, v in largest_remainder(5, exact).items()} == cents(a)


def test_r9_per_minute_weight_sums_a_subscribers_deliveries(store):
    # s1: 61 s at 200 -> 12200/60; s2: 45 s at 100 + 10 s at 300 -> (4500 + 3000)/60 = 7500/60
    # gross 19700/60 = 328.33 -> 328; pool 164
    #   s1: 164*12200/19700 = 2000800/19700 = 101.56 (floor 101, rem 11100/19700)
    #   s2: 164*7500/19700  = 1230000/19700 =  62.44 (floor 62,  rem  8600/19700)
    # floors 163, leftover 1 -> s1 -> s1 102, s2 62 (sum 164)
    lake(
        store,
        [delivery("a", "s1", 61, 200), delivery("b", "s2", 45, 100), delivery("c", "s2", 10, 300)],
        [batch("D1", "B1", "per_minute")],
    )
    a = allocations(store)[("D1", "B1")]
    assert cents(a) == {"s1": 102, "s2": 62}
    assert {
        s: (r["weight"], r["batch_weight"], r["remainder_fraction"], r["clips"], r["billable_seconds"])
        for s, r in a.items()
    } == {"s1": ("12200", "19700", "11100/19700", 1, 61), "s2": ("7500", "19700", "8600/19700", 2, 55)}


def test_r9_allocations_sum_to_pool_exactly_in_every_batch(store):
    # fee 2002 -> pool 1001 over 7 subscribers with weights 1..7 s (W = 28):
    #   exact k*1001/28 = 35.75k -> 35.75, 71.5, 107.25, 143, 178.75, 214.5, 250.25
    #   floors 35+71+107+143+178+214+250 = 998, leftover 3
    #   remainders .75 (k=1), .5 (k=2), .25, 0, .75 (k=5), .5 (k=6), .25 -> +1 to k=1, k=5 (the .75s),
    #   then one of the .5 ties (k=2 "u2" < "u6") -> 36, 72, 107, 143, 179, 214, 250 (sum 1001)
    ds = [delivery(f"c{k}", f"u{k}", k, None) for k in range(1, 8)]
    lake(store, ds, [batch("D1", "B1", "flat_fee", 2002)])
    a = cents(allocations(store)[("D1", "B1")])
    assert a == {"u1": 36, "u2": 72, "u3": 107, "u4": 143, "u5": 179, "u6": 214, "u7": 250}
    assert sum(a.values()) == 1001


def test_r9_zero_weight_subscriber_in_per_minute_batch_gets_nothing(store):
    # s2's clip is 0 s (value 0): weight 0. s1: 60 s * 100 / 60 = 100 -> gross 100, pool 50, all to s1.
    lake(store, [delivery("a", "s1", 60, 100), delivery("b", "s2", 0, 100)], [batch("D1", "B1", "per_minute")])
    assert cents(allocations(store)[("D1", "B1")]) == {"s1": 50, "s2": 0}


# -- the blocking check recomputes R7/R8 from the deliveries -------------------------------
def test_r7_r8_revenue_check_fails_on_a_corrupted_row_or_input(store):
    # B-pm: per_minute, 328 gross (see test_r7_per_minute_gross_is_sum_of_exact_fractions...),
    # pool 164; B-ff: flat_fee 777, pool round_half_up(388.5) = 389; B-brk: flat_fee 500 with
    # no delivery, a break (pool 0, platform 500); B-empty: per_minute, nothing delivered (0).
    import pyarrow as pa

    check = "revenue_matches_deliveries_and_batch_terms"
    lake(
        store,
        [
            delivery("a", "s1", 61, 200, batch="B-pm"),
            delivery("b", "s2", 45, 100, batch="B-pm"),
            delivery("c", "s2", 10, 300, batch="B-pm"),
            delivery("d", "s1", 30, None, batch="B-ff"),
        ],
        [
            batch("D1", "B-pm", "per_minute"),
            batch("D1", "B-ff", "flat_fee", 777),
            batch("D1", "B-brk", "flat_fee", 500),
            batch("D1", "B-empty", "per_minute"),
        ],
    )
    model = load_model(SQL_ROOT / "marts" / "batch_revenue.sql")
    variables = {"share_rate_num": 1, "share_rate_den": 2}
    con = connect_for_model(store, model, variables)
    good = run_model(con, model)
    index = {r["batch_id"]: i for i, r in enumerate(good.to_pylist())}
    amounts = {r["batch_id"]: (r["gross_cents"], r["pool_cents"], r["platform_cents"]) for r in good.to_pylist()}
    assert amounts == {"B-pm": (328, 164, 164), "B-ff": (777, 389, 388), "B-brk": (500, 0, 500), "B-empty": (0, 0, 0)}

    def offending(rows: pa.Table, connection=con) -> list[dict]:
        n, sample = {t.name: (n, s) for t, n, s in run_tests(connection, model, rows)}[check]
        assert n == len(sample)
        return sample

    def corrupt(batch_id: str, **values) -> pa.Table:
        rows = good.to_pylist()
        rows[index[batch_id]] |= values
        return pa.Table.from_pylist(rows, schema=good.schema)

    assert offending(good) == []
    # (1) R7: gross one cent high, pool and platform moved along so that pool + platform =
    # gross still holds (the old check, pool_plus_platform_is_gross, passed it)
    bad = offending(corrupt("B-pm", gross_cents=329, pool_cents=165, platform_cents=164))
    assert [(r["batch_id"], int(r["expected_gross_cents"]), int(r["expected_pool_cents"])) for r in bad] == [
        ("B-pm", 328, 164)
    ]
    # (2) R8: the half cent rounded down (388.5 -> 388) and given to the platform
    bad = offending(corrupt("B-ff", pool_cents=388, platform_cents=389))
    assert [(r["batch_id"], r["pool_cents"], int(r["expected_pool_cents"])) for r in bad] == [("B-ff", 388, 389)]
    # (3) R7 break: the break's fee pooled anyway; (4) a delivered batch without its row
    assert [r["batch_id"] for r in offending(corrupt("B-brk", pool_cents=250, platform_cents=250))] == ["B-brk"]
    assert [r["batch_id"] for r in offending(good.filter(pa.compute.not_equal(good["batch_id"], "B-ff")))] == ["B-ff"]
    # (5) a corrupted input: a delivery's seconds changed after revenue was computed (61 -> 60 s:
    # 12000 + 4500 + 3000 = 19500 / 60 = 325) -> the stored revenue no longer matches it
    rows = store.read("deal_deliveries").to_pylist()
    rows[0]["billable_seconds"] = 60
    write_rows(store, "deal_deliveries", rows, DELIVERY_SCHEMA)
    con = connect_for_model(store, model, variables)
    bad = offending(good, con)
    assert [(r["batch_id"], int(r["expected_gross_cents"])) for r in bad] == [("B-pm", 325)]
