"""Synthetic data at scale: a deterministic "world" of subscribers, consent, uploads and
deals, written either as landing files (contract §2 layout) or directly as the lake tables
that ingestion and the probe would produce.

Why it is built this way:

* **At scale, no video files.** 10 million clips cannot be encoded and probed for a
  benchmark, so the inventory is generated as probed metadata: ``footage_inventory`` rows
  in :data:`gopro_assets.domain.footage.inventory.INVENTORY_SCHEMA`, with the same tier (R3),
  billable seconds (R2), duplicate flags (R4), telemetry facts (R2b: most GoPro clips carry
  a track, most with a GPS cell, a few flown by a Karma) and recordings (R15: object keys
  named like the cameras name chapters, ``GX01NNNN``/``GX02NNNN``..., about one clip in
  twelve a later chapter of the clip before it) the pipeline would compute. The probe
  itself is measured on real MP4s by ``probe_bench``. :class:`SynthProbe` stands in for
  ``probe_many`` when the pipeline runs on synthetic uploads: it returns, for an object key,
  the metadata the generator assigned to it.
* **Counter-based randomness.** Every attribute of subscriber ``s`` or clip ``i`` is a
  hash of ``(seed, attribute, index)`` (splitmix64), vectorised with numpy. Any subset of
  indexes can be generated on its own, in any order and in chunks, and always gets the
  same values: the lake tables, the landing files and the stand-in probe agree by
  construction, and a large world is generated in bounded memory.
* **Time is a cut of one timeline.** A world covers ``horizon_days`` from the start day;
  ``lake_through(day)`` and ``landing_day(day)`` show what is known by the end of a day.
  Two lakes with 7 and 365 days of history therefore hold the same population with the
  same daily rates, which is what the incremental benchmark compares.

Layout of the landing files: one file per kind and UTC day (``uploads/2025-03-04.jsonl``,
``subscribers/2025-03-04.csv``, ...); everything dated before the start day is in the
``<start - 1 day>`` files (the initial export). A subscriber row is written on each day its
state changes (subscribed, invited, cancelled) with its state as of the end of that day, so
"the last row wins" gives the current state. Deals land with the initial export.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa

UTC = UTC
DAY_S = 86_400
US_PER_S = 1_000_000
BUYERS = ["acme-ai", "orbital-labs", "northwind-robotics"]
ACTIVITIES = ["surf", "ski", "bike", "dive", "skate", "hike", "drive", None]
ACTIVITY_W = [18, 14, 16, 8, 10, 12, 10, 12]
MOUNTS = ["helmet", "chest", "handheld", "board", "drone", None]
MOUNT_W = [25, 15, 25, 11, 6, 18]
# (width, height, weight): the tier follows from the short side (R3)
RESOLUTIONS = [
    (1920, 1080, 33),
    (1080, 1920, 8),
    (2704, 1520, 12),
    (2704, 2028, 4),
    (1280, 720, 15),
    (854, 480, 8),
    (640, 360, 7),
    (3840, 2160, 8),
    (2720, 1530, 5),
]
FPS = [24, 25, 30, 30, 30, 50, 60, 60, 120]
CODECS = ["h264", "h264", "h264", "hevc", "hevc", "mpeg4"]
BITS_PER_PIXEL_FRAME = 0.12  # a camera-like bit rate: ~45 Mbit/s at 4K30, ~7.5 Mbit/s at 1080p30
# R15: clips come in triples; a triple's pattern says which clips continue the recording of
# the clip before them (chapter numbers, in index order). A copy (R4), a clip whose first
# chapter is a copy and a drone clip (DJI_ name) are recordings of their own.
RECORDING_PATTERNS = [(1, 1, 1), (1, 2, 1), (1, 1, 2), (1, 2, 3)]
RECORDING_PATTERN_W = [85, 6, 5, 4]
# R2b: (firmware, camera model) of a clip's camera; the last one flies on a Karma drone.
CAMERAS = [
    ("HD7.01.01.90.00", "HERO7 Black"),
    ("HD8.01.02.51.00", "HERO8 Black"),
    ("HD9.01.01.72.00", "HERO9 Black"),
    ("H21.01.01.62.00", "HERO10 Black"),
    ("H22.01.02.32.00", "HERO11 Black"),
    ("H23.01.01.10.00", "HERO12 Black"),
    ("HD5.02.02.00.00", "HERO5 Black"),
]
CAMERA_W = [10, 15, 20, 20, 20, 15, 0]
KARMA_CAMERA = len(CAMERAS) - 1
# Precision-5 geohash cells where the clips with a GPS fix start (San Diego, LA, New York,
# Denver, Seattle, Aalborg, London, Tokyo): only cells, never coordinates (R2b).
CELLS = ["9mudq", "9q5ct", "dr5ru", "9xj64", "c23nb", "u4pru", "gcpvj", "xn76u"]


# -- counter-based random numbers ---------------------------------------------------------------

_M64 = np.uint64(0xFFFFFFFFFFFFFFFF)


def _splitmix(x: np.ndarray) -> np.ndarray:
    x = x + np.uint64(0x9E3779B97F4A7C15)
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def _salt(seed: int, name: str) -> np.uint64:
    return np.uint64(int.from_bytes(hashlib.blake2b(f"{seed}:{name}".encode(), digest_size=8).digest(), "big"))


class Rand:
    """Uniform numbers as a pure function of (seed, stream name, index)."""

    def __init__(self, seed: int):
        self.seed = seed

    def bits(self, name: str, idx: np.ndarray) -> np.ndarray:
        with np.errstate(over="ignore"):
            return _splitmix(idx.astype(np.uint64) ^ _salt(self.seed, name))

    def u(self, name: str, idx: np.ndarray) -> np.ndarray:
        """Uniform in [0, 1)."""
        return (self.bits(name, idx) >> np.uint64(11)).astype(np.float64) * (1.0 / (1 << 53))

    def pick(self, name: str, idx: np.ndarray, weights: list[float]) -> np.ndarray:
        """Index into ``weights`` drawn with those weights."""
        cum = np.cumsum(np.asarray(weights, dtype=np.float64))
        return np.searchsorted(cum / cum[-1], self.u(name, idx), side="right")

    def between(self, name: str, idx: np.ndarray, lo, hi) -> np.ndarray:
        return lo + (self.u(name, idx) * (np.asarray(hi) - np.asarray(lo))).astype(np.int64)


# -- the world ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class WorldSpec:
    subscribers: int
    clips_per_year: int
    start: date = date(2025, 1, 1)
    horizon_days: int = 366  # how far the timeline runs (clips keep their daily rate)
    seed: int = 42
    duplicate_every: int = 200  # one clip in this many re-uploads an earlier file (R4)
    exclusion_rate: float = 0.03  # share of clips excluded during review (R1b)
    batch_months: int = 12  # monthly batches per deal, from the start month

    @property
    def t0(self) -> int:
        """Start of the first day, epoch seconds."""
        return int(datetime(self.start.year, self.start.month, self.start.day, tzinfo=UTC).timestamp())

    @property
    def n_clips(self) -> int:
        return int(self.clips_per_year * self.horizon_days / 365)

    @property
    def n_pre(self) -> int:
        """Subscribers who joined before the start day (the initial population)."""
        return int(self.subscribers * 0.85)

    def day_of(self, seconds: np.ndarray) -> np.ndarray:
        """Landing day index of epoch seconds: -1 for anything before the start day."""
        return np.maximum((seconds - self.t0) // DAY_S, -1)

    def day_date(self, day: int) -> date:
        return self.start + timedelta(days=int(day))

    def end_of_day_s(self, day: int) -> int:
        return self.t0 + (int(day) + 1) * DAY_S


class World:
    """Columns of the world as functions of indexes (subscribers ``s``, clips ``i``)."""

    def __init__(self, spec: WorldSpec):
        self.spec = spec
        self.r = Rand(spec.seed)
        self._subs: dict | None = None

    # -- subscribers -------------------------------------------------------------------------
    def subscribers(self) -> dict[str, np.ndarray]:
        """Every subscriber of the horizon, in the order they subscribed (s = 0..N-1)."""
        if self._subs is not None:
            return self._subs
        sp, r = self.spec, self.r
        n, n_pre = sp.subscribers, sp.n_pre
        s = np.arange(n, dtype=np.int64)
        horizon_s = sp.horizon_days * DAY_S
        # the initial population over the two years before the start, then a steady trickle
        pre = sp.t0 - 730 * DAY_S + ((s + r.u("sub_j", s)) * (730 * DAY_S) / max(1, n_pre)).astype(np.int64)
        post = sp.t0 + ((s - n_pre + r.u("sub_j", s)) * horizon_s / max(1, n - n_pre)).astype(np.int64)
        subscribed = np.where(s < n_pre, pre, post)
        us = r.u("country", s) < 0.80
        country = np.where(us, 0, 1 + r.pick("country_other", s, [8, 7, 5, 3, 3, 2]))
        invited_p = np.where(us, 0.95, 0.20)
        invited = np.where(r.u("invited", s) < invited_p, subscribed + r.between("inv_dt", s, 3600, 30 * DAY_S), -1)
        cancelled = np.where(r.u("cancel", s) < 0.04, subscribed + r.between("can_dt", s, 30 * DAY_S, 700 * DAY_S), -1)
        self._subs = {"s": s, "subscribed": subscribed, "country": country, "invited": invited, "cancelled": cancelled}
        return self._subs

    COUNTRY_CODES = np.array(["US", "CA", "GB", "DE", "FR", "AU", "JP"], dtype=object)

    # -- consent ------------------------------------------------------------------------------
    def consent_events(self) -> dict[str, np.ndarray]:
        """Up to three events per subscriber: opt-in, opt-out, re-opt-in (event ids
        ``ce-<s>-<k>``, so a subscriber's events order by (event_at, event_id))."""
        sub, r = self.subscribers(), self.r
        s, invited = sub["s"], sub["invited"]
        us = sub["country"] == 0
        p_in = np.where(invited >= 0, np.where(us, 0.93, 0.60), 0.05)  # 5 % of the uninvited opt in anyway
        opts_in = r.u("opt_in", s) < p_in
        anchor = np.where(invited >= 0, invited, sub["subscribed"])
        t1 = anchor + r.between("t1", s, 600, 20 * DAY_S)
        excl = np.where(r.u("excl", s) < 0.10, r.pick("excl_buyer", s, [1, 1, 1]), -1)
        opts_out = opts_in & (r.u("opt_out", s) < 0.15)
        t2 = t1 + r.between("t2", s, 15 * DAY_S, 300 * DAY_S)
        again = opts_out & (r.u("again", s) < 0.5)
        t3 = t2 + r.between("t3", s, 5 * DAY_S, 60 * DAY_S)
        parts = [
            (s[opts_in], t1[opts_in], 1, 0, excl[opts_in]),
            (s[opts_out], t2[opts_out], 2, 1, None),
            (s[again], t3[again], 3, 0, None),
        ]
        out = {k: [] for k in ("s", "at", "k", "action", "excl")}
        for ss, tt, k, action, ex in parts:
            out["s"].append(ss)
            out["at"].append(tt)
            out["k"].append(np.full(len(ss), k, np.int64))
            out["action"].append(np.full(len(ss), action, np.int64))
            out["excl"].append(ex if ex is not None else np.full(len(ss), -1, np.int64))
        return {k: np.concatenate(v) for k, v in out.items()}

    # -- clips ----------------------------------------------------------------------------------
    def clip_times(self, i: np.ndarray) -> np.ndarray:
        """Upload instant (epoch seconds) of clip i: clips are spread evenly over the horizon,
        so one day's uploads are one contiguous index range."""
        sp = self.spec
        return sp.t0 + ((i + self.r.u("clip_j", i)) * (sp.horizon_days * DAY_S) / sp.n_clips).astype(np.int64)

    def clip_range_for_days(self, first_day: int, last_day: int) -> tuple[int, int]:
        """[lo, hi) clip indexes uploaded on days first_day..last_day (day indexes)."""
        sp = self.spec
        per_day = sp.n_clips / sp.horizon_days
        lo = max(0, int(first_day * per_day) - 2)
        hi = min(sp.n_clips, int((last_day + 1) * per_day) + 2)
        idx = np.arange(lo, hi, dtype=np.int64)
        days = sp.day_of(self.clip_times(idx))
        inside = idx[(days >= first_day) & (days <= last_day)]
        return (int(inside[0]), int(inside[-1]) + 1) if len(inside) else (lo, lo)

    def duplicate_original(self, i: np.ndarray) -> np.ndarray:
        """-1, or the earlier clip whose file clip i re-uploads (never itself a copy)."""
        every = self.spec.duplicate_every
        is_dup = (i % every == every - 1) & (i >= every)
        back = 1 + (self.r.bits("dup_back", i) % np.uint64(every - 50)).astype(np.int64)
        return np.where(is_dup, i - back, -1)

    def chapters(self, i: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(chapter, head) of clips ``i`` (R15): ``head`` is the clip holding chapter 1 of
        clip i's recording, ``chapter = i - head + 1``. Recordings never cross a triple of
        indexes (RECORDING_PATTERNS); a copy, a clip whose head is a copy or a drone clip
        is chapter 1 of its own. A copy of a later chapter left in the middle of a
        recording leaves it without that chapter (incomplete), as real uploads do."""
        r = self.r
        pattern = r.pick("rec_pattern", i // 3, RECORDING_PATTERN_W)
        chapter = np.array(RECORDING_PATTERNS, np.int64)[pattern, i % 3]
        head = i - chapter + 1
        own = (
            (chapter == 1)
            | (self.duplicate_original(i) >= 0)
            | (self.duplicate_original(head) >= 0)
            | (r.pick("mount", head, MOUNT_W) == MOUNTS.index("drone"))
        )
        return np.where(own, 1, chapter), np.where(own, i, head)

    def _content_facts(self, content: np.ndarray) -> dict[str, np.ndarray]:
        """What the probe reads from the file with content ``content`` (a copy reads its
        original's): codec, family and camera follow the recording's first chapter (one
        camera, one codec), the telemetry (R2b) each file."""
        r = self.r
        _, chead = self.chapters(content)
        codec = r.pick("codec", chead, [1] * len(CODECS))
        karma = r.u("karma", chead) < 0.01
        tel = (codec != CODECS.index("mpeg4")) & ((r.u("telemetry", content) < 0.7) | karma)
        camera = np.where(karma, KARMA_CAMERA, r.pick("camera", chead, CAMERA_W))
        gps = tel & ~karma & (r.u("gps", content) < 0.75)  # the Karma's HERO5 track has no GPS5
        imu = tel & ((r.u("imu", content) < 0.95) | karma)
        cell = r.pick("cell", chead, [1] * len(CELLS))
        # camera-local time labelled UTC (R2b): a few hours before its first chapter's upload
        recorded = self.clip_times(content) - r.between("rec_dt", content, 3600, 30 * 3600)
        return {
            "codec": codec,
            "family": np.isin(codec, [k for k, x in enumerate(CODECS) if x == "hevc"]).astype(np.int64),  # 1: GX
            "telemetry": tel,
            "camera": camera,
            "has_gps": gps,
            "has_imu": imu,
            "is_drone": tel & karma,
            "cell": cell,
            "recorded": recorded,
        }

    def clips(self, i: np.ndarray) -> dict[str, np.ndarray]:
        """Upload row and probed metadata of clips ``i`` (numpy arrays)."""
        sp, r = self.spec, self.r
        sub = self.subscribers()
        t = self.clip_times(i)
        # owners: someone already subscribed, skewed towards long-standing subscribers
        n, n_pre = sp.subscribers, sp.n_pre
        joined = n_pre + ((t - sp.t0) * (n - n_pre) // (sp.horizon_days * DAY_S)).astype(np.int64)
        joined = np.clip(joined, 1, n)
        owner = (joined * r.u("owner", i) ** 1.6).astype(np.int64)
        owner = np.minimum(owner, joined - 1)
        owner = np.where(sub["subscribed"][owner] <= t, owner, 0)
        original = self.duplicate_original(i)
        content = np.where(original >= 0, original, i)
        # a re-upload: usually the same owner's, sometimes someone else's copy of the file
        orig_owner = self.clips_owner(np.maximum(original, 0))
        owner = np.where((original >= 0) & (r.u("dup_same_owner", i) < 0.8), orig_owner, owner)
        # a later chapter (R15): its first chapter's owner and mount, in its first chapter's folder
        chapter, head = self.chapters(i)
        owner = np.where(chapter > 1, self.clips_owner(head), owner)
        mount = r.pick("mount", np.where(chapter > 1, head, i), MOUNT_W)
        facts = self._content_facts(content)
        res = r.pick("res", content, [w for _, _, w in RESOLUTIONS])
        width = np.array([w for w, _, _ in RESOLUTIONS], np.int64)[res]
        height = np.array([h for _, h, _ in RESOLUTIONS], np.int64)[res]
        fps = np.array(FPS, np.float64)[r.pick("fps", content, [1] * len(FPS))]
        short = np.minimum(width, height)
        short_dur = r.u("short_clip", content) < 0.10
        dur = np.where(
            short_dur,
            2 + 3 * r.u("dur_s", content),
            np.minimum(600.0, 5 + np.exp(2.5 + 1.2 * r.u("dur_l", content) + 0.8 * r.u("dur_l2", content))),
        )
        dur = np.round(dur, 3)
        codec = facts["codec"]
        bit_rate = (width * height * np.minimum(fps, 60) * BITS_PER_PIXEL_FRAME).astype(np.int64)
        size = (bit_rate * dur / 8).astype(np.int64) + 4096
        aerial = (mount == MOUNTS.index("drone")) | facts["is_drone"]  # R3: mount or telemetry
        tier = np.where(aerial, 0, np.where(short >= 2160, 1, np.where(short >= 1080, 2, 3)))
        return {
            "i": i,
            "uploaded": t,
            "owner": owner,
            "published": r.u("published", i) < 0.35,
            "activity": r.pick("activity", i, ACTIVITY_W),
            "mount": mount,
            "content": content,
            "original": original,
            "width": width,
            "height": height,
            "short": short,
            "fps": fps,
            "duration": dur,
            "billable": np.floor(dur).astype(np.int64),
            "codec": codec,
            "bit_rate": bit_rate,
            "size": size,
            "tier": tier,
            "chapter": chapter,
            "head": head,
            "head_uploaded": self.clip_times(head),
            **{k: v for k, v in facts.items() if k != "codec"},
        }

    def clips_owner(self, i: np.ndarray) -> np.ndarray:
        """Owner of clips that are not copies (used for a copy's owner): a later chapter's
        is its first chapter's."""
        chapter, head = self.chapters(i)
        return self._first_owner(np.where(chapter > 1, head, i))

    def _first_owner(self, i: np.ndarray) -> np.ndarray:
        sp, r = self.spec, self.r
        sub = self.subscribers()
        t = self.clip_times(i)
        n, n_pre = sp.subscribers, sp.n_pre
        joined = np.clip(n_pre + ((t - sp.t0) * (n - n_pre) // (sp.horizon_days * DAY_S)).astype(np.int64), 1, n)
        owner = np.minimum((joined * r.u("owner", i) ** 1.6).astype(np.int64), joined - 1)
        return np.where(sub["subscribed"][owner] <= t, owner, 0)

    def exclusions(self, i: np.ndarray, t: np.ndarray, owner: np.ndarray) -> dict[str, np.ndarray]:
        """Clip exclusions of clips ``i``: exclude within the review week, maybe include later."""
        r = self.r
        ex = r.u("exclude", i) < self.spec.exclusion_rate
        t1 = t + r.between("x1", i, 3600, 6 * DAY_S)
        inc = ex & (r.u("include", i) < 0.4)
        t2 = t1 + r.between("x2", i, 10 * DAY_S, 50 * DAY_S)
        return {
            "i": np.concatenate([i[ex], i[inc]]),
            "owner": np.concatenate([owner[ex], owner[inc]]),
            "at": np.concatenate([t1[ex], t2[inc]]),
            "k": np.concatenate([np.ones(ex.sum(), np.int64), np.full(inc.sum(), 2, np.int64)]),
            "action": np.concatenate([np.zeros(ex.sum(), np.int64), np.ones(inc.sum(), np.int64)]),
        }

    # -- deals, payments, payouts -------------------------------------------------------------------
    def month_ends(self) -> list[datetime]:
        sp, out = self.spec, []
        m = datetime(sp.start.year, sp.start.month, 1, tzinfo=UTC)
        for _ in range(sp.batch_months):
            nxt = (m.replace(day=28) + timedelta(days=4)).replace(day=1)
            out.append(nxt - timedelta(seconds=1))
            m = nxt
        return out

    def deals(self) -> list[dict]:
        """Three deals with one batch per month each: an uncapped per-minute deal for every
        tier, a capped activity deal for unpublished hd and better, and a flat-fee deal."""
        sp = self.spec
        ends = self.month_ends()
        cap = max(10, sp.clips_per_year // 120)  # minutes per batch: binding for deal B after its first batches
        fee = max(1000, sp.clips_per_year * 3)
        signed = (datetime(sp.start.year, sp.start.month, 1, tzinfo=UTC) - timedelta(days=20)).strftime(
            "%Y-%m-%dT%H:%M:%SZ"
        )

        def batches(fee_cents=None, max_minutes=None):
            return [
                {
                    "batch_id": f"B-{e:%Y-%m}",
                    "cutoff_at": e.strftime("%Y-%m-%dT%H:%M:%SZ"),
                    "max_minutes": max_minutes,
                    **({"fee_cents": fee_cents} if fee_cents else {}),
                }
                for e in ends
            ]

        return [
            {
                "deal_id": "D-SYN-A",
                "buyer_id": "acme-ai",
                "buyer_name": "Acme AI",
                "signed_at": signed,
                "pricing": {
                    "model": "per_minute",
                    "tier_prices_cents": {"aerial": 350, "uhd": 250, "hd": 150, "sd": 75},
                },
                "criteria": {"min_fps": 24, "min_duration_s": 5},
                "batches": batches(),
            },
            {
                "deal_id": "D-SYN-B",
                "buyer_id": "orbital-labs",
                "buyer_name": "Orbital Labs",
                "signed_at": signed,
                "pricing": {"model": "per_minute", "tier_prices_cents": {"aerial": 450, "uhd": 320, "hd": 195}},
                "criteria": {
                    "min_short_side_px": 1080,
                    "min_fps": 30,
                    "activities": ["surf", "ski", "dive", "bike"],
                    "unpublished_only": True,
                    "min_duration_s": 8,
                },
                "batches": batches(max_minutes=cap),
            },
            {
                "deal_id": "D-SYN-C",
                "buyer_id": "northwind-robotics",
                "buyer_name": "Northwind Robotics",
                "signed_at": signed,
                "pricing": {"model": "flat_fee"},
                "criteria": {
                    "min_short_side_px": 720,
                    "min_fps": 25,
                    "activities": ["drive", "bike", "skate", "hike", "surf"],
                    "min_duration_s": 5,
                },
                "batches": batches(fee_cents=fee),
            },
        ]

    def payments(self) -> list[dict]:
        """One payment per batch, ten days after its cutoff (flat fees exact, the rest estimates)."""
        out = []
        for d_i, deal in enumerate(self.deals()):
            for b_i, b in enumerate(deal["batches"]):
                cutoff = datetime.fromisoformat(b["cutoff_at"].replace("Z", "+00:00"))
                amount = b.get("fee_cents") or int(
                    1000 + self.r.u("pay", np.array([d_i * 100 + b_i]))[0] * self.spec.clips_per_year * 20
                )
                out.append(
                    {
                        "payment_id": f"PAY-{deal['deal_id']}-{b['batch_id']}",
                        "deal_id": deal["deal_id"],
                        "batch_id": b["batch_id"],
                        "amount_cents": amount,
                        "at": int((cutoff + timedelta(days=10)).timestamp()),
                    }
                )
        return out

    def payouts(self) -> dict[str, np.ndarray]:
        """Payouts for each statement month on the 20th of the next month, to 2 % of the
        subscribers (plausible amounts; reconciliation reports what does not match)."""
        sp, r = self.spec, self.r
        out = {k: [] for k in ("s", "month", "amount", "at")}
        n = sp.subscribers
        k = max(1, n // 50)
        for m_i, end in enumerate(self.month_ends()):
            j = np.arange(k, dtype=np.int64) + m_i * k
            s = (r.bits("payout_s", j) % np.uint64(n)).astype(np.int64)
            s = np.unique(s)
            paid = end + timedelta(days=20)
            out["s"].append(s)
            out["month"].append(np.full(len(s), m_i, np.int64))
            out["amount"].append(1000 + (r.u("payout_a", s + m_i * n) * 4000).astype(np.int64))
            out["at"].append(np.full(len(s), int(paid.timestamp()), np.int64))
        return {key: np.concatenate(v) for key, v in out.items()}


# -- arrow / duckdb helpers ------------------------------------------------------------------------


def _con() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.execute("SET preserve_insertion_order = true")
    return con


def _ts(seconds: np.ndarray) -> pa.Array:
    """Epoch seconds (-1 = null) -> timestamp[us, UTC]."""
    mask = seconds < 0
    return pa.array(np.where(mask, 0, seconds) * US_PER_S, type=pa.int64(), mask=mask).cast(
        pa.timestamp("us", tz="UTC")
    )


def _iso(seconds_col: str) -> str:
    """SQL: ISO-8601 text with Z of an epoch-seconds column (empty string for -1)."""
    c = f'"{seconds_col}"'
    return f"CASE WHEN {c} < 0 THEN '' ELSE strftime(to_timestamp({c}), '%Y-%m-%dT%H:%M:%SZ') END"


def _day_name(spec: WorldSpec, day: int) -> str:
    return spec.day_date(day).isoformat()


LANDING_KINDS = ["subscribers", "consent_events", "clip_exclusions", "uploads", "buyer_payments", "payouts"]


class Synth:
    """Landing files and lake tables of one :class:`World`."""

    def __init__(self, spec: WorldSpec):
        self.spec = spec
        self.world = World(spec)

    # -- per-day rows with their landing position ------------------------------------------------
    def subscriber_rows(self, first_day: int, last_day: int) -> pa.Table:
        """Subscriber rows landed on days first_day..last_day (-1 = the initial export), with
        ``day`` and ``_source_line``; each row is the state as of the end of its day."""
        sub = self.world.subscribers()
        sp = self.spec
        s, subscribed, invited, cancelled = sub["s"], sub["subscribed"], sub["invited"], sub["cancelled"]
        days, rows_s = [], []
        for t in (subscribed, invited, cancelled):
            d = np.where(t >= 0, sp.day_of(t), -2)
            ok = (d >= first_day) & (d <= last_day) & (t >= 0)
            days.append(d[ok])
            rows_s.append(s[ok])
        day = np.concatenate(days)
        ss = np.concatenate(rows_s)
        key = np.unique(ss * 100_000 + (day + 1))  # one row per (subscriber, day)
        ss, day = key // 100_000, key % 100_000 - 1
        eod = sp.t0 + (day + 1) * DAY_S
        inv = np.where((invited[ss] >= 0) & (invited[ss] < eod), invited[ss], -1)
        can = np.where((cancelled[ss] >= 0) & (cancelled[ss] < eod), cancelled[ss], -1)
        return self._order(
            pa.table(
                {
                    "day": day,
                    "s": ss,
                    "subscribed": subscribed[ss],
                    "invited": inv,
                    "cancelled": can,
                    "country": sub["country"][ss],
                }
            ),
            ["day", "s"],
            header=True,
        )

    def consent_rows(self, first_day: int, last_day: int) -> pa.Table:
        ev = self.world.consent_events()
        d = self.spec.day_of(ev["at"])
        ok = (d >= first_day) & (d <= last_day)
        t = pa.table({"day": d[ok], **{k: v[ok] for k, v in ev.items()}})
        return self._order(t, ["day", "at", "s", "k"])

    def clip_rows(self, first_day: int, last_day: int) -> tuple[pa.Table, dict]:
        lo, hi = self.world.clip_range_for_days(max(first_day, 0), last_day)
        i = np.arange(lo, hi, dtype=np.int64)
        c = self.world.clips(i)
        if first_day <= -1 <= last_day:
            pass  # no clip is uploaded before the start day
        t = pa.table({"day": self.spec.day_of(c["uploaded"]), "i": i})
        return self._order(t, ["day", "i"]), c

    def exclusion_rows(self, first_day: int, last_day: int) -> pa.Table:
        # an exclusion comes at most 56 days after its upload
        lo, hi = self.world.clip_range_for_days(max(0, first_day - 57), max(0, last_day))
        i = np.arange(lo, hi, dtype=np.int64)
        if last_day < 0 or not len(i):
            return pa.table(
                {
                    "day": pa.array([], pa.int64()),
                    "i": pa.array([], pa.int64()),
                    "owner": pa.array([], pa.int64()),
                    "at": pa.array([], pa.int64()),
                    "k": pa.array([], pa.int64()),
                    "action": pa.array([], pa.int64()),
                    "_source_line": pa.array([], pa.int64()),
                }
            )
        parts = []
        for a in range(0, len(i), 500_000):  # bounded memory: the clips' columns chunk by chunk
            ii = i[a : a + 500_000]
            c = self.world.clips(ii)
            parts.append(self.world.exclusions(ii, c["uploaded"], c["owner"]))
            del c
        ex = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
        d = self.spec.day_of(ex["at"])
        ok = (d >= first_day) & (d <= last_day)
        return self._order(pa.table({"day": d[ok], **{k: v[ok] for k, v in ex.items()}}), ["day", "at", "i", "k"])

    @staticmethod
    def _order(t: pa.Table, keys: list[str], header: bool = False) -> pa.Table:
        t = t.sort_by([(k, "ascending") for k in keys])
        day = t["day"].to_numpy()
        # line numbers restart in each day's file (after a CSV header)
        starts = np.r_[0, np.flatnonzero(np.diff(day)) + 1] if len(day) else np.array([], np.int64)
        pos = np.arange(len(day), dtype=np.int64)
        first = np.repeat(starts, np.diff(np.r_[starts, len(day)])) if len(day) else pos
        return t.append_column("_source_line", pa.array(pos - first + (2 if header else 1), pa.int64()))

    def _path(self, kind: str, day: int) -> str:
        ext = "csv" if kind in ("subscribers", "buyer_payments", "payouts") else "jsonl"
        return f"{kind}/{_day_name(self.spec, day)}.{ext}"

    # -- lake tables ----------------------------------------------------------------------------
    def lake_tables(self, through_day: int, first_day: int = -1, clip_chunk: int = 500_000):
        """Yield (table name, arrow table) for what ingestion and the probe would have
        written after the landing files of days first_day..through_day; the inventory and
        uploads come in chunks of days (several yields for the same name)."""
        from gopro_assets.domain.footage.inventory import INVENTORY_SCHEMA
        from gopro_assets.domain.ingestion import landing

        sp = self.spec
        con = _con()
        # subscribers: the last row per subscriber (upsert)
        rows = self.subscriber_rows(first_day, through_day)
        con.register("r", rows)
        subs = con.sql("""
            SELECT printf('sub-%07d', s) AS subscriber_id, printf('user%07d@example.com', s) AS email,
                   ['US','CA','GB','DE','FR','AU','JP'][country + 1] AS country,
                   to_timestamp(subscribed) AS subscribed_at,
                   CASE WHEN cancelled >= 0 THEN to_timestamp(cancelled) END AS cancelled_at,
                   CASE WHEN invited >= 0 THEN to_timestamp(invited) END AS invited_at,
                   day, _source_line
            FROM r QUALIFY row_number() OVER (PARTITION BY s ORDER BY day DESC) = 1 ORDER BY s""").to_arrow_table()
        yield "subscribers", self._with_paths(subs, "subscribers", landing.SUBSCRIBERS_SCHEMA)
        ev = self.consent_rows(first_day, through_day)
        con.register("e", ev)
        events = con.sql("""
            SELECT printf('ce-%08d-%d', s, k) AS event_id, printf('sub-%07d', s) AS subscriber_id,
                   to_timestamp("at") AS event_at, CASE action WHEN 0 THEN 'opt_in' ELSE 'opt_out' END AS action,
                   CASE WHEN excl >= 0 THEN [['acme-ai','orbital-labs','northwind-robotics'][excl + 1]] ELSE [] END::VARCHAR[] AS excluded_buyers,
                   day, _source_line
            FROM e ORDER BY day, _source_line""").to_arrow_table()
        yield "consent_events", self._with_paths(events, "consent_events", landing.CONSENT_EVENTS_SCHEMA)
        x = self.exclusion_rows(first_day, through_day)
        con.register("x", x)
        excl = con.sql("""
            SELECT printf('cx-%09d-%d', i, k) AS event_id, printf('sub-%07d', owner) AS subscriber_id,
                   printf('clip-%09d', i) AS clip_id, to_timestamp("at") AS event_at,
                   CASE action WHEN 0 THEN 'exclude' ELSE 'include' END AS action, day, _source_line
            FROM x ORDER BY day, _source_line""").to_arrow_table()
        yield "clip_exclusions", self._with_paths(excl, "clip_exclusions", landing.CLIP_EXCLUSIONS_SCHEMA)
        # clips in chunks of days
        per_day = max(1.0, sp.n_clips / sp.horizon_days)
        step = max(1, int(clip_chunk / per_day))
        for d0 in range(max(0, first_day), through_day + 1, step):
            d1 = min(through_day, d0 + step - 1)
            order, c = self.clip_rows(d0, d1)
            up, inv = self._clip_tables(con, order, c, INVENTORY_SCHEMA)
            yield "uploads", self._with_paths(up, "uploads", landing.UPLOADS_SCHEMA)
            yield "footage_inventory", inv
        pay = [p for p in self.world.payments() if first_day <= sp.day_of(np.array([p["at"]]))[0] <= through_day]
        yield "buyer_payments", self._payments_table(pay, landing.BUYER_PAYMENTS_SCHEMA)
        yield "payouts", self._payouts_table(con, first_day, through_day, landing.PAYOUTS_SCHEMA)
        con.close()

    def _with_paths(self, t: pa.Table, kind: str, schema: pa.Schema) -> pa.Table:
        days = t["day"].to_numpy()
        uniq, inv = np.unique(days, return_inverse=True)
        paths = np.array([self._path(kind, int(d)) for d in uniq], dtype=object)[inv]
        t = t.drop_columns([c for c in ("day", "_p") if c in t.column_names])
        t = t.append_column("_source_path", pa.array(paths, pa.string()))
        return t.select(schema.names).cast(schema)

    def _clip_tables(self, con, order: pa.Table, c: dict, inv_schema: pa.Schema) -> tuple[pa.Table, pa.Table]:
        sp = self.spec
        i0 = int(c["i"][0]) if len(c["i"]) else 0
        pos = order["i"].to_numpy() - i0
        cols = {k: v[pos] for k, v in c.items()}
        cols["day"] = order["day"].to_numpy()
        cols["_source_line"] = order["_source_line"].to_numpy()
        t = pa.table(cols)
        con.register("c", t)
        acts = "[" + ", ".join("NULL" if a is None else f"'{a}'" for a in ACTIVITIES) + "]"
        mounts = "[" + ", ".join("NULL" if m is None else f"'{m}'" for m in MOUNTS) + "]"
        codecs = "[" + ", ".join(f"'{x}'" for x in CODECS) + "]"
        models = "[" + ", ".join(f"'{m}'" for _, m in CAMERAS) + "]"
        firmwares = "[" + ", ".join(f"'{f}'" for f, _ in CAMERAS) + "]"
        cells = "[" + ", ".join(f"'{c}'" for c in CELLS) + "]"
        base = con.sql(f"""
            SELECT printf('clip-%09d', i) AS clip_id, printf('sub-%07d', owner) AS subscriber_id,
                   {self._object_key_sql()} AS object_key,
                   to_timestamp(uploaded) AS uploaded_at, published,
                   {acts}[activity + 1] AS activity, {mounts}[mount + 1] AS mount,
                   duration AS duration_s, billable AS billable_seconds, width, height, short AS short_side_px, fps,
                   {codecs}[codec + 1] AS codec, bit_rate, size AS size_bytes,
                   'fp1:' || sha256('{sp.seed}:' || content::VARCHAR) AS fingerprint,
                   ['aerial','uhd','hd','sd'][tier + 1] AS tier,
                   original >= 0 AS is_duplicate,
                   CASE WHEN original >= 0 THEN printf('clip-%09d', original) END AS duplicate_of,
                   telemetry,
                   CASE WHEN telemetry THEN {models}[camera + 1] END AS camera_model,
                   CASE WHEN telemetry THEN {firmwares}[camera + 1] END AS firmware,
                   CASE WHEN telemetry THEN to_timestamp(recorded) END AS recorded_at,
                   has_gps, has_imu, is_drone,
                   CASE WHEN has_gps THEN {cells}[cell + 1] END AS location_cell,
                   NULL::VARCHAR AS telemetry_warning,
                   printf('sub-%07d', owner) || ':' || CASE WHEN mount = 4 THEN printf('clip-%09d', i)
                       ELSE {self._folder_sql()} || '/G' || CASE family WHEN 1 THEN 'X' ELSE 'H' END
                            || printf('%04d', head % 10000) END AS recording_id,
                   chapter,
                   CAST(greatest(to_timestamp(uploaded)::DATE, DATE '{sp.start.isoformat()}') AS DATE) AS upload_day,
                   day, _source_line
            FROM c ORDER BY day, _source_line""").to_arrow_table()
        uploads = base.select(
            [
                "clip_id",
                "subscriber_id",
                "object_key",
                "uploaded_at",
                "published",
                "activity",
                "mount",
                "day",
                "_source_line",
            ]
        )
        inv = base.select(inv_schema.names).cast(inv_schema)
        # the inventory is written sorted as refresh_inventory does (upload_day, uploaded_at, clip_id)
        inv = inv.sort_by([("upload_day", "ascending"), ("uploaded_at", "ascending"), ("clip_id", "ascending")])
        return uploads, inv

    @staticmethod
    def _folder_sql() -> str:
        """The folder of a GoPro-named clip: the owner, its first chapter's upload month and
        a block of 10 000 first-chapter indexes (``NNNN`` is the index modulo 10 000)."""
        return (
            "printf('sub-%07d', owner) || '/' || strftime(to_timestamp(head_uploaded), '%Y/%m') || '/' || "
            "printf('%05d', head // 10000)"
        )

    @classmethod
    def _object_key_sql(cls) -> str:
        """A drone clip ``DJI_<i>.MP4``; every other clip named as a GoPro names chapters
        (R15): ``<folder>/G<H|X><CC><NNNN>.MP4`` (SynthProbe reads the index back)."""
        return (
            "CASE WHEN mount = 4 THEN printf('sub-%07d', owner) || '/' || strftime(to_timestamp(uploaded), '%Y/%m') "
            "|| '/' || printf('DJI_%09d.MP4', i) "
            f"ELSE {cls._folder_sql()} || '/' || printf('G%s%02d%04d.MP4', CASE family WHEN 1 THEN 'X' ELSE 'H' END, "
            "chapter, head % 10000) END"
        )

    def _payments_table(self, pay: list[dict], schema: pa.Schema) -> pa.Table:
        sp = self.spec
        by_day: dict[int, int] = {}
        rows = []
        for p in sorted(pay, key=lambda p: (p["at"], p["payment_id"])):
            day = int(sp.day_of(np.array([p["at"]]))[0])
            by_day[day] = by_day.get(day, 1) + 1
            rows.append(
                {
                    "payment_id": p["payment_id"],
                    "deal_id": p["deal_id"],
                    "batch_id": p["batch_id"],
                    "amount_cents": p["amount_cents"],
                    "received_at": datetime.fromtimestamp(p["at"], UTC),
                    "_source_path": self._path("buyer_payments", day),
                    "_source_line": by_day[day],
                }
            )
        return pa.Table.from_pylist(rows, schema=schema)

    def _payout_rows(self, first_day: int, last_day: int) -> pa.Table:
        po = self.world.payouts()
        d = self.spec.day_of(po["at"])
        ok = (d >= first_day) & (d <= last_day)
        return self._order(
            pa.table({"day": d[ok], **{k: v[ok] for k, v in po.items()}}), ["day", "month", "s"], header=True
        )

    def _months_sql(self) -> str:
        return "[" + ", ".join(f"'{e:%Y-%m}'" for e in self.world.month_ends()) + "]"

    def _payouts_table(self, con, first_day: int, last_day: int, schema: pa.Schema) -> pa.Table:
        con.register("po", self._payout_rows(first_day, last_day))
        t = con.sql(f"""
            SELECT printf('PO-%s-%07d', {self._months_sql()}[month + 1], s) AS payout_id, printf('sub-%07d', s) AS subscriber_id,
                   {self._months_sql()}[month + 1] AS statement_month, amount AS amount_cents,
                   to_timestamp("at") AS paid_at, day, _source_line
            FROM po ORDER BY day, _source_line""").to_arrow_table()
        return self._with_paths(t, "payouts", schema)

    # -- landing files -----------------------------------------------------------------------------
    def landing_files(self, first_day: int, last_day: int):
        """Yield (relative path, bytes) of the landing files of days first_day..last_day
        (-1 = the initial export, which also holds the deal files)."""
        sp = self.spec
        con = _con()
        if first_day <= -1:
            for deal in self.world.deals():
                yield f"deals/{deal['deal_id']}.json", (json.dumps(deal, indent=2) + "\n").encode()
        # subscribers
        con.register("r", self.subscriber_rows(first_day, last_day))
        yield from self._text_files(
            con,
            "subscribers",
            "subscriber_id,email,country,subscribed_at,cancelled_at,invited_at",
            f"""
            SELECT day, printf('sub-%07d', s) || ',' || printf('user%07d@example.com', s) || ',' ||
                   ['US','CA','GB','DE','FR','AU','JP'][country + 1] || ',' || {_iso("subscribed")} || ',' ||
                   {_iso("cancelled")} || ',' || {_iso("invited")} AS line
            FROM r ORDER BY day, _source_line""",
        )
        con.register("e", self.consent_rows(first_day, last_day))
        yield from self._text_files(
            con,
            "consent_events",
            None,
            f"""
            SELECT day, '{{"event_id": "' || printf('ce-%08d-%d', s, k) || '", "subscriber_id": "' || printf('sub-%07d', s) ||
                   '", "event_at": "' || {_iso("at")} || '", "action": "' || CASE action WHEN 0 THEN 'opt_in' ELSE 'opt_out' END || '"' ||
                   CASE WHEN excl >= 0 THEN ', "excluded_buyers": ["' || ['acme-ai','orbital-labs','northwind-robotics'][excl + 1] || '"]'
                        ELSE '' END || '}}' AS line
            FROM e ORDER BY day, _source_line""",
        )
        con.register("x", self.exclusion_rows(first_day, last_day))
        yield from self._text_files(
            con,
            "clip_exclusions",
            None,
            f"""
            SELECT day, '{{"event_id": "' || printf('cx-%09d-%d', i, k) || '", "subscriber_id": "' || printf('sub-%07d', owner) ||
                   '", "clip_id": "' || printf('clip-%09d', i) || '", "event_at": "' || {_iso("at")} ||
                   '", "action": "' || CASE action WHEN 0 THEN 'exclude' ELSE 'include' END || '"}}' AS line
            FROM x ORDER BY day, _source_line""",
        )
        per_day = max(1.0, sp.n_clips / sp.horizon_days)
        step = max(1, int(500_000 / per_day))
        for d0 in range(max(0, first_day), last_day + 1, step):
            d1 = min(last_day, d0 + step - 1)
            order, c = self.clip_rows(d0, d1)
            i0 = int(c["i"][0]) if len(c["i"]) else 0
            pos = order["i"].to_numpy() - i0
            t = pa.table(
                {
                    **{k: v[pos] for k, v in c.items()},
                    "day": order["day"].to_numpy(),
                    "_source_line": order["_source_line"].to_numpy(),
                }
            )
            con.register("c", t)
            acts = "[" + ", ".join("'null'" if a is None else f"'\"{a}\"'" for a in ACTIVITIES) + "]"
            mounts = "[" + ", ".join("'null'" if m is None else f"'\"{m}\"'" for m in MOUNTS) + "]"
            yield from self._text_files(
                con,
                "uploads",
                None,
                f"""
                SELECT day, '{{"clip_id": "' || printf('clip-%09d', i) || '", "subscriber_id": "' || printf('sub-%07d', owner) ||
                       '", "object_key": "' || {self._object_key_sql()} || '", "uploaded_at": "' || {_iso("uploaded")} ||
                       '", "published": ' || CASE WHEN published THEN 'true' ELSE 'false' END ||
                       ', "activity": ' || {acts}[activity + 1] || ', "mount": ' || {mounts}[mount + 1] || '}}' AS line
                FROM c ORDER BY day, _source_line""",
            )
        pays = [p for p in self.world.payments() if first_day <= sp.day_of(np.array([p["at"]]))[0] <= last_day]
        by_day: dict[int, list[str]] = {}
        for p in sorted(pays, key=lambda p: (p["at"], p["payment_id"])):
            day = int(sp.day_of(np.array([p["at"]]))[0])
            ts = datetime.fromtimestamp(p["at"], UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            by_day.setdefault(day, []).append(
                f"{p['payment_id']},{p['deal_id']},{p['batch_id']},{p['amount_cents']},{ts}"
            )
        for day, lines in sorted(by_day.items()):
            yield (
                self._path("buyer_payments", day),
                ("payment_id,deal_id,batch_id,amount_cents,received_at\n" + "\n".join(lines) + "\n").encode(),
            )
        con.register("po", self._payout_rows(first_day, last_day))
        yield from self._text_files(
            con,
            "payouts",
            "payout_id,subscriber_id,statement_month,amount_cents,paid_at",
            f"""
            SELECT day, printf('PO-%s-%07d', {self._months_sql()}[month + 1], s) || ',' || printf('sub-%07d', s) || ',' ||
                   {self._months_sql()}[month + 1] || ',' || amount::VARCHAR || ',' || {_iso("at")} AS line
            FROM po ORDER BY day, _source_line""",
        )
        con.close()

    def _text_files(self, con, kind: str, header: str | None, sql: str):
        t = con.sql(sql).to_arrow_table()
        if not t.num_rows:
            return
        days = t["day"].to_numpy()
        lines = t["line"]
        bounds = np.r_[0, np.flatnonzero(np.diff(days)) + 1, len(days)]
        for a, b in zip(bounds[:-1], bounds[1:]):
            body = "\n".join(lines.slice(int(a), int(b - a)).to_pylist()) + "\n"
            yield self._path(kind, int(days[a])), ((header + "\n" if header else "") + body).encode()

    # -- the stand-in probe ------------------------------------------------------------------------
    def probe_results(self, object_keys: list[str]):
        """ProbeResults for synthetic object keys (what the probe would read from the files)."""
        from gopro_assets.domain.footage.probe import ProbeResult
        from gopro_assets.domain.footage.telemetry import NO_TELEMETRY, TelemetrySummary

        def index(key: str) -> int:
            folder, name = key.rsplit("/", 2)[-2:]
            if name.startswith("DJI_"):
                return int(name[4:13])
            return int(folder) * 10000 + int(name[4:8]) + int(name[2:4]) - 1  # head + chapter - 1

        idx = np.array([index(k) for k in object_keys], dtype=np.int64)
        if not len(idx):
            return []
        c = self.world.clips(idx)

        def telemetry(j: int):
            if not c["telemetry"][j]:
                return NO_TELEMETRY
            firmware, model = CAMERAS[int(c["camera"][j])]
            recorded = datetime.fromtimestamp(int(c["recorded"][j]), UTC).strftime("%Y-%m-%dT%H:%M:%S.000000Z")
            return TelemetrySummary(
                telemetry=True,
                camera_model=model,
                firmware=firmware,
                recorded_at=recorded,
                has_gps=bool(c["has_gps"][j]),
                has_imu=bool(c["has_imu"][j]),
                is_drone=bool(c["is_drone"][j]),
                location_cell=CELLS[int(c["cell"][j])] if c["has_gps"][j] else None,
                payloads_read=1,
            )

        fp = duckdb.execute(
            f"SELECT 'fp1:' || sha256('{self.spec.seed}:' || x::VARCHAR) AS f FROM unnest(?) t(x)",
            [c["content"].tolist()],
        ).fetchall()
        out = []
        for j, key in enumerate(object_keys):
            out.append(
                ProbeResult(
                    object_key=key,
                    ok=True,
                    reason=None,
                    duration_s=float(c["duration"][j]),
                    width=int(c["width"][j]),
                    height=int(c["height"][j]),
                    fps=float(c["fps"][j]),
                    codec=CODECS[int(c["codec"][j])],
                    bit_rate=int(c["bit_rate"][j]),
                    size_bytes=int(c["size"][j]),
                    fingerprint=fp[j][0],
                    bytes_read=0,
                    telemetry=telemetry(j),
                )
            )
        return out


class SynthProbe:
    """Picklable stand-in for ``probe_many``: no files, the generator's metadata instead."""

    def __init__(self, spec: WorldSpec):
        self.spec = spec

    def __call__(self, landing_root: str, object_keys: list[str], max_workers=None, timeout_s: float = 0) -> list:
        return Synth(self.spec).probe_results(list(object_keys))


# -- writers ----------------------------------------------------------------------------------------


def write_landing(synth: Synth, root: Path, first_day: int, last_day: int) -> dict[str, tuple[str, int]]:
    """Write the landing files of days first_day..last_day; returns {path: (sha256, bytes)}."""
    written = {}
    for rel, data in synth.landing_files(first_day, last_day):
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        written[rel] = (hashlib.sha256(data).hexdigest(), len(data))
    return written


def write_lake(synth: Synth, lake: str, through_day: int) -> dict[str, int]:
    """Write the ingested tables and the probed inventory as of the end of ``through_day``."""
    from deltalake import write_deltalake

    from gopro_assets.domain.footage.inventory import FOOTAGE_QUARANTINE_SCHEMA
    from gopro_assets.domain.ingestion import landing
    from gopro_assets.domain.ingestion.ingest import ingest_deals
    from gopro_assets.lake.delta_store import DeltaStore
    from gopro_assets.lake.storage import FileRoot

    counts: dict[str, int] = {}
    seen: set[str] = set()
    for name, table in synth.lake_tables(through_day):
        mode = "append" if name in seen else "overwrite"
        kwargs = {"partition_by": ["upload_day"]} if name == "footage_inventory" else {}
        write_deltalake(f"{lake}/{name}", table, mode=mode, **kwargs)
        seen.add(name)
        counts[name] = counts.get(name, 0) + table.num_rows
    write_deltalake(
        f"{lake}/footage_quarantine",
        FOOTAGE_QUARANTINE_SCHEMA.empty_table(),
        mode="overwrite",
        partition_by=["upload_day"],
    )
    write_deltalake(f"{lake}/quarantine_rows", landing.QUARANTINE_SCHEMA.empty_table(), mode="overwrite")
    # deals through the real ingestion (a handful of files): license_deals, license_batches
    tmp = Path(lake) / "_synth_deals"
    for rel, data in synth.landing_files(-1, -1):
        if rel.startswith("deals/"):
            (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
            (tmp / rel).write_bytes(data)
    ingest_deals(DeltaStore(lake), FileRoot(str(tmp)))
    counts["license_deals"] = len(synth.world.deals())
    return counts


def record_ingested_files(lake: str, written: dict[str, tuple[str, int]], landing_root: str | None = None) -> None:
    """Record landing files as ingested (what ``ingest_kind`` writes after a run), for a
    lake written by :func:`write_lake` from the same files; with ``landing_root``, also
    their size and modification time as the ingestion's listing sees them."""
    from gopro_assets.domain.ingestion.ingest import PendingFile, record_ingested
    from gopro_assets.lake.delta_store import DeltaStore
    from gopro_assets.lake.storage import FileRoot

    store = DeltaStore(lake)
    stats = {}
    if landing_root is not None:
        root = FileRoot(landing_root)
        for kind in {rel.split("/", 1)[0] for rel in written}:
            stats.update({f.rel_path: (f.size, f.mtime_ns) for f in root.list(kind + "/")})
    by_kind: dict[str, list] = {}
    for rel, (sha, _size) in sorted(written.items()):
        kind = rel.split("/", 1)[0]
        n, mtime = stats.get(rel, (None, None))
        by_kind.setdefault(kind, []).append((PendingFile(rel, sha, b"", n, mtime), 0, 0))
    for kind, done in by_kind.items():
        record_ingested(store, kind, done)
