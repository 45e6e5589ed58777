"""Deliveries through ``gopro_assets.domain.licensing.deliveries`` on real Delta tables (no Dagster).

R4 (duplicates never licensed), R5 (licensable), R6 (selection), R12 / §6 (due batches,
frozen history, late_revocations). Every scenario is built with the ``Lake`` builder
below (also used by tests/test_eligibility.py); each expectation is worked by hand in a
comment. Choices where the contract is silent: docs/ELIGIBILITY_CHOICES.md.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pyarrow as pa
import pytest
from conftest import run_sql_model, write_rows
from hypothesis import given, settings
from hypothesis import strategies as st

from gopro_assets.domain.footage.inventory import INVENTORY_SCHEMA, billable_seconds, mark_duplicates, tier
from gopro_assets.domain.ingestion.landing import BATCH_SCHEMA, DEAL_SCHEMA, LANDING_KINDS
from gopro_assets.domain.licensing import deliveries
from gopro_assets.domain.licensing.selection import select_batch
from gopro_assets.lake.delta_store import DeltaStore

UTC = UTC
US = timedelta(microseconds=1)


def ts(text: str) -> datetime:
    """'2026-01-31T12:00:00Z' -> aware UTC datetime."""
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


LONG_AGO = ts("2025-01-01T00:00:00Z")  # default subscribed_at / invited_at
OPTED_IN = ts("2025-01-02T00:00:00Z")  # default opt-in: its review window is long over
UPLOADED = ts("2025-06-01T00:00:00Z")  # default upload
CUTOFF = ts("2026-01-31T12:00:00Z")  # default batch cutoff
AFTER = ts("2026-03-01T00:00:00Z")  # an as_of after every default cutoff
ALL_PRICES = {"aerial": 400, "uhd": 300, "hd": 200, "sd": 100}


class Lake:
    """A scenario written straight to Delta tables, then delivered batch by batch."""

    def __init__(self, store: DeltaStore, review_days: int = 7):
        self.store, self.review_days = store, review_days
        self.subs: dict[str, dict] = {}
        self.events: list[dict] = []
        self.exclusions: list[dict] = []
        self.clips: list[dict] = []
        self.deals: list[dict] = []
        self.batches: list[dict] = []

    # -- inputs ------------------------------------------------------------------
    def sub(self, sid, country="US", subscribed_at=LONG_AGO, cancelled_at=None, invited_at=LONG_AGO):
        """A subscriber (an upsert: adding the same id again replaces the row, as ingestion does)."""
        self.subs[sid] = {
            "subscriber_id": sid,
            "email": f"{sid}@example.com",
            "country": country,
            "subscribed_at": subscribed_at,
            "cancelled_at": cancelled_at,
            "invited_at": invited_at,
            "_source_path": "subscribers/s.csv",
            "_source_line": len(self.subs) + 2,
        }
        return self

    def consent(self, event_id, sid, event_at, action="opt_in", excluded_buyers=()):
        self.events.append(
            {
                "event_id": event_id,
                "subscriber_id": sid,
                "event_at": event_at,
                "action": action,
                "excluded_buyers": list(excluded_buyers),
                "_source_path": "consent_events/e.jsonl",
                "_source_line": len(self.events) + 1,
            }
        )
        return self

    def eligible(self, sid, **sub):
        """A US subscriber, invited long ago, opted in long ago (review window long over)."""
        return self.sub(sid, **sub).consent(f"{sid}-in", sid, OPTED_IN)

    def exclusion(self, event_id, sid, clip_id, event_at, action="exclude"):
        self.exclusions.append(
            {
                "event_id": event_id,
                "subscriber_id": sid,
                "clip_id": clip_id,
                "event_at": event_at,
                "action": action,
                "_source_path": "clip_exclusions/x.jsonl",
                "_source_line": len(self.exclusions) + 1,
            }
        )
        return self

    def clip(
        self,
        clip_id,
        sid,
        uploaded_at=UPLOADED,
        width=1920,
        height=1080,
        fps=30.0,
        duration_s=60.0,
        published=False,
        activity="surf",
        mount=None,
        fingerprint=None,
        is_duplicate=False,
        duplicate_of=None,
        *,
        object_key=None,
        has_gps=False,
        has_imu=False,
        camera_model=None,
        location_cell=None,
        is_drone=False,
        recording_id=None,
        chapter=1,
    ):
        """One footage_inventory row. The v2 columns (R2b telemetry, R15 recording) default to
        a file without telemetry and to a one-chapter recording ``<sid>:<clip_id>`` (R15)."""
        short = min(width, height)
        self.clips.append(
            {
                "clip_id": clip_id,
                "subscriber_id": sid,
                "object_key": object_key or f"{sid}/{clip_id}.mp4",
                "uploaded_at": uploaded_at,
                "published": published,
                "activity": activity,
                "mount": mount,
                "duration_s": float(duration_s),
                "billable_seconds": billable_seconds(duration_s),
                "width": width,
                "height": height,
                "short_side_px": short,
                "fps": float(fps),
                "codec": "h264",
                "bit_rate": 1_000_000,
                "size_bytes": 1000,
                "fingerprint": fingerprint or f"fp-{clip_id}",
                "tier": tier(mount, short, is_drone),
                "is_duplicate": is_duplicate,
                "duplicate_of": duplicate_of,
                "telemetry": bool(has_gps or has_imu or camera_model or is_drone),
                "camera_model": camera_model,
                "has_gps": has_gps,
                "has_imu": has_imu,
                "is_drone": is_drone,
                "location_cell": location_cell,
                "recording_id": recording_id or f"{sid}:{clip_id}",
                "chapter": chapter,
                "upload_day": uploaded_at.date(),
            }
        )
        return self

    def deal(self, deal_id, buyer_id="acme", model="per_minute", prices=ALL_PRICES, **criteria):
        """A deal; ``criteria`` keys are the DEAL_SCHEMA criteria columns (missing = no filter)."""
        prices = prices or {}
        self.deals.append(
            {
                "deal_id": deal_id,
                "buyer_id": buyer_id,
                "buyer_name": buyer_id.title(),
                "signed_at": LONG_AGO,
                "pricing_model": model,
                **{f"price_{t}_cents": prices.get(t) for t in ALL_PRICES},
                **criteria,
                "_source_path": f"deals/{deal_id}.json",
                "_source_line": 0,
            }
        )
        return self

    def batch(self, deal_id, batch_id, cutoff_at=CUTOFF, max_minutes=None, fee_cents=None):
        self.batches.append(
            {
                "deal_id": deal_id,
                "batch_id": batch_id,
                "cutoff_at": cutoff_at,
                "max_minutes": max_minutes,
                "fee_cents": fee_cents,
                "_source_path": f"deals/{deal_id}.json",
                "_source_line": 0,
            }
        )
        return self

    # -- running -----------------------------------------------------------------
    def build(self):
        """(Re)write every input table and re-run the consent intervals and the exclusion timeline (as a new ingest would)."""
        s = self.store
        write_rows(s, "subscribers", list(self.subs.values()), LANDING_KINDS["subscribers"].schema)
        write_rows(s, "consent_events", self.events, LANDING_KINDS["consent_events"].schema)
        write_rows(s, "clip_exclusions", self.exclusions, LANDING_KINDS["clip_exclusions"].schema)
        write_rows(s, "footage_inventory", self.clips, INVENTORY_SCHEMA)
        write_rows(s, "license_deals", self.deals, DEAL_SCHEMA)
        write_rows(s, "license_batches", self.batches, BATCH_SCHEMA)
        run_sql_model(s, "consent_snapshots", review_days=self.review_days)
        run_sql_model(s, "int_clip_exclusion_timeline")
        deliveries.ensure_tables(s)
        return self

    def deliver(self, as_of=AFTER) -> list[dict]:
        """What the deal_deliveries asset does for one run: every due batch, in order."""
        deals = {d["deal_id"]: d for d in self.store.read("license_deals").to_pylist()}
        return [row for _, row in deliveries.deliver_due_batches(self.store, as_of, deals, self.review_days)]

    def run(self, as_of=AFTER) -> Lake:
        self.build().deliver(as_of)
        return self

    def rows(self, deal_id=None, batch_id=None) -> list[dict]:
        rows = self.store.read(deliveries.DELIVERIES).to_pylist()
        rows = [
            r
            for r in rows
            if (deal_id is None or r["deal_id"] == deal_id) and (batch_id is None or r["batch_id"] == batch_id)
        ]
        return sorted(rows, key=lambda r: (r["deal_id"], r["batch_id"], r["selection_rank"]))

    def delivered(self, deal_id=None, batch_id=None) -> list[str]:
        """Clip ids delivered, in R6 selection order within a batch."""
        return [r["clip_id"] for r in self.rows(deal_id, batch_id)]

    def late_revocations(self) -> list[dict]:
        out = run_sql_model(self.store, "late_revocations", review_days=self.review_days).to_pylist()
        return sorted(out, key=lambda r: (r["deal_id"], r["batch_id"], r["clip_id"]))


@pytest.fixture
def lake(store):
    return Lake(store)


# =========================================================================== R4
def test_r4_duplicate_never_licensed_original_by_uploaded_at_then_clip_id(lake):
    # Same fingerprint "same": A uploaded 10:00, B and C0 both at 09:00 -> the original is
    # the earliest upload, and between B and C0 (same instant) the smaller clip_id: "B".
    # A and C0 are duplicates of B (R4). Owners: A, C0 eligible; B's owner never opted in.
    rows = [
        {"clip_id": "A", "uploaded_at": ts("2025-06-01T10:00:00Z"), "fingerprint": "same"},
        {"clip_id": "C0", "uploaded_at": ts("2025-06-01T09:00:00Z"), "fingerprint": "same"},
        {"clip_id": "B", "uploaded_at": ts("2025-06-01T09:00:00Z"), "fingerprint": "same"},
    ]
    marked = {r["clip_id"]: (r["is_duplicate"], r["duplicate_of"]) for r in mark_duplicates(rows, [])}
    assert marked == {"A": (True, "B"), "B": (False, None), "C0": (True, "B")}
    lake.eligible("S1").sub("S2")  # S2: no consent event
    lake.clip(
        "A", "S1", uploaded_at=ts("2025-06-01T10:00:00Z"), fingerprint="same", is_duplicate=True, duplicate_of="B"
    )
    lake.clip(
        "C0", "S1", uploaded_at=ts("2025-06-01T09:00:00Z"), fingerprint="same", is_duplicate=True, duplicate_of="B"
    )
    lake.clip("B", "S2", uploaded_at=ts("2025-06-01T09:00:00Z"), fingerprint="same")
    lake.clip("U", "S1")  # unique fingerprint: licensed
    lake.deal("D1").batch("D1", "B1").run()
    # A and C0 are duplicates (never licensed, even though their owner is eligible); the
    # original B is not licensable (owner not opted in); only U is delivered.
    assert lake.delivered("D1") == ["U"]


def test_r4_original_is_licensed(lake):
    # The original (earliest upload) of a duplicate pair is licensed; the copy is not.
    lake.eligible("S1")
    lake.clip("orig", "S1", uploaded_at=ts("2025-06-01T00:00:00Z"), fingerprint="f")
    lake.clip(
        "copy", "S1", uploaded_at=ts("2025-06-02T00:00:00Z"), fingerprint="f", is_duplicate=True, duplicate_of="orig"
    )
    lake.deal("D1").batch("D1", "B1").run()
    assert lake.delivered("D1") == ["orig"]


def test_r4_stale_flag_in_another_partition_still_not_licensed(lake):
    # "late" (uploaded Jun 2, its partition written first, flagged original at the time) and
    # "early" (same file, uploaded Jun 1, arrived later: its partition run flags it original
    # and cannot re-flag "late" in the other partition). R4 over the whole inventory: "early"
    # is the original, "late" a duplicate -> only "early" is delivered.
    lake.eligible("S1")
    lake.clip("late", "S1", uploaded_at=ts("2025-06-02T00:00:00Z"), fingerprint="f")  # stale is_duplicate=False
    lake.clip("early", "S1", uploaded_at=ts("2025-06-01T00:00:00Z"), fingerprint="f")
    lake.deal("D1").batch("D1", "B1").run()
    assert lake.delivered("D1") == ["early"]


# =========================================================================== R5
# One lake, many deals: each deal differs from "D-none" (no criteria) by ONE criterion.
# Baseline clip: 1920x1080 (hd), 30 fps, 60 s, activity surf, unpublished, uploaded long
# before the cutoff, owner S1 eligible.
R5_CLIPS = {
    "base": {},
    "c720": {"width": 1280, "height": 720},  # short side 720 -> tier sd
    "portrait": {"width": 1080, "height": 1920},  # short side 1080 (not 1920)
    "fps2997": {"fps": 29.97},
    "fps30": {"fps": 30.0},
    "bike": {"activity": "bike"},
    "noact": {"activity": None},
    "pub": {"published": True},
    "dur999": {"duration_s": 9.99},
    "dur10": {"duration_s": 10.0},
    "atcut": {"uploaded_at": CUTOFF},  # uploaded_at == cutoff_at: allowed (<=)
    "late": {"uploaded_at": CUTOFF + US},  # one microsecond after the cutoff: excluded
}
R5_ALL = sorted(set(R5_CLIPS) - {"late"})
R5_DEALS = {
    # deal_id: (deal kwargs, clips NOT delivered besides "late", hand-worked)
    "D-none": ({}, set()),
    "D-px": ({"min_short_side_px": 1080}, {"c720"}),  # 1080 >= 1080 passes, portrait too
    "D-fps": ({"min_fps": 30.0}, {"fps2997"}),  # 29.97 < 30
    "D-act": ({"activities": ["surf", "ski"]}, {"bike", "noact"}),  # null activity not "in" a list
    "D-act-null": ({"activities": None}, set()),  # null = any activity, null included
    "D-act-empty": ({"activities": []}, set(R5_ALL)),  # an empty list matches no clip
    "D-unpub": ({"unpublished_only": True}, {"pub"}),
    "D-unpub-false": ({"unpublished_only": False}, set()),
    "D-dur": ({"min_duration_s": 10.0}, {"dur999"}),  # 9.99 < 10, 10.0 passes
    "D-nosd": ({"prices": {"aerial": 400, "uhd": 300, "hd": 200}}, {"c720"}),  # sd has no price
    "D-flat": ({"model": "flat_fee", "prices": None}, set()),  # flat fee: prices ignored
}


@pytest.fixture(scope="module")
def r5_lake(tmp_path_factory):
    lake = Lake(DeltaStore(str(tmp_path_factory.mktemp("r5") / "lake")))
    lake.eligible("S1")
    for cid, kw in R5_CLIPS.items():
        lake.clip(cid, "S1", **kw)
    for did, (kw, _) in R5_DEALS.items():
        lake.deal(did, **kw).batch(did, "B1", fee_cents=5000 if kw.get("model") == "flat_fee" else None)
    return lake.run()


@pytest.mark.parametrize("deal_id", sorted(R5_DEALS))
def test_r5_each_criterion(r5_lake, deal_id):
    _, excluded = R5_DEALS[deal_id]
    assert sorted(r5_lake.delivered(deal_id)) == sorted(set(R5_ALL) - excluded)


def test_r5_upload_after_cutoff_never_delivered(r5_lake):
    # "late" was uploaded 1 µs after the cutoff: in no deal; "atcut" (== cutoff) is in all.
    everything = r5_lake.delivered()
    assert "late" not in everything
    assert everything.count("atcut") == len(R5_DEALS) - 1  # all but D-act-empty (matches nothing)


def test_r5_flat_fee_rows_carry_no_price(r5_lake):
    assert {r["tier_price_cents"] for r in r5_lake.rows("D-flat")} == {None}
    # per_minute rows carry the deal's tier price: hd 200, sd 100
    prices = {r["clip_id"]: r["tier_price_cents"] for r in r5_lake.rows("D-none")}
    assert prices["base"] == 200 and prices["c720"] == 100


def test_r5_once_per_deal_across_batches_but_again_in_another_deal(lake):
    # Deal A: B1 (cutoff Jan 31) and B2 (cutoff Feb 28); deal B: one batch at Feb 28.
    # c1 uploaded before Jan 31, c2 in February.
    # A/B1 = {c1}; A/B2 = {c2} only (c1 was delivered in A/B1); B/X = {c1, c2}.
    lake.eligible("S1")
    lake.clip("c1", "S1", uploaded_at=ts("2026-01-10T00:00:00Z"))
    lake.clip("c2", "S1", uploaded_at=ts("2026-02-10T00:00:00Z"))
    lake.deal("A", buyer_id="acme").deal("B", buyer_id="beta")
    lake.batch("A", "B1", cutoff_at=ts("2026-01-31T23:59:59Z")).batch("A", "B2", cutoff_at=ts("2026-02-28T23:59:59Z"))
    lake.batch("B", "X", cutoff_at=ts("2026-02-28T23:59:59Z"))
    lake.run()
    assert lake.delivered("A", "B1") == ["c1"]
    assert lake.delivered("A", "B2") == ["c2"]
    assert lake.delivered("B", "X") == ["c1", "c2"]


def test_r5_once_per_deal_when_earlier_batch_delivered_in_an_earlier_run(lake):
    # Same as above but B1 is delivered in a run as of Feb 1 and B2 in a later run:
    # the "earlier batch" is read back from the frozen deal_deliveries table.
    lake.eligible("S1")
    lake.clip("c1", "S1", uploaded_at=ts("2026-01-10T00:00:00Z"))
    lake.deal("A").batch("A", "B1", cutoff_at=ts("2026-01-31T23:59:59Z"))
    lake.batch("A", "B2", cutoff_at=ts("2026-02-28T23:59:59Z"))
    lake.build()
    assert [r["batch_id"] for r in lake.deliver(ts("2026-02-01T00:00:00Z"))] == ["B1"]
    assert [r["batch_id"] for r in lake.deliver(ts("2026-03-01T00:00:00Z"))] == ["B2"]
    assert lake.delivered("A", "B1") == ["c1"] and lake.delivered("A", "B2") == []


# =========================================================================== R6
def test_r6_select_batch_skips_a_clip_that_does_not_fit():
    # cap 2 min = 120 s: 90 taken (room 30), 60 skipped (> 30), 30 taken (room 0), 1 skipped.
    assert select_batch([90, 60, 30, 1], 2) == [0, 2]
    assert select_batch([90, 60, 30, 1], None) == [0, 1, 2, 3]  # no cap
    assert select_batch([120], 2) == [0]  # exactly the cap fits
    assert select_batch([], 5) == []


def test_r6_selection_order_tier_then_uploaded_then_clip_id(lake):
    # Candidates (no cap): aerial (drone, 720p, uploaded last) ranks first; then uhd; then the
    # three hd by uploaded_at, the two hd uploaded at the same instant by clip_id ("h-a" < "h-b");
    # sd last although uploaded first.
    lake.eligible("S1")
    lake.clip("sd", "S1", width=640, height=480, uploaded_at=ts("2025-01-05T00:00:00Z"))
    lake.clip("h-b", "S1", uploaded_at=ts("2025-03-01T00:00:00Z"))
    lake.clip("h-a", "S1", uploaded_at=ts("2025-03-01T00:00:00Z"))
    lake.clip("h-early", "S1", uploaded_at=ts("2025-02-01T00:00:00Z"))
    lake.clip("uhd", "S1", width=3840, height=2160, uploaded_at=ts("2025-04-01T00:00:00Z"))
    lake.clip("air", "S1", width=1280, height=720, mount="drone", uploaded_at=ts("2025-05-01T00:00:00Z"))
    lake.deal("D1").batch("D1", "B1").run()
    assert lake.delivered("D1") == ["air", "uhd", "h-early", "h-a", "h-b", "sd"]
    assert [r["selection_rank"] for r in lake.rows("D1")] == [1, 2, 3, 4, 5, 6]


def test_r6_capped_batch_skips_long_clip_takes_shorter_later_one(lake):
    # Cap 2 min = 120 s. In R6 order (all hd, by uploaded_at): a 90 s, b 60 s, c 30 s, d 5 s.
    # a taken (90), b skipped (150 > 120), c taken (120), d skipped (125 > 120).
    lake.eligible("S1")
    for i, (cid, secs) in enumerate([("a", 90), ("b", 60), ("c", 30), ("d", 5)]):
        lake.clip(cid, "S1", duration_s=secs + 0.5, uploaded_at=UPLOADED + timedelta(hours=i))  # floor -> secs
    lake.deal("D1").batch("D1", "B1", max_minutes=2).run()
    assert lake.delivered("D1") == ["a", "c"]
    assert [r["selection_rank"] for r in lake.rows("D1")] == [1, 3]
    assert sum(r["billable_seconds"] for r in lake.rows("D1")) == 120
    # b and d were not delivered, so the deal's next batch may still take them.


def test_r6_cap_respects_tier_order(lake):
    # Cap 1 min, three 60 s clips: the aerial one (rank 4) fills the batch even though the
    # hd and sd ones were uploaded earlier.
    lake.eligible("S1")
    lake.clip("sd", "S1", width=640, height=360, uploaded_at=ts("2025-01-05T00:00:00Z"))
    lake.clip("hd", "S1", uploaded_at=ts("2025-01-06T00:00:00Z"))
    lake.clip("air", "S1", mount="drone", uploaded_at=ts("2025-05-01T00:00:00Z"))
    lake.deal("D1").batch("D1", "B1", max_minutes=1).run()
    assert lake.delivered("D1") == ["air"]


def test_r6_null_max_minutes_is_no_cap(lake):
    # 12 clips of 10 minutes each (2 hours) with max_minutes null: all 12 delivered.
    lake.eligible("S1")
    for i in range(12):
        lake.clip(f"c{i:02d}", "S1", duration_s=600, uploaded_at=UPLOADED + timedelta(minutes=i))
    lake.deal("D1").batch("D1", "B1", max_minutes=None).run()
    assert len(lake.delivered("D1")) == 12
    assert lake.store.read(deliveries.DELIVERED_BATCHES).to_pylist()[0]["billable_seconds"] == 7200


def test_r6_batches_processed_in_cutoff_order(lake):
    # Batch ids and table order both put the FEBRUARY batch first ("A-feb" < "Z-jan"), but
    # cutoff order is Z-jan (Jan 31) then A-feb (Feb 28). c1 (uploaded Jan 10) must go to
    # Z-jan; A-feb then only gets c2 (uploaded Feb 10), c1 already being delivered in the deal.
    lake.eligible("S1")
    lake.clip("c1", "S1", uploaded_at=ts("2026-01-10T00:00:00Z"))
    lake.clip("c2", "S1", uploaded_at=ts("2026-02-10T00:00:00Z"))
    lake.deal("D1")
    lake.batch("D1", "A-feb", cutoff_at=ts("2026-02-28T23:59:59Z"), max_minutes=1)
    lake.batch("D1", "Z-jan", cutoff_at=ts("2026-01-31T23:59:59Z"), max_minutes=1)
    lake.build()
    assert [b["batch_id"] for b in deliveries.due_batches(lake.store, AFTER)] == ["Z-jan", "A-feb"]
    lake.deliver(AFTER)
    assert lake.delivered("D1", "Z-jan") == ["c1"]
    assert lake.delivered("D1", "A-feb") == ["c2"]
    assert {r["revenue_month"] for r in lake.rows("D1", "Z-jan")} == {"2026-01"}  # R10
    assert {r["revenue_month"] for r in lake.rows("D1", "A-feb")} == {"2026-02"}


# =========================================================================== R12 / §6
def test_r12_due_only_when_cutoff_before_as_of(lake):
    # cutoff 2026-01-31T23:59:59Z. as_of == cutoff: not due (strictly before). 1 µs later: due.
    # "--through 2026-01-31" means as_of = 2026-02-01T00:00Z (end of that day): due.
    cutoff = ts("2026-01-31T23:59:59Z")
    lake.eligible("S1").clip("c1", "S1").deal("D1").batch("D1", "B1", cutoff_at=cutoff).build()
    assert deliveries.due_batches(lake.store, cutoff) == []
    assert deliveries.due_batches(lake.store, cutoff - US) == []
    assert [b["batch_id"] for b in deliveries.due_batches(lake.store, cutoff + US)] == ["B1"]
    assert [b["batch_id"] for b in deliveries.due_batches(lake.store, ts("2026-02-01T00:00:00Z"))] == ["B1"]


def test_r12_delivered_batch_is_frozen(lake):
    # After delivery the batch is no longer due; a clip uploaded before the cutoff that only
    # arrives now (and a new eligible owner) does not change the frozen manifest.
    lake.eligible("S1").clip("c1", "S1").deal("D1").batch("D1", "B1").run()
    before = lake.rows()
    assert [r["clip_id"] for r in before] == ["c1"]
    assert deliveries.due_batches(lake.store, AFTER) == []
    lake.eligible("S2").clip("c-late-arrival", "S2", uploaded_at=CUTOFF - timedelta(days=1))
    lake.run()  # rebuild inputs, run the delivery step again
    assert lake.rows() == before
    assert len(lake.store.read(deliveries.DELIVERED_BATCHES)) == 1


def test_r12_rerun_after_crash_between_deliveries_and_marker(lake):
    # A run crashed after writing B1's deliveries but before marking B1 delivered. The next
    # run selects B1 again and must give the same manifest (its own rows from the crashed
    # attempt must not count as "delivered in an earlier batch of the deal").
    lake.eligible("S1").clip("c1", "S1").clip("c2", "S1", uploaded_at=UPLOADED + timedelta(hours=1))
    lake.deal("D1").batch("D1", "B1").build()
    lake.deliver()
    expected = lake.rows()
    assert [r["clip_id"] for r in expected] == ["c1", "c2"]
    lake.store.overwrite(deliveries.DELIVERED_BATCHES, deliveries.DELIVERED_BATCH_SCHEMA.empty_table())  # the crash
    assert [b["batch_id"] for b in deliveries.due_batches(lake.store, AFTER)] == ["B1"]
    lake.deliver()
    assert lake.rows() == expected


@pytest.fixture
def frozen(lake):
    """S1 owns c1, S2 owns c2, S3 owns c3; all eligible; D1 (acme) batch B1 at CUTOFF
    delivered all three; D2 (beta) batch B1 too."""
    for s in ("S1", "S2", "S3"):
        lake.eligible(s).clip(f"c{s[1]}", s)
    lake.deal("D1", buyer_id="acme").batch("D1", "B1").deal("D2", buyer_id="beta").batch("D2", "B1").run()
    assert lake.delivered("D1") == ["c1", "c2", "c3"] and lake.delivered("D2") == ["c1", "c2", "c3"]
    assert lake.late_revocations() == []
    return lake


def _late(lake: Lake) -> tuple[list[dict], list[dict]]:
    """Rebuild the inputs with the late change, run the delivery step again (nothing due),
    and return (deal_deliveries, late_revocations)."""
    before = lake.rows()
    lake.run()
    assert lake.rows() == before, "R12: delivered history was rewritten"
    return before, lake.late_revocations()


def _brief(rows):
    return [
        (r["deal_id"], r["batch_id"], r["clip_id"], r["subscriber_id"], r["event_id"], r["source"], r["reason"])
        for r in rows
    ]


def test_r12_late_opt_out_recorded_not_rewritten(frozen):
    # S1 opted out one day before the cutoff, but the event only arrives after delivery.
    # At the cutoff S1 is therefore not opted in: both deals' c1 deliveries are recorded
    # (event S1-out, source consent_events); deal_deliveries is unchanged.
    frozen.consent("S1-out", "S1", CUTOFF - timedelta(days=1), "opt_out")
    _, late = _late(frozen)
    assert _brief(late) == [
        ("D1", "B1", "c1", "S1", "S1-out", "consent_events", "not_opted_in"),
        ("D2", "B1", "c1", "S1", "S1-out", "consent_events", "not_opted_in"),
    ]


def test_r12_late_opt_out_after_cutoff_is_not_a_revocation(frozen):
    # An opt_out dated after the cutoff does not make the delivery wrong: nothing recorded.
    frozen.consent("S1-out", "S1", CUTOFF + US, "opt_out")
    assert _late(frozen)[1] == []


def test_r12_late_buyer_exclusion_only_that_buyer(frozen):
    # A late opt_in (before the cutoff, no opt_out in between: enrolment unchanged) that
    # excludes buyer "acme": only the D1 (acme) delivery of c2 is recorded.
    frozen.consent("S2-in2", "S2", CUTOFF - timedelta(days=1), "opt_in", excluded_buyers=["acme"])
    assert _brief(_late(frozen)[1]) == [("D1", "B1", "c2", "S2", "S2-in2", "consent_events", "buyer_excluded")]


def test_r12_late_clip_exclusion_recorded(frozen):
    # S3 excluded c3 one hour before the cutoff; the event arrives after delivery.
    frozen.exclusion("X-c3", "S3", "c3", CUTOFF - timedelta(hours=1))
    assert _brief(_late(frozen)[1]) == [
        ("D1", "B1", "c3", "S3", "X-c3", "clip_exclusions", "clip_excluded"),
        ("D2", "B1", "c3", "S3", "X-c3", "clip_exclusions", "clip_excluded"),
    ]


def test_r12_late_subscriber_change_recorded(frozen):
    # S2's subscriber row is corrected to country CA after delivery: at the cutoff S2 was not
    # eligible (not_us). No event id: the change came from the subscribers table.
    frozen.sub("S2", country="CA")
    assert _brief(_late(frozen)[1]) == [
        ("D1", "B1", "c2", "S2", None, "subscribers", "not_us"),
        ("D2", "B1", "c2", "S2", None, "subscribers", "not_us"),
    ]


def test_r12_late_cancellation_before_cutoff_recorded(frozen):
    # S3's row now says cancelled at the cutoff (cancelled_at <= t -> not eligible).
    frozen.sub("S3", cancelled_at=CUTOFF)
    late = _late(frozen)[1]
    assert {(r["clip_id"], r["source"], r["reason"]) for r in late} == {("c3", "subscribers", "cancelled")}
    assert len(late) == 2


def test_r12_late_opt_out_and_opt_in_inside_the_window(frozen):
    # Late pair before the cutoff: opt_out at cutoff-3d, opt_in at cutoff-2d -> enrolled_at
    # = cutoff-2d, window (7 days) not over at the cutoff: in_review_window, decided by the
    # opt_in event "S1-in2".
    frozen.consent("S1-out", "S1", CUTOFF - timedelta(days=3), "opt_out")
    frozen.consent("S1-in2", "S1", CUTOFF - timedelta(days=2), "opt_in")
    assert {(r["deal_id"], r["event_id"], r["source"], r["reason"]) for r in _late(frozen)[1]} == {
        ("D1", "S1-in2", "consent_events", "in_review_window"),
        ("D2", "S1-in2", "consent_events", "in_review_window"),
    }


def test_r12_two_late_causes_one_row_consistent_source(frozen):
    # S2 both moved to CA (subscriber row) and, late, excluded buyer acme: one row per
    # delivery; the subscriber-row condition comes first (macro order), so D1 and D2 say
    # not_us / subscribers / no event id (never "not_us" with source consent_events).
    frozen.sub("S2", country="CA")
    frozen.consent("S2-in2", "S2", CUTOFF - timedelta(days=1), "opt_in", excluded_buyers=["acme"])
    assert _brief(_late(frozen)[1]) == [
        ("D1", "B1", "c2", "S2", None, "subscribers", "not_us"),
        ("D2", "B1", "c2", "S2", None, "subscribers", "not_us"),
    ]


def test_r12_late_revocations_columns(frozen):
    frozen.consent("S1-out", "S1", CUTOFF - timedelta(days=1), "opt_out")
    late = _late(frozen)[1]
    assert {"deal_id", "batch_id", "clip_id", "subscriber_id", "event_id", "source", "reason", "cutoff_at"} <= set(
        late[0]
    )
    assert late[0]["cutoff_at"] == CUTOFF


def test_r12_deliveries_schema_has_revenue_month(frozen):
    # §5 deal_deliveries columns
    t = frozen.store.read(deliveries.DELIVERIES)
    assert {"deal_id", "batch_id", "clip_id", "subscriber_id", "tier", "billable_seconds", "revenue_month"} <= set(
        t.column_names
    )
    assert t.schema.field("billable_seconds").type == pa.int64()


def test_r10_revenue_month_is_the_utc_month_of_the_cutoff():
    # 2026-01-31T23:30-05:00 == 2026-02-01T04:30Z -> "2026-02"; the lake itself stores UTC.
    minus5 = timezone(timedelta(hours=-5))
    assert deliveries.revenue_month(datetime(2026, 1, 31, 23, 30, tzinfo=minus5)) == "2026-02"
    assert deliveries.revenue_month(ts("2026-01-31T23:59:59.999999Z")) == "2026-01"


@settings(max_examples=60, deadline=None)
@given(
    seconds=st.lists(st.integers(0, 300), max_size=12),
    cap=st.none() | st.integers(0, 40),
    whole=st.booleans(),
)
def test_r6_batch_deliveries_equal_select_batch_whether_or_not_everything_fits(seconds, cap, whole):
    # batch_deliveries takes every candidate at once when they all fit (no walk); the rows
    # and ranks must be those select_batch picks either way
    units = [f"r{i // 3}" if whole else f"c{i}" for i in range(len(seconds))]
    n = len(seconds)
    candidates = pa.table(
        {
            "clip_id": [f"c{i}" for i in range(n)],
            "subscriber_id": ["S"] * n,
            "tier": ["hd"] * n,
            "billable_seconds": pa.array(seconds, pa.int64()),
            "tier_price_cents": pa.array([200] * n, pa.int64()),
            "sensor_bonus_cents": pa.array([0] * n, pa.int64()),
            "has_gps": [False] * n,
            "has_imu": [False] * n,
            "camera_model": pa.array([None] * n, pa.string()),
            "recording_id": units,
            "chapter": pa.array([1] * n, pa.int64()),
            "unit_id": units,
        }
    )
    batch = {"deal_id": "D", "batch_id": "B", "max_minutes": cap, "cutoff_at": CUTOFF}
    rows = deliveries.batch_deliveries(batch, {"pricing_model": "per_minute"}, candidates)
    chosen = select_batch(seconds, cap, units)
    assert rows["clip_id"].to_pylist() == [f"c{i}" for i in chosen]
    assert rows["selection_rank"].to_pylist() == [i + 1 for i in chosen]
