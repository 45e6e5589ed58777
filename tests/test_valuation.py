"""Valuation (issue 5): the clip value model learns a known price structure, beats the
tier-mean baseline without leaking the test months, is deterministic to the byte, and
its Dagster assets, report section and notebook run on a real lake.

The lake here is synthetic but real: Delta tables with the pipeline's own schemas, the
consent and revenue SQL models run on DuckDB to derive the rest, and prices drawn from a
known rule (tier base x activity premium x unpublished premium x noise, plus R7's sensor
bonus for a clip with GPS and IMU telemetry), so the test knows what the model should find
and that the telemetry features are what finds the bonus.
"""

from __future__ import annotations

import json
import math
import os
import random
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import dagster as dg
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.feather as feather
import pytest
from conftest import run_sql_model

from gopro_assets.definitions import defs
from gopro_assets.domain.footage.inventory import FOOTAGE_QUARANTINE_SCHEMA, INVENTORY_SCHEMA, tier
from gopro_assets.domain.ingestion import landing
from gopro_assets.domain.licensing.deliveries import DELIVERED_BATCH_SCHEMA, DELIVERY_SCHEMA
from gopro_assets.domain.valuation import model as val
from gopro_assets.lake.delta_store import DeltaStore
from gopro_assets.shared.partitions import THROUGH_TAG
from gopro_assets.shared.resources import LakehouseResource
from gopro_assets.sql_engine.runner import connect, fetch_arrow
from gopro_tools.pipeline import run_sql

ROOT = Path(__file__).resolve().parents[1]
UTC = UTC
THROUGH = date(2025, 7, 31)
AS_OF = {
    "as_of": "2025-08-01T00:00:00+00:00",
    "share_rate_num": 1,
    "share_rate_den": 2,
    "min_payout_cents": 1000,
    "review_days": 7,
}
VALUATION_ASSETS = [
    "int_clip_features",
    "int_delivery_prices",
    "clip_value_model",
    "clip_valuations",
    "library_valuation",
]

# -- the known price structure ------------------------------------------------------
BASE = {"aerial": 350, "uhd": 250, "hd": 150, "sd": 75}  # cents per minute
TARGETED = {"surf", "ski", "dive"}  # activities the buyers pay a premium for
ACTIVITY_PREMIUM, UNPUBLISHED_PREMIUM, NOISE = 1.15, 1.12, 0.05
ACTIVITIES = ["surf", "ski", "dive", "bike", "hike", "drive", None]
MOUNTS = ["helmet", "chest", "handheld", "board", None]
RESOLUTIONS = [(640, 360), (1280, 720), (1920, 1080), (1080, 1920), (2704, 1520), (3840, 2160)]
MONTHS = ["2025-02", "2025-03", "2025-04", "2025-05", "2025-06", "2025-07"]
UPLOADS_SCHEMA = landing.LANDING_KINDS["uploads"].schema


# telemetry (R2b): a clip with GPS and IMU earns the sensor bonus on top (R7's per-minute bonus)
SENSOR_BONUS = 40  # cents per minute
CAMERAS = ["HERO5 Black", "HERO7 Black", "HERO9 Black", "HERO11 Black", "GoPro Max"]
TELEMETRY_SEED = 1  # its own generator: the clips, deliveries and noise draws stay those of `seed`


def base_price(tier_: str, activity: str | None, published: bool) -> float:
    p = BASE[tier_]
    if activity in TARGETED:
        p *= ACTIVITY_PREMIUM
    if not published:
        p *= UNPUBLISHED_PREMIUM
    return p


def true_price(tier_: str, activity: str | None, published: bool, gps_imu: bool = False) -> float:
    return base_price(tier_, activity, published) + (SENSOR_BONUS if gps_imu else 0)


def sensors(c: dict) -> bool:
    return bool(c["has_gps"] and c["has_imu"])


def month_end(month: str) -> datetime:
    y, m = map(int, month.split("-"))
    nxt = datetime(y + (m == 12), m % 12 + 1, 1, tzinfo=UTC)
    return nxt - timedelta(seconds=1)


# Owners by consent situation on the snapshot day (THROUGH): what library_valuation must find.
OWNER_KINDS = {
    "elig": "licensable_now",  # US, invited, opted in long ago
    "review": "opted_in_in_review_or_excluded",  # opted in 2 days before the snapshot
    "silent": "not_opted_in",  # US, invited, never opted in: the upside
    "quit": "not_opted_in",  # opted in, then out
    "abroad": "ineligible",  # CA
    "uninvited": "ineligible",  # US, never invited (sends an opt-in anyway)
}


def synthetic_lake(store: DeltaStore, n_clips: int = 360, seed: int = 11) -> dict:
    """Write a lake with known prices and consent states; returns what the tests expect."""
    rng = random.Random(seed)
    t0 = datetime(2024, 12, 1, tzinfo=UTC)
    subs, consent, owners = [], [], []
    for kind in OWNER_KINDS:
        for i in range(4):
            sid = f"{kind}-{i}"
            owners.append(sid)
            subscribed = t0 + timedelta(days=rng.randint(0, 20))
            invited = None if kind == "uninvited" else subscribed + timedelta(days=1)
            subs.append(
                {
                    "subscriber_id": sid,
                    "email": f"{sid}@example.com",
                    "country": "CA" if kind == "abroad" else "US",
                    "subscribed_at": subscribed,
                    "cancelled_at": None,
                    "invited_at": invited,
                    "_source_path": "synthetic",
                    "_source_line": len(subs) + 1,
                }
            )
            when = {
                "elig": subscribed + timedelta(days=3),
                "quit": subscribed + timedelta(days=3),
                "abroad": subscribed + timedelta(days=3),
                "uninvited": subscribed + timedelta(days=3),
                "review": datetime(2025, 7, 29, 12, tzinfo=UTC),
            }.get(kind)
            if when:
                consent.append(
                    {
                        "event_id": f"ce-{len(consent) + 1:04d}",
                        "subscriber_id": sid,
                        "event_at": when,
                        "action": "opt_in",
                        "excluded_buyers": [],
                        "_source_path": "synthetic",
                        "_source_line": len(consent) + 1,
                    }
                )
            if kind == "quit":
                consent.append(
                    {
                        "event_id": f"ce-{len(consent) + 1:04d}",
                        "subscriber_id": sid,
                        "event_at": datetime(2025, 5, 1, tzinfo=UTC),
                        "action": "opt_out",
                        "excluded_buyers": [],
                        "_source_path": "synthetic",
                        "_source_line": len(consent) + 1,
                    }
                )
    clips, expected_state = [], {}
    trng = random.Random(seed * 1000 + TELEMETRY_SEED)
    for i in range(n_clips):
        owner = owners[i % len(owners)]
        w, h = rng.choice(RESOLUTIONS)
        drone = rng.random() < 0.08
        mount = "drone" if drone else rng.choice(MOUNTS)
        duration = round(rng.uniform(5, 60), 2)
        uploaded = datetime(2025, 1, 2, tzinfo=UTC) + timedelta(hours=rng.randint(0, 24 * 150))
        clip_id = f"clip-{i:05d}"
        # telemetry: most clips have a track with IMU; GPS needs a fix (indoor clips have none);
        # drone clips come from a HERO5 on a Karma
        telemetry = drone or trng.random() < 0.85
        camera = "HERO5 Black" if drone else trng.choice(CAMERAS) if telemetry else None
        has_gps = telemetry and trng.random() < 0.6
        has_imu = telemetry and (drone or trng.random() < 0.9)
        clips.append(
            {
                "clip_id": clip_id,
                "subscriber_id": owner,
                "object_key": f"{owner}/GH01{i:04d}.MP4",
                "uploaded_at": uploaded,
                "published": rng.random() < 0.35,
                "activity": rng.choice(ACTIVITIES),
                "mount": mount,
                "duration_s": duration,
                "billable_seconds": math.floor(duration),
                "width": w,
                "height": h,
                "short_side_px": min(w, h),
                "fps": float(rng.choice([24, 25, 30, 60, 120])),
                "codec": "h264",
                "bit_rate": 8_000_000,
                "size_bytes": 1000 + i,
                "fingerprint": f"fp-{i:05d}",
                "tier": tier(mount, min(w, h)),
                "is_duplicate": False,
                "duplicate_of": None,
                "upload_day": uploaded.date(),
                "telemetry": telemetry,
                "camera_model": camera,
                "has_gps": has_gps,
                "has_imu": has_imu,
                "is_drone": drone and telemetry,
            }
        )
        expected_state[clip_id] = OWNER_KINDS[owner.split("-")[0]]
    # one byte-identical re-upload (R4) and one clip its eligible owner excluded (R1b)
    dup = dict(
        clips[0],
        clip_id="clip-dup",
        object_key="elig-0/copy.MP4",
        is_duplicate=True,
        duplicate_of=clips[0]["clip_id"],
        uploaded_at=clips[0]["uploaded_at"] + timedelta(days=1),
    )
    clips.append(dup)
    expected_state["clip-dup"] = "duplicate"
    excluded = next(c for c in clips if c["subscriber_id"] == "elig-1")
    expected_state[excluded["clip_id"]] = "opted_in_in_review_or_excluded"
    exclusions = [
        {
            "event_id": "cx-0001",
            "subscriber_id": "elig-1",
            "clip_id": excluded["clip_id"],
            "event_at": datetime(2025, 7, 1, tzinfo=UTC),
            "action": "exclude",
            "_source_path": "synthetic",
            "_source_line": 1,
        }
    ]

    # deliveries: most clips sell once in a month after their upload; one flat-fee batch a month
    deliveries, batches = [], []
    by_month: dict[str, list[dict]] = {m: [] for m in MONTHS}
    for c in clips:
        if c["is_duplicate"] or rng.random() > 0.75:
            continue
        months = [m for m in MONTHS if month_end(m) >= c["uploaded_at"]]
        by_month[rng.choice(months)].append(c)
    for month in MONTHS:
        cutoff = month_end(month)
        sold = by_month[month]
        # a flat-fee deal buys one segment (hd driving and biking footage), as buyers do
        flat = [c for c in sold if c["tier"] == "hd" and c["activity"] in ("drive", "bike")][:4]
        per_minute = [c for c in sold if c not in flat]
        for deal, pricing, chosen in [("D-PM", "per_minute", per_minute), ("D-FF", "flat_fee", flat)]:
            fee = None
            if pricing == "flat_fee":  # the fee is what the clips are worth: its spread is their weighted mean
                fee = round(
                    sum(
                        true_price(c["tier"], c["activity"], c["published"], sensors(c)) * c["billable_seconds"] / 60
                        for c in chosen
                    )
                )
            for rank, c in enumerate(chosen, 1):
                # the deal's tier price (with its premiums and noise); R7 adds the bonus on top
                price = base_price(c["tier"], c["activity"], c["published"]) * math.exp(rng.gauss(0, NOISE))
                bonus = SENSOR_BONUS if pricing == "per_minute" and sensors(c) else None
                deliveries.append(
                    {
                        "deal_id": deal,
                        "batch_id": f"B-{month}",
                        "clip_id": c["clip_id"],
                        "subscriber_id": c["subscriber_id"],
                        "tier": c["tier"],
                        "billable_seconds": c["billable_seconds"],
                        "tier_price_cents": round(price) if pricing == "per_minute" else None,
                        "sensor_bonus_cents": bonus,
                        "has_gps": c["has_gps"],
                        "has_imu": c["has_imu"],
                        "camera_model": c["camera_model"],
                        "revenue_month": month,
                        "cutoff_at": cutoff,
                        "selection_rank": rank,
                    }
                )
            batches.append(
                {
                    "deal_id": deal,
                    "batch_id": f"B-{month}",
                    "buyer_id": "acme-ai" if deal == "D-PM" else "northwind",
                    "pricing_model": pricing,
                    "cutoff_at": cutoff,
                    "revenue_month": month,
                    "max_minutes": None,
                    "fee_cents": fee,
                    "sensor_bonus_cents": SENSOR_BONUS if pricing == "per_minute" else None,
                    "clips": len(chosen),
                    "billable_seconds": sum(c["billable_seconds"] for c in chosen),
                    "candidates": len(chosen),
                    "input_versions": "{}",
                }
            )

    store.overwrite("subscribers", pa.Table.from_pylist(subs, schema=landing.SUBSCRIBERS_SCHEMA))
    store.overwrite("consent_events", pa.Table.from_pylist(consent, schema=landing.CONSENT_EVENTS_SCHEMA))
    store.overwrite("clip_exclusions", pa.Table.from_pylist(exclusions, schema=landing.CLIP_EXCLUSIONS_SCHEMA))
    store.overwrite("footage_inventory", pa.Table.from_pylist(clips, schema=INVENTORY_SCHEMA))
    # the upload rows the inventory was probed from, plus one whose video could not be probed
    # (int_clip_features' check recomputes its clips from them)
    broken = dict(clips[1], clip_id="clip-broken", object_key=f"{clips[1]['subscriber_id']}/broken.MP4")
    store.overwrite("uploads", pa.Table.from_pylist([upload_row(c) for c in [*clips, broken]], schema=UPLOADS_SCHEMA))
    quarantined = {k: broken[k] for k in ("clip_id", "subscriber_id", "object_key", "upload_day")}
    store.overwrite(
        "footage_quarantine",
        pa.Table.from_pylist(
            [quarantined | {"reason": "unreadable video", "severity": "error"}], schema=FOOTAGE_QUARANTINE_SCHEMA
        ),
    )
    store.overwrite("deal_deliveries", pa.Table.from_pylist(deliveries, schema=DELIVERY_SCHEMA))
    store.overwrite("delivered_batches", pa.Table.from_pylist(batches, schema=DELIVERED_BATCH_SCHEMA))
    # the rest by the pipeline's own SQL models
    run_sql_model(store, "int_clip_exclusion_timeline")
    run_sql_model(store, "consent_snapshots")
    run_sql_model(store, "batch_revenue")
    return {"expected_state": expected_state, "clips": {c["clip_id"]: c for c in clips}}


def upload_row(clip: dict) -> dict:
    """The uploads row a clip of footage_inventory came from."""
    fields = ("clip_id", "subscriber_id", "object_key", "uploaded_at", "published", "activity", "mount")
    return {k: clip[k] for k in fields} | {"_source_path": "synthetic", "_source_line": 1}


def training_rows(store: DeltaStore) -> pa.Table:
    run_sql_model(store, "int_clip_features", **AS_OF)
    run_sql_model(store, "int_delivery_prices", **AS_OF)
    con = connect(store, ["int_clip_features", "int_delivery_prices"], {})
    try:
        return fetch_arrow(con, val.TRAINING_SQL)
    finally:
        con.close()


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    store = DeltaStore(str(tmp_path_factory.mktemp("valuation") / "lake"))
    info = synthetic_lake(store)
    return store, info, training_rows(store)


@pytest.fixture(scope="module")
def trained(synthetic):
    return val.train(synthetic[2])


# -- the model learns the structure and beats the baseline ----------------------------
def test_model_beats_tier_mean_baseline_on_known_structure(trained):
    bt = trained.backtest
    assert trained.kind == "gradient_boosting", trained.reason
    assert bt.test_months == ["2025-07"] or bt.test_months[-1] == "2025-07"
    # the tier means cannot see the activity and unpublished premiums; the model must
    assert bt.model["mae"] < 0.6 * bt.baseline["mae"], (bt.model, bt.baseline)
    assert bt.model["r2"] > 0.85 and bt.model["r2"] > bt.baseline["r2"], (bt.model, bt.baseline)
    assert trained.metrics["backtest"]["model_mae"] == bt.model["mae"]


def test_telemetry_features_beat_the_same_model_without_them(synthetic, trained):
    """The GPS+IMU sensor bonus is in the prices: the model with the telemetry features
    finds it, the same model without them cannot (both fitted and scored here)."""
    rows = synthetic[2]
    with_t = val.backtest(rows)
    without = val.backtest(rows, features=val.TELEMETRY_FREE)
    assert with_t.test_months == without.test_months and with_t.test_rows == without.test_rows
    assert with_t.model == trained.backtest.model  # the served backtest is the one with telemetry
    assert with_t.model["mae"] < 0.8 * without.model["mae"], (with_t.model, without.model)
    assert with_t.model_per_minute["mae"] < 0.8 * without.model_per_minute["mae"]
    assert with_t.model["r2"] > without.model["r2"]
    # both are recorded with the served model's evidence
    assert trained.metrics["backtest"]["model_mae_without_telemetry"] == without.model["mae"]
    assert set(val.TELEMETRY) <= set(val.FEATURES) and not set(val.TELEMETRY) & set(val.TELEMETRY_FREE)


def probe(**overrides) -> pa.Table:
    clip = {
        "tier": "hd",
        "activity": "hike",
        "mount": "helmet",
        "short_side_px": 1080,
        "fps": 30.0,
        "duration_s": 20.0,
        "published": False,
        "is_vertical": False,
        "owner_tenure_days": 30,
        "has_gps": False,
        "has_imu": False,
        "is_drone": False,
        "camera_generation": "hero7",
    } | overrides
    return pa.Table.from_pylist([clip])


def test_model_recovers_the_premiums(trained):
    model = trained.estimator
    price = lambda **kw: float(model.predict(val.frame(probe(**kw)))[0])  # noqa: E731
    unpublished = price(activity="hike", published=False) / price(activity="hike", published=True)
    targeted = price(activity="surf") / price(activity="hike")
    assert unpublished == pytest.approx(UNPUBLISHED_PREMIUM, abs=0.06)
    assert targeted == pytest.approx(ACTIVITY_PREMIUM, abs=0.06)
    tiers = [
        price(tier="aerial", mount="drone", short_side_px=2160),
        price(tier="uhd", short_side_px=2160),
        price(tier="hd"),
        price(tier="sd", short_side_px=720),
    ]
    # the sensor bonus: GPS and IMU together, not either alone
    bonus = price(has_gps=True, has_imu=True) - price()
    assert bonus == pytest.approx(SENSOR_BONUS, rel=0.35), bonus
    assert abs(price(has_gps=True) - price()) < 0.5 * SENSOR_BONUS
    assert tiers == sorted(tiers, reverse=True), tiers
    for got, t in zip(tiers, ["aerial", "uhd", "hd", "sd"]):
        assert got == pytest.approx(true_price(t, "hike", False), rel=0.12), t


# -- no leakage ---------------------------------------------------------------------------
def test_time_split_trains_only_on_earlier_months(synthetic):
    _, _, rows = synthetic
    split = val.time_split(rows)
    train_months = set(split.train.column("revenue_month").to_pylist())
    test_months = set(split.test.column("revenue_month").to_pylist())
    assert max(train_months) < min(test_months)
    assert sorted(test_months) == split.test_months and split.test_months[-1] == max(MONTHS)
    assert split.train.num_rows + split.test.num_rows == rows.num_rows
    assert split.test.num_rows >= val.TEST_SHARE * rows.num_rows
    train_keys = set(zip(*(split.train.column(k).to_pylist() for k in val.KEY)))
    assert not train_keys & set(zip(*(split.test.column(k).to_pylist() for k in val.KEY)))


def test_leaky_splits_are_detected(synthetic):
    _, _, rows = synthetic
    # a random split, the classic leak: test-month rows end up in training
    idx = list(range(rows.num_rows))
    random.Random(0).shuffle(idx)
    cut = int(0.8 * len(idx))
    with pytest.raises(val.LeakageError, match="not before the test months"):
        val.assert_no_leakage(rows.take(sorted(idx[:cut])), rows.take(sorted(idx[cut:])))
    # the same delivery on both sides
    split = val.time_split(rows)
    with pytest.raises(val.LeakageError):
        val.assert_no_leakage(pa.concat_tables([split.train, split.test.slice(0, 1)]), split.test)
    # a feature computed from the prices (the tier's mean price over every month) is refused
    leaky = rows.append_column("tier_mean_price", pa.array([0.0] * rows.num_rows))
    with pytest.raises(val.LeakageError, match="tier_mean_price"):
        val.frame(leaky, [*val.FEATURES, "tier_mean_price"])


def test_test_window_is_the_latest_months():
    assert val.pick_test_months({"2025-01": 50, "2025-02": 40, "2025-03": 10}) == ["2025-02", "2025-03"]
    assert val.pick_test_months({"2025-01": 50, "2025-02": 50}) == ["2025-02"]
    assert val.pick_test_months({"2025-01": 1, "2025-02": 1, "2025-03": 100}) == ["2025-03"]
    with pytest.raises(ValueError):
        val.pick_test_months({"2025-01": 10})


def test_too_little_history_serves_the_baseline(synthetic):
    _, _, rows = synthetic
    one_month = rows.filter(pc.equal(rows.column("revenue_month"), "2025-03"))
    trained = val.train(one_month)
    assert trained.kind == "tier_mean_baseline" and trained.backtest is None
    assert val.train(rows.slice(0, 0)).kind == "none"


# -- the features' blocking check recomputes the clips from the uploads -----------------------
def test_clip_features_check_recomputes_the_clips_from_the_uploads(synthetic, tmp_path):
    import shutil

    from gopro_assets.sql_engine.runner import SQL_ROOT, connect_for_model, load_model, run_model, run_tests

    check = "every_probed_upload_has_one_feature_row"
    shutil.copytree(synthetic[0].root, tmp_path / "lake")  # a private copy: inputs are corrupted below
    store = DeltaStore(str(tmp_path / "lake"))
    model = load_model(SQL_ROOT / "intermediate" / "int_clip_features.sql")
    con = connect_for_model(store, model, AS_OF)
    good = run_model(con, model)
    assert "clip-broken" not in good["clip_id"].to_pylist()  # quarantined: probed, no features

    def offending(rows: pa.Table, connection=con) -> list[str]:
        n, sample = {t.name: (n, s) for t, n, s in run_tests(connection, model, rows)}[check]
        assert n == len(sample)
        return [r["clip_id"] for r in sample]

    def without(rows: pa.Table, clip_id: str) -> pa.Table:
        return rows.filter(pc.not_equal(rows["clip_id"], clip_id))

    assert offending(good) == []
    first = good.slice(0, 1)
    clip = first["clip_id"][0].as_py()
    # (1) a feature row lost, (2) one twice, (3) the quarantined upload featured anyway
    assert offending(without(good, clip)) == [clip]
    assert offending(pa.concat_tables([good, first])) == [clip, clip]
    broken = first.set_column(0, "clip_id", pa.array(["clip-broken"]))
    assert offending(pa.concat_tables([good, broken])) == ["clip-broken"]
    # (4) a feature row whose activity is not its upload row's
    rows = good.to_pylist()
    rows[0]["activity"] = "not-" + rows[0]["activity"]
    assert offending(pa.Table.from_pylist(rows, schema=good.schema)) == [clip]
    # (5) a corrupted input: the inventory lost a probed clip, so the model, which reads the
    # inventory, has no feature row for it; the inventory and the features agree (the old
    # check, every inventory clip has a feature row, passed) but the uploads say otherwise
    store.overwrite("footage_inventory", without(store.read("footage_inventory"), clip))
    con = connect_for_model(store, model, AS_OF)
    assert offending(run_model(con, model), con) == [clip]


# -- determinism ------------------------------------------------------------------------
HASH_SCRIPT = """
import sys
import pyarrow.feather as feather
from gopro_assets.domain.valuation import model as valuation
print(valuation.train(feather.read_table(sys.argv[1])).sha256)
"""


def test_same_data_gives_the_same_model_bytes_and_valuations(synthetic, trained, tmp_path):
    store, _, rows = synthetic
    first, second = trained, val.train(rows)
    assert first.blob == second.blob and first.sha256 == second.sha256 and first.version == second.version
    assert first.version.startswith("2025-07-") and first.sha256.startswith(first.version[len("2025-07-") :])
    # in a fresh interpreter with another hash seed too
    path = tmp_path / "rows.arrow"
    feather.write_feather(rows, str(path))
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    out = subprocess.run(
        [sys.executable, "-c", HASH_SCRIPT, str(path)], capture_output=True, text=True, env=env, timeout=300
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == first.sha256
    # saved through the storage layer: same path, same bytes, same hash; valuations identical
    pointers, tables = [], []
    for name, model in (("a", first), ("b", second)):
        lake = str(tmp_path / name)
        pointers.append(val.save(lake, model))
        estimator, pointer = val.load(lake)
        con = connect(store, ["int_clip_features"], {})
        clips = fetch_arrow(con, val.CLIPS_SQL)
        con.close()
        tables.append(val.value_clips(estimator, pointer, clips))
    assert pointers[0]["path"] == pointers[1]["path"] and pointers[0]["sha256"] == pointers[1]["sha256"]
    assert (tmp_path / "a" / pointers[0]["path"]).read_bytes() == (tmp_path / "b" / pointers[1]["path"]).read_bytes()
    assert tables[0].equals(tables[1])
    assert tables[0].num_rows == clips.num_rows


def test_a_tampered_artefact_is_refused(trained, tmp_path):
    pointer = val.save(str(tmp_path), trained)
    path = tmp_path / pointer["path"]
    path.write_bytes(path.read_bytes() + b"x")
    with pytest.raises(ValueError, match="sha256"):
        val.load(str(tmp_path))


# -- Dagster, the report section and the notebook on the synthetic lake ----------------------
@pytest.fixture(scope="module")
def materialized(tmp_path_factory):
    """The synthetic lake with the five valuation assets materialized by Dagster."""
    base = tmp_path_factory.mktemp("valuation_dagster")
    store = DeltaStore(str(base / "lake"))
    info = synthetic_lake(store)
    lakehouse = LakehouseResource(landing=str(base / "landing"), lake=str(base / "lake"), exports=str(base / "exports"))
    with dg.instance_for_test() as instance:
        result = dg.materialize(
            [*defs.assets, *defs.asset_checks],
            selection=VALUATION_ASSETS,
            instance=instance,
            resources={"lakehouse": lakehouse},
            tags={THROUGH_TAG: THROUGH.isoformat()},
            raise_on_error=False,
        )
        checks = {
            e.event_specific_data.asset_check_key.name: e.event_specific_data
            for e in result.all_events
            if e.event_type_value == "ASSET_CHECK_EVALUATION"
        }
    return store, info, result, checks


def _metadata(result, asset: str) -> dict:
    [m] = [m for m in result.asset_materializations_for_node(asset)]
    return {k: getattr(v, "value", v) for k, v in m.metadata.items()}


def test_assets_materialize_and_record_the_backtest(materialized):
    store, info, result, checks = materialized
    assert result.success
    meta = _metadata(result, "clip_value_model")
    assert meta["model_kind"] == "gradient_boosting"
    assert meta["model_mae"] < meta["baseline_mae"] and meta["model_r2"] > meta["baseline_r2"]
    assert meta["per_minute_model_mae"] < meta["per_minute_baseline_mae"]
    assert meta["model_beats_baseline"] is True
    assert max(meta["train_months"]) < min(meta["test_months"])
    artefact = Path(meta["artefact_path"])
    assert artefact == Path(store.root) / "_models" / "clip_value_model" / meta["model_version"] / "model.pkl"
    assert val.sha256_bytes(artefact.read_bytes()) == meta["artefact_sha256"]
    # the rows Dagster trained on are the ones the library function sees: same model
    assert val.train(training_rows(store)).sha256 == meta["artefact_sha256"]
    for name in (
        "every_inventory_clip_valued",
        "valuations_finite_and_consistent",
        "model_beats_baseline_in_backtest",
        "every_probed_upload_has_one_feature_row",
        "every_valued_clip_counted_once",
    ):
        assert checks[name].passed, name
    valuations = {r["clip_id"]: r for r in store.read("clip_valuations").to_pylist()}
    assert set(valuations) == set(info["clips"])
    assert {r["model_version"] for r in valuations.values()} == {meta["model_version"]}
    for r in valuations.values():
        assert r["predicted_value_cents"] == pytest.approx(r["predicted_cents_per_minute"] * r["billable_seconds"] / 60)
        assert 0 < r["predicted_cents_per_minute"] < 1000
    assert _metadata(result, "clip_valuations")["clips_valued"] == len(info["clips"])


def test_library_valuation_states_and_opt_in_upside(materialized):
    store, info, _, _ = materialized
    valuations = {r["clip_id"]: r["predicted_value_cents"] for r in store.read("clip_valuations").to_pylist()}
    expected: dict[str, float] = {}
    for clip_id, state in info["expected_state"].items():
        expected[state] = expected.get(state, 0.0) + valuations[clip_id]
    lib = store.read("library_valuation").to_pylist()
    got: dict[str, float] = {}
    for r in lib:
        got[r["consent_state"]] = got.get(r["consent_state"], 0.0) + r["predicted_value_cents"]
    assert set(got) == set(expected)
    for state in expected:
        assert got[state] == pytest.approx(expected[state]), state
    upside = sum(r["opt_in_upside_cents"] for r in lib)
    assert upside == pytest.approx(expected["not_opted_in"]) and upside > 0
    # what telemetry adds: the upside's clips with GPS and IMU, and what a clip of each is worth
    upside_clips = [c for c, state in info["expected_state"].items() if state == "not_opted_in"]
    with_sensors = [c for c in upside_clips if sensors(info["clips"][c])]
    gps_upside = sum(r["opt_in_upside_gps_imu_cents"] for r in lib)
    assert gps_upside == pytest.approx(sum(valuations[c] for c in with_sensors)) and 0 < gps_upside < upside
    assert sum(r["gps_imu_clips"] for r in lib) == sum(sensors(c) for c in info["clips"].values())
    assert sum(r["gps_imu_value_cents"] for r in lib) == pytest.approx(
        sum(valuations[c] for c, clip in info["clips"].items() if sensors(clip))
    )
    assert {r["snapshot_date"] for r in lib} == {THROUGH}
    assert sum(r["clips"] for r in lib) == len(info["clips"])


def test_valuation_section_in_the_finance_report(materialized):
    from gopro_assets.domain.finance.exports import connect_lake
    from gopro_assets.domain.finance.report import SECTIONS, build_report, required_tables

    store, _, _, _ = materialized
    assert "library_valuation" in required_tables()
    section = next(s for s in SECTIONS if s.build.__name__ == "valuation_report_section")
    con = connect_lake(store, ["library_valuation"])
    page = build_report(con, "2025-07", sections=[section]).decode()
    assert "Library valuation (estimates)" in page and "Not money owed" in page
    assert page.count('class="plotly-graph-div"') == 2
    assert "What telemetry adds" in page and "clips with GPS+IMU" in page
    assert page == build_report(con, "2025-07", sections=[section]).decode()  # reproducible


def _kernel(tmp_path: Path) -> tuple[str, dict]:
    """A kernelspec running this very interpreter, so the notebook sees this venv."""
    spec_dir = tmp_path / "jupyter" / "kernels" / "valuation-test"
    spec_dir.mkdir(parents=True)
    (spec_dir / "kernel.json").write_text(
        json.dumps(
            {
                "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                "display_name": "valuation test",
                "language": "python",
            }
        )
    )
    return "valuation-test", {"JUPYTER_PATH": str(tmp_path / "jupyter")}


def test_notebook_runs_on_the_lake(materialized, tmp_path, monkeypatch):
    import nbformat
    from nbclient import NotebookClient

    store, _, _, _ = materialized
    name, env = _kernel(tmp_path)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    monkeypatch.setenv("GOPRO_LAKE", store.root)
    nb = nbformat.read(ROOT / "notebooks" / "valuation_explorer.ipynb", as_version=4)
    assert not any(c.get("outputs") for c in nb.cells if c.cell_type == "code"), "commit the notebook without outputs"
    NotebookClient(nb, timeout=300, kernel_name=name, resources={"metadata": {"path": str(tmp_path)}}).execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    charts = [o for o in outputs if o.output_type == "display_data" and "application/vnd.plotly.v1+json" in o.data]
    assert len(charts) >= 6
    text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    assert "served: gradient_boosting" in text and "not_opted_in" in text
    assert sum(1 for c in nb.cells if c.cell_type == "markdown") >= 5


# -- the real pipeline ------------------------------------------------------------------
@pytest.mark.integration
@pytest.mark.system  # the whole library pipeline on a generated demo
def test_run_all_values_every_clip_of_a_demo_lake(tmp_path):
    """gopro-lake's own path on a small generated demo: ingest, probe, deliver, revenue,
    then the valuation stage of lib.pipeline.run_all."""
    from gopro_tools.demo_landing import generate_demo
    from gopro_tools.pipeline import run_all

    generate_demo(tmp_path / "landing", subscribers=12, clips=24, seed=3)
    store = DeltaStore(str(tmp_path / "lake"))
    run_all(store, str(tmp_path / "landing"), date(2025, 1, 1), THROUGH)
    inventory = set(store.read("footage_inventory", columns=["clip_id"]).column("clip_id").to_pylist())
    pointer = val.read_pointer(store.root)
    valued = store.read("clip_valuations").to_pylist()
    if pointer["version"] is None:  # nothing delivered in so small a demo: nothing to learn from
        assert valued == []
    else:
        assert {r["clip_id"] for r in valued} == inventory
        assert all(r["model_version"] == pointer["version"] for r in valued)
    lib = store.read("library_valuation")
    assert sum(lib.column("clips").to_pylist()) == len(valued)
    # rerunning the stage changes nothing (same model bytes, tables not rewritten)
    versions = {t: store.version(t) for t in ("clip_valuations", "library_valuation", "int_clip_features")}
    val.run_stage(store, AS_OF, run_sql)
    assert val.read_pointer(store.root) == pointer
    assert {t: store.version(t) for t in versions} == versions
