"""`gopro-lake explain`: a statement line by line (R7–R11), from the lake, at the Delta
versions recorded in the statement row. Cents are worked out by hand in the comments.

The first tests build the money tables with the real SQL models on real Delta tables
(as tests/test_statements.py does); the last one runs real Dagster materializations and
shows that an old statement is reproduced exactly after a later run changed it.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from fractions import Fraction

import dagster as dg
import pyarrow as pa
import pytest
from conftest import month_vars, run_sql_model, write_rows

from gopro_assets.cli import main as cli_main
from gopro_assets.cli import materialize
from gopro_assets.definitions import defs
from gopro_assets.domain.finance.explain import ExplainError, ExplainMismatch, cents_text, explain, render_text
from gopro_assets.domain.licensing.deliveries import DELIVERED_BATCH_SCHEMA, DELIVERY_SCHEMA
from gopro_assets.shared.resources import LakehouseResource

JAN = datetime(2025, 1, 20, 12, tzinfo=UTC)
FEB = datetime(2025, 2, 20, 12, tzinfo=UTC)


def delivery(deal, batch, clip, sub, tier, secs, price, cutoff, rank=1):
    return {
        "deal_id": deal,
        "batch_id": batch,
        "clip_id": clip,
        "subscriber_id": sub,
        "tier": tier,
        "billable_seconds": secs,
        "tier_price_cents": price,
        "revenue_month": cutoff.strftime("%Y-%m"),
        "cutoff_at": cutoff,
        "selection_rank": rank,
    }


def batch(deal, batch_id, cutoff, model, fee=None):
    return {
        "deal_id": deal,
        "batch_id": batch_id,
        "buyer_id": "acme-ai",
        "pricing_model": model,
        "cutoff_at": cutoff,
        "revenue_month": cutoff.strftime("%Y-%m"),
        "max_minutes": None,
        "fee_cents": fee,
        "clips": 0,
        "billable_seconds": 0,
        "candidates": 0,
        "input_versions": "{}",
    }


DELIVERIES = [
    # January, D1/B1 per_minute:
    #   s1: a hd 30 s x 200 = 100 c, b sd 45 s x 100 = 75 c      weight 6000 + 4500 = 10500
    #   s2: c hd 20 s x 200 = 66 2/3 c                            weight 4000
    #   s3: d sd  7 s x 100 = 11 2/3 c                            weight 700
    #   gross = round_half_up(253 1/3) = 253; pool = round_half_up(126.5) = 127; W = 15200
    #   s1 127*10500/15200 = 87 111/152 | s2 127*4000/15200 = 33 8/19 | s3 127*700/15200 = 5 129/152
    #   floors 87 + 33 + 5 = 125 -> 2 cents left: s3 (0.849) and s1 (0.730), not s2 (0.421)
    #   -> s1 88, s2 33, s3 6 (sum 127)
    delivery("D1", "B1", "a", "s1", "hd", 30, 200, JAN, 1),
    delivery("D1", "B1", "b", "s1", "sd", 45, 100, JAN, 3),
    delivery("D1", "B1", "c", "s2", "hd", 20, 200, JAN, 2),
    delivery("D1", "B1", "d", "s3", "sd", 7, 100, JAN, 4),
    # January, D2/F1 flat_fee 1000 -> pool 500; s1 10 s, s2 30 s -> 125 and 375 exactly
    delivery("D2", "F1", "e", "s1", "hd", 10, None, JAN),
    delivery("D2", "F1", "f", "s2", "hd", 30, None, JAN),
    # February, D1/B2 per_minute:
    #   s1: g uhd 600 s x 300 = 3000 c (weight 180000); s2: h hd 61 s x 200 = 203 1/3 c (weight 12200)
    #   gross = round_half_up(3203 1/3) = 3203; pool = round_half_up(1601.5) = 1602; W = 192200
    #   s1 1602*180000/192200 = 1500 300/961 | s2 1602*12200/192200 = 101 661/961
    #   floors 1601 -> 1 cent left -> s2 -> s1 1500, s2 102
    delivery("D1", "B2", "g", "s1", "uhd", 600, 300, FEB),
    delivery("D1", "B2", "h", "s2", "hd", 61, 200, FEB),
]
BATCHES = [
    batch("D1", "B1", JAN, "per_minute"),
    batch("D2", "F1", JAN, "flat_fee", fee=1000),
    batch("D1", "B2", FEB, "per_minute"),
]


@pytest.fixture
def lake(store):
    write_rows(store, "deal_deliveries", DELIVERIES, DELIVERY_SCHEMA)
    write_rows(store, "delivered_batches", BATCHES, DELIVERED_BATCH_SCHEMA)
    run_sql_model(store, "batch_revenue")
    run_sql_model(store, "revenue_share_allocations")
    run_sql_model(store, "revenue_share_statements", **month_vars("2025-01"))
    run_sql_model(store, "revenue_share_statements", **month_vars("2025-02"))
    return store


def test_explain_per_minute_and_flat_fee_batches_in_hand_computed_cents(lake):
    e = explain(lake, "s1", "2025-01")
    assert e.opening_balance_cents == 0 and e.opening_from is None
    assert [(b.deal_id, b.batch_id) for b in e.batches] == [("D1", "B1"), ("D2", "F1")]
    b1, f1 = e.batches
    assert [(c.clip_id, c.tier, c.billable_seconds, c.price_cents_per_minute, c.value) for c in b1.clips] == [
        ("a", "hd", 30, 200, Fraction(100)),
        ("b", "sd", 45, 100, Fraction(75)),
    ]
    assert (b1.gross_cents, b1.pool_cents, b1.weight, b1.batch_weight, b1.contributors) == (253, 127, 10500, 15200, 3)
    assert b1.exact_share == Fraction(127 * 10500, 15200) == 87 + Fraction(111, 152)
    assert (b1.floor_cents, b1.remainder, b1.remainder_rank, b1.leftover_cents, b1.bonus_cents) == (
        87,
        Fraction(111, 152),
        2,
        2,
        1,
    )
    assert b1.allocated_cents == 88 and b1.rounding == Fraction(41, 152)  # 88 - 87 111/152
    assert (f1.pricing_model, f1.pool_cents, f1.weight, f1.batch_weight) == ("flat_fee", 500, 10, 40)
    assert (f1.exact_share, f1.floor_cents, f1.bonus_cents, f1.allocated_cents, f1.rounding) == (125, 125, 0, 125, 0)
    # earned 88 + 125 = 213 < 1000 -> carried forward
    assert (e.earned_cents, e.total_cents, e.min_payout_cents, e.decision) == (213, 213, 1000, "carried forward")
    assert (e.payable_cents, e.carried_forward_cents, e.clips_licensed, e.billable_seconds) == (0, 213, 3, 85)

    s2 = explain(lake, "s2", "2025-01").batches[0]
    # s2's remainder 8/19 ranks last of 3: no cent, 8/19 of a cent removed against the exact share
    assert (s2.exact_share, s2.remainder_rank, s2.bonus_cents, s2.allocated_cents, s2.rounding) == (
        33 + Fraction(8, 19),
        3,
        0,
        33,
        -Fraction(8, 19),
    )
    s3 = explain(lake, "s3", "2025-01").batches[0]
    assert (s3.exact_share, s3.remainder_rank, s3.bonus_cents, s3.allocated_cents) == (5 + Fraction(129, 152), 1, 1, 6)


def test_explain_carries_the_opening_balance_and_the_threshold(lake):
    e = explain(lake, "s1", "2025-02")
    # opening 213 (January carried forward) + earned 1500 = 1713 >= 1000 -> paid in full
    assert e.opening_balance_cents == 213 and e.opening_from[0] == "2025-01"
    (b2,) = e.batches
    assert b2.exact_share == 1500 + Fraction(300, 961) and (b2.floor_cents, b2.bonus_cents, b2.allocated_cents) == (
        1500,
        0,
        1500,
    )
    assert (b2.gross_cents, b2.pool_cents, b2.leftover_cents, b2.remainder_rank) == (3203, 1602, 1, 2)
    assert (e.earned_cents, e.total_cents, e.decision, e.payable_cents, e.carried_forward_cents) == (
        1500,
        1713,
        "paid",
        1713,
        0,
    )
    s2 = explain(lake, "s2", "2025-02")
    # opening 408 (33 + 375) + earned 102 (101 661/961 + 1 cent) = 510 < 1000 -> carried
    assert (s2.opening_balance_cents, s2.batches[0].allocated_cents, s2.total_cents, s2.carried_forward_cents) == (
        408,
        102,
        510,
        510,
    )
    s3 = explain(lake, "s3", "2025-02")  # nothing earned, the 6 cents are carried again
    assert (s3.opening_balance_cents, s3.batches, s3.earned_cents, s3.carried_forward_cents) == (6, (), 0, 6)

    text = render_text(e)
    for line in [
        "Statement 2025-02 for subscriber s1",
        "Opening balance: 213 c ($2.13), carried forward from 2025-01",
        "Batch D1/B2 (per_minute, cutoff 2025-02-20 12:00:00 UTC)",
        "  clip g: uhd, 600 s x 300 c/min = 3000 c",
        "  batch gross 3203 c, contributors' pool 1602 c, shared by 2 contributor(s); weight 180000 of 192200 (s x c/min)",
        "  exact share: 1602 x 180000 / 192200 = 1500 300/961 c; floor 1500 c",
        "  +0 c from the largest-remainder step: remainder 300/961 ranks 2 of 2, 1 cent(s) left over; -300/961 c against the exact share",
        "  allocated 1500 c ($15.00)",
        "Earned: 1500 c ($15.00) from 1 batch(es)",
        "Total: 213 + 1500 = 1713 c ($17.13)",
        "Decision: total 1713 c >= minimum payout 1000 c -> paid",
        "Payable: 1713 c ($17.13)",
        "Carried forward: 0 c ($0.00)",
    ]:
        assert line in text, (line, text)


def test_the_statement_row_records_its_input_versions(lake):
    rows = {(r["statement_month"], r["subscriber_id"]): r for r in lake.read("revenue_share_statements").to_pylist()}
    jan, feb = (
        json.loads(rows[("2025-01", "s1")]["input_versions"]),
        json.loads(rows[("2025-02", "s1")]["input_versions"]),
    )
    inputs = {"batch_revenue", "deal_deliveries", "delivered_batches", "revenue_share_allocations"}
    assert set(jan) == set(feb) == inputs | {"revenue_share_statements"}
    assert all(jan[t] == lake.version(t) for t in inputs)
    assert jan["revenue_share_statements"] is None  # nothing before January
    # version 0 creates the table empty (DeltaStore._create_if_missing); January was
    # written in version 1 and is unchanged since
    assert feb["revenue_share_statements"] == 1
    assert rows[("2025-01", "s1")]["min_payout_cents"] == 1000
    # Re-running a month with nothing changed commits nothing: versions stay put.
    before = lake.version("revenue_share_statements")
    run_sql_model(lake, "revenue_share_statements", **month_vars("2025-01"))
    run_sql_model(lake, "revenue_share_statements", **month_vars("2025-02"))
    assert lake.version("revenue_share_statements") == before


def test_explain_refuses_what_does_not_add_up(lake):
    with pytest.raises(ExplainError, match="no statement"):
        explain(lake, "nobody", "2025-01")
    with pytest.raises(ExplainError, match="not YYYY-MM"):
        explain(lake, "s1", "January")
    with pytest.raises(ExplainError, match="versions 0.."):
        explain(lake, "s1", "2025-01", as_of_version=999)
    # A statement row edited by hand no longer matches its inputs: explain says so.
    table, before_edit = lake.read("revenue_share_statements"), lake.version("revenue_share_statements")
    rows = [
        r
        | {
            "earned_cents": r["earned_cents"] + 1,
            "total_cents": r["total_cents"] + 1,
            "carried_forward_cents": r["carried_forward_cents"] + 1,
        }
        if (r["statement_month"], r["subscriber_id"]) == ("2025-01", "s2")
        else r
        for r in table.to_pylist()
    ]
    lake.overwrite("revenue_share_statements", pa.Table.from_pylist(rows, schema=table.schema))
    with pytest.raises(ExplainMismatch, match="earned 409 != 408"):
        explain(lake, "s2", "2025-01")
    assert explain(lake, "s2", "2025-01", as_of_version=before_edit).earned_cents == 408  # the version before the edit
    # Time travel needs the old version's files: once VACUUM has removed them, explain says so.
    lake.table("revenue_share_statements").vacuum(retention_hours=0, enforce_retention_duration=False, dry_run=False)
    with pytest.raises(ExplainError, match=f"cannot read revenue_share_statements at Delta version {before_edit}"):
        explain(lake, "s2", "2025-01", as_of_version=before_edit)


def test_explain_shows_the_owners_consent_at_the_cutoff_from_the_version_the_batch_pinned(store):
    # s1 opted in 2024-12-01, subscribed and invited 2025-01-01 (Lake's default): eligible from
    # 2025-01-01 (the review window ended 2024-12-08); the batch
    # D1/B1 records the consent_snapshots version it was selected from. A later consent
    # change (s1 opts out before JAN, arriving late) does not change that explanation (R12);
    # a batch pinned to a version where s1 was NOT eligible does not add up (R5).
    from test_deliveries import Lake, ts

    consent = Lake(store).sub("s1").sub("s2").sub("s3")
    for sid in ("s1", "s2", "s3"):
        consent.consent(f"{sid}-in", sid, ts("2024-12-01T00:00:00Z"))
    consent.build()
    pinned = store.version("consent_snapshots")
    batches = [b | {"input_versions": json.dumps({"consent_snapshots": pinned})} for b in BATCHES]
    write_rows(store, "deal_deliveries", DELIVERIES, DELIVERY_SCHEMA)
    write_rows(store, "delivered_batches", batches, DELIVERED_BATCH_SCHEMA)
    for model in ("batch_revenue", "revenue_share_allocations"):
        run_sql_model(store, model)
    run_sql_model(store, "revenue_share_statements", **month_vars("2025-01"))
    consent.consent("s1-out", "s1", ts("2025-01-10T00:00:00Z"), "opt_out").build()  # late: after delivery
    b1 = explain(store, "s1", "2025-01").batches[0]
    assert b1.consent == (
        "consent: eligible at the cutoff (R1, R1b): state since 2025-01-01 00:00:00 UTC (event s1-in), "
        f"enrolled 2024-12-01 00:00:00 UTC, excluded buyers: none (consent_snapshots version {pinned})"
    )
    assert f"  {b1.consent}" in render_text(explain(store, "s1", "2025-01"))
    # pinned to the version after the opt-out: the delivery contradicts R5
    late = store.version("consent_snapshots")
    batches = [b | {"input_versions": json.dumps({"consent_snapshots": late})} for b in BATCHES]
    write_rows(store, "delivered_batches", batches, DELIVERED_BATCH_SCHEMA)
    for model in ("batch_revenue", "revenue_share_allocations"):
        run_sql_model(store, model)
    run_sql_model(store, "revenue_share_statements", **month_vars("2025-01"))  # pins that delivered_batches
    with pytest.raises(
        ExplainMismatch, match="owner not eligible at the cutoff in consent_snapshots version .*not_opted_in"
    ):
        explain(store, "s1", "2025-01")


def test_cents_text():
    assert [cents_text(x) for x in (Fraction(125), Fraction(175, 2), Fraction(-1, 3), Fraction(-7, 3))] == [
        "125",
        "87 1/2",
        "-1/3",
        "-2 1/3",
    ]


# -- through Dagster: an old statement is reproduced after a later run changed it -----------------

LATE_DEAL = {
    "deal_id": "D2",
    "buyer_id": "beta-labs",
    "buyer_name": "Beta Labs",
    "signed_at": "2025-02-01T00:00:00Z",
    "pricing": {"model": "per_minute", "tier_prices_cents": {"aerial": 400, "hd": 200}},
    "batches": [{"batch_id": "B1", "cutoff_at": "2025-02-15T00:00:00Z"}],
}


@pytest.mark.integration
@pytest.mark.system  # several real materializations: minutes
def test_explain_as_of_version_reproduces_a_statement_a_later_run_changed(tmp_path, monkeypatch, capsys):
    from test_pipeline import build_landing

    build_landing(tmp_path / "landing")
    lakehouse = LakehouseResource(
        landing=str(tmp_path / "landing"), lake=str(tmp_path / "lake"), exports=str(tmp_path / "exports")
    )
    store = lakehouse.store()

    def run():
        with dg.instance_for_test() as instance:
            assert materialize(
                date(2025, 2, 28), defs=defs, resources={"lakehouse": lakehouse}, instance=instance, echo=lambda m: None
            )

    run()
    # January: D1/B1 delivers c1 (hd, 30 s x 200 c/min = 100 c): gross 100, pool 50, all to s1 -> carried 50.
    # February: nothing earned; opening 50 -> carried 50.
    old_version = store.version("revenue_share_statements")
    old = explain(store, "s1", "2025-02")
    assert (old.opening_balance_cents, old.batches, old.earned_cents, old.carried_forward_cents) == (50, (), 0, 50)
    old_text = render_text(old)

    # A deal signed late lands a batch cut off on 2025-02-15: the next run delivers it and
    # February changes. D2's buyer is not excluded by s2, so s2's drone clip c2 is in too:
    #   c1 s1 hd 30 s x 200 = 100 c (weight 6000); c2 s2 aerial 20 s x 400 = 133 1/3 c (weight 8000)
    #   gross = round_half_up(233 1/3) = 233; pool = round_half_up(116.5) = 117; W = 14000
    #   s1 117*6000/14000 = 50 1/7; s2 117*8000/14000 = 66 6/7 -> 1 cent left -> s2: s1 50, s2 67
    (tmp_path / "landing" / "deals" / "D2.json").write_text(json.dumps(LATE_DEAL))
    run()
    new = explain(store, "s1", "2025-02")
    (b,) = new.batches
    assert (b.deal_id, b.gross_cents, b.pool_cents, b.exact_share, b.allocated_cents) == (
        "D2",
        233,
        117,
        50 + Fraction(1, 7),
        50,
    )
    assert (new.opening_balance_cents, new.earned_cents, new.total_cents, new.carried_forward_cents) == (
        50,
        50,
        100,
        100,
    )
    s2 = explain(store, "s2", "2025-02")
    assert (s2.batches[0].exact_share, s2.batches[0].allocated_cents, s2.carried_forward_cents) == (
        66 + Fraction(6, 7),
        67,
        67,
    )

    # The statement as it was, from the version recorded before the late deal arrived:
    again = explain(store, "s1", "2025-02", as_of_version=old_version)
    assert again == old and render_text(again) == old_text
    assert store.version("revenue_share_statements") > old_version

    # ... and the same through the command line, reading GOPRO_LAKE
    monkeypatch.setenv("GOPRO_LAKE", str(tmp_path / "lake"))
    assert cli_main(["explain", "--subscriber", "s1", "--month", "2025-02", "--as-of-version", str(old_version)]) == 0
    assert capsys.readouterr().out == old_text
    assert cli_main(["explain", "--subscriber", "s1", "--month", "2025-02"]) == 0
    out = capsys.readouterr().out
    assert "Batch D2/B1 (per_minute, cutoff 2025-02-15 00:00:00 UTC)" in out and "Carried forward: 100 c ($1.00)" in out
    assert cli_main(["explain", "--subscriber", "s9", "--month", "2025-02"]) == 1
    assert "unknown subscriber 's9'" in capsys.readouterr().err
