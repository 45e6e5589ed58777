"""Recordings (contract R15) and the inventory's telemetry columns (R2b; R3's is_drone by its
pure function in tests/test_inventory_rules.py, here through real files).

* The naming rule as a pure function (:func:`chapter_of`): every camera naming form, case,
  folders and the names that are not a camera's (docs/FOOTAGE.md writes the choices down).
* Completeness (:func:`is_complete`) and the reference rows (:func:`recording_rows`).
* The lake: real MP4s (muxed here with PyAV, and the real GoPro samples of
  ``../shared/gopro-samples/`` where present) through ``refresh_inventory`` and
  ``refresh_recordings``, every expectation computed by hand in the comments; the blocking
  asset check recomputes ``complete`` on its own; a chapter arriving on a later day
  completes its recording; a telemetry track that cannot be parsed is a warning, not a
  quarantine (R2b); an inventory written before these columns is evolved, not broken.
"""

from __future__ import annotations

import shutil
from datetime import UTC, date, datetime
from pathlib import Path

import pyarrow as pa
import pytest
from deltalake import write_deltalake
from test_gpmf import SAMPLES, imu_stream, karma_device, payload
from test_telemetry_probe import FIX, NO_FIX

from gopro_assets.domain.footage.inventory import refresh_inventory
from gopro_assets.domain.footage.probe import probe_object
from gopro_assets.domain.footage.recordings import Chapter, chapter_of, is_complete, recording_rows, refresh_recordings
from gopro_assets.domain.footage.tables import (
    FOOTAGE_QUARANTINE_SCHEMA,
    INVENTORY_SCHEMA,
    RECORDINGS_SCHEMA,
)
from gopro_assets.domain.ingestion.landing import UPLOADS_SCHEMA
from gopro_assets.lake.delta_store import DeltaStore, SchemaEvolutionError
from gopro_tools.media import encode_mp4, mux_gopro

DAY1, DAY2 = date(2025, 3, 1), date(2025, 3, 2)
FIRST_DAY = date(2025, 1, 1)


# -- R15: the naming rule ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    "object_key, recording_id, chapter",
    [
        # GH (AVC) and GX (HEVC): chapter CC, file number NNNN
        ("100GOPRO/GH010500.MP4", "S1:100GOPRO/GH0500", 1),
        ("100GOPRO/GH020500.MP4", "S1:100GOPRO/GH0500", 2),
        ("100GOPRO/GX010500.MP4", "S1:100GOPRO/GX0500", 1),
        ("100GOPRO/GX030500.MP4", "S1:100GOPRO/GX0500", 3),
        ("100GOPRO/GX990500.MP4", "S1:100GOPRO/GX0500", 99),  # the last chapter a camera numbers
        ("100GOPRO/GX109999.MP4", "S1:100GOPRO/GX9999", 10),
        ("100GOPRO/GX010000.MP4", "S1:100GOPRO/GX0000", 1),  # file number 0000 is a number like any
        # case does not matter in the file name; the family is spelled upper case
        ("100GOPRO/gx020500.mp4", "S1:100GOPRO/GX0500", 2),
        ("100GOPRO/Gh020500.Mp4", "S1:100GOPRO/GH0500", 2),
        # the older naming: GOPR<NNNN> is chapter 1, GP<CC><NNNN> is chapter CC + 1
        ("100GOPRO/GOPR0007.MP4", "S1:100GOPRO/GP0007", 1),
        ("100GOPRO/GP010007.MP4", "S1:100GOPRO/GP0007", 2),
        ("100GOPRO/GP020007.MP4", "S1:100GOPRO/GP0007", 3),
        ("100GOPRO/GP990007.MP4", "S1:100GOPRO/GP0007", 100),
        ("100GOPRO/gopr0007.mp4", "S1:100GOPRO/GP0007", 1),
        ("100GOPRO/gp010007.MP4", "S1:100GOPRO/GP0007", 2),
        # folders: the directory part of object_key, normalized as the probe opens it, case kept
        ("sub-0001/2025/05/GX010500.MP4", "S1:sub-0001/2025/05/GX0500", 1),
        ("a//b/./GX020500.MP4", "S1:a/b/GX0500", 2),
        ("./GX020500.MP4", "S1:/GX0500", 2),
        ("100gopro/GX010500.MP4", "S1:100gopro/GX0500", 1),
        ("GX010500.MP4", "S1:/GX0500", 1),  # no folder: "" (the id still holds a "/")
        ("GOPR0007.MP4", "S1:/GP0007", 1),
        # any other name: a recording of one chapter, <subscriber_id>:<clip_id>
        ("100GOPRO/GH000500.MP4", "S1:c1", 1),  # chapter 00 is not a camera name
        ("100GOPRO/GP000007.MP4", "S1:c1", 1),  # (it would be chapter 1 twice over)
        ("100GOPRO/GX010500.MOV", "S1:c1", 1),  # not .MP4
        ("100GOPRO/GL010500.LRV", "S1:c1", 1),  # the camera's low-resolution proxy
        ("100GOPRO/GOPR0007.LRV", "S1:c1", 1),
        ("100GOPRO/GX01050.MP4", "S1:c1", 1),  # three digits of file number
        ("100GOPRO/GX0105000.MP4", "S1:c1", 1),  # five
        ("100GOPRO/GX1500.MP4", "S1:c1", 1),
        ("100GOPRO/GOPR00071.MP4", "S1:c1", 1),
        ("100GOPRO/GOPRO007.MP4", "S1:c1", 1),
        ("100GOPRO/copy_GX010500.MP4", "S1:c1", 1),  # anything around the pattern
        ("100GOPRO/GX010500 (1).MP4", "S1:c1", 1),
        ("100GOPRO/GX010500.MP4.MP4", "S1:c1", 1),
        ("100GOPRO/GX010500.MP4 ", "S1:c1", 1),
        ("100GOPRO/GZ010500.MP4", "S1:c1", 1),  # no family Z
        ("100GOPRO/GX\u0660\u06610500.MP4", "S1:c1", 1),  # Arabic-Indic digits are not digits here
        ("100GOPRO/DJI_0001.MP4", "S1:c1", 1),
        ("100GOPRO/MOV_0001.MP4", "S1:c1", 1),
        ("100GOPRO/", "S1:c1", 1),
        ("GX010500.MP4/", "S1:c1", 1),
    ],
)
def test_r15_chapter_of_every_naming_form(object_key: str, recording_id: str, chapter: int) -> None:
    assert chapter_of("S1", "c1", object_key) == Chapter(recording_id, chapter)


def test_r15_what_makes_one_recording() -> None:
    """Same subscriber, same folder, same family, same NNNN; nothing else."""
    rid = lambda sub, key: chapter_of(sub, "c", key).recording_id  # noqa: E731
    assert rid("S1", "100GOPRO/GX010500.MP4") == rid("S1", "100GOPRO/gx020500.mp4")
    assert rid("S1", "100GOPRO/GOPR0007.MP4") == rid("S1", "100GOPRO/GP010007.MP4")
    assert rid("S1", "100GOPRO/GX010500.MP4") != rid("S2", "100GOPRO/GX020500.MP4")  # subscriber
    assert rid("S1", "100GOPRO/GX010500.MP4") != rid("S1", "101GOPRO/GX020500.MP4")  # folder
    assert rid("S1", "100GOPRO/GX010500.MP4") != rid("S1", "100GOPRO/GH020500.MP4")  # family
    assert rid("S1", "100GOPRO/GX010500.MP4") != rid("S1", "100GOPRO/GX020501.MP4")  # file number
    assert rid("S1", "100GOPRO/GOPR0500.MP4") != rid("S1", "100GOPRO/GH010500.MP4")  # P is not H
    # the two id forms never collide: a clip id never holds "/", a chaptered id always does
    assert "/" in rid("S1", "GX010500.MP4") and "/" not in rid("S1", "DJI_0001.MP4")


@pytest.mark.parametrize(
    "chapters, complete",
    [
        ([1], True),
        ([1, 2, 3], True),
        ([3, 1, 2], True),  # order of arrival does not matter
        ([1, 3], False),  # chapter 2 missing
        ([2, 3], False),  # chapter 1 missing
        ([2], False),
        ([1, 1, 2], False),  # two files claim chapter 1: not exactly 1..n
        ([], False),  # nothing counts
    ],
)
def test_r15_complete_means_exactly_one_to_n(chapters: list[int], complete: bool) -> None:
    assert is_complete(chapters) is complete


def _ch(rid: str, chapter: int, clip: str, seconds: float, counted: bool = True, sub: str = "S1") -> dict:
    return {
        "recording_id": rid,
        "subscriber_id": sub,
        "chapter": chapter,
        "clip_id": clip,
        "duration_s": seconds,
        "billable_seconds": int(seconds),
        "counted": counted,
    }


def test_r15_recording_rows_by_hand() -> None:
    rows = recording_rows(
        [
            # three chapters, all counted: complete; 10.5 + 20.25 + 3.0 = 33.75 s, 10 + 20 + 3 = 33 billable
            _ch("S1:100GOPRO/GX0001", 2, "b", 20.25),
            _ch("S1:100GOPRO/GX0001", 1, "a", 10.5),
            _ch("S1:100GOPRO/GX0001", 3, "c", 3.0),
            # chapter 2 is a duplicate (not counted): 1 and 3 are not 1..n
            _ch("S1:100GOPRO/GH0002", 1, "d", 5.9),
            _ch("S1:100GOPRO/GH0002", 2, "e", 6.0, counted=False),
            _ch("S1:100GOPRO/GH0002", 3, "f", 7.0),
            # only chapter 2 arrived: no first clip
            _ch("S2:100GOPRO/GP0003", 2, "g", 4.0, sub="S2"),
            # every chapter a duplicate: a row with nothing counted
            _ch("S2:h", 1, "h", 4.0, counted=False, sub="S2"),
        ]
    )
    assert rows == [
        {
            "recording_id": "S1:100GOPRO/GH0002",
            "subscriber_id": "S1",
            "chapters": 2,
            "complete": False,
            "recording_duration_s": pytest.approx(12.9),
            "billable_seconds": 5 + 7,
            "first_clip_id": "d",
        },
        {
            "recording_id": "S1:100GOPRO/GX0001",
            "subscriber_id": "S1",
            "chapters": 3,
            "complete": True,
            "recording_duration_s": 33.75,
            "billable_seconds": 33,
            "first_clip_id": "a",
        },
        {
            "recording_id": "S2:100GOPRO/GP0003",
            "subscriber_id": "S2",
            "chapters": 1,
            "complete": False,
            "recording_duration_s": 4.0,
            "billable_seconds": 4,
            "first_clip_id": None,
        },
        {
            "recording_id": "S2:h",
            "subscriber_id": "S2",
            "chapters": 0,
            "complete": False,
            "recording_duration_s": 0.0,
            "billable_seconds": 0,
            "first_clip_id": None,
        },
    ]


# -- the lake: real files through the inventory and the recordings ------------------------------
def _upload(clip_id: str, sub: str, key: str, day: date, minute: int, mount: str | None = None) -> dict:
    return {
        "clip_id": clip_id,
        "subscriber_id": sub,
        "object_key": key,
        "uploaded_at": datetime(day.year, day.month, day.day, 9, minute, tzinfo=UTC),
        "published": False,
        "activity": "surf",
        "mount": mount,
        "_source_path": f"uploads/{day}.jsonl",
        "_source_line": minute + 1,
    }


def _probe_here(landing_root: str, keys: list[str], timeout_s: float = 0) -> list:
    """probe_many without worker processes (the tests' files are small and well-formed or
    deliberately broken in ways the probe handles in-process)."""
    return [probe_object(landing_root, k) for k in keys]


def _refresh(store: DeltaStore, landing: Path, uploads: list[dict], days: list[date]) -> dict:
    store.overwrite("uploads", pa.Table.from_pylist(uploads, schema=UPLOADS_SCHEMA))
    report = refresh_inventory(store, str(landing), days, FIRST_DAY, _probe_here)
    report["recordings"] = refresh_recordings(store)
    return report


def _by(table: pa.Table, key: str) -> dict[str, dict]:
    return {r[key]: r for r in table.to_pylist()}


def _check(store: DeltaStore):
    """The blocking asset check on footage_recordings, run on this lake."""
    from gopro_assets.defs.footage.checks import recordings_r15_complete_recomputed
    from gopro_assets.shared.resources import LakehouseResource

    return recordings_r15_complete_recomputed(lakehouse=LakehouseResource(lake=store.root, landing="", exports=""))


@pytest.fixture
def recordings_lake(tmp_path: Path):
    """Day 1 of a landing zone with several recordings (durations are whole seconds at 1 fps).

    s1  100GOPRO/GX010001, GX020001, GX030001  3 + 4 + 2 s: complete, 9 s
    s1  100GOPRO/GH010002, GH030002            chapter 2 not uploaded yet: incomplete
    s1  100GOPRO/GOPR0003, GP010003            GP01 a byte copy of GX010001: a duplicate, not counted
    s2  100GOPRO/GX010004, GX020004            GX02 corrupt: quarantined (error), not counted
    s2  100GOPRO/GX010001                      another subscriber's GX0001: a recording of its own
    s1  100GOPRO/DJI_0001                      no camera name: s1:c10, chapter 1, complete
    """
    landing = tmp_path / "landing"
    f = landing / "footage"
    encode_mp4(f / "s1/100GOPRO/GX010001.MP4", seconds=3, shade=10)
    encode_mp4(f / "s1/100GOPRO/GX020001.MP4", seconds=4, shade=20)
    encode_mp4(f / "s1/100GOPRO/GX030001.MP4", seconds=2, shade=30)
    encode_mp4(f / "s1/100GOPRO/GH010002.MP4", seconds=5, shade=40)
    encode_mp4(f / "s1/100GOPRO/GH030002.MP4", seconds=5, shade=50)
    encode_mp4(f / "s1/100GOPRO/GOPR0003.MP4", seconds=6, shade=60)
    shutil.copyfile(f / "s1/100GOPRO/GX010001.MP4", f / "s1/100GOPRO/GP010003.MP4")
    encode_mp4(f / "s2/100GOPRO/GX010004.MP4", seconds=3, shade=70)
    (f / "s2/100GOPRO/GX020004.MP4").write_bytes(b"\x00\x00\x00\x18ftypisom" + b"broken" * 40)
    encode_mp4(f / "s2/100GOPRO/GX010001.MP4", seconds=2, shade=80)
    encode_mp4(f / "s1/100GOPRO/DJI_0001.MP4", seconds=7, shade=90)
    uploads = [
        _upload("c1", "s1", "s1/100GOPRO/GX010001.MP4", DAY1, 0),
        _upload("c2", "s1", "s1/100GOPRO/GX020001.MP4", DAY1, 1),
        _upload("c3", "s1", "s1/100GOPRO/GX030001.MP4", DAY1, 2),
        _upload("c4", "s1", "s1/100GOPRO/GH010002.MP4", DAY1, 3),
        _upload("c5", "s1", "s1/100GOPRO/GH030002.MP4", DAY1, 4),
        _upload("c6", "s1", "s1/100GOPRO/GOPR0003.MP4", DAY1, 5),
        _upload("c7", "s1", "s1/100GOPRO/GP010003.MP4", DAY1, 6),
        _upload("c8", "s2", "s2/100GOPRO/GX010004.MP4", DAY1, 7),
        _upload("c9", "s2", "s2/100GOPRO/GX020004.MP4", DAY1, 8),
        _upload("c11", "s2", "s2/100GOPRO/GX010001.MP4", DAY1, 9),
        _upload("c10", "s1", "s1/100GOPRO/DJI_0001.MP4", DAY1, 10),
    ]
    store = DeltaStore(str(tmp_path / "lake"))
    return store, landing, uploads


def test_recordings_grouping_and_completeness_by_hand(recordings_lake) -> None:
    store, landing, uploads = recordings_lake
    report = _refresh(store, landing, uploads, [DAY1])
    inv = _by(store.read("footage_inventory"), "clip_id")
    assert {c: (r["recording_id"], r["chapter"]) for c, r in inv.items()} == {
        "c1": ("s1:s1/100GOPRO/GX0001", 1),
        "c2": ("s1:s1/100GOPRO/GX0001", 2),
        "c3": ("s1:s1/100GOPRO/GX0001", 3),
        "c4": ("s1:s1/100GOPRO/GH0002", 1),
        "c5": ("s1:s1/100GOPRO/GH0002", 3),
        "c6": ("s1:s1/100GOPRO/GP0003", 1),
        "c7": ("s1:s1/100GOPRO/GP0003", 2),
        "c8": ("s2:s2/100GOPRO/GX0004", 1),
        "c11": ("s2:s2/100GOPRO/GX0001", 1),
        "c10": ("s1:c10", 1),
    }  # c9 is quarantined: no inventory row
    assert inv["c7"]["is_duplicate"] and inv["c7"]["duplicate_of"] == "c1"
    rec = _by(store.read("footage_recordings"), "recording_id")
    got = {k: (r["chapters"], r["complete"], r["billable_seconds"], r["first_clip_id"]) for k, r in rec.items()}
    assert got == {
        "s1:s1/100GOPRO/GX0001": (3, True, 3 + 4 + 2, "c1"),
        "s1:s1/100GOPRO/GH0002": (2, False, 5 + 5, "c4"),  # 1 and 3: chapter 2 missing
        # the counted chapters are exactly 1..1: complete, as R15 words it (the duplicate chapter 2
        # and, below, the quarantined one do not count; docs/FOOTAGE.md)
        "s1:s1/100GOPRO/GP0003": (1, True, 6, "c6"),
        "s2:s2/100GOPRO/GX0004": (1, True, 3, "c8"),
        "s2:s2/100GOPRO/GX0001": (1, True, 2, "c11"),
        "s1:c10": (1, True, 7, "c10"),
    }
    assert rec["s1:s1/100GOPRO/GX0001"]["recording_duration_s"] == pytest.approx(
        sum(inv[c]["duration_s"] for c in ("c1", "c2", "c3"))
    )
    assert report["recordings"] == {
        "recordings": 6,
        "complete": 5,
        "incomplete": 1,
        "written": True,
        "inventory_rows_without_recording": 0,
    }
    assert _check(store).passed


def test_recordings_later_chapter_on_a_later_day_completes_the_recording(recordings_lake) -> None:
    store, landing, uploads = recordings_lake
    _refresh(store, landing, uploads, [DAY1])
    assert not _by(store.read("footage_recordings"), "recording_id")["s1:s1/100GOPRO/GH0002"]["complete"]
    encode_mp4(landing / "footage/s1/100GOPRO/GH020002.MP4", seconds=8, shade=100)
    later = [*uploads, _upload("c12", "s1", "s1/100GOPRO/GH020002.MP4", DAY2, 0)]
    _refresh(store, landing, later, [DAY2])  # only day 2 is probed; the recordings see every day
    rec = _by(store.read("footage_recordings"), "recording_id")["s1:s1/100GOPRO/GH0002"]
    assert (rec["chapters"], rec["complete"], rec["billable_seconds"], rec["first_clip_id"]) == (3, True, 18, "c4")
    assert _check(store).passed
    # a re-run changes nothing: every table stays at its version
    versions = {t: store.version(t) for t in ("footage_inventory", "footage_quarantine", "footage_recordings")}
    _refresh(store, landing, later, [DAY1, DAY2])
    assert {t: store.version(t) for t in versions} == versions


def test_the_check_catches_a_wrong_complete_flag(recordings_lake) -> None:
    store, landing, uploads = recordings_lake
    _refresh(store, landing, uploads, [DAY1])
    table = store.read("footage_recordings").to_pylist()
    for r in table:
        if r["recording_id"] == "s1:s1/100GOPRO/GH0002":
            r["complete"] = True  # chapter 2 is missing: must not pass
    store.overwrite("footage_recordings", pa.Table.from_pylist(table, schema=RECORDINGS_SCHEMA))
    result = _check(store)
    assert not result.passed
    assert "s1:s1/100GOPRO/GH0002" in str(result.metadata["sample"].value)


def test_quarantined_and_duplicate_chapters_do_not_count(tmp_path: Path) -> None:
    """s1's GX0001: chapter 2 is quarantined (error), so 1 and 3 are not 1..n; when a good
    chapter 2 is uploaded the next day (same folder, the name in lower case: the same
    chapter) it counts and the recording is complete. s1's GX0002: chapter 2 is a
    re-upload of chapter 1's bytes (a duplicate): chapter 1 alone counts."""
    landing = tmp_path / "landing"
    f = landing / "footage/s1"
    encode_mp4(f / "GX010001.MP4", seconds=2, shade=10)
    (f / "GX020001.MP4").write_bytes(b"")  # empty: quarantined
    encode_mp4(f / "GX030001.MP4", seconds=2, shade=30)
    encode_mp4(f / "GX010002.MP4", seconds=3, shade=40)
    shutil.copyfile(f / "GX010002.MP4", f / "GX020002.MP4")
    uploads = [
        _upload("a1", "s1", "s1/GX010001.MP4", DAY1, 0),
        _upload("a2", "s1", "s1/GX020001.MP4", DAY1, 1),
        _upload("a3", "s1", "s1/GX030001.MP4", DAY1, 2),
        _upload("b1", "s1", "s1/GX010002.MP4", DAY1, 3),
        _upload("b2", "s1", "s1/GX020002.MP4", DAY1, 4),
    ]
    store = DeltaStore(str(tmp_path / "lake"))
    _refresh(store, landing, uploads, [DAY1])
    q = store.read("footage_quarantine").to_pylist()
    assert [(r["clip_id"], r["severity"]) for r in q] == [("a2", "error")]
    rec = _by(store.read("footage_recordings"), "recording_id")
    assert (rec["s1:s1/GX0001"]["chapters"], rec["s1:s1/GX0001"]["complete"]) == (2, False)
    assert (rec["s1:s1/GX0002"]["chapters"], rec["s1:s1/GX0002"]["complete"]) == (1, True)
    assert rec["s1:s1/GX0002"]["billable_seconds"] == 3  # the duplicate's seconds are not summed
    encode_mp4(f / "gx020001.mp4", seconds=2, shade=20)
    again = [*uploads, _upload("a2b", "s1", "s1/gx020001.mp4", DAY2, 0)]
    _refresh(store, landing, again, [DAY2])
    rec = _by(store.read("footage_recordings"), "recording_id")["s1:s1/GX0001"]
    assert (rec["chapters"], rec["complete"], rec["billable_seconds"]) == (3, True, 6)  # a1, a2b, a3
    assert [(r["clip_id"], r["severity"]) for r in store.read("footage_quarantine").to_pylist()] == [("a2", "error")]
    assert _check(store).passed


# -- R2b: the telemetry columns in the inventory --------------------------------------------------
def test_telemetry_columns_and_aerial_from_a_hand_built_karma_track(tmp_path: Path) -> None:
    landing = tmp_path / "landing"
    f = landing / "footage/s1"
    karma = payload("Camera", imu_stream(), extra_devices=(karma_device(),))
    mux_gopro(f / "GOPR0001.MP4", [karma, karma], creation_time="2024-06-01T10:20:30.000000Z")
    mux_gopro(f / "GX010002.MP4", [NO_FIX, FIX, NO_FIX], seed=8)  # HERO8 Black, GPS from payload 2
    mux_gopro(f / "GX010003.MP4", [b"not GPMF at all, just text"], seed=9)  # a track that cannot be parsed
    encode_mp4(f / "GH010004.MP4", seconds=2, shade=5)  # no track
    uploads = [
        _upload("k1", "s1", "s1/GOPR0001.MP4", DAY1, 0, mount=None),  # no mount: aerial from telemetry alone
        _upload("g2", "s1", "s1/GX010002.MP4", DAY1, 1, mount="helmet"),
        _upload("w3", "s1", "s1/GX010003.MP4", DAY1, 2, mount="drone"),
        _upload("n4", "s1", "s1/GH010004.MP4", DAY1, 3),
    ]
    store = DeltaStore(str(tmp_path / "lake"))
    report = _refresh(store, landing, uploads, [DAY1])
    inv = _by(store.read("footage_inventory"), "clip_id")
    cols = (
        "telemetry",
        "camera_model",
        "firmware",
        "recorded_at",
        "has_gps",
        "has_imu",
        "is_drone",
        "location_cell",
        "telemetry_warning",
        "tier",
    )
    got = {c: tuple(inv[c][k] for k in cols) for c in inv}
    warning = "telemetry track cannot be parsed: payload 1: top level holds 'not ' at byte 0"
    assert got["k1"] == (
        True,
        "Camera",  # no firmware anywhere: the DVNM of device 1 (a HERO5 writes "Camera")
        None,
        datetime(2024, 6, 1, 10, 20, 30, tzinfo=UTC),  # as written (camera-local time labelled UTC)
        False,
        True,
        True,  # device 2 "GoPro Karma v1.0"
        None,
        None,
        "aerial",  # 64x36 with no mount: sd by resolution, aerial by is_drone (R3)
    )
    assert got["g2"] == (
        True,
        "HERO8 Black",
        None,
        datetime(2024, 6, 1, 10, 20, 30, tzinfo=UTC),
        True,
        True,
        False,
        "u4pru",  # Aalborg
        None,
        "sd",
    )
    # a track that cannot be parsed: telemetry false, every fact null/false, the reason kept
    assert got["w3"][:8] == (False, None, None, None, False, False, False, None)
    assert got["w3"][8].startswith(warning) and got["w3"][9] == "aerial"  # mount drone: aerial as before
    assert got["n4"] == (False, None, None, None, False, False, False, None, None, "sd")  # no track
    # R2b: the unreadable track is a warning; the clip is in the inventory and not quarantined
    q = store.read("footage_quarantine").to_pylist()
    assert [(r["clip_id"], r["severity"], r["reason"][: len(warning)]) for r in q] == [("w3", "warning", warning)]
    assert [w["clip_id"] for w in report["telemetry_warnings"]] == ["w3"] and report["quarantined"] == []
    # a re-run reuses the probed rows and keeps the warning: nothing changes
    versions = {t: store.version(t) for t in ("footage_inventory", "footage_quarantine")}
    again = _refresh(store, landing, uploads, [DAY1])
    assert again["probed_now"] == 0 and [w["clip_id"] for w in again["telemetry_warnings"]] == ["w3"]
    assert {t: store.version(t) for t in versions} == versions


SAMPLE_FACTS = {
    # from ../shared/gopro-samples/README.md, measured on the files
    "karma.mp4": dict(
        camera_model="HERO5 Black",
        firmware="HD5.02.02.00.00",
        recorded_at=datetime(2017, 4, 17, 19, 27, 57, tzinfo=UTC),
        has_gps=False,
        has_imu=True,
        is_drone=True,
        location_cell=None,
        tier="aerial",  # 480p with no mount: aerial from telemetry alone (R3)
    ),
    "max-heromode.mp4": dict(
        camera_model="MAX",
        firmware="H19.03.01.30.00",
        recorded_at=datetime(2019, 11, 18, 15, 45, 32, tzinfo=UTC),
        has_gps=True,
        has_imu=True,
        is_drone=False,
        location_cell="9mus6",
        tier="sd",
    ),
}


def test_real_gopro_samples_through_the_inventory(tmp_path: Path) -> None:
    names = [n for n in sorted(SAMPLE_FACTS) if (SAMPLES / n).is_file()]
    if not names:
        pytest.skip(f"{SAMPLES} is absent (real GoPro files live in ../shared next to the checkout)")
    landing = tmp_path / "landing"
    for n in names:  # a tmp landing zone, never the repository
        (landing / "footage/s1").mkdir(parents=True, exist_ok=True)
        shutil.copyfile(SAMPLES / n, landing / "footage/s1" / n)
    uploads = [_upload(n.split(".")[0], "s1", f"s1/{n}", DAY1, i) for i, n in enumerate(names)]
    store = DeltaStore(str(tmp_path / "lake"))
    _refresh(store, landing, uploads, [DAY1])
    inv = _by(store.read("footage_inventory"), "object_key")
    for n in names:
        row = inv[f"s1/{n}"]
        assert row["telemetry"] is True and row["telemetry_warning"] is None
        assert {k: row[k] for k in SAMPLE_FACTS[n]} == SAMPLE_FACTS[n], n
        assert (row["recording_id"], row["chapter"]) == (f"s1:{n.split('.')[0]}", 1)  # not camera names


# -- existing lakes: schema evolution ----------------------------------------------------------------
NEW_INVENTORY_COLUMNS = {
    "telemetry",
    "camera_model",
    "firmware",
    "recorded_at",
    "has_gps",
    "has_imu",
    "is_drone",
    "location_cell",
    "telemetry_warning",
    "recording_id",
    "chapter",
}


def _old(schema: pa.Schema, new: set[str]) -> pa.Schema:
    return pa.schema([f for f in schema if f.name not in new])


def test_an_old_lake_is_evolved_and_refilled_day_by_day(recordings_lake) -> None:
    """A lake written before R2b/R15 (inventory without the telemetry and recording columns,
    quarantine without severity): a run over day 2 adds the columns, re-probes day 2 and
    fills it; day 1 keeps nulls (and is outside every recording) until a run covers it;
    its old quarantine rows are errors."""
    store, landing, uploads = recordings_lake
    encode_mp4(landing / "footage/s1/100GOPRO/GH020002.MP4", seconds=8, shade=100)
    uploads = [*uploads, _upload("c12", "s1", "s1/100GOPRO/GH020002.MP4", DAY2, 0)]
    _refresh(store, landing, uploads, [DAY1, DAY2])
    new_inv = store.read("footage_inventory")
    new_q = store.read("footage_quarantine")
    # rewrite both tables as the previous version would have (same rows, old columns)
    old = DeltaStore(str(Path(store.root).parent / "old_lake"))
    old_inv_schema = _old(INVENTORY_SCHEMA, NEW_INVENTORY_COLUMNS)
    old_q_schema = _old(FOOTAGE_QUARANTINE_SCHEMA, {"severity"})
    write_deltalake(old.uri("footage_inventory"), new_inv.select(old_inv_schema.names), partition_by=["upload_day"])
    write_deltalake(old.uri("footage_quarantine"), new_q.select(old_q_schema.names), partition_by=["upload_day"])
    # the recordings of an inventory not evolved yet: a clear message, not a SQL error
    with pytest.raises(RuntimeError, match="has no recording_id column: it was written before R15"):
        refresh_recordings(old)

    report = _refresh(old, landing, uploads, [DAY2])
    assert set(report["columns_added"]["footage_inventory"]) == NEW_INVENTORY_COLUMNS
    assert report["columns_added"]["footage_quarantine"] == ["severity"]
    assert report["probed_now"] == 1  # day 2's row had no telemetry columns: probed again
    inv = _by(old.read("footage_inventory"), "clip_id")
    assert inv["c12"]["telemetry"] is False and inv["c12"]["recording_id"] == "s1:s1/100GOPRO/GH0002"
    assert inv["c1"]["telemetry"] is None and inv["c1"]["recording_id"] is None  # day 1 not run yet
    assert [(r["clip_id"], r["severity"]) for r in old.read("footage_quarantine").to_pylist()] == [("c9", "error")]
    assert report["recordings"]["inventory_rows_without_recording"] == 10
    assert _check(old).passed  # rows without a recording are outside every recording
    # a run over day 1 fills it: the same tables as a lake that always had the columns
    _refresh(old, landing, uploads, [DAY1])
    for table in ("footage_inventory", "footage_quarantine", "footage_recordings"):
        a, b = store.read(table), old.read(table)
        key = b.schema.names[0]
        assert sorted(b.select(a.schema.names).to_pylist(), key=lambda r: r[key]) == sorted(
            a.to_pylist(), key=lambda r: r[key]
        ), table


def test_an_incompatible_stored_column_fails_with_a_clear_message(tmp_path: Path) -> None:
    store = DeltaStore(str(tmp_path / "lake"))
    schema = pa.schema([pa.field("clip_id", pa.string()), pa.field("chapter", pa.string())])
    store.overwrite("footage_inventory", pa.Table.from_pylist([{"clip_id": "c", "chapter": "one"}], schema=schema))
    version = store.version("footage_inventory")
    with pytest.raises(SchemaEvolutionError, match=r"'footage_inventory' .* chapter is string in the table, int64"):
        refresh_inventory(store, str(tmp_path / "landing"), [DAY1], FIRST_DAY, _probe_here)
    assert store.version("footage_inventory") == version  # nothing written
