"""R10 revenue month and R11 monthly statements, on the real SQL models over real Delta
tables in tmp_path (deal_deliveries + delivered_batches -> batch_revenue ->
revenue_share_allocations -> revenue_share_statements, month by month: each month reads
the previous month's carried-forward amount from its own table).

Choices where the contract is silent are in docs/MONEY_CHOICES.md.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pyarrow as pa
from conftest import month_vars, run_sql_model, write_rows

from gopro_assets.domain.finance.money import roll_forward
from gopro_assets.domain.ingestion.landing import parse_timestamp
from gopro_assets.domain.licensing.deliveries import DELIVERED_BATCH_SCHEMA, DELIVERY_SCHEMA, revenue_month
from gopro_assets.sql_engine.runner import SQL_ROOT, load_model


# -- helpers ---------------------------------------------------------------------
def month_end(month: str) -> datetime:
    """A cutoff inside ``month`` (UTC): the 20th at noon."""
    return datetime.fromisoformat(f"{month}-20T12:00:00+00:00")


def build_lake(store, earnings: dict[str, dict[str, int]]) -> None:
    """For every month and subscriber, one flat-fee batch whose whole pool goes to that
    subscriber: fee = 2 * cents -> pool = round_half_up(2 * cents / 2) = cents (rate 1/2),
    one 10-second clip -> allocation = the whole pool = cents."""
    deliveries, batches = [], []
    for month, by_sub in earnings.items():
        cutoff = month_end(month)
        for sub, cents in by_sub.items():
            deal, batch = f"D-{month}-{sub}", "B1"
            deliveries.append(
                {
                    "deal_id": deal,
                    "batch_id": batch,
                    "clip_id": f"clip-{month}-{sub}",
                    "subscriber_id": sub,
                    "tier": "hd",
                    "billable_seconds": 10,
                    "tier_price_cents": None,
                    "revenue_month": revenue_month(cutoff),
                    "cutoff_at": cutoff,
                    "selection_rank": 1,
                }
            )
            batches.append(batch_row(deal, batch, cutoff, fee=2 * cents))
    write_rows(store, "deal_deliveries", deliveries, DELIVERY_SCHEMA)
    write_rows(store, "delivered_batches", batches, DELIVERED_BATCH_SCHEMA)


def batch_row(deal: str, batch: str, cutoff: datetime, fee: int | None = None, model: str = "flat_fee") -> dict:
    return {
        "deal_id": deal,
        "batch_id": batch,
        "buyer_id": "acme-ai",
        "pricing_model": model,
        "cutoff_at": cutoff,
        "revenue_month": revenue_month(cutoff),
        "max_minutes": None,
        "fee_cents": fee,
        "clips": 1,
        "billable_seconds": 10,
        "candidates": 1,
        "input_versions": "{}",
    }


def run_upstream(store, **variables) -> None:
    run_sql_model(store, "batch_revenue", **variables)
    run_sql_model(store, "revenue_share_allocations", **variables)


def statements(store, month: str, **variables) -> dict[str, tuple]:
    """Run one statement month; {subscriber: (opening, earned, total, payable, carried)}."""
    rows = run_sql_model(store, "revenue_share_statements", **month_vars(month), **variables).to_pylist()
    assert all(r["statement_month"] == month for r in rows)
    return {
        r["subscriber_id"]: (
            r["opening_balance_cents"],
            r["earned_cents"],
            r["total_cents"],
            r["payable_cents"],
            r["carried_forward_cents"],
        )
        for r in rows
    }


# -- R10 revenue month -----------------------------------------------------------------
def test_r10_revenue_month_of_utc_cutoffs():
    assert revenue_month(datetime(2025, 1, 31, 23, 59, 59, tzinfo=UTC)) == "2025-01"
    assert revenue_month(datetime(2025, 2, 1, 0, 0, 0, tzinfo=UTC)) == "2025-02"
    assert revenue_month(datetime(2024, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)) == "2024-12"
    # the pipeline parses landing timestamps to UTC first: 23:30 at -05:00 is 04:30Z on Feb 1
    assert revenue_month(parse_timestamp("2025-01-31T23:30:00-05:00")) == "2025-02"
    # and 00:30 at +01:00 on Feb 1 is still 23:30Z on Jan 31
    assert revenue_month(parse_timestamp("2025-02-01T00:30:00+01:00")) == "2025-01"


def test_r10_revenue_month_converts_an_offset_cutoff_to_utc():
    # 2025-01-31T23:30:00-05:00 == 2025-02-01T04:30:00Z -> February in UTC
    assert revenue_month(datetime(2025, 1, 31, 23, 30, tzinfo=timezone(timedelta(hours=-5)))) == "2025-02"
    # 2025-02-01T00:30:00+01:00 == 2025-01-31T23:30:00Z -> January in UTC
    assert revenue_month(datetime(2025, 2, 1, 0, 30, tzinfo=timezone(timedelta(hours=1)))) == "2025-01"
    # a naive datetime is a lake timestamp, i.e. already UTC (deliveries.revenue_month docstring)
    assert revenue_month(datetime(2025, 1, 31, 23, 30)) == "2025-01"


def test_r10_offset_cutoff_lands_in_the_utc_month_through_batch_revenue_and_statements(store):
    # A deal file says cutoff_at 2025-01-31T23:30:00-05:00. The lake stores it as a UTC
    # timestamp (Delta round trip), and the batch's month is computed from that: February.
    local = datetime(2025, 1, 31, 23, 30, tzinfo=timezone(timedelta(hours=-5)))
    write_rows(
        store,
        "license_batches",
        [{"deal_id": "D1", "batch_id": "B1", "cutoff_at": local}],
        pa.schema([("deal_id", pa.string()), ("batch_id", pa.string()), ("cutoff_at", pa.timestamp("us", tz="UTC"))]),
    )
    cutoff = store.read("license_batches").to_pylist()[0]["cutoff_at"]
    assert cutoff == datetime(2025, 2, 1, 4, 30, tzinfo=UTC)
    month = revenue_month(cutoff)
    assert month == "2025-02"
    # fee 3000 -> pool 1500 -> all to s1 (one clip)
    write_rows(
        store,
        "deal_deliveries",
        [
            {
                "deal_id": "D1",
                "batch_id": "B1",
                "clip_id": "c1",
                "subscriber_id": "s1",
                "tier": "hd",
                "billable_seconds": 10,
                "tier_price_cents": None,
                "revenue_month": month,
                "cutoff_at": cutoff,
                "selection_rank": 1,
            }
        ],
        DELIVERY_SCHEMA,
    )
    write_rows(store, "delivered_batches", [batch_row("D1", "B1", cutoff, fee=3000)], DELIVERED_BATCH_SCHEMA)
    r = run_sql_model(store, "batch_revenue").to_pylist()
    assert [(x["revenue_month"], x["gross_cents"], x["pool_cents"]) for x in r] == [("2025-02", 3000, 1500)]
    run_sql_model(store, "revenue_share_allocations")
    assert statements(store, "2025-01") == {}  # nothing in January
    # February: opening 0 + earned 1500 = 1500 >= 1000 -> payable 1500
    assert statements(store, "2025-02") == {"s1": (0, 1500, 1500, 1500, 0)}


# -- R11 statements --------------------------------------------------------------------
def test_r11_carry_forward_across_three_months_until_threshold_is_crossed(store):
    build_lake(store, {"2025-01": {"s1": 400}, "2025-02": {"s1": 500}, "2025-03": {"s1": 300}})
    run_upstream(store)
    # Jan: opening 0   + earned 400 = 400  < 1000 -> payable 0,    carried 400
    assert statements(store, "2025-01") == {"s1": (0, 400, 400, 0, 400)}
    # Feb: opening 400 + earned 500 = 900  < 1000 -> payable 0,    carried 900
    assert statements(store, "2025-02") == {"s1": (400, 500, 900, 0, 900)}
    # Mar: opening 900 + earned 300 = 1200 >= 1000 -> payable 1200, carried 0
    assert statements(store, "2025-03") == {"s1": (900, 300, 1200, 1200, 0)}
    # Apr: opening 0 and earned 0 -> no statement row at all
    assert statements(store, "2025-04") == {}
    # the Python reference agrees month by month
    line = roll_forward(0, 400, 1000)
    line = roll_forward(line.carried_forward_cents, 500, 1000)
    line = roll_forward(line.carried_forward_cents, 300, 1000)
    assert (line.payable_cents, line.carried_forward_cents) == (1200, 0)
    # the table holds one partition per month that had rows
    months = sorted(set(store.read("revenue_share_statements")["statement_month"].to_pylist()))
    assert months == ["2025-01", "2025-02", "2025-03"]


def test_r11_rerunning_a_month_replaces_it_and_next_month_still_reads_it(store):
    build_lake(store, {"2025-01": {"s1": 400}, "2025-02": {"s1": 500}})
    run_upstream(store)
    first = statements(store, "2025-01")
    assert statements(store, "2025-01") == first == {"s1": (0, 400, 400, 0, 400)}
    assert store.read("revenue_share_statements").num_rows == 1  # replaced, not appended
    # Feb: 400 + 500 = 900 -> carried
    assert statements(store, "2025-02") == {"s1": (400, 500, 900, 0, 900)}


def test_r11_exactly_at_minimum_payout_pays(store):
    # s1: 1000 >= 1000 -> payable 1000; s2: 999 < 1000 -> carried 999
    build_lake(store, {"2025-01": {"s1": 1000, "s2": 999}})
    run_upstream(store)
    assert statements(store, "2025-01") == {"s1": (0, 1000, 1000, 1000, 0), "s2": (0, 999, 999, 0, 999)}
    # s2 next month: opening 999 + earned 1 = 1000 -> payable 1000
    build_lake(store, {"2025-01": {"s1": 1000, "s2": 999}, "2025-02": {"s2": 1}})
    run_upstream(store)
    assert statements(store, "2025-02") == {"s2": (999, 1, 1000, 1000, 0)}


def test_r11_min_payout_zero_pays_everything(store):
    # min payout 0: every total >= 0, so 1 cent is payable and nothing is carried
    build_lake(store, {"2025-01": {"s1": 1, "s2": 250}})
    run_upstream(store)
    assert statements(store, "2025-01", min_payout_cents=0) == {"s1": (0, 1, 1, 1, 0), "s2": (0, 250, 250, 250, 0)}
    # nothing carried -> February has no rows
    assert statements(store, "2025-02", min_payout_cents=0) == {}


def test_r11_custom_minimum_payout(store):
    # min payout 300: 250 carried in Jan, 250 + 100 = 350 paid in Feb
    build_lake(store, {"2025-01": {"s1": 250}, "2025-02": {"s1": 100}})
    run_upstream(store)
    assert statements(store, "2025-01", min_payout_cents=300) == {"s1": (0, 250, 250, 0, 250)}
    assert statements(store, "2025-02", min_payout_cents=300) == {"s1": (250, 100, 350, 350, 0)}


def test_r11_statements_ignore_consent_so_earned_money_is_paid_after_opt_out(store):
    # By construction: the statement model (and the models it is built on) read no consent,
    # subscriber or eligibility table, so a later opt-out or cancellation cannot change them.
    consent_tables = {
        "consent_events",
        "subscribers",
        "consent_snapshots",
        "consent_daily",
        "clip_exclusions",
        "int_clip_exclusion_timeline",
        "late_revocations",
    }
    for name in ("revenue_share_statements", "revenue_share_allocations", "batch_revenue"):
        assert not consent_tables & set(load_model(SQL_ROOT / "marts" / f"{name}.sql").deps), name

    # And by example: s1 earns 600 in January (carried) and 500 from a batch cut off on
    # 2025-02-20; s1 opts out on 2025-02-25 and cancels on 2025-02-26 (those rows are in the
    # lake). s2 earns 300 in January, then opts out in January and never earns again.
    build_lake(store, {"2025-01": {"s1": 600, "s2": 300}, "2025-02": {"s1": 500}})
    write_rows(
        store,
        "consent_events",
        [
            {
                "event_id": "e1",
                "subscriber_id": "s1",
                "event_at": datetime(2025, 2, 25, tzinfo=UTC),
                "action": "opt_out",
            },
            {
                "event_id": "e2",
                "subscriber_id": "s2",
                "event_at": datetime(2025, 1, 25, tzinfo=UTC),
                "action": "opt_out",
            },
        ],
        pa.schema(
            [
                ("event_id", pa.string()),
                ("subscriber_id", pa.string()),
                ("event_at", pa.timestamp("us", tz="UTC")),
                ("action", pa.string()),
            ]
        ),
    )
    write_rows(
        store,
        "subscribers",
        [{"subscriber_id": "s1", "cancelled_at": datetime(2025, 2, 26, tzinfo=UTC)}],
        pa.schema([("subscriber_id", pa.string()), ("cancelled_at", pa.timestamp("us", tz="UTC"))]),
    )
    run_upstream(store)
    # Jan: s1 600 carried; s2 300 carried
    assert statements(store, "2025-01") == {"s1": (0, 600, 600, 0, 600), "s2": (0, 300, 300, 0, 300)}
    # Feb: s1 600 + 500 = 1100 >= 1000 -> payable 1100 although s1 has since opted out and cancelled;
    #      s2 (opted out, earns nothing) keeps a row: opening 300 > 0 -> 300 carried, never dropped
    assert statements(store, "2025-02") == {"s1": (600, 500, 1100, 1100, 0), "s2": (300, 0, 300, 0, 300)}
    # Mar: s2's balance is still there; with min payout 0 it is paid out in full
    assert statements(store, "2025-03", min_payout_cents=0) == {"s2": (300, 0, 300, 300, 0)}


def test_r11_statement_counts_clips_and_seconds_and_sums_several_batches(store):
    # s1 in January: batch B1 (fee 1000 -> pool 500, s1 10 s of 20 s -> 250) and
    # batch B2 (fee 600 -> pool 300, s1 alone -> 300): earned 550, clips 2, seconds 10 + 30 = 40
    # s2: B1 10 s of 20 -> 250 (carried)
    cutoff = month_end("2025-01")
    d = lambda clip, sub, batch, secs: {
        "deal_id": "D1",
        "batch_id": batch,
        "clip_id": clip,
        "subscriber_id": sub,
        "tier": "hd",
        "billable_seconds": secs,
        "tier_price_cents": None,
        "revenue_month": "2025-01",
        "cutoff_at": cutoff,
        "selection_rank": 1,
    }
    write_rows(
        store,
        "deal_deliveries",
        [d("a", "s1", "B1", 10), d("b", "s2", "B1", 10), d("c", "s1", "B2", 30)],
        DELIVERY_SCHEMA,
    )
    write_rows(
        store,
        "delivered_batches",
        [batch_row("D1", "B1", cutoff, 1000), batch_row("D1", "B2", cutoff, 600)],
        DELIVERED_BATCH_SCHEMA,
    )
    run_upstream(store)
    rows = {
        r["subscriber_id"]: r
        for r in run_sql_model(store, "revenue_share_statements", **month_vars("2025-01")).to_pylist()
    }
    assert (rows["s1"]["earned_cents"], rows["s1"]["clips_licensed"], rows["s1"]["billable_seconds"]) == (550, 2, 40)
    assert (rows["s2"]["earned_cents"], rows["s2"]["clips_licensed"], rows["s2"]["billable_seconds"]) == (250, 1, 10)
    # month total: pools 500 + 300 = 800 == allocations 250 + 250 + 300 == earned 550 + 250
    assert sum(r["earned_cents"] for r in rows.values()) == 800


def test_batches_before_the_first_partition_land_in_the_first_statement_month(store):
    """Contract §1: anything dated before GOPRO_START_DATE belongs to the first partition,
    so a batch whose revenue month (R10) precedes the first statement month is earned in
    that first month, not dropped."""
    from datetime import datetime

    from conftest import month_vars, run_sql_model, write_rows

    from gopro_assets.domain.licensing.deliveries import DELIVERED_BATCH_SCHEMA, DELIVERY_SCHEMA

    cut = datetime(2024, 12, 31, 12, 0, tzinfo=UTC)
    write_rows(
        store,
        "deal_deliveries",
        [
            dict(
                deal_id="D0",
                batch_id="B0",
                clip_id="c1",
                subscriber_id="s1",
                tier="hd",
                billable_seconds=600,
                tier_price_cents=200,
                revenue_month="2024-12",
                cutoff_at=cut,
                selection_rank=1,
            )
        ],
        DELIVERY_SCHEMA,
    )
    write_rows(
        store,
        "delivered_batches",
        [
            dict(
                deal_id="D0",
                batch_id="B0",
                buyer_id="acme",
                pricing_model="per_minute",
                cutoff_at=cut,
                revenue_month="2024-12",
                max_minutes=None,
                fee_cents=None,
                clips=1,
                billable_seconds=600,
                candidates=1,
                input_versions="{}",
            )
        ],
        DELIVERED_BATCH_SCHEMA,
    )
    run_sql_model(store, "batch_revenue")  # 600 s * 200 c/min / 60 = 2000; pool 1000
    run_sql_model(store, "revenue_share_allocations")  # s1 gets the whole pool: 1000
    rows = run_sql_model(store, "revenue_share_statements", first_month="2025-01", **month_vars("2025-01")).to_pylist()
    assert [(r["statement_month"], r["subscriber_id"], r["earned_cents"], r["payable_cents"]) for r in rows] == [
        ("2025-01", "s1", 1000, 1000)
    ]
