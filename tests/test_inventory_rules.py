"""Inventory rules as pure functions: tier (R3, with R2b's is_drone), billable_seconds (R2),
duplicates (R4). Recordings (R15) and the telemetry columns through real files: tests/test_recordings.py.

Delivery-level R4 (duplicates never licensed) is in tests/test_deliveries.py.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from gopro_assets.domain.footage.inventory import TIER_RANK, billable_seconds, mark_duplicates, tier

UTC = UTC
T0 = datetime(2025, 6, 1, tzinfo=UTC)


# --------------------------------------------------------------------------- R3 tier
@pytest.mark.parametrize(
    "mount, short_side, expected",
    [
        ("drone", 480, "aerial"),  # drone wins whatever the resolution
        ("drone", 2160, "aerial"),
        (None, 2160, "uhd"),  # >= 2160 boundary
        ("helmet", 3024, "uhd"),
        (None, 2159, "hd"),
        ("handheld", 1080, "hd"),  # >= 1080 boundary
        (None, 1079, "sd"),
        (None, 360, "sd"),
        ("Drone", 720, "sd"),  # mount compared exactly ("drone"); see docs/ELIGIBILITY_CHOICES.md
    ],
)
def test_r3_tier(mount, short_side, expected):
    assert tier(mount, short_side) == expected


@pytest.mark.parametrize(
    "mount, is_drone, short_side, expected",
    [
        (None, True, 480, "aerial"),  # a Karma clip without a mount: aerial from telemetry alone
        ("helmet", True, 2160, "aerial"),  # is_drone wins over the mount and the resolution
        ("drone", False, 480, "aerial"),  # the mount alone, as before
        (None, False, 2160, "uhd"),
        (None, None, 1080, "hd"),  # no telemetry (a row written before R2b): by resolution
        ("Drone", False, 720, "sd"),
    ],
)
def test_r3_aerial_from_mount_or_is_drone(mount, is_drone, short_side, expected) -> None:
    assert tier(mount, short_side, is_drone) == expected


def test_r3_tier_uses_short_side():
    # A portrait 4K frame 2160x3840 has short side 2160 -> uhd; 1080x1920 -> hd. The caller
    # passes min(width, height) (R2); tier() itself only sees the short side.
    assert tier(None, min(2160, 3840)) == "uhd"
    assert tier(None, min(1080, 1920)) == "hd"


def test_r3_rank_order():
    assert sorted(TIER_RANK, key=TIER_RANK.get, reverse=True) == ["aerial", "uhd", "hd", "sd"]


# --------------------------------------------------------------------------- R2 billable seconds
@pytest.mark.parametrize(
    "duration, expected",
    [
        (59.999, 59),
        (60.0, 60),
        (0.5, 0),
        (0.0, 0),
        (1.0, 1),
        (3600.999999, 3600),
    ],
)
def test_r2_billable_seconds_is_floor(duration, expected):
    got = billable_seconds(duration)
    assert got == expected and isinstance(got, int)


# --------------------------------------------------------------------------- R4 duplicates
def _row(clip_id, minutes, fp):
    return {"clip_id": clip_id, "uploaded_at": T0 + timedelta(minutes=minutes), "fingerprint": fp}


def _marks(rows):
    return {r["clip_id"]: (r["is_duplicate"], r["duplicate_of"]) for r in rows}


def test_r4_first_uploaded_is_original():
    # c2 uploaded at +0 (first), c1 at +5, c3 at +9, all same fingerprint -> c2 original
    # although "c1" < "c2"; c1, c3 duplicates of c2. c4 (its own fingerprint) is original.
    rows = [_row("c1", 5, "f"), _row("c2", 0, "f"), _row("c3", 9, "f"), _row("c4", 1, "g")]
    assert _marks(mark_duplicates(rows, [])) == {
        "c1": (True, "c2"),
        "c2": (False, None),
        "c3": (True, "c2"),
        "c4": (False, None),
    }


def test_r4_same_instant_smaller_clip_id_is_original():
    # b and a uploaded at the same instant -> "a" (smaller clip_id) is the original.
    assert _marks(mark_duplicates([_row("b", 0, "f"), _row("a", 0, "f")], [])) == {"a": (False, None), "b": (True, "a")}


def test_r4_original_in_another_partition():
    # The original ("old", uploaded earlier) is outside the partitions being written: the
    # current clip is its duplicate. "new2" (another fingerprint, only later copies outside)
    # stays the original.
    others = [_row("old", -60, "f"), _row("zz", 60, "h")]
    rows = mark_duplicates([_row("new", 0, "f"), _row("new2", 0, "h")], others)
    assert _marks(rows) == {"new": (True, "old"), "new2": (False, None)}
    assert [r["clip_id"] for r in rows] == ["new", "new2"]  # only current rows returned, order kept


def test_r4_result_does_not_depend_on_input_order():
    rows = [_row("c3", 0, "f"), _row("c1", 0, "f"), _row("c2", -1, "f")]
    a = _marks(mark_duplicates([dict(r) for r in rows], []))
    b = _marks(mark_duplicates([dict(r) for r in reversed(rows)], []))
    assert a == b == {"c2": (False, None), "c1": (True, "c2"), "c3": (True, "c2")}
