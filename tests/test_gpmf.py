"""The GPMF reader, the R2b telemetry summary and the geohash cell (contract R2b).

Real inputs: every GPMF payload and track dump in ``../shared/gopro-samples/gpmf/`` (tests on
them skip with the reason where the folder is absent), cross-checked against GoPro's own C
parser (``py-gpmf-parser``, run in a subprocess: its Python binding can abort the process).
Hand-built payloads cover what the samples do not (GPS9, every scalar type, each malformed
shape) and run everywhere. Hypothesis fuzzes truncated, bit-flipped and oversized payloads:
each ends parsed or as ``GpmfError`` (a telemetry warning), never another exception or a hang.
"""

from __future__ import annotations

import importlib.util
import json
import math
import re
import statistics
import struct
import subprocess
import sys
import tracemalloc
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from gopro_assets.domain.footage import geohash
from gopro_assets.domain.footage.gpmf import (
    MAX_DEPTH,
    GpmfError,
    Stream,
    devices,
    expand_type,
    gps_samples,
    iter_entries,
    parse,
    values,
)
from gopro_assets.domain.footage.telemetry import (
    FIRMWARE_MODELS,
    NO_TELEMETRY,
    TELEMETRY_COLUMNS,
    TelemetrySummary,
    camera_model_from_firmware,
    summarize,
)

SAMPLES = Path(__file__).resolve().parents[2] / "shared" / "gopro-samples"
GPMF_DIR = SAMPLES / "gpmf"
ABSENT = f"{SAMPLES} is absent (real GoPro files live in ../shared next to the checkout; see its README)"

# -- building GPMF by hand (the documented format) -------------------------------------------

_FORMATS = {"b": "b", "B": "B", "s": "h", "S": "H", "l": "i", "L": "I", "f": "f", "d": "d", "j": "q", "J": "Q"}


def klv(key: str, type_: str, struct_size: int, data: bytes, repeat: int | None = None) -> bytes:
    """One entry: 8-byte header, data, zero padding to 4 bytes."""
    if repeat is None:
        repeat = len(data) // struct_size
    type_byte = b"\0" if type_ == "\0" else type_.encode("latin-1")
    head = key.encode("latin-1") + type_byte + bytes([struct_size]) + repeat.to_bytes(2, "big")
    return head + data + b"\0" * (-len(data) % 4)


def nest(key: str, *children: bytes) -> bytes:
    body = b"".join(children)
    return klv(key, "\0", 1 if len(body) <= 0xFFFF else 4, body)


def text(key: str, s: str, struct_size: int = 1) -> bytes:
    return klv(key, "c", struct_size, s.encode("latin-1"), repeat=len(s) // struct_size)


def nums(key: str, type_: str, rows: list[tuple]) -> bytes:
    """Numeric samples: one tuple of elements per sample."""
    fmt = _FORMATS[type_]
    width = len(rows[0]) if rows else 1
    data = b"".join(struct.pack(">" + fmt * len(r), *r) for r in rows)
    return klv(key, type_, width * struct.calcsize(">" + fmt), data, repeat=len(rows))


GPS5_SCAL = (10_000_000, 10_000_000, 1000, 1000, 100)
GPS9_SCAL = (10_000_000, 10_000_000, 1000, 1000, 100, 1, 1000, 100, 1)


def gps5_stream(points: list[tuple[float, float]], fix: int) -> bytes:
    rows = [(round(lat * 1e7), round(lon * 1e7), 12_345, 1_500, 180) for lat, lon in points]
    return nest(
        "STRM",
        text("STNM", "GPS (Lat., Long., Alt., 2D speed, 3D speed)"),
        nums("GPSF", "L", [(fix,)]),
        klv("GPSU", "U", 16, b"230115123456.789"),
        nums("GPSP", "S", [(150,)]),
        nums("SCAL", "l", [(s,) for s in GPS5_SCAL]),
        nums("GPS5", "l", rows),
    )


def gps9_row(lat: float, lon: float, fix: int) -> bytes:
    """One GPS9 record, TYPE ``lllllllSS``: lat, lon, alt, 2D speed, 3D speed, days since
    2000, seconds since midnight, DOP, fix (scaled by GPS9_SCAL)."""
    return struct.pack(
        ">lllllllHH", round(lat * 1e7), round(lon * 1e7), 123_456, 2_500, 2_600, 8_500, 45_296_789, 135, fix
    )


def gps9_stream(rows: list[tuple[float, float, int]]) -> bytes:
    data = b"".join(gps9_row(*r) for r in rows)
    return nest(
        "STRM",
        text("STNM", "GPS (Lat., Long., Alt., 2D, 3D, days, secs, DOP, fix)"),
        text("TYPE", "lllllllSS"),
        nums("SCAL", "l", [(s,) for s in GPS9_SCAL]),
        klv("GPS9", "?", 32, data, repeat=len(rows)),
    )


def imu_stream(accl: int = 4, gyro: int = 4) -> bytes:
    return nest(
        "STRM",
        nums("SCAL", "s", [(418,)]),
        nums("ACCL", "s", [(418 * 9, -20 * i, 7) for i in range(accl)]),
        nums("GYRO", "s", [(1, 2, 3)] * gyro) if gyro else b"",
    )


def payload(
    name: str = "HERO8 Black",
    *streams: bytes,
    extra_devices: tuple[bytes, ...] = (),
    device_entries: tuple[bytes, ...] = (),
) -> bytes:
    camera = nest("DEVC", nums("DVID", "L", [(1,)]), text("DVNM", name), *device_entries, *streams)
    return camera + b"".join(extra_devices)


def karma_device() -> bytes:
    return nest(
        "DEVC",
        nums("DVID", "L", [(16835857,)]),
        text("DVNM", "GoPro Karma v1.0"),
        nest("STRM", text("TYPE", "lL"), nums("SCAL", "l", [(1,), (10,)]), klv("KBAT", "?", 8, bytes(8))),
    )


# Coordinates of the hand-built payloads (public places, not personal data).
AALBORG = (57.64911, 10.40744)  # geohash u4pruydqqvj
PARIS = (48.85837, 2.29448)


# -- the real samples ----------------------------------------------------------------------------

# What the real payloads hold (from ../shared/gopro-samples/README.md, and measured on the files
# with this reader and gpmf-parser alike): device names, whether a GPS stream has a fix, IMU, drone.
SAMPLE_FACTS: dict[str, dict] = {
    "gpmf-parser_hero5.raw": dict(names=["Camera"], payloads=1, gps5=True, fix=3, imu=True, drone=False),
    "gpmf-parser_hero6.raw": dict(names=["Hero6 Black"], payloads=1, gps5=True, fix=0, imu=True, drone=False),
    "gpmf-parser_hero6+ble.raw": dict(
        names=["Hero6 Black", "SENSORB6"], payloads=1, gps5=True, fix=0, imu=True, drone=False
    ),
    "gpmf-parser_Fusion.raw": dict(names=["Fusion"], payloads=1, gps5=True, fix=3, imu=True, drone=False),
    "gpmf-parser_karma.raw": dict(
        names=["Camera", "GoPro Karma v1.0"], payloads=1, gps5=False, fix=None, imu=True, drone=True
    ),
    "gpmf-extract_karma-track.raw": dict(
        names=["Camera", "GoPro Karma v1.0"], payloads=13, gps5=False, fix=None, imu=True, drone=True
    ),
    "dustin-gpmf_basement.gpmf": dict(names=["HERO8 Black"], payloads=123, gps5=True, fix=0, imu=True, drone=False),
    "dustin-gpmf_grass.gpmf": dict(names=["HERO8 Black"], payloads=13, gps5=True, fix=0, imu=True, drone=False),
    "dustin-gpmf_walking.gpmf": dict(names=["HERO8 Black"], payloads=50, gps5=True, fix=2, imu=True, drone=False),
}


def sample_path(name: str) -> Path:
    path = GPMF_DIR / name
    if not path.is_file():
        pytest.skip(ABSENT if not SAMPLES.is_dir() else f"{path} is absent")
    return path


def split_track(data: bytes) -> list[bytes]:
    """A track dump (concatenated payloads) back into payloads: each payload starts with
    the camera's device (DVID 1); the other devices of that second follow it."""
    top = parse(data)
    starts = []
    for devc in top:
        dvid = next((e for e in devc.children if e.key == "DVID"), None)
        if not starts or (dvid is not None and values(dvid)[0][0] == 1):
            starts.append(devc.offset)
    starts.append(len(data))
    return [data[a:b] for a, b in zip(starts, starts[1:])]


def test_every_sample_has_its_facts() -> None:
    if not GPMF_DIR.is_dir():
        pytest.skip(ABSENT)
    assert sorted(p.name for p in GPMF_DIR.iterdir()) == sorted(SAMPLE_FACTS)


@pytest.mark.parametrize("name", sorted(SAMPLE_FACTS))
def test_real_sample_devices_streams_and_facts(name: str) -> None:
    data = sample_path(name).read_bytes()
    facts = SAMPLE_FACTS[name]
    payloads = split_track(data)
    assert len(payloads) == facts["payloads"]
    devs = devices(payloads[0])
    assert [d.name for d in devs] == facts["names"]
    assert devs[0].device_id == 1
    keys = {e.key for d in devs for s in d.streams for e in s.entries}
    assert {"ACCL", "GYRO"} <= keys
    assert ("GPS5" in keys) == facts["gps5"]
    if facts["drone"]:
        karma = devs[1]
        assert {"GPRI", "GLPI", "ATTD"} <= {e.key for s in karma.streams for e in s.entries}
    fixes = {g.fix for p in payloads for d in devices(p) for s in d.streams for g in gps_samples(s)}
    if facts["fix"] is None:
        assert fixes == set()
    else:
        assert max(fixes) == facts["fix"]
    # Every entry of every payload decodes (TYPE-described records included), and the
    # accelerometer reads about 1 g at rest or in hand.
    for p in payloads:
        for d in devices(p):
            for s in d.streams:
                accl = s.scaled("ACCL")
                if accl:
                    g = statistics.median(math.sqrt(sum(x * x for x in v)) for v in accl)
                    assert 8.0 < g < 11.5, g


@pytest.mark.parametrize("name", sorted(SAMPLE_FACTS))
def test_real_sample_summary(name: str) -> None:
    facts = SAMPLE_FACTS[name]
    payloads = split_track(sample_path(name).read_bytes())
    pulled = []

    def lazily():
        for p in payloads:
            pulled.append(p)
            yield p

    s = summarize(lazily())
    assert s.telemetry and s.telemetry_warning is None
    assert s.has_imu == facts["imu"] and s.is_drone == facts["drone"]
    assert s.has_gps == (facts["fix"] is not None and facts["fix"] >= 2)
    # No firmware tag in a raw payload: R2b falls back to the DVNM of device 1.
    assert s.camera_model == facts["names"][0] and s.firmware is None
    if s.has_gps:
        # Reading stopped at the first payload holding a fixed sample.
        first = next(
            i
            for i, p in enumerate(payloads, 1)
            if any(g.fixed for d in devices(p) for st in d.streams for g in gps_samples(st))
        )
        assert len(pulled) == s.payloads_read == first
        fixed = [g for d in devices(payloads[first - 1]) for st in d.streams for g in gps_samples(st) if g.fixed]
        lat = statistics.median(g.lat for g in fixed)
        lon = statistics.median(g.lon for g in fixed)
        assert s.location_cell == geohash.encode(lat, lon, 5)
    else:
        assert len(pulled) == s.payloads_read == len(payloads)  # no fix: the whole track
        assert s.location_cell is None
    assert_no_coordinates(s)


def test_karma_with_its_firmware_tag_is_a_hero5_on_a_drone() -> None:
    payloads = split_track(sample_path("gpmf-extract_karma-track.raw").read_bytes())
    s = summarize(payloads, firmware_tag="HD5.02.02.00.00", creation_time="2017-04-17T19:27:57.000000Z")
    assert (s.camera_model, s.firmware, s.is_drone, s.has_gps, s.has_imu) == (
        "HERO5 Black",
        "HD5.02.02.00.00",
        True,
        False,
        True,
    )
    assert s.recorded_at == "2017-04-17T19:27:57.000000Z"  # kept exactly as written


# -- cross-check with GoPro's C parser ------------------------------------------------------------

_GPMF_PARSER_DUMP = r"""
import json, sys
import numpy as np
import py_gpmf_parser as p

out = {}
for path in sys.argv[1:]:
    data = open(path, "rb").read()
    buf = np.frombuffer(data[: len(data) // 4 * 4], dtype="<u4").copy()
    ret, s = p.GPMF_Init(buf, len(buf) * 4)  # never call s.get(): the binding frees twice
    entries = [[p.fourCC_to_string(p.GPMF_Key(s)), p.GPMF_Repeat(s)]]
    vals = {}
    while p.GPMF_Next(s, p.GPMF_RECURSE_LEVELS) == 0:
        key, n = p.fourCC_to_string(p.GPMF_Key(s)), p.GPMF_Repeat(s)
        entries.append([key, n])
        if key in ("ACCL", "GYRO", "GPS5", "GPS9") and n:
            el = p.GPMF_ElementsInStruct(s)
            r, d = p.GPMF_ScaledData(s, n * el * 8, 0, n, p.GPMF_SampleType.DOUBLE)
            vals.setdefault(key, []).append([int(r), el, list(d[: n * el])])
    out[path] = {"init": int(ret), "entries": entries, "values": vals}
json.dump(out, sys.stdout)
"""


@pytest.fixture(scope="module")
def gpmf_parser_dump() -> dict:
    if importlib.util.find_spec("py_gpmf_parser") is None:
        pytest.skip("py-gpmf-parser is not installed (pip install -e '.[test]')")
    if not GPMF_DIR.is_dir():
        pytest.skip(ABSENT)
    files = [str(GPMF_DIR / n) for n in sorted(SAMPLE_FACTS) if (GPMF_DIR / n).is_file()]
    run = subprocess.run(
        [sys.executable, "-c", _GPMF_PARSER_DUMP, *files], capture_output=True, text=True, timeout=300, check=True
    )
    return {Path(k).name: v for k, v in json.loads(run.stdout).items()}


def _orient(stream: Stream, key: str, samples: list[tuple]) -> list[tuple]:
    """gpmf-parser's GPMF_ScaledData also turns IMU axes into the camera frame: by ``MTRX``
    when it is a real calibration (values other than 0/±1), else by ``ORIN``->``ORIO``
    (same letter: +1; same letter, other case: -1). This reader keeps the stored axes, so
    the cross-check applies the same documented transform here."""
    klv = stream.find(key)
    before = stream.entries[: stream.entries.index(klv)]
    mtrx = next((e for e in reversed(before) if e.key == "MTRX"), None)
    orin = next((e for e in reversed(before) if e.key == "ORIN"), None)
    orio = next((e for e in reversed(before) if e.key == "ORIO"), None)
    n = len(samples[0])
    matrix = None
    if mtrx is not None:
        m = [x for row in values(mtrx) for x in row]
        if any(x not in (0, 1, -1) for x in m):
            matrix = [m[i * n : (i + 1) * n] for i in range(n)]
    if matrix is None and orin is not None and orio is not None:
        src, dst = orin.text(), orio.text()
        if len(src) == len(dst) == n:
            matrix = [
                [1 if o == i else -1 if o.lower() == i.lower() else 0 for i in src]
                for o in dst  # one row per output axis
            ]
    if matrix is None:
        return samples
    return [tuple(sum(row[x] * v[x] for x in range(n)) for row in matrix) for v in samples]


@pytest.mark.parametrize("name", sorted(SAMPLE_FACTS))
def test_agrees_with_gpmf_parser(name: str, gpmf_parser_dump: dict) -> None:
    data = sample_path(name).read_bytes()
    theirs = gpmf_parser_dump[name]
    assert theirs["init"] == 0
    ours = [[klv.key, klv.repeat] for _, klv in iter_entries(parse(data))]
    assert ours == theirs["entries"]  # every key, in order, with its sample count
    for key in ("ACCL", "GYRO", "GPS5"):
        mine = []
        for d in devices(data):
            for s in d.streams:
                if s.find(key) is not None and s.find(key).repeat:
                    mine.append(_orient(s, key, s.scaled(key)) if key != "GPS5" else s.scaled(key))
        other = theirs["values"].get(key, [])
        assert len(mine) == len(other), key
        for samples, (ret, elements, flat) in zip(mine, other):
            assert ret == 0 and elements == len(samples[0])
            got = [x for v in samples for x in v]
            assert len(got) == len(flat)
            assert all(math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-6) for a, b in zip(got, flat)), key
    total = {k: sum(n for kk, n in theirs["entries"] if kk == k) for k in ("ACCL", "GYRO", "GPS5")}
    assert total["ACCL"] > 0 and total["GYRO"] > 0
    assert (total["GPS5"] > 0) == SAMPLE_FACTS[name]["gps5"]


# -- hand-built payloads: types, records, scaling --------------------------------------------------


def test_every_scalar_type_decodes() -> None:
    guid = bytes(range(16))
    strm = nest(
        "STRM",
        nums("AAAb", "b", [(-5,), (7,)]),
        nums("AAAB", "B", [(250,)]),
        text("AAAc", "abc"),
        nums("AAAd", "d", [(1.5, -2.25)]),
        nums("AAAf", "f", [(0.25,)]),
        klv("AAAF", "F", 4, b"ABCDWXYZ"),
        klv("AAAG", "G", 16, guid),
        nums("AAAj", "j", [(-(2**40),)]),
        nums("AAAJ", "J", [(2**63 + 5,)]),
        nums("AAAl", "l", [(-7, 8, 9)]),
        nums("AAAL", "L", [(4_000_000_000,)]),
        klv("AAAq", "q", 4, struct.pack(">i", 98_304)),  # Q15.16: 1.5
        klv("AAAQ", "Q", 8, struct.pack(">q", -(9 * 2**30))),  # Q31.32: -2.25
        nums("AAAs", "s", [(-300,)]),
        nums("AAAS", "S", [(60_000,)]),
        klv("AAAU", "U", 16, b"230115123456.789"),
    )
    [dev] = devices(nest("DEVC", strm))
    s = dev.streams[0]
    assert s.raw("AAAb") == [(-5,), (7,)]
    assert s.raw("AAAB") == [(250,)]
    assert s.raw("AAAc") == [("abc",)]
    assert s.raw("AAAd") == [(1.5, -2.25)]
    assert s.raw("AAAf") == [(0.25,)]
    assert s.raw("AAAF") == [("ABCD",), ("WXYZ",)]
    assert s.raw("AAAG") == [(guid.hex(),)]
    assert s.raw("AAAj") == [(-(2**40),)]
    assert s.raw("AAAJ") == [(2**63 + 5,)]
    assert s.raw("AAAl") == [(-7, 8, 9)]
    assert s.raw("AAAL") == [(4_000_000_000,)]
    assert s.raw("AAAq") == [(1.5,)]
    assert s.raw("AAAQ") == [(-2.25,)]
    assert s.raw("AAAs") == [(-300,)]
    assert s.raw("AAAS") == [(60_000,)]
    assert s.raw("AAAU") == [("230115123456.789",)]


def test_scal_single_and_per_element() -> None:
    strm = nest(
        "STRM",
        nums("SCAL", "s", [(4,)]),
        nums("ACCL", "s", [(8, -4, 2)]),
        nums("SCAL", "l", [(10,), (100,), (1000,)]),
        nums("XYZW", "l", [(10, 100, 1000)]),
    )
    [dev] = devices(nest("DEVC", strm))
    assert dev.streams[0].scaled("ACCL") == [(2.0, -1.0, 0.5)]
    assert dev.streams[0].scaled("XYZW") == [(1.0, 1.0, 1.0)]  # the SCAL nearest before it


@pytest.mark.parametrize(
    "scal, reason",
    [
        (nums("SCAL", "l", [(1,), (2,)]), "2 values for ACCL's 3 elements"),
        (nums("SCAL", "s", [(0,)]), "zero"),
        (text("SCAL", "ab"), "not numeric"),
    ],
)
def test_bad_scal_is_a_gpmf_error(scal: bytes, reason: str) -> None:
    [dev] = devices(nest("DEVC", nest("STRM", scal, nums("ACCL", "s", [(1, 2, 3)]))))
    with pytest.raises(GpmfError, match=reason):
        dev.streams[0].scaled("ACCL")


def test_type_described_records_and_repeats() -> None:
    assert expand_type("f[3]L\0") == "fffL"
    assert expand_type("lllllllSS") == "lllllllSS"
    rec = struct.pack(">fffL", 1.0, 2.0, 3.0, 9)
    strm = nest("STRM", text("TYPE", "f[3]L"), klv("RECS", "?", 16, rec * 2))
    [dev] = devices(nest("DEVC", strm))
    assert dev.streams[0].raw("RECS") == [(1.0, 2.0, 3.0, 9)] * 2
    for bad_type, reason in [("lL", "is 8 bytes"), ("f[x]", "bad repeat"), ("fZ", "unknown element type")]:
        strm = nest("STRM", text("TYPE", bad_type), klv("RECS", "?", 16, rec))
        with pytest.raises(GpmfError, match=reason):
            devices(nest("DEVC", strm))[0].streams[0].raw("RECS")
    with pytest.raises(GpmfError, match="without a TYPE"):
        devices(nest("DEVC", nest("STRM", klv("RECS", "?", 16, rec))))[0].streams[0].raw("RECS")


def test_gps9_records_with_type_lllllllss() -> None:
    data = payload("HERO11 Black", gps9_stream([(*AALBORG, 3), (*PARIS, 0), (57.6492, 10.4075, 2)]))
    [dev] = devices(data)
    [strm] = dev.streams
    samples = gps_samples(strm)
    assert [g.fix for g in samples] == [3, 0, 2]
    assert [g.fixed for g in samples] == [True, False, True]
    first = samples[0]
    assert math.isclose(first.lat, AALBORG[0], abs_tol=1e-7) and math.isclose(first.lon, AALBORG[1], abs_tol=1e-7)
    assert (first.alt, first.speed_2d, first.speed_3d) == (123.456, 2.5, 26.0)
    assert (first.days_since_2000, first.seconds_since_midnight, first.dop) == (8500.0, 45296.789, 1.35)
    s = summarize([data])
    assert s.has_gps and s.telemetry
    # median of the two fixed samples (the fix-0 sample in Paris is ignored)
    assert s.location_cell == geohash.encode((AALBORG[0] + 57.6492) / 2, (AALBORG[1] + 10.4075) / 2, 5) == "u4pru"


def test_gps5_fix_comes_from_gpsf() -> None:
    no_fix = payload("HERO8 Black", imu_stream(), gps5_stream([PARIS] * 3, fix=0))
    fix_2d = payload("HERO8 Black", imu_stream(), gps5_stream([AALBORG] * 3, fix=2))
    assert [g.fix for g in gps_samples(devices(no_fix)[0].streams[1])] == [0, 0, 0]
    assert summarize([no_fix]).has_gps is False
    s = summarize([no_fix, fix_2d])
    assert (s.has_gps, s.location_cell, s.payloads_read) == (True, "u4pru", 2)


def test_location_cell_is_the_cell_of_the_median_point() -> None:
    # Three fixed samples: the median latitude and the median longitude come from
    # different samples (R2b takes each median on its own).
    pts = [(10.0, 20.0), (11.0, 25.0), (50.0, 21.0)]
    s = summarize([payload("X", gps5_stream(pts, fix=3))])
    assert s.location_cell == geohash.encode(11.0, 21.0, 5)


def test_off_globe_samples_do_not_count_as_fixed() -> None:
    rows = [(*AALBORG, 3), (91.0, 10.0, 3), (10.0, -181.0, 3)]
    s = summarize([payload("X", gps9_stream(rows))])
    assert s.location_cell == geohash.encode(*AALBORG, 5)
    s = summarize([payload("X", gps9_stream([(91.0, 10.0, 3)]))])
    assert s.has_gps is False and s.location_cell is None


# -- the R2b summary: what is read, where reading stops ---------------------------------------------


class Counting:
    """An iterable of payloads that records how many were pulled."""

    def __init__(self, payloads: list[bytes]):
        self.payloads, self.pulled = payloads, 0

    def __iter__(self):
        for p in self.payloads:
            self.pulled += 1
            yield p


def test_reading_stops_at_the_first_payload_with_a_fix() -> None:
    track = Counting(
        [
            payload("HERO8 Black", imu_stream(), gps5_stream([PARIS], fix=0)),
            payload("HERO8 Black", imu_stream(), gps5_stream([AALBORG] * 4, fix=3)),
            b"this payload is never read: reading stopped before it",
        ]
    )
    s = summarize(track)
    assert track.pulled == 2 and s.payloads_read == 2
    assert (s.telemetry, s.has_gps, s.location_cell, s.telemetry_warning) == (True, True, "u4pru", None)


def test_without_a_fix_the_whole_track_is_read() -> None:
    track = Counting([payload("HERO8 Black", imu_stream(), gps5_stream([PARIS], fix=1))] * 5)
    s = summarize(track)
    assert track.pulled == 5 and s.payloads_read == 5 and not s.has_gps and s.location_cell is None


def test_imu_and_drone_come_from_the_first_payload() -> None:
    first = payload("Camera", imu_stream(gyro=0))  # ACCL but no GYRO samples
    later = payload("Camera", imu_stream(), extra_devices=(karma_device(),))
    s = summarize([first, later])
    assert (s.has_imu, s.is_drone) == (False, False)
    s = summarize([later, first])
    assert (s.has_imu, s.is_drone) == (True, True)
    empty_gyro = payload("Camera", nest("STRM", nums("ACCL", "s", [(1, 2, 3)]), klv("GYRO", "s", 6, b"", repeat=0)))
    assert summarize([empty_gyro]).has_imu is False


@pytest.mark.parametrize("prefix, model", sorted(FIRMWARE_MODELS.items()))
def test_camera_model_from_firmware_prefix(prefix: str, model: str) -> None:
    fw = f"{prefix}.01.02.03.00"
    assert camera_model_from_firmware(fw) == model
    s = summarize([payload("Some Name", imu_stream())], firmware_tag=fw)
    assert (s.camera_model, s.firmware) == (model, fw)


def test_camera_model_falls_back_to_gpmf_firmware_then_device_1_name() -> None:
    with_fmwr = payload("Camera", imu_stream(), device_entries=(text("FMWR", "HD8.01.01.60.00"),))
    s = summarize([with_fmwr])
    assert (s.camera_model, s.firmware) == ("HERO8 Black", "HD8.01.01.60.00")
    with_firm = payload("Camera", imu_stream(), device_entries=(text("FIRM", "H19.03.01.30.00"),))
    assert summarize([with_firm]).camera_model == "MAX"
    # the container tag wins over GPMF
    assert summarize([with_fmwr], firmware_tag="HD6.01.61.10.00").camera_model == "HERO6 Black"
    # an unknown prefix falls back to the DVNM of device 1 (DVID 1, not the first device)
    other_first = nest("DEVC", nums("DVID", "L", [(7,)]), text("DVNM", "Remote"))
    s = summarize([other_first + payload("GoPro Something", imu_stream())], firmware_tag="ZZ9.00")
    assert (s.camera_model, s.firmware) == ("GoPro Something", "ZZ9.00")


def test_no_payload_means_no_telemetry() -> None:
    assert summarize([]) == NO_TELEMETRY
    assert summarize([b"", b"\0\0\0\0"], firmware_tag="HD5.0", creation_time="2020-01-01T00:00:00Z") == NO_TELEMETRY
    assert NO_TELEMETRY.columns() == {
        "telemetry": False,
        "camera_model": None,
        "firmware": None,
        "recorded_at": None,
        "has_gps": False,
        "has_imu": False,
        "is_drone": False,
        "location_cell": None,
        "telemetry_warning": None,
    }
    assert tuple(NO_TELEMETRY.columns()) == TELEMETRY_COLUMNS


def test_a_broken_track_is_a_warning_with_everything_else_false() -> None:
    good = payload("HERO8 Black", imu_stream(), gps5_stream([PARIS], fix=0))
    s = summarize([good, good[:-6]], firmware_tag="HD8.01", creation_time="2020-01-01T00:00:00Z")
    assert s.telemetry is False and s.telemetry_warning is not None
    assert s.telemetry_warning.startswith("telemetry track cannot be parsed: payload 2: ")
    assert s.columns() | {"telemetry_warning": None} == NO_TELEMETRY.columns()


def test_a_payload_too_large_is_refused_before_parsing() -> None:
    s = summarize([bytes(5 * 1024 * 1024)])
    assert s.telemetry is False and "limit" in s.telemetry_warning


# -- malformed payloads: one exception type, a readable reason -------------------------------------


@pytest.mark.parametrize(
    "data, reason",
    [
        (b"DEVC\0\x01\0", "truncated entry header"),
        (b"DEVC\0\x01\x00\x10" + bytes(4), "overrun"),
        (nest("DEVC", b"AC\x01L" + b"L\x04\x00\x01" + bytes(4)), "invalid key"),
        (nest("DEVC", b"ACCLs\x00\x00\x01"), "structure size 0"),
        (nest("DEVC", nums("ACCL", "s", [(1, 2, 3)])) + b"\xff" * 4, "truncated entry header"),
        (nest("DEVC", nums("ACCL", "s", [(1, 2, 3)])) + b"\xff" * 8, "invalid key"),
        (nums("ACCL", "s", [(1, 2, 3)]), "top level holds 'ACCL'"),
        (nest("DEVC", klv("ACCL", "s", 255, b"", repeat=0xFFFF)[:8]), "overrun"),
    ],
)
def test_malformed_payload_raises_gpmf_error(data: bytes, reason: str) -> None:
    with pytest.raises(GpmfError, match=reason):
        parse(data)
    s = summarize([data])
    assert s.telemetry is False and reason.split("'")[0] in s.telemetry_warning


def test_infinite_nesting_is_bounded() -> None:
    body = b""
    for _ in range(5000):  # 5000 levels, each header claiming exactly what follows
        body = klv("DEVC", "\0", 4, body)
    with pytest.raises(GpmfError, match=f"nested deeper than {MAX_DEPTH}"):
        parse(body)
    ok = b""
    for _ in range(MAX_DEPTH - 1):
        ok = klv("DEVC", "\0", 4, ok)
    assert parse(ok)


def test_oversized_sizes_do_not_allocate() -> None:
    # A header claiming 255 x 65535 bytes (16 MB) inside a 64-byte payload.
    data = nest("DEVC", nest("STRM", klv("GPS5", "l", 255, b"", repeat=0xFFFF)[:8] + bytes(40)))
    tracemalloc.start()
    try:
        s = summarize([data])
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert s.telemetry is False and "overrun" in s.telemetry_warning
    assert peak < 256 * 1024, peak


# -- hypothesis: truncated, bit-flipped, oversized payloads -----------------------------------------


def _seed_payloads() -> list[bytes]:
    seeds = [
        payload("HERO8 Black", imu_stream(), gps5_stream([AALBORG, PARIS], fix=3)),
        payload("HERO11 Black", imu_stream(), gps9_stream([(*AALBORG, 3), (*PARIS, 0)])),
        payload("Camera", imu_stream(), extra_devices=(karma_device(),)),
    ]
    for name in ("gpmf-parser_hero5.raw", "gpmf-parser_karma.raw", "gpmf-parser_hero6+ble.raw"):
        path = GPMF_DIR / name
        if path.is_file():
            seeds.append(path.read_bytes())
    return seeds


SEEDS = _seed_payloads()


def exercise(data: bytes) -> None:
    """Everything a caller can do with a payload: parse, decode every entry, scale every
    stream's samples, read its GPS, summarize. Only GpmfError may come out."""
    try:
        top = parse(data)
        for d in devices(top):
            for s in d.streams:
                for e in s.entries:
                    if not e.nested:
                        s.raw(e.key)
                        s.scaled(e.key)
                gps_samples(s)
        event("parsed")
    except GpmfError as exc:
        assert str(exc).strip()
        event("GpmfError")
    s = summarize([data])
    assert isinstance(s, TelemetrySummary)
    if s.telemetry_warning is not None:
        assert s.telemetry is False and s.telemetry_warning.startswith("telemetry track cannot be parsed")
        assert s.columns() | {"telemetry_warning": None} == NO_TELEMETRY.columns()
    assert_no_coordinates(s)


FUZZ = settings(
    max_examples=300,
    deadline=2000,  # ms per example: the slowest real payload parses in ~1 ms; a hang fails loudly
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@FUZZ
@given(seed=st.sampled_from(SEEDS), data=st.data())
def test_fuzz_truncated(seed: bytes, data) -> None:
    cut = data.draw(st.integers(0, len(seed)))
    exercise(seed[:cut])


@FUZZ
@given(seed=st.sampled_from(SEEDS), data=st.data())
def test_fuzz_bit_flips(seed: bytes, data) -> None:
    buf = bytearray(seed)
    for _ in range(data.draw(st.integers(1, 8))):
        i = data.draw(st.integers(0, len(buf) - 1))
        buf[i] ^= 1 << data.draw(st.integers(0, 7))
    exercise(bytes(buf))


@FUZZ
@given(seed=st.sampled_from(SEEDS), data=st.data())
def test_fuzz_oversized_headers(seed: bytes, data) -> None:
    """Rewrite the type, structure size or repeat of real entry headers with extreme values."""
    headers = [klv.offset for _, klv in iter_entries(parse(seed))]
    buf = bytearray(seed)
    for _ in range(data.draw(st.integers(1, 3))):
        at = data.draw(st.sampled_from(headers))
        field = data.draw(st.sampled_from(["type", "size", "repeat"]))
        if field == "type":
            buf[at + 4] = data.draw(st.sampled_from([0, ord("?"), ord("#"), ord("c"), ord("Q"), 0xFF]))
        elif field == "size":
            buf[at + 5] = data.draw(st.sampled_from([0, 1, 3, 255]))
        else:
            buf[at + 6 : at + 8] = data.draw(st.sampled_from([0, 1, 0x7FFF, 0xFFFF])).to_bytes(2, "big")
    exercise(bytes(buf))


@FUZZ
@given(st.binary(max_size=2048))
def test_fuzz_random_bytes(raw: bytes) -> None:
    exercise(raw)
    exercise(b"DEVC\0\x01" + len(raw).to_bytes(2, "big")[-2:] + raw)


# -- geohash --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "lat, lon, precision, cell",
    [
        (57.64911, 10.40744, 5, "u4pru"),
        (57.64911, 10.40744, 11, "u4pruydqqvj"),  # the example of the geohash article
        (42.605, -5.603, 5, "ezs42"),  # the other published example
        (0.0, 0.0, 5, "s0000"),
        (-90.0, -180.0, 5, "00000"),
        (90.0, 180.0, 5, "zzzzz"),
        (33.1268, -117.3273, 5, "9mus6"),  # the MAX sample's ISO 6709 location tag
    ],
)
def test_geohash_known_values(lat: float, lon: float, precision: int, cell: str) -> None:
    assert geohash.encode(lat, lon, precision) == cell


@given(
    st.floats(-90, 90, allow_nan=False),
    st.floats(-180, 180, allow_nan=False),
    st.integers(1, 12),
)
def test_geohash_cell_holds_its_point(lat: float, lon: float, precision: int) -> None:
    cell = geohash.encode(lat, lon, precision)
    lat_lo, lat_hi, lon_lo, lon_hi = geohash.bounds(cell)
    assert lat_lo <= lat <= lat_hi and lon_lo <= lon <= lon_hi
    assert geohash.encode(lat, lon, 12).startswith(cell)
    assert len(cell) == precision and set(cell) <= set(geohash.BASE32)


@pytest.mark.parametrize("lat, lon", [(90.5, 0), (0, 180.01), (math.nan, 0), (0, math.inf)])
def test_geohash_refuses_off_globe_points_without_echoing_them(lat: float, lon: float) -> None:
    with pytest.raises(ValueError) as err:
        geohash.encode(lat, lon)
    assert "90.5" not in str(err.value) and "180.01" not in str(err.value)


# -- privacy ----------------------------------------------------------------------------------------

_PRECISE = re.compile(r"\d\.\d{3}")


def assert_no_coordinates(summary: TelemetrySummary) -> None:
    """No returned field holds a number with more than 2 decimals (a coordinate that
    precise locates a person). ``recorded_at`` is a timestamp (its seconds may carry
    decimals): it must parse as one and is checked separately."""
    for name, value in summary.columns().items():
        assert not isinstance(value, float), name
        if isinstance(value, str) and name != "recorded_at":
            assert not _PRECISE.search(value), (name, value)
    if summary.recorded_at is not None:
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:?\d\d)?", summary.recorded_at)
    if summary.location_cell is not None:
        assert re.fullmatch(r"[0-9b-hjkmnp-z]{5}", summary.location_cell)
