"""Incremental SQL models: ``late_revocations`` (R12) re-judges only the deliveries whose
owner, clip or batch changed since its last computation (the ``incremental`` block of its
.yml, ``sql_runner.register_changes``), and must always hold exactly what a full
recomputation holds. Real Delta tables and DuckDB; scenarios from tests/test_deliveries.py.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_deliveries import CUTOFF, US, Lake

from gopro_assets.lake.delta_store import DeltaStore
from gopro_assets.sql_engine.runner import FINGERPRINT_KEY, connect_for_model, register_full_refresh, run_model
from gopro_tools.pipeline import _model, run_sql

VARIABLES = {
    "as_of": "2099-01-01T00:00:00+00:00",
    "share_rate_num": 1,
    "share_rate_den": 2,
    "min_payout_cents": 1000,
    "review_days": 7,
}
MODEL = "late_revocations"
UNIQUE_KEY = {
    MODEL: ("deal_id", "batch_id", "clip_id"),
    "revenue_share_allocations": ("deal_id", "batch_id", "subscriber_id"),
}


def _key(r):
    return (r["deal_id"], r["batch_id"], r["clip_id"])


def stored(store: DeltaStore) -> list[dict]:
    return sorted(store.read(MODEL).to_pylist(), key=_key)


def from_scratch(store: DeltaStore, variables: dict = VARIABLES, model: str = MODEL) -> list[dict]:
    """The model's rows computed in full (nothing written), sorted by its key."""
    con = connect_for_model(store, _model(model), variables)
    register_full_refresh(con, _model(model))
    rows = run_model(con, _model(model)).to_pylist()
    con.close()
    return sorted(rows, key=lambda r: tuple(r[c] for c in UNIQUE_KEY[model]))


def full_recompute(store: DeltaStore, variables: dict = VARIABLES) -> list[dict]:
    return from_scratch(store, variables)


def scope(store: DeltaStore, variables: dict = VARIABLES, model: str = MODEL) -> dict:
    """What the next run would recompute: full_refresh and each input's changed keys."""
    con = connect_for_model(store, _model(model), variables)
    out = {"full_refresh": con.execute("SELECT getvariable('full_refresh')").fetchall()[0][0]}
    for table in _model(model).changed_keys:
        out[table] = sorted(con.sql(f"SELECT * FROM {table}__changed").fetchall())
    con.close()
    return out


def incremental(store: DeltaStore, variables: dict = VARIABLES) -> list[dict]:
    run_sql(store, MODEL, variables)  # the path of the nightly (library and Dagster alike)
    return stored(store)


def frozen_lake(store: DeltaStore) -> Lake:
    """S1..S3 eligible, owning c1..c3; deals D1 (acme) and D2 (beta), batch B1 of each at
    CUTOFF delivered all three clips: six deliveries, no late revocation yet."""
    lake = Lake(store)
    for s in ("S1", "S2", "S3"):
        lake.eligible(s).clip(f"c{s[1]}", s)
    lake.deal("D1", buyer_id="acme").batch("D1", "B1").deal("D2", buyer_id="beta").batch("D2", "B1").run()
    return lake


# Late changes (each arrives after B1 was delivered) and what the next run re-judges.
CHANGES = {
    "opt_out": (
        lambda lake: lake.consent("S1-out", "S1", CUTOFF - timedelta(days=1), "opt_out"),
        {"consent_snapshots": [("S1",)]},
    ),
    "clip_exclusion": (
        lambda lake: lake.exclusion("X-c3", "S3", "c3", CUTOFF - timedelta(hours=1)),
        {"int_clip_exclusion_timeline": [("c3",)]},
    ),
    # (a subscriber row change changes their consent intervals too: the reason becomes not_us)
    "subscriber_row": (
        lambda lake: lake.sub("S2", country="CA"),
        {"subscribers": [("S2",)], "consent_snapshots": [("S2",)]},
    ),
    "buyer_exclusion": (
        lambda lake: lake.consent("S2-in2", "S2", CUTOFF - timedelta(days=1), "opt_in", excluded_buyers=["acme"]),
        {"consent_snapshots": [("S2",)]},
    ),
    "new_batch": (
        lambda lake: lake.batch("D1", "B2", cutoff_at=CUTOFF + timedelta(days=1)),
        {"delivered_batches": [("D1", "B2")]},
    ),
    "opt_out_after_cutoff": (
        lambda lake: lake.consent("S1-late", "S1", CUTOFF + US, "opt_out"),
        {"consent_snapshots": [("S1",)]},
    ),
}


@pytest.fixture
def any_store(storage_root) -> DeltaStore:
    """A lake on local disk and on S3 (SeaweedFS on loopback): the comparison of an
    input's earlier version reads it through either backend."""
    return DeltaStore(storage_root.uri("lake"))


@pytest.mark.parametrize("change", sorted(CHANGES))
def test_late_revocations_rejudges_only_what_changed_and_equals_a_full_recomputation(any_store, change):
    store = any_store
    lake = frozen_lake(store)
    assert incremental(store) == []  # the first computation: a full refresh
    apply, expected_scope = CHANGES[change]
    apply(lake)
    lake.run()
    # Only the changed owner / clip / batch is in scope (not a full refresh).
    assert (
        scope(store)
        == {
            "full_refresh": False,
            "subscribers": [],
            "consent_snapshots": [],
            "int_clip_exclusion_timeline": [],
            "delivered_batches": [],
        }
        | expected_scope
    )
    assert incremental(store) == full_recompute(store)


def test_late_revocations_rows_of_unchanged_deliveries_are_kept_and_reverted_ones_removed(store):
    lake = frozen_lake(store)
    incremental(store)
    # S1 opted out late (2 rows: D1 and D2 deliveries of c1), S2 moved to CA (2 rows).
    lake.consent("S1-out", "S1", CUTOFF - timedelta(days=1), "opt_out").sub("S2", country="CA").run()
    assert [(r["clip_id"], r["reason"]) for r in incremental(store)] == [
        ("c1", "not_opted_in"),
        ("c2", "not_us"),
        ("c1", "not_opted_in"),
        ("c2", "not_us"),
    ]
    # S2's row is corrected back to US: only S2 is re-judged; its rows go, S1's stay.
    lake.sub("S2", country="US").run()
    # (its consent intervals change with it: not_us -> eligible)
    assert scope(store)["subscribers"] == [("S2",)] and scope(store)["consent_snapshots"] == [("S2",)]
    after = incremental(store)
    assert [(r["deal_id"], r["clip_id"], r["reason"]) for r in after] == [
        ("D1", "c1", "not_opted_in"),
        ("D2", "c1", "not_opted_in"),
    ]
    assert after == full_recompute(store)


def test_late_revocations_records_its_inputs_and_skips_when_nothing_changed(store):
    frozen_lake(store)
    incremental(store)
    version = store.version(MODEL)
    recorded = json.loads(store.table(MODEL).history(1)[0][FINGERPRINT_KEY])
    # the versions it was judged from, without its own table (recorded one commit later)
    assert set(recorded["inputs"]) == {
        "deal_deliveries",
        "delivered_batches",
        "subscribers",
        "consent_snapshots",
        "int_clip_exclusion_timeline",
    }
    assert recorded["inputs"]["subscribers"] == store.version("subscribers")
    incremental(store)
    assert store.version(MODEL) == version  # inputs unchanged: not recomputed, no commit


@pytest.mark.parametrize("why", ["settings_changed", "written_by_something_else", "input_history_gone"])
def test_late_revocations_full_refresh_when_the_last_computation_cannot_be_built_on(store, why):
    lake = frozen_lake(store)
    incremental(store)
    lake.consent("S1-out", "S1", CUTOFF - timedelta(days=1), "opt_out").run()
    variables = dict(VARIABLES)
    if why == "settings_changed":
        variables["review_days"] = 30  # every verdict may change (R1b window)
    elif why == "written_by_something_else":
        store.overwrite(MODEL, store.read(MODEL), skip_unchanged=False)  # no fingerprint in that commit
    else:
        # the timeline's recorded version can no longer be read: VACUUM removed its files
        recorded = json.loads(store.table(MODEL).history(1)[0][FINGERPRINT_KEY])["inputs"]["consent_snapshots"]
        gone = set(store.table("consent_snapshots", recorded).file_uris()) - set(
            store.table("consent_snapshots").file_uris()
        )
        assert gone
        for uri in gone:
            os.remove(uri.removeprefix("file://"))
    assert scope(store, variables)["full_refresh"] is True
    assert incremental(store, variables) == full_recompute(store, variables)


# Random sequences of late changes: after every step the incrementally maintained table
# equals a full recomputation.
_step = st.one_of(
    st.tuples(
        st.just("consent"),
        st.sampled_from(["S1", "S2", "S3"]),
        st.sampled_from(["opt_in", "opt_out"]),
        st.integers(-3, 2),
        st.sampled_from([(), ("acme",), ("beta",)]),
    ),
    st.tuples(
        st.just("exclusion"),
        st.sampled_from(["c1", "c2", "c3"]),
        st.sampled_from(["exclude", "include"]),
        st.integers(-3, 2),
    ),
    st.tuples(st.just("subscriber"), st.sampled_from(["S1", "S2", "S3"]), st.sampled_from(["US", "CA"]), st.booleans()),
    st.tuples(st.just("batch"), st.sampled_from(["D1", "D2"]), st.integers(1, 3)),
)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps=st.lists(_step, min_size=1, max_size=4))
def test_late_revocations_incremental_equals_full_under_random_changes(steps):
    tmp = tempfile.mkdtemp(prefix="incremental-")
    try:
        store = DeltaStore(f"{tmp}/lake")
        lake = frozen_lake(store)
        incremental(store)
        for i, step in enumerate(steps):
            kind = step[0]
            if kind == "consent":
                _, sid, action, days, excluded = step
                lake.consent(f"e{i}", sid, CUTOFF + timedelta(days=days), action, excluded_buyers=excluded)
            elif kind == "exclusion":
                _, clip, action, days = step
                lake.exclusion(f"x{i}", f"S{clip[1]}", clip, CUTOFF + timedelta(days=days), action)
            elif kind == "subscriber":
                _, sid, country, cancelled = step
                lake.sub(sid, country=country, cancelled_at=CUTOFF - timedelta(days=1) if cancelled else None)
            else:
                _, deal, days = step
                batch_id = f"B{i + 2}"
                lake.batch(deal, batch_id, cutoff_at=CUTOFF + timedelta(days=days))
            lake.run()
            assert incremental(store) == full_recompute(store), f"after step {i}: {step}"
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# -- revenue_share_allocations: only new or changed batches are split again (R9) ------------------
ALLOCATIONS = "revenue_share_allocations"


def allocations(store: DeltaStore, variables: dict = VARIABLES) -> list[dict]:
    run_sql(store, "batch_revenue", variables)
    run_sql(store, ALLOCATIONS, variables)
    return sorted(store.read(ALLOCATIONS).to_pylist(), key=lambda r: (r["deal_id"], r["batch_id"], r["subscriber_id"]))


def allocations_from_scratch(store: DeltaStore, variables: dict = VARIABLES) -> list[dict]:
    return from_scratch(store, variables, ALLOCATIONS)


def allocation_scope(store: DeltaStore, variables: dict = VARIABLES) -> dict:
    return scope(store, variables, ALLOCATIONS)


def test_allocations_split_only_a_new_batch_and_keep_the_others(store):
    lake = frozen_lake(store)
    before = allocations(store)
    assert {(r["deal_id"], r["batch_id"]) for r in before} == {("D1", "B1"), ("D2", "B1")}
    # a second batch of D1 a day later, with a new clip of S2 uploaded in between
    lake.clip("c4", "S2", uploaded_at=CUTOFF + timedelta(hours=1)).batch(
        "D1", "B2", cutoff_at=CUTOFF + timedelta(days=1)
    )
    lake.run()
    run_sql(store, "batch_revenue", VARIABLES)
    scope = allocation_scope(store)
    assert scope == {"full_refresh": False, "delivered_batches": [("D1", "B2")], "batch_revenue": [("D1", "B2")]}
    after = allocations(store)
    assert after == allocations_from_scratch(store)
    assert [r for r in after if r["batch_id"] == "B1"] == before  # the earlier batches' rows, kept as they were
    # 60 s of hd at 200 c/min = 200 c gross, pool 100 c (rate 1/2), all of it to S2
    assert [
        (r["deal_id"], r["batch_id"], r["subscriber_id"], r["allocated_cents"]) for r in after if r["batch_id"] == "B2"
    ] == [("D1", "B2", "S2", 100)]


def test_allocations_a_new_share_rate_splits_every_batch_again(store):
    frozen_lake(store)
    allocations(store)
    half = allocations(store)
    third = VARIABLES | {"share_rate_num": 1, "share_rate_den": 3}
    run_sql(store, "batch_revenue", third)
    # every batch_revenue row changed: every batch is in scope, and the pools follow R8
    assert allocation_scope(store, third)["batch_revenue"] == [("D1", "B1"), ("D2", "B1")]
    after = allocations(store, third)
    assert after == allocations_from_scratch(store, third)
    # each batch: 3 clips x 60 s of hd at 200 c/min = 600 c gross; pool 300 c at 1/2, 200 c at 1/3
    assert sum(r["allocated_cents"] for r in half) == 600 and sum(r["allocated_cents"] for r in after) == 400
