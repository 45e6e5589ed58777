"""One judgement per cutoff (R5, R6, R12): batches of different deals with the same cutoff
share the deal-independent part of R5 (``clips_eligible_at_cutoff.sql``), and each batch
applies only its deal's terms (``licensable_clips.sql``). The deliveries must be exactly
those of the previous implementation, which judged all of R5 batch by batch: it is kept
here as a reference (``tests/reference/licensable_clips_per_batch.sql``, reading only the
raw tables, plus the small delivery loop below) and compared row for row on the demo and
on random scenarios (several deals per cutoff, buyer and clip exclusions, duplicates,
whole recordings, opt-outs arriving after a batch was frozen, review windows).
"""

from __future__ import annotations

import random
import tempfile
from datetime import date, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_deliveries import LONG_AGO, Lake, ts

from gopro_assets.domain.licensing import deliveries
from gopro_assets.lake.delta_store import DeltaStore
from gopro_assets.sql_engine.runner import connect, fetch_arrow, table_refs

REFERENCE_SQL = (Path(__file__).parent / "reference" / "licensable_clips_per_batch.sql").read_text()
# what the marker says about the selection (input_versions differ: the reference reads no lake versions)
MARKER_FIELDS = ["deal_id", "batch_id", "cutoff_at", "clips", "billable_seconds", "candidates", "whole_recordings"]


def reference_deliveries(
    store: DeltaStore, as_of, review_days: int, earlier: tuple[pa.Table, list[dict]] | None = None
) -> tuple[pa.Table, list[dict]]:
    """The batches due by ``as_of`` delivered as before one judgement per cutoff: all of R5
    per batch, in R6 cutoff order, kept in memory (nothing is written to the lake).
    ``earlier``: a previous call's result (its batches stay frozen, R12). Returns every
    delivery so far and the markers (``MARKER_FIELDS``)."""
    delivered, markers = earlier or (deliveries.DELIVERY_SCHEMA.empty_table(), [])
    done = {(m["deal_id"], m["batch_id"]) for m in markers}
    deals = {d["deal_id"]: d for d in store.read("license_deals").to_pylist()}
    due = sorted(
        (
            b
            for b in store.read("license_batches").to_pylist()
            if b["cutoff_at"] < as_of and b["deal_id"] in deals and (b["deal_id"], b["batch_id"]) not in done
        ),
        key=lambda b: (b["cutoff_at"], b["deal_id"], b["batch_id"]),
    )
    raw = [t for t in table_refs(REFERENCE_SQL) if t != deliveries.DELIVERIES]
    for batch in due:
        variables = {
            "deal_id": batch["deal_id"],
            "batch_id": batch["batch_id"],
            "cutoff_at": batch["cutoff_at"].isoformat(),
            "review_days": review_days,
        }
        con = connect(store, raw, variables)
        con.register(deliveries.DELIVERIES, delivered)
        candidates = fetch_arrow(con, REFERENCE_SQL)
        con.close()
        rows = deliveries.batch_deliveries(batch, deals[batch["deal_id"]], candidates)
        delivered = pa.concat_tables([delivered, rows])
        markers.append(
            {
                "deal_id": batch["deal_id"],
                "batch_id": batch["batch_id"],
                "cutoff_at": batch["cutoff_at"],
                "clips": rows.num_rows,
                "billable_seconds": sum(rows["billable_seconds"].to_pylist()),
                "candidates": candidates.num_rows,
                "whole_recordings": bool(deals[batch["deal_id"]].get("whole_recordings")),
            }
        )
    return delivered, markers


def lake_deliveries(store: DeltaStore) -> tuple[list[dict], list[dict]]:
    """deal_deliveries (every column) and the delivered_batches markers, in a fixed order."""
    rows = store.read(deliveries.DELIVERIES).to_pylist()
    markers = [{k: m[k] for k in MARKER_FIELDS} for m in store.read(deliveries.DELIVERED_BATCHES).to_pylist()]
    return by_rank(rows), sorted(markers, key=lambda m: (m["deal_id"], m["batch_id"]))


def by_rank(rows: list[dict]) -> list[dict]:
    return sorted(rows, key=lambda r: (r["deal_id"], r["batch_id"], r["selection_rank"]))


def assert_same_as_reference(store: DeltaStore, reference: tuple[pa.Table, list[dict]]) -> None:
    rows, markers = lake_deliveries(store)
    expected_rows = by_rank(reference[0].to_pylist())
    assert rows == expected_rows
    assert markers == sorted(reference[1], key=lambda m: (m["deal_id"], m["batch_id"]))


# =========================================================================== judged once per cutoff
def test_batches_of_one_cutoff_share_one_judgement_while_their_inputs_stay_the_same(store, monkeypatch):
    # Three deals (D1 and D2 with batches at both cutoffs, W sells whole recordings at the
    # second) and one eligible owner: 5 batches, 2 cutoffs -> 2 judgements, and the
    # recordings judged once, for W only. A judgement is not reused for a batch whose inputs
    # moved to another version (it would not be what that batch is recorded to be computed from).
    judged = []
    original = deliveries.CutoffJudgement.__init__

    def counting(self, store, cutoff_at, review_days, versions):
        judged.append(cutoff_at)
        original(self, store, cutoff_at, review_days, versions)

    queries = []
    run_query = deliveries.CutoffJudgement._run

    def recording(self, sql, variables, results=None):
        queries.append(sql)
        return run_query(self, sql, variables, results)

    monkeypatch.setattr(deliveries.CutoffJudgement, "__init__", counting)
    monkeypatch.setattr(deliveries.CutoffJudgement, "_run", recording)
    jan, feb = ts("2026-01-31T23:59:59Z"), ts("2026-02-28T23:59:59Z")
    lake = Lake(store).eligible("S1").clip("c1", "S1").clip("c2", "S1", uploaded_at=ts("2026-02-10T00:00:00Z"))
    lake.deal("D1", buyer_id="acme").deal("D2", buyer_id="beta").deal("W", buyer_id="gamma", whole_recordings=True)
    lake.batch("D1", "B1", jan).batch("D1", "B2", feb).batch("D2", "B1", jan).batch("D2", "B2", feb)
    lake.batch("W", "B1", feb).run()
    assert judged == [jan, feb]
    assert queries.count(deliveries.RECORDINGS_AT_CUTOFF_SQL) == 1
    assert lake.delivered("D1") == ["c1", "c2"] and lake.delivered("W") == ["c1", "c2"]
    versions = {t: store.version(t) for t in deliveries.CUTOFF_INPUTS}
    judgement = deliveries.CutoffJudgement(store, feb, 7, versions)
    assert judgement.serves(store, feb, 7, versions | {"license_deals": 99})  # not an input of the judgement
    assert not judgement.serves(store, feb, 7, versions | {"consent_snapshots": versions["consent_snapshots"] + 1})
    assert not judgement.serves(store, jan, 7, versions) and not judgement.serves(store, feb, 0, versions)


# =========================================================================== the demo
@pytest.fixture(scope="module")
def demo_store(tmp_path_factory) -> DeltaStore:
    """The demo's money path through its last day (``pipeline.run_all``: deliveries by
    ``deliver_due_batches``), plus whole_recordings and sensor-criteria twins of three of
    its deals, delivered afterwards at the same cutoffs as their originals."""
    from gopro_assets.settings import end_of_day
    from gopro_tools.demo_landing import generate_demo
    from gopro_tools.pipeline import run_all

    landing = tmp_path_factory.mktemp("demo") / "landing"
    generate_demo(landing, subscribers=16, clips=30, seed=11)
    store = DeltaStore(str(tmp_path_factory.mktemp("demo_lake") / "lake"))
    run_all(
        store, str(landing), first_day=date(2025, 1, 1), through=date(2025, 7, 31), snapshots=False, valuation=False
    )
    deals = store.read("license_deals").to_pylist()
    batches = store.read("license_batches").to_pylist()
    twins = {
        "D-2025-001": {"whole_recordings": True},  # per_minute, caps
        "D-2025-007": {"whole_recordings": True, "min_duration_s": 60.0},
        "D-2025-010": {
            "requires_gps": True,
            "camera_models": ["hero11 black", "HERO5 Black"],
            "location_cells": ["9mu"],
        },
    }
    new_deals = [d | twins[d["deal_id"]] | {"deal_id": d["deal_id"] + "-W"} for d in deals if d["deal_id"] in twins]
    new_batches = [b | {"deal_id": b["deal_id"] + "-W"} for b in batches if b["deal_id"] in twins]
    assert len(new_deals) == len(twins) and new_batches
    store.overwrite("license_deals", pa.Table.from_pylist(deals + new_deals, schema=store.read("license_deals").schema))
    store.overwrite(
        "license_batches", pa.Table.from_pylist(batches + new_batches, schema=store.read("license_batches").schema)
    )
    deals = {d["deal_id"]: d for d in store.read("license_deals").to_pylist()}
    frozen = list(deliveries.deliver_due_batches(store, end_of_day(date(2025, 7, 31)), deals, 7))
    assert {b["deal_id"] for b, _ in frozen} == {d["deal_id"] for d in new_deals}
    return store


def test_demo_deliveries_equal_the_per_batch_reference(demo_store):
    from gopro_assets.settings import end_of_day

    reference = reference_deliveries(demo_store, end_of_day(date(2025, 7, 31)), 7)
    assert_same_as_reference(demo_store, reference)
    # the comparison means something: many batches share a cutoff, each kind of deal delivers
    rows, markers = lake_deliveries(demo_store)
    cutoffs = [m["cutoff_at"] for m in markers]
    assert max(cutoffs.count(c) for c in cutoffs) >= 5
    assert {r["deal_id"] for r in rows} >= {"D-2025-001-W", "D-2025-010-W"}
    assert any(r["chapter"] > 1 for r in rows if r["deal_id"] == "D-2025-001-W")


def test_recordings_stand_in_has_the_query_columns(demo_store):
    # a deal without whole_recordings reads an empty stand-in: same columns and types
    from gopro_assets.settings import end_of_day

    cutoff = max(b["cutoff_at"] for b in demo_store.read("license_batches").to_pylist())
    assert cutoff < end_of_day(date(2025, 7, 31))
    versions = {t: demo_store.version(t) for t in deliveries.CUTOFF_INPUTS}
    judgement = deliveries.CutoffJudgement(demo_store, cutoff, 7, versions)
    assert judgement.recordings().num_rows > 0
    assert judgement.recordings().schema == deliveries.RECORDINGS_AT_CUTOFF_SCHEMA


# =========================================================================== random scenarios
DAY0 = ts("2026-01-01T00:00:00Z")
BUYERS = ["acme", "beta", "gamma"]
# shared by the deals' batches: most cutoffs hold batches of several deals
CUTOFFS = [DAY0 + timedelta(days=d, hours=23, minutes=59, seconds=59) for d in (30, 58, 89)]
MID_RUN = DAY0 + timedelta(days=45)  # the first run: only the first cutoff is due
LAST_RUN = DAY0 + timedelta(days=120)


def instant(rnd: random.Random) -> datetime:
    """A random instant around the cutoffs; one time in four exactly a cutoff (R1, R5 boundaries)."""
    if rnd.random() < 0.25:
        return rnd.choice(CUTOFFS)
    return DAY0 + timedelta(days=rnd.randint(-20, 95), hours=rnd.choice([0, 12, 23]))


CRITERIA = {
    "min_short_side_px": 1080,
    "min_fps": 30.0,
    "activities": ["surf", "ski"],
    "unpublished_only": True,
    "min_duration_s": 10.0,
    "requires_gps": True,
    "requires_imu": True,
    "camera_models": ["hero9 black"],
    "location_cells": ["9q"],
}


@st.composite
def scenarios(draw) -> dict:
    """Subscribers, consent events, clips, clip exclusions and deals, each input marked
    ``late`` (it arrives after the first run) or not. Mostly eligible owners and ordinary
    clips, each rule failing now and then, so that most scenarios deliver something. Drawn
    from a seeded ``random.Random``: hypothesis's own draws lean towards their smallest
    values, which would make the rare cases the common ones."""
    rnd = random.Random(draw(st.integers(0, 2**32 - 1)))

    def sometimes(p: float, value, otherwise=None):
        return value() if rnd.random() < p else otherwise

    subs = [f"S{i}" for i in range(rnd.randint(2, 4))]
    subscribers = [
        {
            "sid": sid,
            "country": sometimes(0.08, lambda: "CA", "US"),  # R1: each condition fails now and then
            "subscribed_at": sometimes(0.08, lambda: instant(rnd), LONG_AGO),
            "cancelled_at": sometimes(0.08, lambda: instant(rnd)),
            "invited_at": sometimes(0.08, lambda: rnd.choice([None, instant(rnd)]), LONG_AGO),
        }
        for sid in subs
    ]
    events = []
    for sid in subs:
        for k in range(rnd.choice([0, 1, 1, 1, 2, 2, 3])):
            at = LONG_AGO if k == 0 and rnd.random() < 0.8 else instant(rnd)  # else maybe in review (R1b)
            action = "opt_out" if k and rnd.random() < 0.4 else "opt_in"
            excluded = rnd.sample(BUYERS, rnd.choice([0, 0, 0, 1, 2])) if action == "opt_in" else []
            events.append({"id": f"{sid}-e{k}", "sid": sid, "at": at, "action": action, "excluded": excluded})
            if rnd.random() < 0.1:  # another event at the same instant (R1: the last event_id wins)
                events.append({"id": f"{sid}-e{k}z", "sid": sid, "at": at, "action": "opt_out", "excluded": []})
    for e in events:
        e["late"] = rnd.random() < 0.25
    clips = []
    chapters: dict[str, int] = {}
    for k in range(rnd.randint(3, 16)):
        sid = rnd.choice(subs)
        width, height = rnd.choice([(1920, 1080), (1920, 1080), (1280, 720), (3840, 2160), (1080, 1920)])
        # R15: chapters of the owner's recordings A and B, mostly numbered 1, 2, 3 in turn (a
        # recording is complete once its last chapter is uploaded), sometimes out of turn
        recording = rnd.choice([None, "A", "A", "B"])
        recording_id = f"{sid}:100GOPRO/G{recording}" if recording else None
        chapter = 1
        if recording_id:
            chapters[recording_id] = chapters.get(recording_id, 0) + 1
            chapter = chapters[recording_id] if rnd.random() < 0.85 else rnd.randint(1, 3)
        shared = rnd.random() < 0.1  # R4: one fingerprint shared by several clips
        clips.append(
            {
                "clip_id": f"c{k:02d}",
                "sid": sid,
                "uploaded_at": instant(rnd),
                "width": width,
                "height": height,
                "fps": rnd.choice([24.0, 30.0, 30.0, 60.0]),
                "duration_s": rnd.choice([5.5, 10.0, 31.7, 61.2, 125.9]),
                "published": rnd.random() < 0.3,
                "activity": rnd.choice(["surf", "ski", "bike", None]),
                "mount": sometimes(0.15, lambda: "drone"),
                "fingerprint": "fp-shared" if shared else None,
                "is_duplicate": shared and rnd.random() < 0.5,  # the stored flag may be stale
                "has_gps": rnd.random() < 0.6,
                "has_imu": rnd.random() < 0.6,
                "camera_model": rnd.choice([None, "HERO9 Black", "HERO12 Black"]),
                "location_cell": rnd.choice([None, "9q5ct", "dr5ru"]),
                "recording_id": recording_id,
                "chapter": chapter,
                "late": rnd.random() < 0.2,
            }
        )
    exclusions = [
        {
            "id": f"x{k}",
            "clip": rnd.choice(clips),
            "at": instant(rnd),
            "action": rnd.choice(["exclude", "exclude", "include"]),
            "late": rnd.random() < 0.5,
        }
        for k in range(rnd.choice([0, 1, 2, 4]))
    ]
    deals = []
    for k in range(rnd.randint(2, 4)):
        flat = rnd.random() < 0.25
        prices = {"aerial": 400, "uhd": 300, "hd": 200, "sd": 100}
        deals.append(
            {
                "deal_id": f"D{k}",
                "buyer_id": rnd.choice(BUYERS),
                "model": "flat_fee" if flat else "per_minute",
                "prices": None if flat else {t: p for t, p in prices.items() if rnd.random() < 0.85},
                "criteria": {c: v for c, v in CRITERIA.items() if rnd.random() < 0.08}
                | ({"whole_recordings": True} if rnd.random() < 0.4 else {})
                | ({"sensor_bonus_cents": 25} if not flat and rnd.random() < 0.5 else {}),
                "batches": [
                    {"cutoff_at": c, "max_minutes": rnd.choice([None, None, 1, 2, 4])}
                    for c in CUTOFFS
                    if rnd.random() < 0.75
                ],
            }
        )
    return {
        "review_days": rnd.choice([0, 3, 7]),
        "subscribers": subscribers,
        "events": events,
        "clips": clips,
        "exclusions": exclusions,
        "deals": deals,
    }


def build(lake: Lake, scenario: dict, with_late: bool) -> Lake:
    """The scenario's inputs as known before (``with_late`` False) or after the late ones arrived."""
    lake.subs, lake.events, lake.exclusions, lake.clips, lake.deals, lake.batches = {}, [], [], [], [], []
    for s in scenario["subscribers"]:
        lake.sub(s["sid"], s["country"], s["subscribed_at"], s["cancelled_at"], s["invited_at"])
    for e in scenario["events"]:
        if with_late or not e["late"]:
            lake.consent(e["id"], e["sid"], e["at"], e["action"], e["excluded"])
    for c in scenario["clips"]:
        if with_late or not c["late"]:
            fields = {k: v for k, v in c.items() if k not in ("clip_id", "sid", "late")}
            lake.clip(c["clip_id"], c["sid"], **fields)
    for x in scenario["exclusions"]:
        if with_late or not x["late"]:
            lake.exclusion(x["id"], x["clip"]["sid"], x["clip"]["clip_id"], x["at"], x["action"])
    for d in scenario["deals"]:
        lake.deal(d["deal_id"], d["buyer_id"], d["model"], d["prices"], **d["criteria"])
        for i, b in enumerate(d["batches"]):
            fee = 5000 if d["model"] == "flat_fee" else None
            lake.batch(d["deal_id"], f"B{i}", b["cutoff_at"], b["max_minutes"], fee)
    return lake.build()


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(scenarios())
def test_random_scenarios_deliver_exactly_what_the_per_batch_reference_delivers(scenario):
    # Two runs, as two nights: the first delivers the batches of the first cutoff; then the
    # late inputs arrive (opt-outs, exclusions, uploads dated before that cutoff: the frozen
    # batches keep their deliveries, R12) and the second run delivers the rest, each deal's
    # earlier deliveries read back from the lake. Both implementations see the same inputs.
    with tempfile.TemporaryDirectory() as tmp:
        lake = Lake(DeltaStore(f"{tmp}/lake"), review_days=scenario["review_days"])
        build(lake, scenario, with_late=False).deliver(MID_RUN)
        first = reference_deliveries(lake.store, MID_RUN, lake.review_days)
        assert_same_as_reference(lake.store, first)
        build(lake, scenario, with_late=True).deliver(LAST_RUN)
        assert_same_as_reference(lake.store, reference_deliveries(lake.store, LAST_RUN, lake.review_days, first))
