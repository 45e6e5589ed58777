"""Demo landing zone: realistic inputs in exactly the contract §2 layout, with real MP4s.

Why it exists: the pipeline, its tests and the notebooks need a landing zone that looks
like production (camera file names, HEVC and AVC, vertical clips, 4K, drone footage,
telemetry tracks, consent churn, several deals with both pricing models, payments and
payouts) and that holds a small, clearly labelled minority of deliberately bad input.

Deterministic: the same arguments give byte-identical files (one ``random.Random``, fixed
dates, no wall clock, fixed encoder thread counts). Cheap: the videos are written by
``gopro_tools/media.py`` (the one MP4 encoder, shared with the tests): frames are flat
gradients with a moving bar; each clip encodes one short closed GOP and repeats its
packets up to the clip's duration, so a 10-minute take costs one GOP of encoding. Consistent money: the
buyer payments and payouts are derived from a run of the money path itself
(``pipeline.run_all``) over the files just written, plus a few labelled mismatches; and
deal prices follow a documented structure (tier x activity x unpublished premiums x
jitter) for the valuation model to learn. See docs/DEMO_DATA.md.
"""

from __future__ import annotations

import csv
import io
import json
import random
import shutil
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, timezone
from fractions import Fraction
from pathlib import Path
from typing import Any

from gopro_tools.media import LONG_CLIP_S, VideoSpec, encode_audio_only, encode_mp4, zero_durations

UTC = UTC
T_START = datetime(2025, 1, 1, tzinfo=UTC)
T_END = datetime(2025, 6, 30, 23, 59, 59, tzinfo=UTC)
# Payments and payouts are derived from a run of the money path over the written landing
# zone, through a day after every batch cutoff (June's are settled in early July).
SETTLE_FROM = date(2025, 1, 1)
SETTLE_THROUGH = date(2025, 7, 31)
MONTH_ENDS = {m: datetime(2025, m + 1, 1, tzinfo=UTC) - timedelta(seconds=1) for m in range(1, 7)}

CONTRACT_FOLDERS = (
    "subscribers",
    "consent_events",
    "clip_exclusions",
    "uploads",
    "footage",
    "deals",
    "buyer_payments",
    "payouts",
)

COUNTRIES = [("US", 72), ("CA", 8), ("GB", 7), ("DE", 5), ("FR", 3), ("AU", 3), ("JP", 2)]
ACTIVITIES = [
    ("surf", 18),
    ("ski", 14),
    ("bike", 16),
    ("dive", 8),
    ("skate", 10),
    ("hike", 12),
    ("drive", 10),
    (None, 12),
]
MOUNTS = [("helmet", 26), ("chest", 16), ("handheld", 26), ("board", 12), (None, 20)]
BUYERS = ["acme-ai", "orbital-labs", "northwind-robotics", "lumen-vision", "kestrel-ai"]
BUYER_NAMES = {
    "acme-ai": "Acme AI",
    "orbital-labs": "Orbital Labs",
    "northwind-robotics": "Northwind Robotics",
    "lumen-vision": "Lumen Vision",
    "kestrel-ai": "Kestrel AI",
}
# Home coordinates per country, for the fake GPS telemetry.
HOMES = {
    "US": (32.75, -117.25),
    "CA": (49.28, -123.12),
    "GB": (50.37, -4.14),
    "DE": (47.42, 10.98),
    "FR": (45.92, 6.87),
    "AU": (-33.89, 151.27),
    "JP": (35.31, 139.48),
}

# Price structure (docs/DEMO_DATA.md): base cents/minute per tier, times the deal's
# premiums, times a deal- and tier-specific jitter, to 5 cents.
BASE_PRICE = {"aerial": 350, "uhd": 250, "hd": 150, "sd": 75}
TIER_RANK = {"aerial": 4, "uhd": 3, "hd": 2, "sd": 1}
PREMIUM_ACTIVITIES = frozenset({"surf", "ski", "dive"})  # water and snow sports: scarce, wanted
PREMIUM_ACTIVITY_PREMIUM = Fraction(125, 100)  # the deal targets only premium activities
ACTIVITY_PREMIUM = Fraction(110, 100)  # the deal targets other specific activities
UNPUBLISHED_PREMIUM = Fraction(112, 100)  # the deal takes unpublished footage only
PRICE_JITTER = Fraction(6, 100)  # each deal's price of each tier: x uniform(1 - 6 %, 1 + 6 %)
FLAT_FEE_CENTS_PER_MINUTE = 165  # flat fees are sized at about this rate for a full batch

# Resolutions (width, height, weight); the tier follows from the short side (R3).
RESOLUTIONS = [
    ((1920, 1080), 33),
    ((1080, 1920), 8),
    ((2704, 1520), 12),
    ((2704, 2028), 4),
    ((1280, 720), 15),
    ((854, 480), 8),
    ((640, 360), 7),
    ((3840, 2160), 7),
]
# LONG_CLIP_S (gopro_tools/media.py): longer takes get 2-second GOPs and at most 1080p30 (disk).


# --- small helpers --------------------------------------------------------------------------


def _pick(rng: random.Random, weighted: list[tuple[Any, int]]) -> Any:
    return rng.choices([v for v, _ in weighted], weights=[w for _, w in weighted])[0]


def _between(rng: random.Random, a: datetime, b: datetime) -> datetime:
    """A whole-second instant in [a, b]."""
    if b <= a:
        return a.replace(microsecond=0)
    return (a + timedelta(seconds=rng.randint(0, int((b - a).total_seconds())))).replace(microsecond=0)


def _clamp(t: datetime, lo: datetime = T_START, hi: datetime = T_END) -> datetime:
    return max(lo, min(hi, t))


def _iso(t: datetime, offset_h: int = 0) -> str:
    """ISO-8601 with ``Z`` or an explicit offset (same instant)."""
    if offset_h == 0:
        return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return t.astimezone(timezone(timedelta(hours=offset_h))).isoformat(timespec="seconds")


def _stamp(rng: random.Random, t: datetime) -> str:
    """Mostly ``Z``; about one in six written with a local offset, as real feeds do."""
    return _iso(t, rng.choice([0, 0, 0, 0, 0, -5, -8, 1, 2, 9]))


def _round_to(x: Fraction, step: int) -> int:
    """``x`` to the nearest multiple of ``step``, halves up (exact)."""
    return int((x / step + Fraction(1, 2)) // 1) * step


def _round5(x: Fraction) -> int:
    return _round_to(x, 5)


def activity_premium(activities: list[str] | None) -> Fraction:
    """1 for any activity; the premium-activity rate when the deal wants only surf, ski or
    dive; the ordinary activity rate for any other list."""
    if not activities:
        return Fraction(1)
    return PREMIUM_ACTIVITY_PREMIUM if set(activities) <= PREMIUM_ACTIVITIES else ACTIVITY_PREMIUM


def deal_price(tier: str, activities: list[str] | None, unpublished_only: bool, jitter: Fraction = Fraction(1)) -> int:
    """The demo price list: base tier price times the deal's premiums and jitter, to 5 cents."""
    p = Fraction(BASE_PRICE[tier]) * activity_premium(activities) * jitter
    if unpublished_only:
        p *= UNPUBLISHED_PREMIUM
    return _round5(p)


# --- the plan: everything decided up front from one RNG ---------------------------------------


@dataclass
class Subscriber:
    sid: str
    email: str
    country: str
    subscribed_at: datetime
    invited_at: datetime | None
    cancelled_at: datetime | None
    role: str


ClipSpec = VideoSpec  # how to encode one video file (gopro_tools/media.py)


@dataclass
class Upload:
    sid: str
    object_key: str
    uploaded_at: datetime
    published: bool
    activity: str | None
    mount: str | None
    spec: ClipSpec | None = None  # None: no freshly encoded file (copy, corrupt, missing)
    kind: str = "clip"  # clip | duplicate | corrupt:<what> | missing | bad_row:<what>
    copy_of: Upload | None = None
    clip_id: str = ""
    raw_override: str | None = None  # a deliberately broken line written verbatim
    showcase: bool = False  # the GoPro showcase (R2b, R3, R15): drawn from its own random stream


@dataclass
class Plan:
    subscribers: list[Subscriber] = field(default_factory=list)
    uploads: list[Upload] = field(default_factory=list)
    consent: list[dict] = field(default_factory=list)
    exclusions: list[dict] = field(default_factory=list)


def _make_subscribers(rng: random.Random, n: int) -> list[Subscriber]:
    """The first eight subscribers have fixed roles so that every rule is exercised even in
    a tiny demo; the rest are random."""
    roles = ["pro", "excludes_buyer", "churn", "not_invited", "foreign", "cancelled", "late_opt_out", "silent"]
    subs = []
    for i in range(1, n + 1):
        role = roles[i - 1] if i <= len(roles) else "random"
        sid = f"sub-{i:04d}"
        country = "US"
        if role == "foreign":
            country = "CA"
        elif role == "random":
            country = _pick(rng, COUNTRIES)
        if role == "random":
            early = rng.random() < 0.7
            subscribed = _between(
                rng,
                T_START + timedelta(hours=6),
                datetime(2025, 2, 28, tzinfo=UTC) if early else datetime(2025, 4, 30, tzinfo=UTC),
            )
        else:
            subscribed = _between(rng, datetime(2025, 1, 2, tzinfo=UTC), datetime(2025, 1, 12, tzinfo=UTC))
        invited: datetime | None = None
        if role not in ("not_invited", "random") or (
            role == "random" and rng.random() < (0.85 if country == "US" else 0.2)
        ):
            invited = _between(
                rng, subscribed + timedelta(hours=1), subscribed + timedelta(days=5 if role != "random" else 30)
            )
        cancelled: datetime | None = None
        if role == "cancelled":
            cancelled = _between(rng, datetime(2025, 5, 5, tzinfo=UTC), datetime(2025, 5, 25, tzinfo=UTC))
        elif role == "random" and rng.random() < 0.08:
            cancelled = _clamp(
                _between(rng, subscribed + timedelta(days=40), subscribed + timedelta(days=120)),
                hi=datetime(2025, 6, 25, tzinfo=UTC),
            )
        subs.append(Subscriber(sid, f"user{i:04d}@example.com", country, subscribed, invited, cancelled, role))
    return subs


def _make_consent(rng: random.Random, subs: list[Subscriber]) -> list[dict]:
    """Opt-ins, opt-outs, re-opt-ins and per-buyer exclusions (rows without event_id yet)."""
    ev: list[dict] = []

    def add(s: Subscriber, t: datetime, action: str, excluded: list[str] | None = None) -> None:
        if t > T_END or (s.cancelled_at and t > s.cancelled_at and action == "opt_in"):
            return
        row: dict[str, Any] = {"subscriber_id": s.sid, "_t": t, "action": action}
        if action == "opt_in" and excluded is not None:
            row["excluded_buyers"] = excluded
        ev.append(row)

    for s in subs:
        anchor = s.invited_at or s.subscribed_at
        if s.role == "pro":
            add(s, anchor + timedelta(days=2, hours=3), "opt_in", [])
        elif s.role == "excludes_buyer":
            t1 = anchor + timedelta(days=3)
            add(s, t1, "opt_in", ["orbital-labs"])
            t2 = datetime(2025, 4, 14, 18, tzinfo=UTC)
            add(s, t2, "opt_out")
            add(s, t2 + timedelta(days=9), "opt_in", [])  # re-opt-in without the exclusion
        elif s.role == "churn":
            t1 = anchor + timedelta(days=20)
            add(s, t1, "opt_in")
            add(s, datetime(2025, 3, 10, 9, tzinfo=UTC), "opt_out")
            add(s, datetime(2025, 4, 2, 21, tzinfo=UTC), "opt_in")
        elif s.role == "not_invited":
            add(s, s.subscribed_at + timedelta(days=4), "opt_in")  # valid row, never eligible
        elif s.role == "foreign":
            add(s, anchor + timedelta(days=1), "opt_in")
        elif s.role == "cancelled":
            add(s, anchor + timedelta(days=2), "opt_in")
        elif s.role == "late_opt_out":
            add(s, anchor + timedelta(days=1, hours=5), "opt_in")
            add(s, datetime(2025, 6, 10, 12, tzinfo=UTC), "opt_out")  # after earlier deliveries
        elif s.role == "random":
            if s.invited_at is None:
                if rng.random() < 0.1:
                    add(s, s.subscribed_at + timedelta(days=rng.randint(1, 20)), "opt_in")
                continue
            if rng.random() > (0.8 if s.country == "US" else 0.6):
                continue
            t1 = s.invited_at + timedelta(days=rng.randint(0, 14), hours=rng.randint(0, 23))
            excluded = [rng.choice(BUYERS)] if rng.random() < 0.12 else None
            add(s, t1, "opt_in", excluded)
            if rng.random() < 0.25:
                t2 = t1 + timedelta(days=rng.randint(15, 90), hours=rng.randint(0, 23))
                add(s, t2, "opt_out")
                if rng.random() < 0.5:
                    add(s, t2 + timedelta(days=rng.randint(5, 40)), "opt_in", [] if rng.random() < 0.5 else None)
    ev.sort(key=lambda r: (r["_t"], r["subscriber_id"]))
    return ev


def _activity_mount(rng: random.Random) -> tuple[str | None, str | None]:
    activity = _pick(rng, ACTIVITIES)
    mount = _pick(rng, MOUNTS)
    if activity == "surf" and mount == "helmet":
        mount = "board"
    if activity == "drive" and mount == "board":
        mount = "handheld"
    return activity, mount


def _spec(
    rng: random.Random,
    width: int,
    height: int,
    fps: int,
    seconds: float,
    codec: str,
    home: tuple[float, float],
    audio: str = "none",
    telemetry: bool = False,
) -> ClipSpec:
    y_top = rng.randint(30, 200)
    spec = ClipSpec(
        width=width,
        height=height,
        fps=fps,
        n_frames=max(1, round(seconds * fps)),
        codec=codec,
        audio=audio,
        telemetry=telemetry,
        faststart=rng.random() < 0.3,
        y_top=y_top,
        y_bottom=max(16, min(235, y_top + rng.randint(-80, 80))),
        u=rng.randint(70, 190),
        v=rng.randint(70, 190),
        bar_y=rng.choice([16, 235, 200, 50]),
        gps=(home[0] + rng.uniform(-0.3, 0.3), home[1] + rng.uniform(-0.3, 0.3)),
    )
    # The telemetry track (R2b: GoPro MET, GPS5 + ACCL + GYRO) of a HERO11; about one clip in
    # four indoors, without a GPS fix. Taken from what was drawn above, not from ``rng``, so
    # the rest of the demo draws the same numbers as before the track carried them.
    spec.gps_fix = 0 if spec.bar_y == 50 else 3
    return spec


def _camera_clock(when: datetime, seconds_before: float = 0.0) -> str:
    """``creation_time`` as a GoPro writes it (R2b): the camera's local time labelled UTC.
    The demo's cameras are set to Pacific time, recording a few hours before the upload."""
    local = when - timedelta(hours=8 + 3, seconds=seconds_before)
    return local.strftime("%Y-%m-%dT%H:%M:%S.000000Z")


def _duration(rng: random.Random, long_side: int, fps: int) -> float:
    """Seconds of one recording, as action cameras produce them: mostly 20 s to 4 min
    (about log-uniform, so short takes are common), 10 % long takes of 4-10 min, a few
    5-20 s snippets and about 6 % of 2-5 s clips (below most deals' min_duration_s).
    4K and high-frame-rate clips are shorter (bursts; and their bytes cost the most)."""
    r = rng.random()
    if long_side >= 3840:
        seconds = rng.uniform(15, 90)
    elif fps >= 100:
        seconds = rng.uniform(8, 75)  # slow-motion bursts
    elif r < 0.06:
        seconds = rng.uniform(2, 4.9)
    elif r < 0.14:
        seconds = rng.uniform(5, 20)
    elif r < 0.90:
        seconds = 20 * 12 ** (rng.random() ** 0.8)  # 20 s - 4 min, median about 1.5 min
    else:
        seconds = rng.uniform(LONG_CLIP_S + 1, 600)
    return round(seconds, 1)


def _random_clip(rng: random.Random, forced: str | None) -> dict[str, Any]:
    """Technical choices of one normal clip; ``forced`` guarantees coverage in tiny demos."""
    drone = forced == "drone" or (forced is None and rng.random() < 0.06)
    if forced == "uhd":
        res = (3840, 2160)
    elif forced == "vertical":
        res = (1080, 1920)
    elif forced == "hevc":
        res = (1920, 1080)
    elif forced == "hfr":
        res = (1280, 720)
    elif drone:
        res = rng.choice([(3840, 2160), (2720, 1530), (2720, 1530), (1920, 1080)])
    else:
        res = _pick(rng, RESOLUTIONS)
    w, h = res
    long_side = max(w, h)
    if forced == "hfr":
        fps = 120
    elif long_side >= 2704:
        fps = rng.choice([24, 25, 30, 30, 50, 60])
    elif long_side >= 1920:
        fps = rng.choice([24, 25, 30, 30, 50, 60, 60, 120])
    else:
        fps = rng.choice([25, 30, 30, 60, 120])
    seconds = _duration(rng, long_side, fps)
    if seconds > LONG_CLIP_S:  # a long take: recorded (or kept) at <= 1080p30
        if w * h > 1920 * 1080:
            w, h = (1920, 1080) if w >= h else (1080, 1920)
        fps = min(fps, 30)
        long_side = max(w, h)
    if drone:
        codec = "h264"
    elif forced == "hevc" or (forced is None and long_side <= 1920 and rng.random() < 0.18):
        codec = "hevc"
    elif forced is None and long_side <= 1280 and rng.random() < 0.15:
        codec = "mpeg4"  # an older camera
    else:
        codec = "h264"
    gopro = not drone and codec != "mpeg4"
    audio = "none"
    if gopro and rng.random() < 0.7:
        audio = "first" if rng.random() < 0.2 else "after"
    if forced == "hevc":
        audio = "first"
    telemetry = gopro and (forced == "hevc" or rng.random() < 0.5)
    return {
        "w": w,
        "h": h,
        "fps": fps,
        "seconds": seconds,
        "codec": codec,
        "drone": drone,
        "audio": audio,
        "telemetry": telemetry,
    }


class _Names:
    """Camera-like object keys, unique per demo."""

    def __init__(self, rng: random.Random):
        self.rng = rng
        self.next_rec: dict[str, int] = {}
        self.used: set[str] = set()

    def _rec(self, sid: str) -> int:
        n = self.next_rec.get(sid) or self.rng.randint(10, 400)
        self.next_rec[sid] = n + self.rng.randint(1, 6)
        return n

    def key(self, sid: str, when: datetime, codec: str, drone: bool, chapter: int = 1, rec: int | None = None) -> str:
        while True:
            rec = rec if rec is not None else self._rec(sid)
            if drone:
                name = f"DJI_{rec:04d}.MP4"
            elif codec == "mpeg4":
                name = f"MOV_{rec:04d}.MP4"
            else:
                name = f"G{'X' if codec == 'hevc' else 'H'}{chapter:02d}{rec:04d}.MP4"
            key = f"{sid}/{when:%Y/%m}/{name}"
            if key not in self.used:
                self.used.add(key)
                return key
            rec = None


def _upload_window(s: Subscriber) -> tuple[datetime, datetime]:
    lo = max(s.subscribed_at + timedelta(hours=2), T_START)
    hi = min(s.cancelled_at - timedelta(hours=1) if s.cancelled_at else T_END, T_END - timedelta(days=1))
    return lo, max(lo, hi)


def _make_uploads(rng: random.Random, subs: list[Subscriber], n_clips: int, names: _Names) -> list[Upload]:
    """Normal clips: ``n_clips`` distinct recordings (multi-chapter ones count per chapter)."""
    weights = [1 / (i + 1) ** 0.7 for i in range(len(subs))]
    forced = ["uhd", "vertical", "drone", "hevc", "hfr"]
    owners_forced = ["pro", "excludes_buyer", "pro", "churn", "late_opt_out"]
    by_role = {s.role: s for s in subs}
    uploads: list[Upload] = []
    i = 0
    while len(uploads) < n_clips:
        f = forced[i] if i < len(forced) else None
        if i < len(forced):
            owner = by_role[owners_forced[i]]
        elif i < len(forced) + 3 and by_role.get(["cancelled", "silent", "foreign"][i - len(forced)]):
            owner = by_role[["cancelled", "silent", "foreign"][i - len(forced)]]
        else:
            owner = rng.choices(subs, weights=weights)[0]
        i += 1
        c = _random_clip(rng, f)
        lo, hi = _upload_window(owner)
        if f is not None:  # coverage clips arrive early enough for the first batches
            hi = min(hi, datetime(2025, 2, 20, tzinfo=UTC))
        when = _between(rng, lo, hi)
        activity, mount = _activity_mount(rng)
        if c["drone"]:
            mount = "drone"
            activity = rng.choice(["hike", "surf", "ski", None])
        published = rng.random() < 0.35
        home = HOMES[owner.country]
        chapters = (
            2
            if (
                f is None
                and not c["drone"]
                and c["w"] * c["h"] <= 1920 * 1080
                and rng.random() < 0.06
                and len(uploads) + 2 <= n_clips
            )
            else 1
        )
        rec = names._rec(owner.sid)
        for ch in range(1, chapters + 1):
            spec = _spec(
                rng,
                c["w"],
                c["h"],
                c["fps"],
                c["seconds"] if ch == 1 else round(rng.uniform(20, 180), 1),
                c["codec"],
                home,
                c["audio"],
                c["telemetry"],
            )
            key = names.key(owner.sid, when, c["codec"], c["drone"], chapter=ch, rec=rec)
            spec.recorded_at = _camera_clock(when) if spec.telemetry else None
            uploads.append(Upload(owner.sid, key, when + timedelta(seconds=ch - 1), published, activity, mount, spec))
    return uploads


def _add_specials(rng: random.Random, subs: list[Subscriber], uploads: list[Upload], names: _Names) -> list[Upload]:
    """Byte-identical re-uploads, corrupt files and bad upload rows (a clear minority)."""
    extra: list[Upload] = []
    normal = [u for u in uploads if u.kind == "clip" and u.uploaded_at < datetime(2025, 5, 25, tzinfo=UTC)]
    by_sid = {s.sid: s for s in subs}
    # Re-uploads of the very same bytes: new clip_id and object_key, later uploaded_at.
    n_dups = max(2, len(uploads) // 30)
    originals = rng.sample(normal, min(n_dups, len(normal)))
    for j, orig in enumerate(originals):
        uploader = by_sid[orig.sid]
        if j == 1:  # one re-upload by someone else (a shared file): still a duplicate (R4)
            candidates = [s for s in subs if s.sid != orig.sid and s.role in ("random", "pro", "churn")]
            uploader = rng.choice(candidates) if candidates else uploader
        lo = max(orig.uploaded_at + timedelta(days=3), _upload_window(uploader)[0])
        hi = min(orig.uploaded_at + timedelta(days=40), T_END - timedelta(days=1))
        when = _between(rng, lo, max(lo, hi))
        stem = orig.object_key.rsplit("/", 1)[1]
        key = f"{uploader.sid}/{when:%Y/%m}/{stem}"
        if key in names.used:
            key = f"{uploader.sid}/{when:%Y/%m}/copy_{stem}"
        names.used.add(key)
        extra.append(
            Upload(uploader.sid, key, when, orig.published, orig.activity, orig.mount, kind="duplicate", copy_of=orig)
        )

    def pick_owner() -> Subscriber:
        return rng.choice([s for s in subs if s.role in ("random", "pro", "churn")] or subs)

    def corrupt(kind: str, spec: ClipSpec | None = None) -> None:
        s = pick_owner()
        lo, hi = _upload_window(s)
        when = _between(rng, max(lo, datetime(2025, 2, 1, tzinfo=UTC)), hi)
        key = names.key(s.sid, when, "h264", False)
        activity, mount = _activity_mount(rng)
        extra.append(Upload(s.sid, key, when, rng.random() < 0.3, activity, mount, spec=spec, kind=kind))

    home = HOMES["US"]
    head = _spec(rng, 640, 360, 30, 6, "h264", home)
    head.faststart = False  # moov at the end, so the cut loses it
    corrupt("corrupt:truncated_header", head)
    trunc = _spec(rng, 1280, 720, 30, 8, "h264", home)
    trunc.faststart = True
    corrupt("corrupt:truncated_payload", trunc)
    corrupt("corrupt:random_bytes")
    corrupt("corrupt:empty")
    corrupt("corrupt:audio_only")
    corrupt("corrupt:zero_duration", _spec(rng, 320, 240, 30, 1 / 30, "h264", home))
    corrupt("missing")
    # Bad upload rows.
    when = _between(rng, datetime(2025, 3, 1, tzinfo=UTC), datetime(2025, 3, 20, tzinfo=UTC))
    extra.append(
        Upload(
            "sub-9999",
            f"sub-9999/{when:%Y/%m}/GH010007.MP4",
            when,
            False,
            "surf",
            "board",
            spec=_spec(rng, 640, 360, 25, 6, "h264", home),
            kind="bad_row:unknown_subscriber",
        )
    )
    s = pick_owner()
    when = _between(rng, datetime(2025, 4, 1, tzinfo=UTC), datetime(2025, 4, 20, tzinfo=UTC))
    extra.append(
        Upload(
            s.sid, f"{s.sid}/../../subscribers/2025-01-31.csv", when, False, None, None, kind="bad_row:path_traversal"
        )
    )
    s = pick_owner()
    when = _between(rng, datetime(2025, 4, 21, tzinfo=UTC), datetime(2025, 5, 10, tzinfo=UTC))
    extra.append(Upload(s.sid, "/etc/passwd", when, False, None, None, kind="bad_row:absolute_key"))
    return extra


def _gopro_showcase(rng: random.Random, subs: list[Subscriber], names: _Names) -> tuple[list[Upload], dict]:
    """GoPro recordings that show what the camera knows (R2b, R3, R15), whatever the demo's
    size and seed: file names as the cameras write them, tracks muxed by PyAV
    (gopro_tools/media.py). Returns the uploads and, for tests and demos, their object keys
    by what they show. Drawn from ``rng`` (its own stream, see generate_demo).

    * three chapters of one HEVC recording with GPS and IMU (sub-0001, February): complete;
    * two chapters of an AVC recording filmed indoors (no GPS fix), the second uploaded two
      weeks after the first (sub-0007, March): incomplete until it arrives;
    * a HERO5 on a Karma drone, older naming GOPR + GP01, no mount in the upload rows
      (sub-0001, February): aerial from telemetry alone (R3);
    * a clip whose track cannot be parsed (sub-0001, March): licensable, a warning (R2b);
    * chapters 1 and 3 of a recording whose chapter 2 never comes (sub-0002, April).
    """
    by_role = {s.role: s for s in subs}
    uploads: list[Upload] = []
    keys: dict[str, Any] = {}

    def number() -> int:  # file numbers above the demo's others (they stay below 2000)
        return rng.randint(9000, 9899)

    def add(
        sid: str, key: str, when: datetime, seconds: float, spec_fields: dict, mount: str | None, activity: str
    ) -> str:
        if key in names.used:
            raise ValueError(f"showcase key {key} is taken")
        names.used.add(key)
        width, height, fps, codec = spec_fields.pop("size")
        spec = _spec(rng, width, height, fps, seconds, codec, HOMES["US"], "after", True)
        for k, v in spec_fields.items():
            setattr(spec, k, v)
        spec.recorded_at = _camera_clock(when)
        uploads.append(Upload(sid, key, when, False, activity, mount, spec, showcase=True))
        return key

    pro, late, other = by_role["pro"].sid, by_role["late_opt_out"].sid, by_role["excludes_buyer"].sid
    t = datetime(2025, 2, 10, 16, 5, tzinfo=UTC) + timedelta(minutes=rng.randint(0, 600))
    n = number()
    hevc = {"size": (1920, 1080, 30, "hevc"), "gps_fix": 3}
    keys["complete_recording"] = [
        add(pro, f"{pro}/{t:%Y/%m}/GX{ch:02d}{n:04d}.MP4", t + timedelta(minutes=ch), sec, dict(hevc), "helmet", "ski")
        for ch, sec in ((1, 52.0), (2, 48.5), (3, 21.3))
    ]
    keys["gps_imu"] = keys["complete_recording"][0]
    t = datetime(2025, 3, 3, 17, 40, tzinfo=UTC)
    n = number()
    indoor = {"size": (2704, 1520, 30, "h264"), "gps_fix": 0}
    keys["late_chapter"] = [
        add(late, f"{late}/{t:%Y/%m}/GH01{n:04d}.MP4", t, 64.0, dict(indoor), "chest", "bike"),
        add(
            late,
            f"{late}/{t:%Y/%m}/GH02{n:04d}.MP4",
            t + timedelta(days=14, hours=2),
            33.0,
            dict(indoor),
            "chest",
            "bike",
        ),
    ]
    t = datetime(2025, 2, 20, 21, 15, tzinfo=UTC)
    n = number()
    karma = {
        "size": (1920, 1080, 30, "h264"),
        "camera": "Camera",
        "firmware": "HD5.02.02.00.00",
        "gps": None,
        "drone": True,
    }
    keys["karma"] = [
        add(pro, f"{pro}/{t:%Y/%m}/GOPR{n:04d}.MP4", t, 75.0, dict(karma), None, "hike"),
        add(pro, f"{pro}/{t:%Y/%m}/GP01{n:04d}.MP4", t + timedelta(minutes=1), 28.0, dict(karma), None, "hike"),
    ]
    t = datetime(2025, 3, 5, 19, 0, tzinfo=UTC)
    keys["telemetry_warning"] = add(
        pro,
        f"{pro}/{t:%Y/%m}/GH01{number():04d}.MP4",
        t,
        40.0,
        {"size": (1280, 720, 30, "h264"), "telemetry_corrupt": True},
        "handheld",
        "surf",
    )
    t = datetime(2025, 4, 22, 15, 30, tzinfo=UTC)
    n = number()
    keys["missing_chapter"] = [
        add(
            other,
            f"{other}/{t:%Y/%m}/GH{ch:02d}{n:04d}.MP4",
            t + timedelta(minutes=ch),
            45.0,
            {"size": (1920, 1080, 30, "h264")},
            "board",
            "surf",
        )
        for ch in (1, 3)
    ]
    return uploads, keys


def _make_exclusions(
    rng: random.Random, subs: list[Subscriber], consent: list[dict], uploads: list[Upload]
) -> list[dict]:
    """Clip exclusions during review windows, some re-included later, one late one."""
    out: list[dict] = []
    clips_by_sid: dict[str, list[Upload]] = {}
    for u in uploads:
        if u.kind == "clip":
            clips_by_sid.setdefault(u.sid, []).append(u)
    for s in subs:
        opt_ins = [e["_t"] for e in consent if e["subscriber_id"] == s.sid and e["action"] == "opt_in"]
        if not opt_ins:
            continue
        t_in = opt_ins[0]
        review_end = t_in + timedelta(days=6)
        mine = [u for u in clips_by_sid.get(s.sid, []) if u.uploaded_at < review_end]
        want = s.role in ("pro", "churn") or (s.role == "random" and rng.random() < 0.3)
        if s.role == "pro" and not mine:  # nothing to review yet: remove the first clip later on
            mine = sorted(clips_by_sid.get(s.sid, []), key=lambda u: u.uploaded_at)[:1]
        if not mine or not want:
            continue
        for u in rng.sample(mine, min(len(mine), rng.randint(1, 2))):
            start = max(t_in, u.uploaded_at) + timedelta(minutes=5)
            t_ex = _between(rng, start, max(start + timedelta(days=2), review_end))
            out.append({"subscriber_id": s.sid, "clip_id": u.clip_id, "_t": t_ex, "action": "exclude"})
            if s.role == "pro" or rng.random() < 0.4:
                t_inc = t_ex + timedelta(days=rng.randint(10, 50))
                if t_inc <= T_END:
                    out.append({"subscriber_id": s.sid, "clip_id": u.clip_id, "_t": t_inc, "action": "include"})
    # A late exclusion of an early clip: it may already be delivered (R12 late revocation).
    pro = next((s for s in subs if s.role == "pro"), None)
    early = sorted((u for u in clips_by_sid.get(pro.sid if pro else "", [])), key=lambda u: u.uploaded_at)
    if early:
        out.append(
            {
                "subscriber_id": early[-1].sid,
                "clip_id": early[0].clip_id,
                "_t": datetime(2025, 6, 12, 8, 30, tzinfo=UTC),
                "action": "exclude",
            }
        )
    out.sort(key=lambda r: (r["_t"], r["clip_id"]))
    return out


# --- deals, payments, payouts -----------------------------------------------------------------


def _jitter(rng: random.Random) -> Fraction:
    step = int(PRICE_JITTER * 1000)
    return 1 + Fraction(rng.randint(-step, step), 1000)


def _make_deals(rng: random.Random, clips: int) -> list[dict]:
    """Ten deals from five buyers: both pricing models, criteria mixes, monthly batches
    Feb-Jun 2025. Prices follow the structure in docs/DEMO_DATA.md (tier x activity
    premium x unpublished premium x jitter). Caps are in minutes for the default 120
    clips and scale with ``clips``, so smaller demos keep binding caps."""

    def cap(minutes: int) -> int:
        return max(1, round(minutes * clips / 120))

    def batches(months: list[int], caps: list[int | None | str], fees: bool = False) -> list[dict]:
        out = []
        for k, m in enumerate(months):
            b: dict[str, Any] = {"batch_id": f"B-2025-{m:02d}", "cutoff_at": _iso(MONTH_ENDS[m])}
            c = caps[k]
            if c != "omit":
                b["max_minutes"] = cap(c) if isinstance(c, int) else c
            if fees:  # a full batch at about FLAT_FEE_CENTS_PER_MINUTE, with the deal's jitter
                b["fee_cents"] = _round_to(b["max_minutes"] * FLAT_FEE_CENTS_PER_MINUTE * _jitter(rng), 100)
            out.append(b)
        return out

    def prices(tiers: list[str], criteria: dict) -> dict[str, int]:
        return {
            t: deal_price(t, criteria.get("activities"), bool(criteria.get("unpublished_only")), _jitter(rng))
            for t in tiers
        }

    def deal(
        deal_id: str, buyer_id: str, signed_at: str, tiers: list[str] | None, criteria: dict, batch_list: list[dict]
    ) -> dict:
        pricing = (
            {"model": "per_minute", "tier_prices_cents": prices(tiers, criteria)} if tiers else {"model": "flat_fee"}
        )
        return {
            "deal_id": deal_id,
            "buyer_id": buyer_id,
            "buyer_name": BUYER_NAMES[buyer_id],
            "signed_at": signed_at,
            "pricing": pricing,
            "criteria": criteria,
            "batches": batch_list,
        }

    all_tiers = ["aerial", "uhd", "hd", "sd"]
    d4_batches = batches([5, 6], [20, "omit"])
    d4_batches.reverse()  # batch order in a file does not matter (R6 sorts by cutoff_at)
    return [
        deal(
            "D-2025-001",
            "acme-ai",
            "2025-01-20T17:00:00Z",
            all_tiers,
            {"min_fps": 24, "activities": None, "min_duration_s": 5},
            batches([2, 3, 4, 5, 6], [None, 40, "omit", 30, 60]),
        ),
        deal(
            "D-2025-002",
            "orbital-labs",
            "2025-02-10T09:30:00-08:00",
            ["aerial", "uhd", "hd"],
            {
                "min_short_side_px": 1080,
                "min_fps": 30,
                "activities": ["surf", "ski", "dive"],
                "unpublished_only": True,
                "min_duration_s": 8,
            },
            batches([3, 4, 5, 6], [10, 10, 8, 10]),
        ),
        deal(
            "D-2025-003",
            "northwind-robotics",
            "2025-02-20T12:00:00Z",
            None,
            {"min_short_side_px": 720, "min_fps": 25, "activities": ["drive", "bike", "skate"], "min_duration_s": 5},
            batches([3, 4, 5], [10, 8, 8], fees=True),
        ),
        deal(
            "D-2025-004",
            "orbital-labs",
            "2025-04-01T08:00:00+02:00",
            ["aerial", "uhd"],
            {"min_short_side_px": 1080, "unpublished_only": True, "min_duration_s": 5},
            d4_batches,
        ),
        deal(
            "D-2025-005",
            "acme-ai",
            "2025-02-15T16:00:00Z",
            ["uhd", "hd", "sd"],
            {"activities": ["bike", "skate", "hike"], "unpublished_only": False, "min_duration_s": 5},
            batches([3, 4, 5, 6], [None, 20, 20, None]),
        ),
        deal(
            "D-2025-007",
            "lumen-vision",
            "2025-01-25T10:00:00-05:00",
            ["aerial", "uhd", "hd"],
            {"min_short_side_px": 720, "unpublished_only": True, "min_duration_s": 10},
            batches([2, 3, 4, 5, 6], [None, None, 45, None, None]),
        ),
        deal(
            "D-2025-008",
            "lumen-vision",
            "2025-03-20T14:00:00Z",
            all_tiers,
            {"activities": ["surf", "ski", "dive"], "min_duration_s": 5},
            batches([4, 5, 6], [None, None, None]),
        ),
        deal(
            "D-2025-009",
            "northwind-robotics",
            "2025-04-15T12:00:00Z",
            ["uhd", "hd", "sd"],
            {"min_fps": 30, "activities": ["drive", "hike"], "unpublished_only": True, "min_duration_s": 5},
            batches([5, 6], [None, None]),
        ),
        deal(
            "D-2025-010",
            "kestrel-ai",
            "2025-02-25T18:00:00+01:00",
            all_tiers,
            {"min_duration_s": 10},
            batches([3, 4, 5, 6], [None, 40, None, None]),
        ),
        deal(
            "D-2025-011",
            "orbital-labs",
            "2025-03-28T09:00:00-07:00",
            ["aerial", "uhd", "hd"],
            {"min_short_side_px": 1080, "min_fps": 24, "min_duration_s": 30},
            batches([4, 5, 6], [None, 30, None]),
        ),
    ]


BAD_DEAL_TEXT = (
    '{"deal_id": "D-2025-006", "buyer_id": "acme-ai", "buyer_name": "Acme AI",\n'
    ' "signed_at": "2025-05-02T10:00:00Z",\n'
    ' "pricing": {"model": "per_minute", "tier_prices_cents": {"hd": 150, "sd": 75}\n'
    ' "batches": [{"batch_id": "B-2025-06", "cutoff_at": "2025-06-30T23:59:59Z"}]\n'
)


def _settle(landing: Path) -> tuple[list[dict], list[dict]]:
    """Run the whole money path (``pipeline.run_all``, the same logic as the Dagster runs)
    on the landing zone just written, in a temporary lake that is deleted afterwards, with
    the contract's default settings. Returns (batch_revenue, revenue_share_statements)
    rows in a fixed order, so the payments derived from them are deterministic."""
    from gopro_assets.lake.delta_store import DeltaStore
    from gopro_tools.pipeline import run_all

    with tempfile.TemporaryDirectory(prefix="gopro-demo-lake-") as tmp:
        store = DeltaStore(str(Path(tmp) / "lake"))
        run_all(
            store,
            str(landing.resolve()),
            first_day=SETTLE_FROM,
            through=SETTLE_THROUGH,
            share_rate=Fraction(1, 2),
            min_payout_cents=1000,
            review_days=7,
            snapshots=False,
            valuation=False,
        )
        revenue = store.read("batch_revenue").to_pylist()
        statements = store.read("revenue_share_statements").to_pylist()
    revenue.sort(key=lambda r: (r["deal_id"], r["batch_id"]))
    statements.sort(key=lambda r: (r["statement_month"], r["subscriber_id"]))
    return revenue, statements


def _choose(preferred: tuple, candidates: list[tuple], used: set) -> tuple | None:
    """``preferred`` when it is a candidate not used yet, else the first such candidate."""
    pick = (
        preferred
        if preferred in candidates and preferred not in used
        else next((c for c in candidates if c not in used), None)
    )
    if pick is not None:
        used.add(pick)
    return pick


def _payments(rng: random.Random, deals: list[dict], revenue: list[dict]) -> tuple[list[list[str]], dict[str, Any]]:
    """Buyer payments that match each batch's ``gross_cents`` (received 3-12 days after
    the cutoff), except for a handful of deliberate, labelled mismatches: one batch paid
    short (partial), one prepaid with too much (overpaid), one not paid (unpaid), one
    payment for a batch that does not exist (unknown_batch) and one payment exported
    twice (the same payment_id: counted once, so its batch is still paid). One flat-fee
    batch is paid in two instalments that add up to the fee."""
    gross = {(r["deal_id"], r["batch_id"]): r["gross_cents"] for r in revenue}
    cutoffs = {
        (d["deal_id"], b["batch_id"]): datetime.fromisoformat(b["cutoff_at"]).astimezone(UTC)
        for d in deals
        for b in d["batches"]
    }
    order = sorted(cutoffs, key=lambda ref: (cutoffs[ref], ref))
    billed = [ref for ref in order if gross.get(ref, 0) > 0]  # a batch worth 0 is owed nothing
    flat = {(d["deal_id"], b["batch_id"]) for d in deals if d["pricing"]["model"] == "flat_fee" for b in d["batches"]}
    used: set = set()
    unpaid = _choose(("D-2025-001", "B-2025-05"), [r for r in billed if r not in flat], used)
    partial = _choose(("D-2025-003", "B-2025-04"), [r for r in billed if gross[r] >= 2], used)
    overpaid = _choose(("D-2025-003", "B-2025-05"), billed, used)
    instalments = _choose(("D-2025-003", "B-2025-03"), billed, used)
    duplicated = _choose(("D-2025-002", "B-2025-03"), [r for r in billed if r not in flat], used)
    unknown = ("D-2025-003", "B-2025-01")
    pending: list[tuple[datetime, int, list[str]]] = []  # (received, payment number, row)

    def pay(ref: tuple, amount: int, when: datetime, copies: int = 1) -> None:
        number = len({n for _, n, _ in pending})
        row = [ref[0], ref[1], str(amount), _stamp(rng, when)]
        pending.extend((when, number, row) for _ in range(copies))

    for ref in billed:
        cutoff = cutoffs[ref]
        when = datetime(cutoff.year, cutoff.month, cutoff.day, tzinfo=UTC) + timedelta(
            days=rng.randint(3, 12), hours=rng.randint(8, 17), minutes=rng.randint(0, 59)
        )
        g = gross[ref]
        if ref == unpaid:
            continue
        if ref == partial:
            pay(ref, g - max(1, min(800, g // 3)), when)
        elif ref == overpaid:  # invoiced up front and prepaid, with too much
            pay(ref, g + 500, min(when, cutoff - timedelta(days=10, hours=9)))
        elif ref == instalments:  # two instalments that add up to the gross
            pay(ref, g // 2, when)
            pay(ref, g - g // 2, when + timedelta(days=9))
        else:
            pay(ref, g, when, copies=2 if ref == duplicated else 1)
    pay(unknown, 2000, datetime(2025, 2, 12, 14, tzinfo=UTC))
    pending.sort(key=lambda item: (item[0], item[1]))
    rows: list[list[str]] = []
    ids: dict[int, str] = {}
    for _, number, row in pending:  # PAY-0001... in time order; a copy keeps its payment_id
        ids.setdefault(number, f"PAY-{len(ids) + 1:04d}")
        rows.append([ids[number], *row])
    notes: dict[str, Any] = {"unknown_batch": unknown, "receivables": {unknown: "unknown_batch"}}
    for name, ref in (("unpaid", unpaid), ("partial", partial), ("overpaid", overpaid)):
        if ref is not None:
            notes[name] = ref
            notes["receivables"][ref] = name
    if duplicated is not None:
        notes["duplicate_payment_id"] = next(r[0] for r in rows if (r[1], r[2]) == duplicated)
    if instalments is not None:
        notes["instalments"] = instalments
    return rows, notes


def _payouts(
    rng: random.Random, subs: list[Subscriber], statements: list[dict]
) -> tuple[list[list[str]], dict[str, Any]]:
    """Contributor payouts that match each statement's ``payable_cents`` (paid on one day
    early in the next month), except for deliberate, labelled mismatches: one underpaid,
    one overpaid, one not paid, one payout exported twice (the same payout_id) and one
    payout to a subscriber with nothing payable (sub-0005, never eligible)."""
    payable = [
        (r["statement_month"], r["subscriber_id"], r["payable_cents"]) for r in statements if r["payable_cents"] > 0
    ]
    keys = [(m, sid) for m, sid, _ in payable]
    picks = rng.sample(keys, min(4, len(keys)))
    roles = dict(zip(picks, ["underpaid", "overpaid", "unpaid", "duplicate"]))
    foreign = next((s for s in subs if s.role == "foreign"), subs[-1])
    stray = ("2025-04", foreign.sid)  # (statement_month, subscriber_id)
    by_month: dict[str, list[tuple[str, int]]] = {}
    for m, sid, cents in payable:
        by_month.setdefault(m, []).append((sid, cents))
    by_month.setdefault(stray[0], [])
    rows: list[list[str]] = []
    notes: dict[str, Any] = {
        "nothing_payable": (stray[1], stray[0]),
        "payout_reconciliation": {(stray[1], stray[0]): "unexpected"},
    }
    for month in sorted(by_month):
        y, m = map(int, month.split("-"))
        first = datetime(y + m // 12, m % 12 + 1, 1, tzinfo=UTC)
        paid_at = first + timedelta(days=rng.randint(2, 8), hours=16)
        lines = sorted(by_month[month]) + ([(stray[1], None)] if month == stray[0] else [])
        for k, (sid, cents) in enumerate(lines, start=1):
            role = roles.get((month, sid))
            if cents is None:  # nothing payable: a payout that should not have been made
                amount = 1500
            elif role == "unpaid":
                continue
            elif role == "underpaid":
                amount = cents - max(1, min(500, cents // 4))
            elif role == "overpaid":
                amount = cents + rng.randint(1, 5) * 100
            else:
                amount = cents
            row = [f"PO-{month}-{k:03d}", sid, month, str(amount), _stamp(rng, paid_at + timedelta(minutes=k))]
            rows.append(row)
            if role == "duplicate":  # the same payout exported twice
                rows.append(list(row))
                notes["duplicate_payout_id"] = row[0]
    for (month, sid), role in roles.items():  # keyed (subscriber_id, statement_month)
        notes["payout_reconciliation"][(sid, month)] = role
        notes[
            {
                "underpaid": "underpaid",
                "overpaid": "overpaid_payout",
                "unpaid": "unpaid_payout",
                "duplicate": "duplicated_payout",
            }[role]
        ] = (sid, month)
    return rows, notes


# --- video encoding: gopro_tools/media.py (one encoder for the demo and the tests) ----------------


# Upload kinds whose file is one clean encode written straight to its path (most of them).
ENCODED_DIRECTLY = ("clip", "bad_row:unknown_subscriber")


def _encode_one(job: tuple[str, ClipSpec]) -> None:
    encode_mp4(job[0], job[1])


def _encode_clips_in_parallel(root: Path, uploads: list[Upload]) -> None:
    """Encode the clean clips on every core (spawned workers: PyAV and the lake's native
    libraries are not fork-safe); each clip's bytes depend only on its spec, so the
    landing zone is the same as a sequential run's. Copies and damaged variants are
    written afterwards, in order, from these."""
    import multiprocessing
    import os
    from concurrent.futures import ProcessPoolExecutor

    jobs = [(str(root / "footage" / u.object_key), u.spec) for u in uploads]
    workers = min(os.cpu_count() or 1, len(jobs))
    if workers <= 1:
        for job in jobs:
            _encode_one(job)
        return
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        list(pool.map(_encode_one, jobs, chunksize=4))


def _write_footage(root: Path, u: Upload, rng_bytes: bytes, scratch: Path) -> str | None:
    """Write the file behind one upload row; returns the expected probe reason prefix
    for deliberately bad files (None for good ones)."""
    path = root / "footage" / u.object_key
    if u.kind in ("missing", "bad_row:path_traversal", "bad_row:absolute_key"):
        return None
    path.parent.mkdir(parents=True, exist_ok=True)
    if u.kind == "duplicate":
        assert u.copy_of is not None
        shutil.copyfile(root / "footage" / u.copy_of.object_key, path)
        return None
    if u.kind == "corrupt:random_bytes":
        path.write_bytes(rng_bytes)
        return "unreadable video"
    if u.kind == "corrupt:empty":
        path.write_bytes(b"")
        return "empty file"
    if u.kind == "corrupt:audio_only":
        encode_audio_only(path, 6.0)
        return "no video stream"
    assert u.spec is not None
    if u.kind in ("clip", "bad_row:unknown_subscriber"):
        encode_mp4(path, u.spec)
        return None
    tmp = scratch / "tmp.mp4"
    encode_mp4(tmp, u.spec)
    data = tmp.read_bytes()
    tmp.unlink()
    if u.kind == "corrupt:truncated_header":  # moov at the end: cut before it
        path.write_bytes(data[: len(data) * 6 // 10])
        return "unreadable video"
    if u.kind == "corrupt:truncated_payload":  # moov at the front: cut mid-payload
        path.write_bytes(data[: len(data) // 2])
        return "truncated file"
    if u.kind == "corrupt:zero_duration":
        path.write_bytes(zero_durations(data))
        return "zero duration"
    raise ValueError(f"unknown upload kind {u.kind}")


# --- writing -------------------------------------------------------------------------------------


def _csv_text(header: list[str], rows: list[list[str]]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    w.writerows(rows)
    return buf.getvalue()


def _jsonl(lines: list[str]) -> str:
    return "".join(line + "\n" for line in lines)


def _dumps(obj: dict) -> str:
    return json.dumps(obj, ensure_ascii=False)


def _by_month(items: list[tuple[datetime, str]]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for t, line in items:
        out.setdefault(f"{t:%Y-%m}", []).append(line)
    return out


def _write_text(root: Path, rel: str, text: str) -> None:
    p = root / rel
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(text, encoding="utf-8", newline="")


def _prepare(out: Path, overwrite: bool) -> None:
    busy = [f for f in CONTRACT_FOLDERS if (out / f).exists() and any((out / f).iterdir())]
    if busy and not overwrite:
        raise FileExistsError(
            f"{out} already holds landing data ({', '.join(busy)}); pass overwrite=True to replace it"
        )
    for f in busy:
        shutil.rmtree(out / f)
    for f in CONTRACT_FOLDERS:
        (out / f).mkdir(parents=True, exist_ok=True)


def generate_demo(
    out_dir: str | Path, subscribers: int = 40, clips: int = 120, seed: int = 7, overwrite: bool = False
) -> dict:
    """Write a demo landing zone (contract §2 layout) under ``out_dir``.

    ``clips`` is the number of distinct, valid recordings encoded; byte-identical
    re-uploads, corrupt files and bad upload rows come on top (see the returned counts
    and docs/DEMO_DATA.md). Returns counts of what was written plus ``expected``: the
    deliberately bad input, by kind, for tests and demos. Raises FileExistsError when
    ``out_dir`` already holds landing data, unless ``overwrite`` (which replaces only
    the eight contract folders).
    """
    if subscribers < 8:
        raise ValueError("subscribers must be >= 8 (the first eight have fixed roles)")
    if clips < 6:
        raise ValueError("clips must be >= 6 (the first five cover 4K, vertical, drone, HEVC, 120 fps)")
    out = Path(out_dir)
    _prepare(out, overwrite)
    rng = random.Random(seed)

    subs = _make_subscribers(rng, subscribers)
    consent = _make_consent(rng, subs)
    names = _Names(rng)
    uploads = _make_uploads(rng, subs, clips, names)
    uploads += _add_specials(rng, subs, uploads, names)
    uploads.sort(key=lambda u: (u.uploaded_at, u.object_key))
    for n, u in enumerate(uploads, start=1):
        u.clip_id = f"clip-{n:05d}"
    exclusions = _make_exclusions(rng, subs, consent, uploads)
    deals = _make_deals(rng, clips)
    expected: dict[str, Any] = {"bad_rows": {}, "footage": {}, "duplicates": []}
    # The GoPro showcase (R2b, R3, R15) draws from its own stream and is numbered after the
    # rest, so every other file, id and line of the demo is what it was without it.
    showcase_rng = random.Random(f"gopro-showcase-{seed}")
    showcase, expected["gopro"] = _gopro_showcase(showcase_rng, subs, names)
    for n, u in enumerate(sorted(showcase, key=lambda u: (u.uploaded_at, u.object_key)), start=len(uploads) + 1):
        u.clip_id = f"clip-{n:05d}"
    first = uploads[0]
    uploads = sorted(uploads + showcase, key=lambda u: (u.uploaded_at, u.object_key))

    # subscribers/: exports of the current state at four dates (upserts by subscriber_id).
    header = ["subscriber_id", "email", "country", "subscribed_at", "cancelled_at", "invited_at"]
    exports = [datetime(2025, m, d, 23, 0, tzinfo=UTC) for m, d in ((1, 31), (3, 31), (5, 31), (6, 30))]
    last_state: dict[str, tuple] = {}
    n_sub_rows = 0
    for e in exports:
        rows = []
        for s in subs:
            if s.subscribed_at > e:
                continue
            inv = s.invited_at if s.invited_at and s.invited_at <= e else None
            can = s.cancelled_at if s.cancelled_at and s.cancelled_at <= e else None
            state = (inv, can)
            if last_state.get(s.sid) == state:
                continue
            last_state[s.sid] = state
            rows.append(
                [
                    s.sid,
                    s.email,
                    s.country,
                    _stamp(rng, s.subscribed_at),
                    _stamp(rng, can) if can else "",
                    _stamp(rng, inv) if inv else "",
                ]
            )
        if e.month == 6:  # bad input: a timestamp without offset (the row is an update)
            s = next(s for s in subs if s.role == "pro")
            rows.append(
                [
                    s.sid,
                    s.email,
                    s.country,
                    _stamp(rng, s.subscribed_at),
                    "2025-06-28T09:15:00",
                    _stamp(rng, s.invited_at) if s.invited_at else "",
                ]
            )
            expected["bad_rows"]["naive_timestamp"] = f"subscribers/{e:%Y-%m-%d}.csv"
        n_sub_rows += len(rows)
        _write_text(out, f"subscribers/{e:%Y-%m-%d}.csv", _csv_text(header, rows))

    # consent_events/: one file per month, event ids in time order.
    items: list[tuple[datetime, str]] = []
    for n, e in enumerate(consent, start=1):
        row: dict[str, Any] = {
            "event_id": f"ce-{n:05d}",
            "subscriber_id": e["subscriber_id"],
            "event_at": _stamp(rng, e["_t"]),
            "action": e["action"],
        }
        if "excluded_buyers" in e:
            row["excluded_buyers"] = e["excluded_buyers"]
        items.append((e["_t"], _dumps(row)))
    if items:
        dup_t, dup_line = items[min(2, len(items) - 1)]
        items.append((dup_t, dup_line))  # the same event delivered twice (dedup by event_id)
    items.append(
        (
            datetime(2025, 3, 5, tzinfo=UTC),
            '{"event_id": "ce-90001", "subscriber_id": "sub-0002", "event_at": "2025-03-05T10:00:00Z", "act',
        )
    )
    items.append(
        (
            datetime(2025, 4, 8, tzinfo=UTC),
            _dumps(
                {
                    "event_id": "ce-90002",
                    "subscriber_id": "sub-0003",
                    "event_at": "2025-04-08T11:30:00Z",
                    "action": "pause",
                }
            ),
        )
    )
    items.sort(key=lambda it: it[0])
    expected["bad_rows"].update({"malformed_json": "ce-90001", "unknown_action": "ce-90002"})
    consent_files = _by_month(items)
    for month, lines in consent_files.items():
        _write_text(out, f"consent_events/{month}.jsonl", _jsonl(lines))

    # clip_exclusions/
    items = []
    for n, e in enumerate(exclusions, start=1):
        items.append(
            (
                e["_t"],
                _dumps(
                    {
                        "event_id": f"cx-{n:05d}",
                        "subscriber_id": e["subscriber_id"],
                        "clip_id": e["clip_id"],
                        "event_at": _stamp(rng, e["_t"]),
                        "action": e["action"],
                    }
                ),
            )
        )
    for month, lines in _by_month(items).items():
        _write_text(out, f"clip_exclusions/{month}.jsonl", _jsonl(lines))
    if not items:  # keep the folder meaningful even in a tiny demo
        _write_text(out, "clip_exclusions/2025-06.jsonl", "")

    # uploads/
    items = []
    for u in uploads:
        items.append(
            (
                u.uploaded_at,
                _dumps(
                    {
                        "clip_id": u.clip_id,
                        "subscriber_id": u.sid,
                        "object_key": u.object_key,
                        "uploaded_at": _stamp(showcase_rng if u.showcase else rng, u.uploaded_at),
                        "published": u.published,
                        "activity": u.activity,
                        "mount": u.mount,
                    }
                ),
            )
        )
        if u.kind.startswith("bad_row:"):
            expected["bad_rows"][u.kind.split(":", 1)[1]] = u.clip_id
    items.append(
        (
            datetime(2025, 5, 20, tzinfo=UTC),
            _dumps(
                {  # same clip_id again: first occurrence wins
                    "clip_id": first.clip_id,
                    "subscriber_id": first.sid,
                    "object_key": first.object_key,
                    "uploaded_at": _iso(datetime(2025, 5, 20, 7, tzinfo=UTC)),
                    "published": True,
                    "activity": first.activity,
                    "mount": first.mount,
                }
            ),
        )
    )
    items.append(
        (
            datetime(2025, 5, 21, tzinfo=UTC),
            '{"clip_id": "clip-90001", "subscriber_id": "sub-0001", "object_key": "sub-0001/2025/05/GH01',
        )
    )
    items.sort(key=lambda it: it[0])
    expected["bad_rows"]["malformed_upload_json"] = "clip-90001"
    expected["repeated_clip_id"] = first.clip_id
    for month, lines in _by_month(items).items():
        _write_text(out, f"uploads/{month}.jsonl", _jsonl(lines))

    # footage/
    scratch = out / "footage" / ".demo-scratch"
    scratch.mkdir(parents=True, exist_ok=True)
    n_files = 0
    n_encoded = 0
    try:
        _encode_clips_in_parallel(out, [u for u in uploads if u.kind in ENCODED_DIRECTLY])
        for u in uploads:
            if u.kind in ENCODED_DIRECTLY:  # written above
                reason = None
            else:
                reason = _write_footage(
                    out, u, rng.randbytes(48 * 1024) if u.kind == "corrupt:random_bytes" else b"", scratch
                )
            if u.kind == "duplicate":
                assert u.copy_of is not None
                expected["duplicates"].append((u.copy_of.object_key, u.object_key))
            if reason is not None:
                expected["footage"][u.object_key] = reason
            if u.kind == "missing":
                expected["footage"][u.object_key] = "video file missing"
            if u.spec is not None:
                n_encoded += 1
            if u.kind not in ("missing", "bad_row:path_traversal", "bad_row:absolute_key"):
                n_files += 1
    finally:
        shutil.rmtree(scratch, ignore_errors=True)

    # deals/
    for d in deals:
        _write_text(out, f"deals/{d['deal_id']}.json", json.dumps(d, indent=2) + "\n")
    _write_text(out, "deals/D-2025-006.json", BAD_DEAL_TEXT)
    expected["bad_rows"]["invalid_deal_file"] = "deals/D-2025-006.json"

    # buyer_payments/ and payouts/, one file per month received / paid: derived from a run
    # of the money path over everything written above, plus deliberate mismatches.
    revenue, statements = _settle(out)
    payments, pay_notes = _payments(rng, deals, revenue)
    payouts, payout_notes = _payouts(rng, subs, statements)
    expected.update(pay_notes)
    expected.update(payout_notes)
    pay_files: dict[str, list[list[str]]] = {}
    for r in payments:
        pay_files.setdefault(datetime.fromisoformat(r[4]).astimezone(UTC).strftime("%Y-%m"), []).append(r)
    for month, rows in sorted(pay_files.items()):
        _write_text(
            out,
            f"buyer_payments/{month}.csv",
            _csv_text(["payment_id", "deal_id", "batch_id", "amount_cents", "received_at"], rows),
        )
    po_files: dict[str, list[list[str]]] = {}
    for r in payouts:
        po_files.setdefault(datetime.fromisoformat(r[4]).astimezone(UTC).strftime("%Y-%m"), []).append(r)
    for month, rows in sorted(po_files.items()):
        _write_text(
            out,
            f"payouts/{month}.csv",
            _csv_text(["payout_id", "subscriber_id", "statement_month", "amount_cents", "paid_at"], rows),
        )

    return {
        "subscribers": len(subs),
        "subscriber_rows": n_sub_rows,
        "consent_events": sum(len(v) for v in consent_files.values()),
        "clip_exclusions": len(exclusions),
        "uploads": len(items),
        "clips": clips,
        "showcase_clips": len(showcase),
        "duplicates": sum(u.kind == "duplicate" for u in uploads),
        "corrupt_files": sum(u.kind.startswith("corrupt:") for u in uploads),
        "footage_files": n_files,
        "encoded_files": n_encoded,
        "deals": len(deals) + 1,
        "batches": sum(len(d["batches"]) for d in deals),
        "buyer_payments": len(payments),
        "payouts": len(payouts),
        "expected": expected,
    }
