"""Eligibility (R1), the review window and clip exclusions (R1b), and consent_snapshots,
on real Delta tables through the SQL models and lib.deliveries (no Dagster).

Scenarios use the ``Lake`` builder of tests/test_deliveries.py. Expectations are worked by
hand in the comments. Choices where the contract is silent: docs/ELIGIBILITY_CHOICES.md.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest
from conftest import run_sql_model
from test_deliveries import CUTOFF, OPTED_IN, US, Lake, ts

from gopro_assets.lake.delta_store import DeltaStore

T = CUTOFF  # the instant t of R1: every batch of the R1 scenario has cutoff_at = t
DAY0 = ts("2026-01-01T00:00:00Z")


def day(n: float) -> datetime:
    return DAY0 + timedelta(days=n)


# =========================================================================== R1
# One lake: each subscriber breaks (or just passes) ONE condition of R1 at t and owns one
# clip "c-<sid>". Deal DA is with buyer "acme", deal DB with buyer "beta"; one batch each at
# cutoff t. Expected: is c-<sid> delivered in (DA, DB)?
R1_CASES = {
    # sid: (subscriber kwargs, consent events [(event_id, event_at, action, excluded)], (in DA, in DB))
    "ok": ({}, [("ok-1", OPTED_IN, "opt_in", [])], (True, True)),
    "non_us": ({"country": "CA"}, [("non_us-1", OPTED_IN, "opt_in", [])], (False, False)),
    # subscribed_at <= t: equal passes, one microsecond later fails
    "sub_at_t": ({"subscribed_at": T}, [("sub_at_t-1", OPTED_IN, "opt_in", [])], (True, True)),
    "sub_after": ({"subscribed_at": T + US}, [("sub_after-1", OPTED_IN, "opt_in", [])], (False, False)),
    # cancelled_at empty or > t: before t and exactly at t fail, after t passes
    "cancel_before": (
        {"cancelled_at": T - timedelta(days=1)},
        [("cancel_before-1", OPTED_IN, "opt_in", [])],
        (False, False),
    ),
    "cancel_at": ({"cancelled_at": T}, [("cancel_at-1", OPTED_IN, "opt_in", [])], (False, False)),
    "cancel_after": ({"cancelled_at": T + US}, [("cancel_after-1", OPTED_IN, "opt_in", [])], (True, True)),
    # invited_at set and <= t
    "not_invited": ({"invited_at": None}, [("not_invited-1", OPTED_IN, "opt_in", [])], (False, False)),
    "invited_after": ({"invited_at": T + US}, [("invited_after-1", OPTED_IN, "opt_in", [])], (False, False)),
    "invited_at_t": ({"invited_at": T}, [("invited_at_t-1", OPTED_IN, "opt_in", [])], (True, True)),
    # consent state at t: no event -> not opted in
    "no_consent": ({}, [], (False, False)),
    # opt_out at exactly t counts (event_at <= t); one after t does not
    "opted_out": ({}, [("opted_out-1", OPTED_IN, "opt_in", []), ("opted_out-2", T, "opt_out", [])], (False, False)),
    "opt_out_after": (
        {},
        [("opt_out_after-1", OPTED_IN, "opt_in", []), ("opt_out_after-2", T + US, "opt_out", [])],
        (True, True),
    ),
    # an opt_in dated after t does not count
    "opt_in_after": ({}, [("opt_in_after-1", T + US, "opt_in", [])], (False, False)),
    # per-buyer exclusion: excluded from acme only
    "excl_acme": ({}, [("excl_acme-1", OPTED_IN, "opt_in", ["acme"])], (False, True)),
    # the state is the LAST event: a later opt_in without the exclusion lifts it
    "excl_lifted": (
        {},
        [
            ("excl_lifted-1", OPTED_IN, "opt_in", ["acme"]),
            ("excl_lifted-2", OPTED_IN + timedelta(days=1), "opt_in", []),
        ],
        (True, True),
    ),
    # tie on event_at: the larger event_id decides
    "tie_in": ({}, [("tie_in-1", OPTED_IN, "opt_out", []), ("tie_in-2", OPTED_IN, "opt_in", [])], (True, True)),
    "tie_out": ({}, [("tie_out-1", OPTED_IN, "opt_in", []), ("tie_out-2", OPTED_IN, "opt_out", [])], (False, False)),
    "tie_excl": (
        {},
        [("tie_excl-2", OPTED_IN, "opt_in", ["acme"]), ("tie_excl-1", OPTED_IN, "opt_in", [])],
        (False, True),
    ),
    # event_at orders first; event_id only breaks ties ("A" < "Z" but "A" is later)
    "at_first": (
        {},
        [("at_first-Z", OPTED_IN, "opt_out", []), ("at_first-A", OPTED_IN + US, "opt_in", [])],
        (True, True),
    ),
}


@pytest.fixture(scope="module")
def r1_lake(tmp_path_factory):
    lake = Lake(DeltaStore(str(tmp_path_factory.mktemp("r1") / "lake")))
    for sid, (sub, events, _) in R1_CASES.items():
        lake.sub(sid, **sub).clip(f"c-{sid}", sid)
        for event_id, at, action, excluded in events:
            lake.consent(event_id, sid, at, action, excluded)
    lake.deal("DA", buyer_id="acme").batch("DA", "B1").deal("DB", buyer_id="beta").batch("DB", "B1")
    return lake.run()


@pytest.mark.parametrize("sid", list(R1_CASES))
def test_r1_condition(r1_lake, sid):
    expected = R1_CASES[sid][2]
    got = (f"c-{sid}" in r1_lake.delivered("DA"), f"c-{sid}" in r1_lake.delivered("DB"))
    assert got == expected


def test_r1_timeline_keeps_one_row_per_instant_the_larger_event_id(r1_lake):
    # int_consent_timeline: tie_in-1 / tie_in-2 share event_at -> one row, event tie_in-2 (opt_in).
    rows = r1_lake.store.read("int_consent_timeline").to_pylist()
    tie = [(r["event_id"], r["action"]) for r in rows if r["subscriber_id"] == "tie_in"]
    assert tie == [("tie_in-2", "opt_in")]
    excl = [(r["event_id"], r["excluded_buyers"]) for r in rows if r["subscriber_id"] == "tie_excl"]
    assert excl == [("tie_excl-2", ["acme"])]


# =========================================================================== R1b
def test_r1b_review_window_day6_not_day7_exactly(lake):
    # opt_in at day 0, review_days 7: enrolled_at + 7 days = day 7 00:00.
    # cutoff day 6 -> no; cutoff 1 µs before day 7 -> no; cutoff exactly day 7 -> yes (<= t).
    lake.sub("S").consent("S-in", "S", day(0)).clip("c", "S")
    for name, cutoff in [("D6", day(6)), ("D7m", day(7) - US), ("D7", day(7))]:
        lake.deal(name).batch(name, "B1", cutoff_at=cutoff)
    lake.run()
    assert (lake.delivered("D6"), lake.delivered("D7m"), lake.delivered("D7")) == ([], [], ["c"])


def test_r1b_review_days_zero(store):
    # review_days = 0: licensable from the opt-in instant itself.
    lake = Lake(store, review_days=0)
    lake.sub("S").consent("S-in", "S", day(0)).clip("c", "S")
    lake.deal("D0").batch("D0", "B1", cutoff_at=day(0)).deal("Dm").batch("Dm", "B1", cutoff_at=day(0) - US)
    lake.run()
    assert (lake.delivered("D0"), lake.delivered("Dm")) == (["c"], [])


def test_r1b_opt_out_then_opt_in_restarts_the_window(lake):
    # opt_in day 0, opt_out day 3, opt_in day 4 -> enrolled_at = day 4, licensable from day 11.
    # cutoff day 3: opted out. day 7 (7 days after the FIRST opt_in): still in the new window.
    # 1 µs before day 11: no. day 11: yes.
    lake.sub("S").consent("S-1", "S", day(0)).consent("S-2", "S", day(3), "opt_out").consent("S-3", "S", day(4))
    lake.clip("c", "S")
    cutoffs = {"D3": day(3), "D7": day(7), "D11m": day(11) - US, "D11": day(11)}
    for name, cutoff in cutoffs.items():
        lake.deal(name).batch(name, "B1", cutoff_at=cutoff)
    lake.run()
    assert {name: lake.delivered(name) for name in cutoffs} == {"D3": [], "D7": [], "D11m": [], "D11": ["c"]}
    enrolled = [(r["event_id"], r["enrolled_at"]) for r in lake.store.read("int_consent_timeline").to_pylist()]
    assert enrolled == [("S-1", day(0)), ("S-2", None), ("S-3", day(4))]


def test_r1b_second_opt_in_without_opt_out_does_not_restart(lake):
    # opt_in day 0, opt_in again day 4 (no opt_out between): enrolled_at stays day 0,
    # so the clip is licensable at day 7 (not only from day 11).
    lake.sub("S").consent("S-1", "S", day(0)).consent("S-2", "S", day(4)).clip("c", "S")
    lake.deal("D7").batch("D7", "B1", cutoff_at=day(7)).run()
    assert lake.delivered("D7") == ["c"]


def test_r1b_restart_with_opt_out_and_opt_in_at_the_same_instant(lake):
    # opt_in day 0; then opt_out "S-2a" and opt_in "S-2b" both at day 2 (the larger id, the
    # opt_in, decides the state and comes after the opt_out): enrolled_at = day 2, so day 7
    # is inside the new window and day 9 is not.
    lake.sub("S").consent("S-1", "S", day(0)).consent("S-2a", "S", day(2), "opt_out").consent("S-2b", "S", day(2))
    lake.clip("c", "S")
    lake.deal("D7").batch("D7", "B1", cutoff_at=day(7)).deal("D9").batch("D9", "B1", cutoff_at=day(9)).run()
    assert (lake.delivered("D7"), lake.delivered("D9")) == ([], ["c"])


def test_r1b_excluded_then_included_clip(lake):
    # c excluded at day 10, included again at day 20; k (same owner) never excluded.
    # Deal DX, batches: B1 cutoff day 15 (c excluded: only k), B2 cutoff day 25 (c included
    # again and not delivered earlier in DX: c). Deals DE (cutoff day 10 == exclude instant:
    # excluded) and DI (cutoff day 20 == include instant: licensable).
    lake.eligible("S").clip("c", "S").clip("k", "S")
    lake.exclusion("X1", "S", "c", day(10)).exclusion("X2", "S", "c", day(20), "include")
    lake.deal("DX").batch("DX", "B1", cutoff_at=day(15)).batch("DX", "B2", cutoff_at=day(25))
    lake.deal("DE").batch("DE", "B1", cutoff_at=day(10)).deal("DI").batch("DI", "B1", cutoff_at=day(20))
    lake.run()
    assert lake.delivered("DX", "B1") == ["k"]
    assert lake.delivered("DX", "B2") == ["c"]
    assert sorted(lake.delivered("DE")) == ["k"]
    assert sorted(lake.delivered("DI")) == ["c", "k"]


def test_r1b_exclusion_tie_decided_by_event_id(lake):
    # Both events of each clip at day 10. x: "x-1" include, "x-2" exclude -> excluded.
    # y: "y-1" exclude, "y-2" include -> included. Cutoff day 15.
    lake.eligible("S").clip("x", "S").clip("y", "S")
    lake.exclusion("x-2", "S", "x", day(10)).exclusion("x-1", "S", "x", day(10), "include")
    lake.exclusion("y-1", "S", "y", day(10)).exclusion("y-2", "S", "y", day(10), "include")
    lake.deal("D").batch("D", "B1", cutoff_at=day(15)).run()
    assert lake.delivered("D") == ["y"]


def test_r1b_exclusion_is_per_clip_across_deals(lake):
    # An excluded clip is excluded for every deal (not per buyer), the owner's other clips stay.
    lake.eligible("S").clip("c", "S").clip("k", "S").exclusion("X1", "S", "c", day(1))
    lake.deal("DA", buyer_id="acme").batch("DA", "B1", cutoff_at=day(5))
    lake.deal("DB", buyer_id="beta").batch("DB", "B1", cutoff_at=day(5)).run()
    assert (lake.delivered("DA"), lake.delivered("DB")) == (["k"], ["k"])


def test_r1b_window_is_per_enrolment_not_per_clip(lake):
    # Enrolled long ago (window long over); a clip uploaded 1 s before the cutoff is
    # licensable at once: R1b's window runs from enrolled_at, not from each upload.
    lake.eligible("S").clip("fresh", "S", uploaded_at=day(5) - timedelta(seconds=1))
    lake.deal("D").batch("D", "B1", cutoff_at=day(5)).run()
    assert lake.delivered("D") == ["fresh"]


def test_r1b_exclusion_counts_whoever_sent_it(lake):
    # An exclude event names clip c of S but was sent by another subscriber id: the clip is
    # still treated as excluded (the safe side; see docs/ELIGIBILITY_CHOICES.md).
    lake.eligible("S").clip("c", "S").clip("k", "S").exclusion("X1", "OTHER", "c", day(1))
    lake.deal("D").batch("D", "B1", cutoff_at=day(5)).run()
    assert lake.delivered("D") == ["k"]


@pytest.fixture
def lake(store):
    return Lake(store)


# =========================================================================== consent_snapshots
def snapshots(lake: Lake, start: date, end: date, review_days: int = 7) -> dict:
    lake.build()
    rows = run_sql_model(
        lake.store, "consent_snapshots", range_start=start, range_end=end, review_days=review_days
    ).to_pylist()
    return {(r["subscriber_id"], r["snapshot_date"].isoformat()): r for r in rows}


def test_snapshots_end_of_day(lake):
    # S opts in at 2026-01-02T23:59:59.999Z -> opted in on the snapshot of Jan 2 (end of day).
    # N opts in at 2026-01-03T00:00:00Z -> NOT on Jan 2, yes on Jan 3.
    # review_days 0, so opted in == eligible here.
    lake.sub("S").consent("S-in", "S", ts("2026-01-02T23:59:59.999Z"))
    lake.sub("N").consent("N-in", "N", ts("2026-01-03T00:00:00Z"))
    snap = snapshots(lake, date(2026, 1, 1), date(2026, 1, 3), review_days=0)
    got = {k: (r["opted_in"], r["is_eligible"], r["ineligible_reason"]) for k, r in snap.items()}
    assert got == {
        ("S", "2026-01-01"): (False, False, "not_opted_in"),
        ("S", "2026-01-02"): (True, True, None),
        ("S", "2026-01-03"): (True, True, None),
        ("N", "2026-01-01"): (False, False, "not_opted_in"),
        ("N", "2026-01-02"): (False, False, "not_opted_in"),
        ("N", "2026-01-03"): (True, True, None),
    }
    assert snap[("S", "2026-01-02")]["consent_event_id"] == "S-in"


def test_snapshots_review_window(lake):
    # opt_in 2026-01-01T10:00Z, 7 days: enrolled_at + 7 = Jan 8 10:00. End of Jan 7 < that:
    # in_review_window; end of Jan 8 >= that: eligible.
    lake.sub("S").consent("S-in", "S", ts("2026-01-01T10:00:00Z"))
    snap = snapshots(lake, date(2026, 1, 7), date(2026, 1, 8))
    assert snap[("S", "2026-01-07")]["ineligible_reason"] == "in_review_window"
    assert snap[("S", "2026-01-07")]["opted_in"] is True
    assert snap[("S", "2026-01-08")]["is_eligible"] is True
    assert snap[("S", "2026-01-08")]["enrolled_at"] == ts("2026-01-01T10:00:00Z")


def test_snapshots_reason_order_is_fixed(lake):
    # Fixed order: not_us, not_yet_subscribed, cancelled, not_invited, not_opted_in, in_review_window.
    lake.sub("ca", country="CA", invited_at=None)  # non-US AND not invited AND no consent -> not_us
    lake.sub("canc", cancelled_at=ts("2025-06-01T00:00:00Z"), invited_at=None)  # cancelled before not_invited
    lake.sub("noinv", invited_at=None).consent("noinv-in", "noinv", OPTED_IN)  # opted in but not invited
    lake.sub("noc")  # US, invited, no consent event
    lake.sub("out").consent("out-1", "out", OPTED_IN).consent("out-2", "out", OPTED_IN + timedelta(days=1), "opt_out")
    lake.sub("rev", invited_at=ts("2026-01-01T00:00:00Z")).consent("rev-in", "rev", ts("2026-01-01T00:00:00Z"))
    lake.sub("ok", country="US").consent("ok-in", "ok", OPTED_IN, excluded_buyers=["acme"])
    snap = snapshots(lake, date(2026, 1, 2), date(2026, 1, 2))
    got = {sid: snap[(sid, "2026-01-02")]["ineligible_reason"] for sid, _ in snap}
    assert got == {
        "ca": "not_us",
        "canc": "cancelled",
        "noinv": "not_invited",
        "noc": "not_opted_in",
        "out": "not_opted_in",
        "rev": "in_review_window",
        "ok": None,
    }
    # excluded_buyers: the opt_in's list; [] when not opted in (even after an opt_in that had one)
    assert snap[("ok", "2026-01-02")]["excluded_buyers"] == ["acme"]
    assert snap[("ok", "2026-01-02")]["is_eligible"] is True  # eligible for buyers not excluded
    assert snap[("out", "2026-01-02")]["excluded_buyers"] == []
    assert snap[("out", "2026-01-02")]["opted_in"] is False


def test_snapshots_one_row_per_subscriber_per_day_from_subscription_day(lake):
    # "old" subscribed in 2025: a row each day Jan 1..4 (4 rows).
    # "new" subscribed 2026-01-03T10:00Z: rows Jan 3 and Jan 4 only (from its subscription day).
    # "future" subscribed Jan 5: no row in the range.
    lake.sub("old").sub("new", subscribed_at=ts("2026-01-03T10:00:00Z"))
    lake.sub("future", subscribed_at=ts("2026-01-05T00:00:00Z"))
    snap = snapshots(lake, date(2026, 1, 1), date(2026, 1, 4))
    assert sorted(snap) == sorted(
        [("old", f"2026-01-0{d}") for d in range(1, 5)] + [("new", "2026-01-03"), ("new", "2026-01-04")]
    )
    # on the subscription day itself the subscriber is subscribed (end of day), so the
    # reason is the next failing condition, never not_yet_subscribed
    assert snap[("new", "2026-01-03")]["ineligible_reason"] == "not_opted_in"


def test_snapshots_point_in_time_not_current_state(lake):
    # Opt-in Jan 1 (review 0), opt-out Jan 3: Jan 1-2 eligible, Jan 3-4 not; the later
    # opt-out does not leak into earlier days.
    lake.sub("S").consent("S-1", "S", ts("2026-01-01T08:00:00Z")).consent(
        "S-2", "S", ts("2026-01-03T08:00:00Z"), "opt_out"
    )
    snap = snapshots(lake, date(2026, 1, 1), date(2026, 1, 4), review_days=0)
    assert [snap[("S", f"2026-01-0{d}")]["is_eligible"] for d in range(1, 5)] == [True, True, False, False]


# ---------------------------------------------- the blocking check recomputes eligibility
ELIGIBILITY_CHECK = "eligibility_matches_consent_events"


def test_snapshots_of_every_r1_case_pass_the_recomputed_eligibility_check(r1_lake):
    # run_sql_model fails on any error-severity data test: the model (macro, ASOF join over
    # the timeline) and the check (raw consent_events, event intervals) agree on every R1
    # case, ties on event_at included, on the cutoff day and the days around it.
    day_t = T.date()
    rows = run_sql_model(
        r1_lake.store, "consent_snapshots", range_start=day_t - timedelta(days=1), range_end=day_t + timedelta(days=1)
    )
    assert rows.num_rows == 3 * len(R1_CASES) - 2  # "sub_at_t" and "sub_after" subscribe on the cutoff day


def test_snapshots_enrolment_restart_at_one_instant_passes_the_check(lake):
    # R1b: opt_out S-2a and opt_in S-2b at the same instant (day 2) restart the window at
    # day 2 (S-2b comes after S-2a by event_id); the check recounts that from the raw events.
    lake.sub("S").consent("S-1", "S", day(0)).consent("S-2a", "S", day(2), "opt_out").consent("S-2b", "S", day(2))
    snap = snapshots(lake, date(2026, 1, 1), date(2026, 1, 11))
    assert [snap[("S", f"2026-01-{d:02d}")]["is_eligible"] for d in (8, 9, 10)] == [False, False, True]


def test_snapshots_eligibility_check_fails_on_a_corrupted_row_or_input(lake):
    # S: opted in long ago (eligible); R: opted in Jan 1 (in its review window on Jan 2);
    # N: never opted in; O: opted in, then out on Jan 1.
    import pyarrow as pa

    from gopro_assets.sql_engine.runner import SQL_ROOT, connect_for_model, load_model, run_model, run_tests

    lake.sub("S").consent("S-in", "S", OPTED_IN).sub("R").consent("R-in", "R", ts("2026-01-01T10:00:00Z"))
    lake.sub("N").sub("O").consent("O-in", "O", OPTED_IN).consent("O-out", "O", ts("2026-01-01T09:00:00Z"), "opt_out")
    lake.build()
    model = load_model(SQL_ROOT / "marts" / "consent_snapshots.sql")
    variables = {"range_start": date(2026, 1, 2), "range_end": date(2026, 1, 2), "review_days": 7}
    con = connect_for_model(lake.store, model, variables)
    good = run_model(con, model)
    by_sub = {r["subscriber_id"]: i for i, r in enumerate(good.to_pylist())}

    def offending(rows: pa.Table, connection=con) -> list[dict]:
        found = {t.name: (n, sample) for t, n, sample in run_tests(connection, model, rows)}
        n, sample = found[ELIGIBILITY_CHECK]
        assert n == len(sample)
        return sample

    def corrupt(i: int, **values) -> pa.Table:
        rows = good.to_pylist()
        rows[i] |= values
        return pa.Table.from_pylist(rows, schema=good.schema)

    assert offending(good) == []
    # (1) R, inside its review window, marked eligible with no reason: the row is consistent
    # in itself (the old check, is_eligible exactly when the reason is null, passed it)
    bad = offending(corrupt(by_sub["R"], is_eligible=True, ineligible_reason=None))
    assert [(r["subscriber_id"], r["is_eligible"], r["recomputed_eligible"]) for r in bad] == [("R", True, False)]
    # (2) S, eligible, marked not opted in: consistent row, wrong verdict
    bad = offending(corrupt(by_sub["S"], is_eligible=False, ineligible_reason="not_opted_in"))
    assert [(r["subscriber_id"], r["recomputed_eligible"]) for r in bad] == [("S", True)]
    # (3) the state, not the verdict: N said opted in, O's deciding event misnamed
    assert [r["subscriber_id"] for r in offending(corrupt(by_sub["N"], opted_in=True))] == ["N"]
    assert [r["subscriber_id"] for r in offending(corrupt(by_sub["O"], consent_event_id="O-in"))] == ["O"]
    # (4) a corrupted input: O's opt_out lost from int_consent_timeline (the model's input),
    # so the model finds O eligible; the check, reading consent_events, does not
    timeline = lake.store.read("int_consent_timeline")
    lake.store.overwrite("int_consent_timeline", timeline.filter(pa.compute.not_equal(timeline["event_id"], "O-out")))
    con = connect_for_model(lake.store, model, variables)
    wrong = run_model(con, model)
    assert {r["subscriber_id"]: r["is_eligible"] for r in wrong.to_pylist()}["O"] is True
    assert [(r["subscriber_id"], r["state_event_id"]) for r in offending(wrong, con)] == [("O", "O-out")]
