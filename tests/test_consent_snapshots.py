"""consent_snapshots as validity intervals (contract §5, R1, R1b) and consent_daily.

Hand-worked intervals; a property test holding the intervals equal to a point-in-time
evaluation of R1/R1b from the raw events (written here in Python, independent of the SQL)
at random instants; the incremental run against a full rebuild, with the Delta log
showing what a night rewrites; the blocking checks against corrupted rows.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pyarrow as pa
import pytest
from conftest import run_sql_model
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_deliveries import LONG_AGO, OPTED_IN, US, Lake, ts

from gopro_assets.domain.ingestion.landing import LANDING_KINDS
from gopro_assets.lake.delta_store import DeltaStore
from gopro_assets.sql_engine.runner import (
    SQL_ROOT,
    connect,
    load_model,
    register_full_refresh,
    run_model,
    run_tests,
)

MODEL = load_model(SQL_ROOT / "marts" / "consent_snapshots.sql")
REASONS = ("not_us", "not_yet_subscribed", "cancelled", "not_invited", "not_opted_in", "in_review_window")


def intervals(lake: Lake, review_days: int = 7) -> dict[str, list[tuple]]:
    """Build the lake's inputs, run consent_snapshots (its blocking checks must pass) and
    return each subscriber's rows as (valid_from, valid_to, opted_in, reason, enrolled_at)."""
    lake.build()
    run_sql_model(lake.store, "consent_snapshots", review_days=review_days)
    rows = lake.store.read("consent_snapshots").to_pylist()  # a night computes only the changed subscribers
    out: dict[str, list[tuple]] = {}
    for r in sorted(rows, key=lambda r: (r["subscriber_id"], r["valid_from"])):
        out.setdefault(r["subscriber_id"], []).append(
            (r["valid_from"], r["valid_to"], r["opted_in"], r["ineligible_reason"], r["enrolled_at"])
        )
    return out


def state_at(rows: list[dict], sid: str, t: datetime) -> dict | None:
    held = [
        r
        for r in rows
        if r["subscriber_id"] == sid and r["valid_from"] <= t and (r["valid_to"] is None or t < r["valid_to"])
    ]
    assert len(held) <= 1
    return held[0] if held else None


@pytest.fixture
def lake(store):
    return Lake(store)


# =========================================================================== hand-worked
def test_review_window_end_starts_a_row(lake):
    # subscribed and invited LONG_AGO; opt_in Jan 1 10:00, review 7 days -> eligible from Jan 8 10:00.
    opt_in = ts("2026-01-01T10:00:00Z")
    lake.sub("S").consent("S-in", "S", opt_in)
    assert intervals(lake)["S"] == [
        (LONG_AGO, opt_in, False, "not_opted_in", None),
        (opt_in, opt_in + timedelta(days=7), True, "in_review_window", opt_in),
        (opt_in + timedelta(days=7), None, True, None, opt_in),
    ]


def test_no_row_without_a_change(lake):
    # a second opt_in with the same buyers changes nothing (R1b: no new enrolment); an
    # opt_out when already out changes nothing; an opt_in with other buyers does.
    lake.sub("S", invited_at=LONG_AGO)
    lake.consent("S-1", "S", OPTED_IN).consent("S-2", "S", OPTED_IN + timedelta(days=30))
    lake.consent("S-3", "S", OPTED_IN + timedelta(days=40), "opt_out")
    lake.consent("S-4", "S", OPTED_IN + timedelta(days=41), "opt_out")
    lake.consent("S-5", "S", OPTED_IN + timedelta(days=50), "opt_in", ["acme"])
    got = intervals(lake, review_days=0)["S"]
    assert [(f, reason) for f, _, _, reason, _ in got] == [
        (LONG_AGO, "not_opted_in"),
        (OPTED_IN, None),
        (OPTED_IN + timedelta(days=40), "not_opted_in"),
        (OPTED_IN + timedelta(days=50), None),
    ]


def test_same_instant_events_larger_event_id_decides(lake):
    # tie on event_at: the larger event_id decides (R1); opt_out+opt_in at one instant
    # restarts the review window there (R1b).
    lake.sub("T").consent("T-1", "T", OPTED_IN).consent("T-2b", "T", OPTED_IN + timedelta(days=20))
    lake.consent("T-2a", "T", OPTED_IN + timedelta(days=20), "opt_out")
    rows = intervals(lake, review_days=7)["T"]
    restart = OPTED_IN + timedelta(days=20)
    assert rows[-2:] == [
        (restart, restart + timedelta(days=7), True, "in_review_window", restart),
        (restart + timedelta(days=7), None, True, None, restart),
    ]


def test_subscriber_instants_and_reason_order(lake):
    # subscribed Jan 5, invited Jan 7, opted in Jan 1 (before subscribing), cancelled Feb 1; review 0.
    sub, inv, opt, canc = (ts(f"2026-{d}T00:00:00Z") for d in ("01-05", "01-07", "01-01", "02-01"))
    lake.sub("S", subscribed_at=sub, invited_at=inv, cancelled_at=canc).consent("S-in", "S", opt)
    assert [(f, t, reason) for f, t, _, reason, _ in intervals(lake, review_days=0)["S"]] == [
        (opt, sub, "not_yet_subscribed"),  # the first row starts at the first instant known
        (sub, inv, "not_invited"),
        (inv, canc, None),
        (canc, None, "cancelled"),
    ]
    lake.sub("C", country="CA").consent("C-in", "C", opt)  # not_us throughout, but opted_in changes
    assert [(f, o, reason) for f, _, o, reason, _ in intervals(lake, review_days=0)["C"]] == [
        (LONG_AGO, False, "not_us"),
        (opt, True, "not_us"),
    ]


# =========================================================================== property test
def reference_state(sub: dict, events: list[dict], t: datetime, review_days: int) -> tuple:
    """R1/R1b read literally, at instant t: (opted_in, excluded_buyers, enrolled_at, reason)."""
    seen = sorted((e for e in events if e["event_at"] <= t), key=lambda e: (e["event_at"], e["event_id"]))
    last = seen[-1] if seen else None
    opted_in = last is not None and last["action"] == "opt_in"
    enrolled_at = None
    if opted_in:
        outs = [i for i, e in enumerate(seen) if e["action"] == "opt_out"]
        after = seen[outs[-1] + 1 :] if outs else seen
        enrolled_at = next(e["event_at"] for e in after if e["action"] == "opt_in")
    if sub["country"] != "US":
        reason = "not_us"
    elif sub["subscribed_at"] > t:
        reason = "not_yet_subscribed"
    elif sub["cancelled_at"] is not None and sub["cancelled_at"] <= t:
        reason = "cancelled"
    elif sub["invited_at"] is None or sub["invited_at"] > t:
        reason = "not_invited"
    elif not opted_in:
        reason = "not_opted_in"
    elif enrolled_at + timedelta(days=review_days) > t:
        reason = "in_review_window"
    else:
        reason = None
    return opted_in, list(last["excluded_buyers"]) if opted_in else [], enrolled_at, reason


BASE = ts("2026-03-01T00:00:00Z")
instant = st.integers(0, 12).map(lambda h: BASE + timedelta(hours=12 * h))  # few instants: many ties
subscriber = st.fixed_dictionaries(
    {
        "country": st.sampled_from(["US", "US", "CA"]),
        "subscribed_at": instant,
        "cancelled_at": st.none() | instant,
        "invited_at": st.none() | instant,
    }
)
event = st.tuples(instant, st.sampled_from(["opt_in", "opt_out"]), st.sampled_from([[], ["acme"], ["acme", "beta"]]))


def run_in_memory(subs: dict[str, dict], events: list[dict], review_days: int) -> list[dict]:
    """consent_snapshots over in-memory inputs on DuckDB (a full refresh; no Delta)."""
    con = connect(DeltaStore("/nonexistent"), [], {"review_days": review_days})
    con.register(
        "subscribers",
        pa.Table.from_pylist(
            [{"subscriber_id": sid, "email": f"{sid}@x", **s} for sid, s in subs.items()],
            schema=pa.schema(
                [(f.name, f.type) for f in LANDING_KINDS["subscribers"].schema if not f.name.startswith("_")]
            ),
        ),
    )
    con.register(
        "consent_events",
        pa.Table.from_pylist(
            events,
            schema=pa.schema(
                [(f.name, f.type) for f in LANDING_KINDS["consent_events"].schema if not f.name.startswith("_")]
            ),
        ),
    )
    register_full_refresh(con, MODEL)
    result = run_model(con, MODEL)
    failed = {test.name: sample for test, n, sample in run_tests(con, MODEL, result) if n and test.severity == "error"}
    con.close()
    assert not failed, failed
    return result.to_pylist()


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    subs=st.lists(subscriber, min_size=1, max_size=3),
    raw_events=st.lists(st.tuples(st.integers(0, 2), event), max_size=8),
    review_days=st.sampled_from([0, 1, 2]),
    probes=st.lists(st.integers(-2, 30), min_size=1, max_size=8),
)
def test_intervals_equal_point_in_time_r1_r1b(subs, raw_events, review_days, probes):
    subscribers = {f"S{i}": s for i, s in enumerate(subs)}
    events = [
        {
            "event_id": f"e{n:02d}",
            "subscriber_id": f"S{who % len(subs)}",
            "event_at": at,
            "action": action,
            "excluded_buyers": excluded,
        }
        for n, (who, (at, action, excluded)) in enumerate(raw_events)
    ]
    rows = run_in_memory(subscribers, events, review_days)
    # every instant the inputs name (and one microsecond either side), plus random ones
    named = {e["event_at"] for e in events} | {v for s in subs for v in s.values() if isinstance(v, datetime)}
    named |= {t + timedelta(days=review_days) for t in set(named)}
    instants = {BASE + timedelta(hours=6 * p) for p in probes}
    instants |= {t + d for t in named for d in (-US, timedelta(0), US)}
    for sid, sub in subscribers.items():
        mine = [e for e in events if e["subscriber_id"] == sid]
        # the first row starts at the subscriber's earliest named instant (docs/ELIGIBILITY_CHOICES.md)
        first = min([*(v for v in sub.values() if isinstance(v, datetime)), *(e["event_at"] for e in mine)])
        for t in sorted(instants):
            row = state_at(rows, sid, t)
            if t < first:
                assert row is None, (sid, t)  # nothing known yet: no row
                continue
            assert row is not None, (sid, t)
            opted_in, excluded, enrolled_at, reason = reference_state(sub, mine, t, review_days)
            assert (row["opted_in"], list(row["excluded_buyers"]), row["enrolled_at"], row["ineligible_reason"]) == (
                opted_in,
                excluded,
                enrolled_at,
                reason,
            ), (sid, t)
            assert row["is_eligible"] is (reason is None)
        # a row starts only where the state changes
        mine_rows = sorted((r for r in rows if r["subscriber_id"] == sid), key=lambda r: r["valid_from"])
        states = [
            (r["opted_in"], list(r["excluded_buyers"]), r["enrolled_at"], r["ineligible_reason"]) for r in mine_rows
        ]
        assert all(a != b for a, b in zip(states, states[1:], strict=False))


# =========================================================================== incremental
def _files(store: DeltaStore, table: str) -> set[str]:
    return set(store.table(table).file_uris())


def test_a_night_rewrites_only_the_open_rows_and_matches_a_rebuild(store, tmp_path):
    # 40 subscribers opted in; a night brings one opt_out (in order) for S07 and a
    # subscriber change (cancellation) for S11. The night judges those two only: it
    # closes their open rows and appends, so the closed history files stay as they were.
    lake = Lake(store)
    for i in range(40):
        lake.sub(f"S{i:02d}").consent(f"S{i:02d}-in", f"S{i:02d}", OPTED_IN + timedelta(hours=i))
    first = intervals(lake)
    history_files = set(store.files("consent_snapshots", prune="valid_to_month <> 'open'"))
    assert history_files and sum(len(v) for v in first.values()) == 40 * 3
    night = ts("2026-02-01T08:00:00Z")
    lake.consent("S07-out", "S07", night, "opt_out")
    lake.sub("S11", cancelled_at=night)
    before = store.version("consent_snapshots")
    after = intervals(lake)
    history = store.table("consent_snapshots").history(1)[0]
    assert store.version("consent_snapshots") == before + 1
    assert history["operation"] == "MERGE"
    metrics = history["operationMetrics"]
    # S07 and S11: one open row each closed (deleted and re-inserted closed) and one new open row
    assert (metrics["num_target_rows_deleted"], metrics["num_target_rows_inserted"]) == (2, 4)
    assert history_files <= set(store.files("consent_snapshots"))  # no closed-history file rewritten
    assert after["S07"][-1] == (night, None, False, "not_opted_in", None)
    assert after["S11"][-1] == (night, None, True, "cancelled", OPTED_IN + timedelta(hours=11))
    assert {k: v for k, v in after.items() if k not in ("S07", "S11")} == {
        k: v for k, v in first.items() if k not in ("S07", "S11")
    }
    # the same inputs rebuilt from scratch give the same rows
    rebuilt = Lake(DeltaStore(str(tmp_path / "fresh")))
    rebuilt.subs, rebuilt.events = dict(lake.subs), list(lake.events)
    assert intervals(rebuilt) == after


def test_an_opt_out_inside_a_review_window_rewrites_only_the_months_about_now(store):
    # Old history ends in January 2025 (opt-ins reviewed by Jan 9). R opts in on Feb 26 2026,
    # so its review row [Feb 26, Mar 5) is already closed (it ends in March); R opts out on
    # Feb 28: that row becomes [Feb 26, Feb 28). Only the 'open' and '2026-03' partitions
    # lose files; the January 2025 history is not read back into a rewrite.
    lake = Lake(store)
    for i in range(10):
        lake.sub(f"S{i}").consent(f"S{i}-in", f"S{i}", OPTED_IN)
    opt_in = ts("2026-02-26T00:00:00Z")
    lake.sub("R").consent("R-in", "R", opt_in)
    intervals(lake)
    months = {m for m in store.read("consent_snapshots")["valid_to_month"].to_pylist()}
    assert months == {"2025-01", "2026-02", "2026-03", "open"}
    old_history = set(store.files("consent_snapshots", prune="valid_to_month = '2025-01'"))
    lake.consent("R-out", "R", ts("2026-02-28T00:00:00Z"), "opt_out")
    assert intervals(lake)["R"][-2:] == [
        (opt_in, ts("2026-02-28T00:00:00Z"), True, "in_review_window", opt_in),
        (ts("2026-02-28T00:00:00Z"), None, False, "not_opted_in", None),
    ]
    assert set(store.files("consent_snapshots", prune="valid_to_month = '2025-01'")) == old_history
    assert store.table("consent_snapshots").history(1)[0]["operation"] == "MERGE"


def test_a_late_backdated_event_rewrites_that_subscribers_history(store):
    # an opt_out dated inside an already closed interval: the subscriber's history is judged
    # again (rows deleted and inserted), the other subscriber's rows are untouched
    lake = Lake(store)
    lake.sub("A").consent("A-in", "A", OPTED_IN).sub("B").consent("B-in", "B", OPTED_IN)
    first = intervals(lake)
    lake.consent("A-out", "A", OPTED_IN + timedelta(days=3), "opt_out")
    after = intervals(lake)
    assert after["B"] == first["B"]
    assert [(f, reason) for f, _, _, reason, _ in after["A"]] == [
        (LONG_AGO, "not_opted_in"),
        (OPTED_IN, "in_review_window"),
        (OPTED_IN + timedelta(days=3), "not_opted_in"),
    ]


def test_an_unchanged_night_writes_nothing(store):
    lake = Lake(store)
    lake.sub("A").consent("A-in", "A", OPTED_IN)
    intervals(lake)
    version = store.version("consent_snapshots")
    run_sql_model(store, "consent_snapshots", review_days=7)
    assert store.version("consent_snapshots") == version


def test_a_changed_review_window_rebuilds_everything(store):
    lake = Lake(store)
    lake.sub("A").consent("A-in", "A", OPTED_IN)
    assert intervals(lake, review_days=7)["A"][-1][0] == OPTED_IN + timedelta(days=7)
    assert intervals(lake, review_days=3)["A"][-1][0] == OPTED_IN + timedelta(days=3)
    assert store.table("consent_snapshots").history(1)[0]["operation"] != "MERGE"


# =========================================================================== blocking checks
def test_checks_fail_on_corrupted_rows(lake):
    # R in its review window, O opted out on Jan 1, S eligible.
    lake.sub("S").consent("S-in", "S", OPTED_IN).sub("R").consent("R-in", "R", ts("2026-01-01T10:00:00Z"))
    lake.sub("O").consent("O-in", "O", OPTED_IN).consent("O-out", "O", ts("2026-01-01T09:00:00Z"), "opt_out")
    lake.build()
    con = connect(lake.store, ["subscribers", "consent_events"], {"review_days": 7})
    register_full_refresh(con, MODEL)
    good = run_model(con, MODEL)

    def failing(rows: pa.Table) -> dict[str, list]:
        return {t.name: sample for t, n, sample in run_tests(con, MODEL, rows) if n}

    def corrupt(match, **values) -> pa.Table:
        rows = good.to_pylist()
        for r in rows:
            if match(r):
                r |= values
        return pa.Table.from_pylist(rows, schema=good.schema)

    assert failing(good) == {}
    # R marked eligible inside its review window: a consistent row, a wrong verdict
    bad = failing(
        corrupt(
            lambda r: r["subscriber_id"] == "R" and r["ineligible_reason"] == "in_review_window",
            is_eligible=True,
            ineligible_reason=None,
        )
    )
    assert "eligibility_matches_consent_events" in bad
    # O's opt_out row dropped: a gap in time, and the state after it is missing
    dropped = good.filter(
        pa.compute.invert(
            pa.compute.and_(
                pa.compute.equal(good["subscriber_id"], "O"),
                pa.compute.equal(good["valid_from"], pa.scalar(ts("2026-01-01T09:00:00Z"))),
            )
        )
    )
    assert dropped.num_rows == good.num_rows - 1
    assert {"intervals_are_contiguous", "eligibility_matches_consent_events"} <= set(failing(dropped))
    # S's eligible row split in two identical rows: a row without a change
    rows = good.to_pylist()
    s_open = next(r for r in rows if r["subscriber_id"] == "S" and r["valid_to"] is None)
    split = s_open["valid_from"] + timedelta(days=100)
    rows.append(s_open | {"valid_from": split})
    s_open["valid_to"], s_open["is_current"], s_open["valid_to_month"] = split, False, split.strftime("%Y-%m")
    assert set(failing(pa.Table.from_pylist(rows, schema=good.schema))) == {"a_row_starts_only_where_the_state_changes"}
    con.close()


# =========================================================================== consent_daily
def test_consent_daily_counts_states_at_the_end_of_each_day(lake):
    # review 7: R opts in Jan 1 10:00 -> in review through Jan 7, eligible from Jan 8 10:00
    # (so at the end of Jan 8); N never opts in; C is Canadian; L, invited long ago (so
    # known from then), subscribes Jan 8 10:00.
    lake.sub("R").consent("R-in", "R", ts("2026-01-01T10:00:00Z")).sub("N").sub("C", country="CA")
    lake.sub("L", subscribed_at=ts("2026-01-08T10:00:00Z"))
    intervals(lake)
    rows = run_sql_model(lake.store, "consent_daily", range_start=date(2026, 1, 7), range_end=date(2026, 1, 8))
    got = {(r["snapshot_date"].isoformat(), r["ineligible_reason"]): r["subscribers"] for r in rows.to_pylist()}
    assert got == {
        ("2026-01-07", "in_review_window"): 1,
        ("2026-01-07", "not_opted_in"): 1,
        ("2026-01-07", "not_us"): 1,
        ("2026-01-07", "not_yet_subscribed"): 1,
        ("2026-01-08", None): 1,
        ("2026-01-08", "not_opted_in"): 2,
        ("2026-01-08", "not_us"): 1,
    }
    assert all(r["is_eligible"] is (r["ineligible_reason"] is None) for r in rows.to_pylist())


def test_consent_daily_check_fails_on_a_wrong_count(lake):
    lake.sub("A").sub("B")
    intervals(lake)
    model = load_model(SQL_ROOT / "marts" / "consent_daily.sql")
    con = connect(lake.store, ["consent_snapshots"], {"range_start": date(2026, 1, 1), "range_end": date(2026, 1, 1)})
    good = run_model(con, model)
    assert good.to_pylist() == [
        {"snapshot_date": date(2026, 1, 1), "is_eligible": False, "ineligible_reason": "not_opted_in", "subscribers": 2}
    ]
    wrong = good.set_column(3, "subscribers", pa.array([3], pa.int64()))
    assert {t.name for t, n, _ in run_tests(con, model, wrong) if n} == {"counts_match_subscriber_states"}
    con.close()


# =========================================================================== int_clip_exclusion_timeline
def test_clip_exclusion_timeline_rebuilds_only_the_changed_clips(store):
    # c1 excluded, c2 excluded; then a later include for c1 and a same-instant event with a
    # larger event_id for c2 (it decides that instant, R1b): one MERGE touching c1 and c2's rows only
    lake = Lake(store)
    lake.sub("S").clip("c1", "S").clip("c2", "S").clip("c3", "S")
    at = ts("2026-01-05T00:00:00Z")
    lake.exclusion("x1", "S", "c1", at).exclusion("x2", "S", "c2", at).exclusion("x3", "S", "c3", at)
    lake.build()
    first = {
        (r["clip_id"], r["event_at"]): r["event_id"] for r in store.read("int_clip_exclusion_timeline").to_pylist()
    }
    assert first == {("c1", at): "x1", ("c2", at): "x2", ("c3", at): "x3"}
    lake.exclusion("x4", "S", "c1", at + timedelta(days=1), "include").exclusion("x5", "S", "c2", at, "include")
    lake.build()
    commit = store.table("int_clip_exclusion_timeline").history(1)[0]
    assert commit["operation"] == "MERGE"
    # c2's row at `at` replaced (1 deleted, 1 inserted), c1's include appended, c3 untouched
    metrics = commit["operationMetrics"]
    assert (metrics["num_target_rows_deleted"], metrics["num_target_rows_inserted"]) == (1, 2)
    rows = store.read("int_clip_exclusion_timeline").to_pylist()
    assert sorted((r["clip_id"], r["event_at"], r["event_id"], r["action"]) for r in rows) == [
        ("c1", at, "x1", "exclude"),
        ("c1", at + timedelta(days=1), "x4", "include"),
        ("c2", at, "x5", "include"),
        ("c3", at, "x3", "exclude"),
    ]
