"""Contract v2 deal keys (issue 13): the telemetry criteria (R5), whole recordings (R6,
R15) and the sensor bonus (R7), from the deal file to the money.

Parsing and quarantine through ``landing.parse_deal`` / ``ingest_deals``; deliveries with
the ``Lake`` builder of tests/test_deliveries.py (inventory rows written with the declared
schema: the telemetry and recording columns as the footage domain fills them); revenue,
allocations and statements with the real SQL models; ``explain`` and the finance report's
camera/sensor section on the same lake. Every expected figure is worked by hand in a
comment. Choices where the contract is silent: docs/MONEY_CHOICES.md,
docs/ELIGIBILITY_CHOICES.md, docs/LANDING_RULES.md.
"""

from __future__ import annotations

import copy
import json
import tempfile
from datetime import timedelta
from fractions import Fraction

import pyarrow as pa
import pytest
from conftest import month_vars, run_sql_model, write_rows
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_deliveries import CUTOFF, UPLOADED, Lake, ts
from test_landing import BASE_DEAL, FLAT_DEAL, deal_bytes
from test_money_properties import run_arrow

from gopro_assets.domain.finance.explain import explain, render_text
from gopro_assets.domain.finance.money import (
    delivery_value,
    largest_remainder,
    per_minute_gross,
    price_per_minute,
    sensor_bonus,
    split_pool,
)
from gopro_assets.domain.finance.report import SECTIONS, attributed_gross, build_report
from gopro_assets.domain.ingestion.ingest import QUARANTINE, ingest_deals
from gopro_assets.domain.ingestion.landing import DEAL_SCHEMA, parse_deal
from gopro_assets.domain.licensing import deliveries
from gopro_assets.domain.licensing.deliveries import DELIVERED_BATCH_SCHEMA, DELIVERY_SCHEMA
from gopro_assets.domain.licensing.selection import select_batch
from gopro_assets.lake import duck
from gopro_assets.lake.delta_store import DeltaStore
from gopro_assets.lake.storage import FileRoot
from gopro_assets.sql_engine.runner import SQL_ROOT, connect, load_model, run_model, run_tests

HD = {"aerial": 400, "uhd": 300, "hd": 200, "sd": 100}


# =========================================================================== §2 deal keys, §3 bad input
def v2_deal() -> dict:
    obj = copy.deepcopy(BASE_DEAL)
    obj["pricing"]["sensor_bonus_cents"] = 50
    obj["criteria"] |= {
        "requires_gps": True,
        "requires_imu": False,
        "camera_models": ["HERO7 Black", "MAX", " MAX "],
        "location_cells": ["9Q8YY", "dr5"],
        "whole_recordings": True,
    }
    return obj


def test_v2_keys_are_parsed_and_stored():
    result = parse_deal("deals/v2.json", deal_bytes(v2_deal()))
    assert result.quarantine == []
    d = result.deal
    assert (d["requires_gps"], d["requires_imu"], d["whole_recordings"]) == (True, False, True)
    assert d["camera_models"] == [
        "HERO7 Black",
        "MAX",
    ]  # trimmed, deduplicated, sorted; case kept (compared ignoring it)
    assert d["location_cells"] == ["9q8yy", "dr5"]  # geohash prefixes are stored lower case
    assert d["sensor_bonus_cents"] == 50
    assert pa.Table.from_pylist([d], schema=DEAL_SCHEMA).num_rows == 1
    # null is the same as absent: no filter, no bonus
    obj = v2_deal()
    obj["pricing"]["sensor_bonus_cents"] = None
    obj["criteria"] |= dict.fromkeys(("requires_gps", "camera_models", "location_cells", "whole_recordings"))
    d = parse_deal("deals/v2.json", deal_bytes(obj)).deal
    assert (d["requires_gps"], d["camera_models"], d["location_cells"], d["whole_recordings"]) == (None,) * 4
    assert d["sensor_bonus_cents"] is None


def _mutate(path: str, value):
    def mutate(obj):
        *parents, last = path.split(".")
        target = obj
        for p in parents:
            target = target[p]
        target[last] = value
        return obj

    return mutate


@pytest.mark.parametrize(
    "base, mutate, reason",
    [
        (
            "v2",
            _mutate("criteria.requires_gps", "yes"),
            "criteria.requires_gps must be true, false or null, got string",
        ),
        ("v2", _mutate("criteria.requires_imu", 1), "criteria.requires_imu must be true, false or null, got number 1"),
        ("v2", _mutate("criteria.whole_recordings", "true"), "criteria.whole_recordings must be true, false or null"),
        ("v2", _mutate("criteria.camera_models", "MAX"), "criteria.camera_models must be a list of strings or null"),
        ("v2", _mutate("criteria.camera_models", []), "criteria.camera_models is an empty list: no clip could match"),
        ("v2", _mutate("criteria.camera_models", ["MAX", 7]), "criteria.camera_models item 1: must be a string"),
        ("v2", _mutate("criteria.camera_models", ["  "]), "criteria.camera_models item 0: is empty"),
        # 'a' is not in the geohash alphabet (0-9, b-z without i, l, o)
        ("v2", _mutate("criteria.location_cells", ["u4pra"]), "item 0: 'u4pra' is not a geohash prefix"),
        ("v2", _mutate("criteria.location_cells", ["9q8", "dr5l"]), "item 1: 'dr5l' is not a geohash prefix"),
        ("v2", _mutate("criteria.location_cells", ["9q8yyk9q8yyk9"]), "'9q8yyk9q8yyk9' is not a geohash prefix"),
        ("v2", _mutate("criteria.location_cells", []), "criteria.location_cells is an empty list"),
        ("v2", _mutate("criteria.location_cells", "9q8"), "criteria.location_cells must be a list of strings or null"),
        ("v2", _mutate("pricing.sensor_bonus_cents", -1), "pricing.sensor_bonus_cents must be a non-negative integer"),
        ("v2", _mutate("pricing.sensor_bonus_cents", 2.5), "pricing.sensor_bonus_cents must be an integer, got number"),
        (
            "v2",
            _mutate("pricing.sensor_bonus_cents", "50"),
            "pricing.sensor_bonus_cents must be an integer, got string",
        ),
        (
            "v2",
            _mutate("pricing.sensor_bonus_cents", True),
            "pricing.sensor_bonus_cents must be an integer, got boolean",
        ),
        ("v2", _mutate("pricing.sensor_bonus_cents", 2**63), "fits in 64 bits"),
        ("v2", _mutate("criteria.requires_gsp", True), "unknown criteria key(s) 'requires_gsp'"),
        # R7: the bonus is added to a per-minute tier price; under flat_fee the key is bad input (even 0 or null)
        ("flat", _mutate("pricing.sensor_bonus_cents", 0), "pricing.sensor_bonus_cents is not allowed for flat_fee"),
        ("flat", _mutate("pricing.sensor_bonus_cents", None), "pricing.sensor_bonus_cents is not allowed for flat_fee"),
    ],
)
def test_bad_v2_values_quarantine_the_deal_file_with_a_reason(base, mutate, reason):
    text = json.dumps(mutate(v2_deal() if base == "v2" else copy.deepcopy(FLAT_DEAL)), indent=2)
    result = parse_deal("deals/bad.json", text.encode())
    assert result.deal is None and result.batches == []
    [q] = result.quarantine
    assert (q["source"], q["position"], q["raw"]) == ("deals/bad.json", 0, text)
    assert q["reason"].startswith("invalid deal, the whole file is quarantined: ")
    assert reason in q["reason"], q["reason"]


def test_flat_fee_deal_takes_the_v2_criteria():
    obj = copy.deepcopy(FLAT_DEAL)
    obj["criteria"] = {"requires_imu": True, "whole_recordings": True}
    d = parse_deal("deals/flat.json", deal_bytes(obj)).deal
    assert (d["requires_imu"], d["whole_recordings"], d["sensor_bonus_cents"]) == (True, True, None)


def test_ingest_deals_stores_v2_columns_quarantines_bad_files_and_rebuilds_an_old_table(tmp_path):
    landing, store = tmp_path / "landing", DeltaStore(str(tmp_path / "lake"))
    (landing / "deals").mkdir(parents=True)
    (landing / "deals" / "a-good.json").write_bytes(deal_bytes(v2_deal()))
    bad = v2_deal() | {"deal_id": "D-bad"}
    bad["criteria"]["location_cells"] = ["u4pra"]
    (landing / "deals" / "b-bad.json").write_bytes(deal_bytes(bad))
    root = FileRoot(str(landing))
    ingest_deals(store, root)
    [deal] = store.read("license_deals").to_pylist()
    assert (deal["deal_id"], deal["sensor_bonus_cents"], deal["location_cells"]) == ("D-2026-001", 50, ["9q8yy", "dr5"])
    [q] = store.read(QUARANTINE).to_pylist()
    assert q["source"] == "deals/b-bad.json" and "'u4pra' is not a geohash prefix" in q["reason"]
    # A lake whose license_deals was written before v2 (no v2 columns) is rebuilt from the
    # deal files on the next run, although no deal file changed.
    old = store.read("license_deals").drop_columns(["requires_gps", "sensor_bonus_cents", "whole_recordings"])
    store.overwrite("license_deals", old)
    assert ingest_deals(store, root).rebuilt
    assert store.read("license_deals").to_pylist() == [deal]
    assert not ingest_deals(store, root).rebuilt  # and then it is up to date


# =========================================================================== R5 telemetry criteria
# Inventory rows with the facts of the real sample files (../shared/gopro-samples/README.md):
# karma.mp4 = HERO5 Black on a Karma drone: IMU, no GPS, 480p (sd by size, aerial by is_drone);
# max-heromode.mp4 = MAX: GPS fix and IMU. Plus a GPS-only HERO7 and a file without telemetry.
TELEMETRY_CLIPS = {
    "karma": dict(width=854, height=480, camera_model="HERO5 Black", is_drone=True, has_imu=True),
    "max": dict(camera_model="MAX", has_gps=True, has_imu=True, location_cell="9q8yy"),
    "hero7": dict(camera_model="HERO7 Black", has_gps=True, location_cell="dr5ru"),
    "plain": dict(),
}
TELEMETRY_DEALS = {
    # deal: (criteria, clips delivered in R6 order, worked by hand)
    # karma is aerial from telemetry alone (R3) and so ranks first; the hd clips by uploaded_at
    "D-any": ({}, ["karma", "max", "hero7", "plain"]),
    "D-gps": ({"requires_gps": True}, ["max", "hero7"]),  # skips the Karma file (no GPS) and plain
    "D-gps-false": ({"requires_gps": False}, ["karma", "max", "hero7", "plain"]),
    "D-imu": ({"requires_imu": True}, ["karma", "max"]),
    "D-gps-imu": ({"requires_gps": True, "requires_imu": True}, ["max"]),
    "D-cam": ({"camera_models": ["hero5 black", "Max"]}, ["karma", "max"]),  # ignoring case
    "D-cell": ({"location_cells": ["9q8"]}, ["max"]),  # 9q8yy begins with 9q8; null cells never match
    "D-cells": ({"location_cells": ["9q8yy", "dr5r"]}, ["max", "hero7"]),
    "D-cell-d": ({"location_cells": ["d"]}, ["hero7"]),
    "D-cell-none": ({"location_cells": ["9q9"]}, []),
}


@pytest.fixture(scope="module")
def telemetry_lake(tmp_path_factory):
    lake = Lake(DeltaStore(str(tmp_path_factory.mktemp("telemetry") / "lake")))
    lake.eligible("S1")
    for i, (cid, kw) in enumerate(TELEMETRY_CLIPS.items()):
        lake.clip(cid, "S1", uploaded_at=UPLOADED + timedelta(hours=i), **kw)
    for did, (criteria, _) in TELEMETRY_DEALS.items():
        lake.deal(did, **criteria).batch(did, "B1")
    return lake.run()


@pytest.mark.parametrize("deal_id", sorted(TELEMETRY_DEALS))
def test_r5_telemetry_criteria(telemetry_lake, deal_id):
    assert telemetry_lake.delivered(deal_id) == TELEMETRY_DEALS[deal_id][1]


def test_r3_drone_clip_priced_aerial_from_telemetry_alone(telemetry_lake):
    # no mount in the upload row, 480p: tier aerial only because the telemetry says Karma
    karma = next(r for r in telemetry_lake.rows("D-any") if r["clip_id"] == "karma")
    assert (karma["tier"], karma["tier_price_cents"], karma["camera_model"]) == ("aerial", 400, "HERO5 Black")
    assert (karma["has_gps"], karma["has_imu"]) == (False, True)


@pytest.fixture
def lake(store):
    return Lake(store)


# =========================================================================== R7 sensor bonus
@pytest.fixture
def bonus_lake(lake):
    """Four hd clips of four owners; the deal pays hd 200 c/min + a 50 c/min sensor bonus.

    both (S1, GPS and IMU, 60.4 s -> 60 billable), gps (S2, GPS only, 30 s), imu (S3, IMU
    only, 45.9 s -> 45), none (S4, no telemetry, 61 s)."""
    for i, (cid, sid, secs, kw) in enumerate(
        [
            ("both", "S1", 60.4, dict(has_gps=True, has_imu=True, camera_model="MAX")),
            ("gps", "S2", 30.0, dict(has_gps=True, camera_model="HERO9 Black")),
            ("imu", "S3", 45.9, dict(has_imu=True, camera_model="HERO5 Black")),
            ("none", "S4", 61.0, {}),
        ]
    ):
        lake.eligible(sid).clip(cid, sid, duration_s=secs, uploaded_at=UPLOADED + timedelta(hours=i), **kw)
    lake.deal("D1", prices=HD, sensor_bonus_cents=50).batch("D1", "B1")
    lake.deal("F1", model="flat_fee", prices=None).batch("F1", "B1", fee_cents=1000)
    return lake.run()


def test_r7_sensor_bonus_only_on_a_clip_with_gps_and_imu(bonus_lake):
    rows = {r["clip_id"]: r for r in bonus_lake.rows("D1")}
    assert {c: (r["tier_price_cents"], r["sensor_bonus_cents"]) for c, r in rows.items()} == {
        "both": (200, 50),
        "gps": (200, 0),
        "imu": (200, 0),
        "none": (200, 0),
    }
    # flat_fee: no price, no bonus
    assert {(r["tier_price_cents"], r["sensor_bonus_cents"]) for r in bonus_lake.rows("F1")} == {(None, None)}
    frozen = {b["deal_id"]: b for b in bonus_lake.store.read(deliveries.DELIVERED_BATCHES).to_pylist()}
    assert (frozen["D1"]["sensor_bonus_cents"], frozen["F1"]["sensor_bonus_cents"]) == (50, None)


def test_r7_r8_r9_sensor_bonus_in_hand_computed_cents(bonus_lake):
    store = bonus_lake.store
    revenue = {r["deal_id"]: r for r in run_sql_model(store, "batch_revenue").to_pylist()}
    # both 60 s x (200 + 50) / 60 = 250 | gps 30 x 200 / 60 = 100 | imu 45 x 200 / 60 = 150
    # none 61 x 200 / 60 = 203 1/3 -> sum 703 1/3 -> gross 703 (without the bonus: 653 1/3 -> 653)
    # pool = round_half_up(703 / 2 = 351.5) = 352, platform 351
    r = revenue["D1"]
    assert (r["gross_cents"], r["pool_cents"], r["platform_cents"]) == (703, 352, 351)
    values = [delivery_value(60, price_per_minute(200, sensor_bonus(50, True, True)))]
    values += [delivery_value(s, price_per_minute(200, sensor_bonus(50, g, i))) for s, g, i in [(30, 1, 0), (45, 0, 1)]]
    values += [delivery_value(61, price_per_minute(200, sensor_bonus(50, False, False)))]
    assert values == [250, 100, 150, Fraction(610, 3)] and per_minute_gross(values) == 703
    assert split_pool(703, Fraction(1, 2)) == (352, 351)
    # R9 weights (60 x exact value): S1 15000, S2 6000, S3 9000, S4 12200; W = 42200
    #   S1 352 x 15000 / 42200 = 125 25/211 | S2 50 10/211 | S3 75 15/211 | S4 101 161/211
    #   floors 351, one cent left -> S4 (largest remainder) -> 125, 50, 75, 102
    allocations = run_sql_model(store, "revenue_share_allocations").to_pylist()
    got = {a["subscriber_id"]: a["allocated_cents"] for a in allocations if a["deal_id"] == "D1"}
    assert got == {"S1": 125, "S2": 50, "S3": 75, "S4": 102}
    ref = largest_remainder(352, {"S1": 15000, "S2": 6000, "S3": 9000, "S4": 12200})
    assert {k: v.cents for k, v in ref.items()} == got
    # flat fee 1000: no bonus anywhere, pool 500 split by seconds 60:30:45:61 (W 196)
    assert revenue["F1"]["gross_cents"] == 1000


def test_r12_a_later_deal_edit_never_changes_a_delivered_bonus(bonus_lake):
    before = bonus_lake.rows()
    gross = {r["deal_id"]: r["gross_cents"] for r in run_sql_model(bonus_lake.store, "batch_revenue").to_pylist()}
    bonus_lake.deals[0]["sensor_bonus_cents"] = 80  # the deal file is edited after delivery
    bonus_lake.run()
    assert bonus_lake.rows() == before
    again = {r["deal_id"]: r["gross_cents"] for r in run_sql_model(bonus_lake.store, "batch_revenue").to_pylist()}
    assert again == gross == {"D1": 703, "F1": 1000}


def test_explain_shows_the_sensor_bonus_per_clip(bonus_lake):
    store = bonus_lake.store
    run_sql_model(store, "batch_revenue")
    run_sql_model(store, "revenue_share_allocations")
    run_sql_model(store, "revenue_share_statements", **month_vars("2026-01"))
    # F1 (flat 1000, pool 500) by seconds 60:30:45:61 of W 196: S1 500 x 60 / 196 = 153 12/196 -> 153
    text = render_text(explain(store, "S1", "2026-01"))
    assert "  clip both: hd, 60 s x 250 c/min (200 tier price + 50 sensor bonus: GPS and IMU) = 250 c" in text
    assert "  clip gps: hd, 30 s x 200 c/min (no sensor bonus: no IMU) = 100 c" in render_text(
        explain(store, "S2", "2026-01")
    )
    assert "  clip none: hd, 61 s x 200 c/min (no sensor bonus: no GPS and IMU) = 203 1/3 c" in render_text(
        explain(store, "S4", "2026-01")
    )
    e = explain(store, "S1", "2026-01")
    [clip] = next(b for b in e.batches if b.deal_id == "D1").clips
    assert (clip.price_cents_per_minute, clip.sensor_bonus_cents, clip.value, clip.weight) == (250, 50, 250, 15000)


def test_finance_report_revenue_by_camera_model_and_sensors(bonus_lake):
    store = bonus_lake.store
    run_sql_model(store, "batch_revenue")
    con = duck.connect()
    for t in ("deal_deliveries", "batch_revenue"):
        con.register(t, store.dataset(t))
    cells, unattributed = attributed_gross(con, "2026-01")
    # D1 (gross 703, W 42200 in 60 x value): both 703 x 15000 / 42200 = 249.88 | gps 99.95 |
    #   imu 149.93 | none 203.24 -> floors 700, 3 cents to the largest remainders (gps .95,
    #   imu .93, both .88) -> 250, 100, 150, 203; bonus of "both": 703 x 3000 / 42200 = 49.98 -> 50
    # F1 (fee 1000, W 196 seconds): both 60 -> 306.12 | gps 30 -> 153.06 | imu 45 -> 229.59 |
    #   none 61 -> 311.22; over the cells (D1 + F1 shares): both 556.004, gps 253.014,
    #   imu 379.521, none 514.462 -> floors 1702, 1 cent left: imu (.52) -> 556, 253, 380, 514
    by = {
        (c["camera_model"], c["sensors"]): (c["clips"], c["billable_seconds"], c["gross_cents"], c["bonus_cents"])
        for c in cells
    }
    assert by == {
        ("MAX", "GPS and IMU"): (2, 120, 556, 50),
        ("HERO9 Black", "GPS only"): (2, 60, 253, 0),
        ("HERO5 Black", "IMU only"): (2, 90, 380, 0),
        ("unknown (no telemetry)", "neither"): (2, 122, 514, 0),
    }
    assert sum(c["gross_cents"] for c in cells) == 703 + 1000 and unattributed == 0
    section = next(s for s in SECTIONS if s.title == "Revenue by camera model and by GPS/IMU availability")
    html = build_report(con, "2026-01", sections=[section]).decode()
    con.close()
    assert "<h2>Revenue by camera model and by GPS/IMU availability</h2>" in html
    num = '<td class="num">'
    assert f"<tr><td>MAX</td>{num}2</td>{num}120</td>{num}$5.56</td>{num}$0.50</td></tr>" in html
    assert f"<tr><td>GPS only</td>{num}2</td>{num}60</td>{num}$2.53</td>{num}$0.00</td></tr>" in html


# =========================================================================== R6 / R15 whole recordings
GX1 = "S1:100GOPRO/GX0001"  # chapters GX010001 (50.5 s), GX020001 (40.2 s), GX030001 (30.9 s)


def chapters(lake: Lake, number="0001", sid="S1", durations=(50.5, 40.2, 30.9), at=UPLOADED, only=None, per=None):
    """A camera recording GX<CC><number> of ``sid`` in 100GOPRO: chapter c uploaded at
    ``at`` + c x 10 minutes; ``only`` limits the chapters written (a missing chapter), ``per``
    gives a chapter's own inventory values ({chapter: {column: value}})."""
    for c, secs in enumerate(durations, start=1):
        if only is not None and c not in only:
            continue
        clip_id = f"GX{c:02d}{number}"
        extra = dict((per or {}).get(c, {}))
        lake.clip(
            clip_id,
            sid,
            duration_s=secs,
            uploaded_at=extra.pop("uploaded_at", at + timedelta(minutes=10 * c)),
            object_key=f"{sid}/100GOPRO/{clip_id}.MP4",
            recording_id=f"{sid}:100GOPRO/GX{number}",
            chapter=c,
            **extra,
        )
    return lake


def test_r6_select_batch_takes_or_skips_a_unit_whole():
    # units r (50, 40, 30 = 120 s) then s (10 s); cap 1 min: r skipped whole, s taken
    assert select_batch([50, 40, 30, 10], 1, ["r", "r", "r", "s"]) == [3]
    assert select_batch([50, 40, 30, 10], 2, ["r", "r", "r", "s"]) == [0, 1, 2]  # 120 = the cap exactly
    assert select_batch([50, 40, 30, 10], 1) == [0, 3]  # clip by clip: 50 taken, 40 and 30 skipped, 10 taken
    with pytest.raises(ValueError):
        select_batch([1, 1, 1], None, ["r", "s", "r"])  # a unit's rows must be consecutive


def test_r6_three_chapter_recording_delivered_whole_under_a_cap(lake):
    # R = 50 + 40 + 30 = 120 billable s, uploaded Jun 1; solo (10 s) uploaded Jun 2.
    # cap 2 min = 120 s: R fills it exactly (allowed), solo no longer fits.
    chapters(lake.eligible("S1"))
    lake.clip("solo", "S1", duration_s=10.0, uploaded_at=UPLOADED + timedelta(days=1))
    lake.deal("W", whole_recordings=True).batch("W", "B1", max_minutes=2)
    lake.deal("W-nocap", whole_recordings=True).batch("W-nocap", "B1")
    lake.run()
    assert lake.delivered("W") == ["GX010001", "GX020001", "GX030001"]
    rows = lake.rows("W")
    assert [(r["recording_id"], r["chapter"], r["selection_rank"]) for r in rows] == [
        (GX1, 1, 1),
        (GX1, 2, 2),
        (GX1, 3, 3),
    ]
    assert sum(r["billable_seconds"] for r in rows) == 120
    assert lake.delivered("W-nocap") == ["GX010001", "GX020001", "GX030001", "solo"]
    marker = {b["deal_id"]: b for b in lake.store.read(deliveries.DELIVERED_BATCHES).to_pylist()}
    assert marker["W"]["whole_recordings"] and (marker["W"]["clips"], marker["W"]["candidates"]) == (3, 4)


def test_r6_recording_that_does_not_fit_is_skipped_whole(lake):
    # cap 1 min = 60 s. Whole: R (120 s) is skipped as a whole although chapter 1 (50 s) would
    # fit; solo (10 s) is taken. Clip by clip the same batch takes GX010001 (50, room 10),
    # skips GX020001 (40) and GX030001 (30), takes solo (10).
    chapters(lake.eligible("S1"))
    lake.clip("solo", "S1", duration_s=10.0, uploaded_at=UPLOADED + timedelta(days=1))
    lake.deal("W", whole_recordings=True).batch("W", "B1", max_minutes=1)
    lake.batch("W", "B2", cutoff_at=CUTOFF + timedelta(days=28), max_minutes=2)
    lake.deal("C").batch("C", "B1", max_minutes=1)
    lake.run()
    assert lake.delivered("W", "B1") == ["solo"]
    assert lake.delivered("C", "B1") == ["GX010001", "solo"]
    # nothing of R was delivered, so the deal's next batch (cap 2 min) takes it whole
    assert lake.delivered("W", "B2") == ["GX010001", "GX020001", "GX030001"]


def test_r6_recording_not_licensable_while_chapter_2_is_missing_then_licensable_once_it_arrives(lake):
    # B1 (cutoff Jan 31) is delivered on Feb 1 with chapters 1 and 3 of R in the inventory
    # (uploaded Jan 10): chapters {1, 3} are not 1..n -> R is not licensable; solo is.
    # Chapter 2 is uploaded on Feb 10. B2 (cutoff Feb 28) then takes R whole; B1 stays frozen (R12).
    jan10 = ts("2026-01-10T00:00:00Z")
    b1, b2 = ts("2026-01-31T23:59:59Z"), ts("2026-02-28T23:59:59Z")
    chapters(lake.eligible("S1"), at=jan10, only={1, 3})
    lake.clip("solo", "S1", duration_s=10.0, uploaded_at=jan10)
    lake.deal("W", whole_recordings=True).batch("W", "B1", cutoff_at=b1).batch("W", "B2", cutoff_at=b2)
    lake.build()
    assert [r["batch_id"] for r in lake.deliver(ts("2026-02-01T00:00:00Z"))] == ["B1"]
    frozen = lake.rows("W", "B1")
    assert [r["clip_id"] for r in frozen] == ["solo"]
    chapters(lake, only={2}, per={2: {"uploaded_at": ts("2026-02-10T00:00:00Z")}})  # chapter 2 arrives
    lake.run(ts("2026-03-01T00:00:00Z"))
    assert lake.rows("W", "B1") == frozen  # R12: the earlier batch is not rewritten
    assert lake.delivered("W", "B2") == ["GX010001", "GX020001", "GX030001"]


def test_r6_late_chapter_of_an_already_delivered_recording_is_not_licensable_again(lake):
    # R had two chapters by B1 (both delivered); chapter 3 appears before B2: R (1..3) is
    # complete but chapters 1 and 2 were delivered in the deal -> not licensable, and
    # chapter 3 is not sold alone. Another deal buys all three.
    jan10 = ts("2026-01-10T00:00:00Z")
    b1, b2 = ts("2026-01-31T23:59:59Z"), ts("2026-02-28T23:59:59Z")
    chapters(lake.eligible("S1"), at=jan10, only={1, 2})
    lake.deal("W", whole_recordings=True).batch("W", "B1", cutoff_at=b1).batch("W", "B2", cutoff_at=b2)
    lake.build()
    lake.deliver(ts("2026-02-01T00:00:00Z"))
    assert lake.delivered("W", "B1") == ["GX010001", "GX020001"]
    chapters(lake, only={3}, per={3: {"uploaded_at": ts("2026-02-05T00:00:00Z")}})
    lake.deal("W2", buyer_id="beta", whole_recordings=True).batch("W2", "X", cutoff_at=b2)
    lake.run(ts("2026-03-01T00:00:00Z"))
    assert lake.delivered("W", "B2") == []
    assert lake.delivered("W2", "X") == ["GX010001", "GX020001", "GX030001"]


def test_r6_min_duration_applies_to_the_recording(lake):
    # R: 50.5 + 40.2 + 30.9 = 121.6 s (every chapter < 100 s); Q: 45 + 45 = 90 s; solo 10 s.
    # whole, min 100: R only. whole, min 121: R; min 122: nothing. Clip by clip, min 100: nothing.
    chapters(lake.eligible("S1"))
    chapters(lake, number="0002", durations=(45.0, 45.0), at=UPLOADED + timedelta(hours=2))
    lake.clip("solo", "S1", duration_s=10.0, uploaded_at=UPLOADED + timedelta(days=1))
    lake.deal("W100", whole_recordings=True, min_duration_s=100.0).batch("W100", "B1")
    lake.deal("W121", whole_recordings=True, min_duration_s=121.0).batch("W121", "B1")
    lake.deal("W122", whole_recordings=True, min_duration_s=122.0).batch("W122", "B1")
    lake.deal("C100", min_duration_s=100.0).batch("C100", "B1")
    lake.deal("W", whole_recordings=True).batch("W", "B1")
    lake.run()
    assert lake.delivered("W100") == lake.delivered("W121") == ["GX010001", "GX020001", "GX030001"]
    assert lake.delivered("W122") == [] and lake.delivered("C100") == []
    assert lake.delivered("W") == ["GX010001", "GX020001", "GX030001", "GX010002", "GX020002", "solo"]


def test_r6_every_chapter_must_be_licensable(lake):
    # chapter 2 of R is 24 fps: under min_fps 30 the whole recording is out; clip by clip the
    # other two chapters pass. A chapter excluded by its owner (R1b) also keeps R out.
    chapters(lake.eligible("S1"), per={2: {"fps": 24.0}})
    chapters(lake, number="0002", durations=(20.0, 20.0), at=UPLOADED + timedelta(hours=2))
    lake.exclusion("x1", "S1", "GX020002", UPLOADED)
    lake.deal("W", whole_recordings=True, min_fps=30.0).batch("W", "B1")
    lake.deal("C", min_fps=30.0).batch("C", "B1")
    lake.deal("W-any", whole_recordings=True).batch("W-any", "B1")
    lake.run()
    assert lake.delivered("W") == []
    assert lake.delivered("C") == ["GX010001", "GX030001", "GX010002"]
    assert lake.delivered("W-any") == ["GX010001", "GX020001", "GX030001"]


def test_r6_recordings_ordered_by_chapter_1(lake):
    # GX0005: chapter 1 hd uploaded Jun 1, chapter 2 uhd. GX0004: chapter 1 uhd uploaded Jun 3.
    # GX0006 / GX0007: chapter 1 hd, both uploaded Jun 5 -> by recording_id.
    # Order: GX0004 (uhd), GX0005 (hd, Jun 1), GX0006, GX0007 - not GX0005 first for its uhd chapter 2.
    lake.eligible("S1")
    uhd = {"width": 3840, "height": 2160}
    chapters(lake, number="0005", durations=(5.0, 5.0), at=ts("2025-06-01T00:00:00Z"), per={2: dict(uhd)})
    chapters(lake, number="0004", durations=(5.0, 5.0), at=ts("2025-06-03T00:00:00Z"), per={1: uhd, 2: uhd})
    chapters(lake, number="0007", durations=(5.0,), at=ts("2025-06-05T00:00:00Z"))
    chapters(lake, number="0006", durations=(5.0,), at=ts("2025-06-05T00:00:00Z"))
    lake.deal("W", whole_recordings=True).batch("W", "B1")
    lake.run()
    assert lake.delivered("W") == ["GX010004", "GX020004", "GX010005", "GX020005", "GX010006", "GX010007"]
    assert [r["selection_rank"] for r in lake.rows("W")] == [1, 2, 3, 4, 5, 6]


# =========================================================================== R7 property: SQL == Python
@st.composite
def bonus_batches(draw):
    out = []
    for i in range(draw(st.integers(1, 3))):
        model = draw(st.sampled_from(["per_minute", "per_minute", "flat_fee"]))
        bonus = (
            draw(st.one_of(st.none(), st.sampled_from([0, 25, 50]), st.integers(0, 1000)))
            if model == "per_minute"
            else None
        )
        rows = draw(
            st.lists(
                st.tuples(
                    st.sampled_from(["a", "b", "s1", "s10", "s2"]),
                    st.one_of(st.sampled_from([0, 1, 30, 59, 61]), st.integers(0, 3600)),
                    st.one_of(st.sampled_from([0, 100, 200]), st.integers(0, 500)),
                    st.booleans(),
                    st.booleans(),
                ),
                max_size=10,
            )
        )
        fee = draw(st.integers(0, 10**6)) if model == "flat_fee" else None
        out.append({"batch_id": f"B{i}", "model": model, "bonus": bonus, "fee": fee, "rows": rows})
    return out


def bonus_tables(batches: list[dict]) -> tuple[pa.Table, pa.Table]:
    """deal_deliveries / delivered_batches as deliveries.py writes them: the bonus applied
    per delivery (sensor_bonus) and the deal's bonus frozen with the batch."""
    cutoff = ts("2025-01-20T00:00:00Z")
    dels, marks = [], []
    for b in batches:
        per_minute = b["model"] == "per_minute"
        for j, (sub, secs, price, gps, imu) in enumerate(b["rows"]):
            dels.append(
                {
                    "deal_id": "D1",
                    "batch_id": b["batch_id"],
                    "clip_id": f"{b['batch_id']}-c{j}",
                    "subscriber_id": sub,
                    "tier": "hd",
                    "billable_seconds": secs,
                    "tier_price_cents": price if per_minute else None,
                    "revenue_month": "2025-01",
                    "cutoff_at": cutoff,
                    "selection_rank": j + 1,
                    "sensor_bonus_cents": sensor_bonus(b["bonus"], gps, imu) if per_minute else None,
                    "has_gps": gps,
                    "has_imu": imu,
                }
            )
        marks.append(
            {
                "deal_id": "D1",
                "batch_id": b["batch_id"],
                "buyer_id": "acme-ai",
                "pricing_model": b["model"],
                "cutoff_at": cutoff,
                "revenue_month": "2025-01",
                "fee_cents": b["fee"],
                "clips": len(b["rows"]),
                "billable_seconds": sum(r[1] for r in b["rows"]),
                "input_versions": "{}",
                "sensor_bonus_cents": (b["bonus"] or 0) if per_minute else None,
                "whole_recordings": False,
            }
        )
    return (
        pa.Table.from_pylist(dels, schema=DELIVERY_SCHEMA),
        pa.Table.from_pylist(marks, schema=DELIVERED_BATCH_SCHEMA),
    )


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(batches=bonus_batches(), num=st.integers(0, 10), den=st.integers(1, 10))
def test_r7_sql_revenue_with_sensor_bonuses_equals_the_python_reference(batches, num, den):
    rate = Fraction(min(num, den), den)
    dels, marks = bonus_tables(batches)
    variables = {"share_rate_num": rate.numerator, "share_rate_den": rate.denominator}
    # run_arrow fails on any error-severity data test: revenue_matches_deliveries_and_batch_terms
    # recomputes the bonus from the batch's frozen bonus and each clip's GPS/IMU
    revenue = run_arrow("batch_revenue", {"deal_deliveries": dels, "delivered_batches": marks}, variables)
    allocations = run_arrow(
        "revenue_share_allocations",
        {"deal_deliveries": dels, "delivered_batches": marks, "batch_revenue": revenue},
        variables,
    )
    rev = {r["batch_id"]: r for r in revenue.to_pylist()}
    alloc: dict[str, dict[str, int]] = {}
    for a in allocations.to_pylist():
        alloc.setdefault(a["batch_id"], {})[a["subscriber_id"]] = a["allocated_cents"]
    for b in batches:
        weights: dict[str, Fraction] = {}
        if b["model"] == "per_minute":
            values = [
                (sub, delivery_value(secs, price_per_minute(price, sensor_bonus(b["bonus"], gps, imu))))
                for sub, secs, price, gps, imu in b["rows"]
            ]
            gross = per_minute_gross([v for _, v in values])
            for sub, v in values:
                weights[sub] = weights.get(sub, Fraction(0)) + v
            is_break = False
        else:
            gross = b["fee"]
            for sub, secs, *_ in b["rows"]:
                weights[sub] = weights.get(sub, Fraction(0)) + secs
            is_break = sum(weights.values()) == 0
        pool, platform = (0, gross) if is_break else split_pool(gross, rate)
        r = rev[b["batch_id"]]
        assert (r["gross_cents"], r["pool_cents"], r["platform_cents"]) == (gross, pool, platform)
        expected = {k: v.cents for k, v in largest_remainder(pool, weights).items()}
        assert alloc.get(b["batch_id"], {}) == expected


def test_revenue_check_catches_a_bonus_on_a_clip_without_imu():
    # A delivery row charging the 50 c/min bonus on a GPS-only clip (what a bug in the
    # selection would write): the model sums what the rows say (60 s x 250 / 60 = 250), the
    # blocking check recomputes from the batch's bonus and the clip's facts (200) and fails.
    dels, marks = bonus_tables(
        [{"batch_id": "B1", "model": "per_minute", "bonus": 50, "fee": None, "rows": [("a", 60, 200, True, False)]}]
    )
    dels = dels.set_column(
        dels.schema.get_field_index("sensor_bonus_cents"), "sensor_bonus_cents", pa.array([50], pa.int64())
    )
    model = load_model(SQL_ROOT / "marts" / "batch_revenue.sql")
    con = connect(DeltaStore(tempfile.gettempdir() + "/no-lake-needed"), [], {"share_rate_num": 1, "share_rate_den": 2})
    con.register("deal_deliveries", dels)
    con.register("delivered_batches", marks)
    result = run_model(con, model)
    assert result.to_pylist()[0]["gross_cents"] == 250
    failed = {t.name for t, n, _ in run_tests(con, model, result) if n}
    con.close()
    assert "revenue_matches_deliveries_and_batch_terms" in failed


def test_deliveries_written_before_v2_keep_their_revenue(store):
    # rows of a lake from before v2 (no bonus columns: null) price at the tier price alone
    old = [
        {
            "deal_id": "D1",
            "batch_id": "B1",
            "clip_id": "c",
            "subscriber_id": "s1",
            "tier": "hd",
            "billable_seconds": 61,
            "tier_price_cents": 200,
            "revenue_month": "2025-01",
            "cutoff_at": ts("2025-01-20T00:00:00Z"),
            "selection_rank": 1,
        }
    ]
    mark = {
        "deal_id": "D1",
        "batch_id": "B1",
        "buyer_id": "acme-ai",
        "pricing_model": "per_minute",
        "cutoff_at": ts("2025-01-20T00:00:00Z"),
        "revenue_month": "2025-01",
        "clips": 1,
        "billable_seconds": 61,
        "input_versions": "{}",
    }
    write_rows(store, "deal_deliveries", old, DELIVERY_SCHEMA)
    write_rows(store, "delivered_batches", [mark], DELIVERED_BATCH_SCHEMA)
    # 61 x 200 / 60 = 203 1/3 -> 203
    assert run_sql_model(store, "batch_revenue").to_pylist()[0]["gross_cents"] == 203


def test_a_lake_delivered_before_v2_gains_the_columns_and_keeps_its_history(lake):
    # B1 was delivered by the previous version (tables without the v2 columns). This version
    # adds the columns (null in the old rows, R12: nothing recomputed) and delivers B2 with
    # them. B1: c1 hd 60 s x 200 = 200 c. B2: c2 (GPS and IMU) 60 s x (200 + 50) = 250 c.
    jan10, feb10 = ts("2026-01-10T00:00:00Z"), ts("2026-02-10T00:00:00Z")
    b1, b2 = ts("2026-01-31T23:59:59Z"), ts("2026-02-28T23:59:59Z")
    lake.eligible("S1").clip("c1", "S1", uploaded_at=jan10, has_gps=True, has_imu=True)
    lake.deal("D1", prices=HD).batch("D1", "B1", cutoff_at=b1).batch("D1", "B2", cutoff_at=b2).build()
    lake.deliver(ts("2026-02-01T00:00:00Z"))
    store = lake.store
    v1 = {"deal_deliveries": 10, "delivered_batches": 12}  # the columns the tables had before v2
    for table, n in v1.items():
        old = store.read(table)
        store.overwrite(table, old.select(old.column_names[:n]))
    lake.clip("c2", "S1", uploaded_at=feb10, has_gps=True, has_imu=True)
    lake.deals[0]["sensor_bonus_cents"] = 50
    lake.run(ts("2026-03-01T00:00:00Z"))
    rows = {r["clip_id"]: r for r in lake.rows("D1")}
    assert (rows["c1"]["batch_id"], rows["c1"]["sensor_bonus_cents"], rows["c1"]["has_gps"]) == ("B1", None, None)
    assert (rows["c2"]["batch_id"], rows["c2"]["sensor_bonus_cents"], rows["c2"]["has_gps"]) == ("B2", 50, True)
    revenue = {r["batch_id"]: r["gross_cents"] for r in run_sql_model(store, "batch_revenue").to_pylist()}
    assert revenue == {"B1": 200, "B2": 250}
