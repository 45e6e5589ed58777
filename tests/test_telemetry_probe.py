"""Telemetry in the probe (contract R2b): the ``gpmd`` track found by its handler name, read in
the same open as the header probe, payload by payload until R2b's decision is complete.

Real files: the two GoPro MP4s of ``../shared/gopro-samples/`` (skipped with the reason where
absent) and MP4s muxed here with PyAV: H.264 video plus a data stream (codec ``bin_data``,
which ffmpeg's MP4 muxer writes as a ``gpmd`` sample entry) whose handler name is
"GoPro MET", carrying GPMF built by hand (tests/test_gpmf.py). Those run everywhere.
"""

from __future__ import annotations

import dataclasses
import io
import re
import shutil
from pathlib import Path
from types import SimpleNamespace

import av
import pytest
from conftest import encode_mp4
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_gpmf import (
    AALBORG,
    PARIS,
    SAMPLES,
    assert_no_coordinates,
    gps5_stream,
    imu_stream,
    karma_device,
    payload,
)

import gopro_assets.domain.footage.probe as probe_mod
from gopro_assets.domain.footage import geohash
from gopro_assets.domain.footage.gpmf import devices, gps_samples
from gopro_assets.domain.footage.probe import (
    ProbeResult,
    _handler_name,
    probe_fileobj,
    probe_many,
    probe_object,
    telemetry_stream,
)
from gopro_assets.domain.footage.telemetry import NO_TELEMETRY
from gopro_tools.media import mux_gopro  # a real MP4 like a GoPro's: one frame and one GPMF payload per second

MB = 1_000_000


def gpmd_entries(path: Path) -> list[tuple[int, int]]:
    """(offset, size) of each payload of the file's telemetry track, from its index."""
    with av.open(str(path)) as c:
        s = telemetry_stream(c)
        return [(e.pos, e.size) for e in s.index_entries] if s is not None else []


def probe_file(path: Path, telemetry: bool = True) -> ProbeResult:
    with open(path, "rb") as f:
        if telemetry:
            return probe_fileobj(f, path.name)
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(probe_mod, "read_telemetry", lambda container, reader: NO_TELEMETRY)
            return probe_fileobj(f, path.name)


def without_telemetry(r: ProbeResult) -> ProbeResult:
    return dataclasses.replace(r, telemetry=None, bytes_read=None)


NO_FIX = payload("HERO8 Black", imu_stream(), gps5_stream([PARIS] * 3, fix=0))
FIX = payload("HERO8 Black", imu_stream(), gps5_stream([AALBORG] * 3, fix=3))


# -- the real GoPro files ----------------------------------------------------------------------------


def ISO6709(tag: str) -> tuple[float, float]:
    lat, lon = re.match(r"([+-]\d+\.\d+)([+-]\d+\.\d+)", tag).groups()
    return float(lat), float(lon)


SAMPLE_MP4S = {
    "karma.mp4": dict(
        columns=dict(
            telemetry=True,
            camera_model="HERO5 Black",
            firmware="HD5.02.02.00.00",
            recorded_at="2017-04-17T19:27:57.000000Z",
            has_gps=False,
            has_imu=True,
            is_drone=True,
            location_cell=None,
            telemetry_warning=None,
        ),
        payloads_read=13,  # no GPS: the whole track
    ),
    "max-heromode.mp4": dict(
        columns=dict(
            telemetry=True,
            camera_model="MAX",
            firmware="H19.03.01.30.00",
            recorded_at="2019-11-18T15:45:32.000000Z",
            has_gps=True,
            has_imu=True,
            is_drone=False,
            location_cell="9mus6",
            telemetry_warning=None,
        ),
        payloads_read=1,  # fix 3 from the first payload on
    ),
}


def sample_mp4(name: str) -> Path:
    path = SAMPLES / name
    if not path.is_file():
        pytest.skip(f"{path} is absent (real GoPro files live in ../shared next to the checkout)")
    return path


@pytest.mark.parametrize("name", sorted(SAMPLE_MP4S))
def test_real_gopro_files(name: str) -> None:
    path = sample_mp4(name)
    expected = SAMPLE_MP4S[name]
    r = probe_file(path)
    bare = probe_file(path, telemetry=False)
    assert r.ok and r.telemetry is not None
    assert r.telemetry.columns() == expected["columns"]
    assert r.telemetry.payloads_read == expected["payloads_read"]
    # Every existing probe field is what it was without telemetry.
    assert without_telemetry(r) == without_telemetry(bare)
    assert bare.telemetry is NO_TELEMETRY
    # Bytes: the payloads read, at most, on top of the bare probe (fewer when the
    # fingerprint's samples already hold them), and still under 2 MB in all.
    read = sum(size for _, size in gpmd_entries(path)[: expected["payloads_read"]])
    assert 0 <= r.bytes_read - bare.bytes_read <= read
    assert r.bytes_read < 2 * MB
    assert_no_coordinates(r.telemetry)


def test_max_location_cell_matches_the_container_location_tag() -> None:
    """The MAX writes its position twice: ISO 6709 in the container (4 decimals) and GPS5
    in the track. Both land in the same 5 km cell."""
    path = sample_mp4("max-heromode.mp4")
    with av.open(str(path)) as c:
        tag = c.metadata["location"]
    assert probe_file(path).telemetry.location_cell == geohash.encode(*ISO6709(tag), 5)


def test_no_exact_coordinate_leaves_the_probe() -> None:
    path = sample_mp4("max-heromode.mp4")
    r = probe_file(path)
    offset, size = gpmd_entries(path)[0]
    data = path.read_bytes()[offset : offset + size]
    fixed = [g for d in devices(data) for s in d.streams for g in gps_samples(s) if g.fixed]
    assert fixed
    text = repr(r) + repr(r.telemetry.columns())
    for g in fixed:
        for value in (g.lat, g.lon):
            for decimals in (3, 4, 5, 6, 7):
                assert f"{value:.{decimals}f}" not in text
                assert f"{int(value * 10**decimals) / 10**decimals}" not in text


def test_probe_many_carries_telemetry_across_worker_processes(tmp_path: Path) -> None:
    names = [n for n in sorted(SAMPLE_MP4S) if (SAMPLES / n).is_file()]
    if not names:
        pytest.skip(f"{SAMPLES} is absent (real GoPro files live in ../shared next to the checkout)")
    for n in names:  # a tmp landing zone (never the repository)
        (tmp_path / "footage" / "100GOPRO").mkdir(parents=True, exist_ok=True)
        shutil.copyfile(SAMPLES / n, tmp_path / "footage" / "100GOPRO" / n)
    results = probe_many(str(tmp_path), [f"100GOPRO/{n}" for n in names], max_workers=1)
    for n, r in zip(names, results):
        assert r.ok and r.telemetry.columns() == SAMPLE_MP4S[n]["columns"]


# -- files muxed here (run everywhere) --------------------------------------------------------------


def test_file_without_telemetry_track(tmp_path: Path) -> None:
    path = encode_mp4(tmp_path / "plain.mp4", seconds=3)
    r, bare = probe_file(path), probe_file(path, telemetry=False)
    assert r.ok and r.telemetry == NO_TELEMETRY
    assert r.telemetry.columns()["telemetry"] is False and r.telemetry.telemetry_warning is None
    assert r.bytes_read == bare.bytes_read  # nothing more is read
    assert without_telemetry(r) == without_telemetry(bare)


def test_failed_probe_reads_no_telemetry(tmp_path: Path) -> None:
    path = mux_gopro(tmp_path / "GX010001.MP4", [FIX, FIX])
    data = path.read_bytes()
    r = probe_fileobj(io.BytesIO(data[: len(data) // 2]), "cut.mp4")
    assert not r.ok and r.telemetry is None


def test_muxed_gpmd_track_is_found_and_read(tmp_path: Path) -> None:
    path = mux_gopro(tmp_path / "GX010001.MP4", [FIX, NO_FIX, NO_FIX])
    with av.open(str(path)) as c:
        s = telemetry_stream(c)
        assert s is not None and s.type == "data"
    r = probe_file(path)
    assert r.ok and (r.width, r.height) == (64, 36)
    assert r.telemetry.columns() == dict(
        telemetry=True,
        camera_model="HERO8 Black",  # no firmware tag: the DVNM of device 1
        firmware=None,
        recorded_at="2024-06-01T10:20:30.000000Z",
        has_gps=True,
        has_imu=True,
        is_drone=False,
        location_cell="u4pru",
        telemetry_warning=None,
    )
    assert r.telemetry.payloads_read == 1


def test_reading_stops_at_the_first_fix_in_a_real_file(tmp_path: Path) -> None:
    """Payloads after the first fix are never read: here they are 1 MB of garbage each,
    which would give a warning (and cost 3 MB) if they were."""
    garbage = bytes(range(256)) * 4096
    path = mux_gopro(tmp_path / "GX010002.MP4", [NO_FIX, FIX, garbage, garbage, garbage])
    r, bare = probe_file(path), probe_file(path, telemetry=False)
    assert r.telemetry.telemetry_warning is None and r.telemetry.has_gps
    assert r.telemetry.payloads_read == 2
    assert 0 <= r.bytes_read - bare.bytes_read <= len(NO_FIX) + len(FIX)
    assert r.bytes_read < 2 * MB


def test_drone_and_imu_from_the_first_payload(tmp_path: Path) -> None:
    karma = payload("Camera", imu_stream(), extra_devices=(karma_device(),))
    r = probe_file(mux_gopro(tmp_path / "GOPR0001.MP4", [karma, karma]))
    assert (r.telemetry.is_drone, r.telemetry.has_imu, r.telemetry.has_gps) == (True, True, False)
    assert r.telemetry.payloads_read == 2


@pytest.mark.parametrize(
    "track, reason",
    [
        ([b"not GPMF at all, just text"], "payload 1: top level holds 'not ' at byte 0"),
        ([FIX[:-6]], "payload 1:"),
        ([NO_FIX, NO_FIX[:17]], "payload 2:"),
    ],
)
def test_corrupt_track_is_a_warning_and_the_clip_stays_ok(tmp_path: Path, track: list[bytes], reason: str) -> None:
    r = probe_file(mux_gopro(tmp_path / "GX010003.MP4", track))
    assert r.ok and r.reason is None  # licensable: not quarantined
    assert r.telemetry.telemetry is False
    assert r.telemetry.telemetry_warning.startswith("telemetry track cannot be parsed: ")
    assert reason in r.telemetry.telemetry_warning
    assert r.telemetry.columns() | {"telemetry_warning": None} == NO_TELEMETRY.columns()


def test_track_with_another_handler_name_is_not_telemetry(tmp_path: Path) -> None:
    r = probe_file(mux_gopro(tmp_path / "x.mp4", [FIX], handler="GoPro SOS"))
    assert r.ok and r.telemetry == NO_TELEMETRY


@pytest.mark.parametrize(
    "stored, found",
    [
        ("GoPro MET", True),
        ("\tGoPro MET", True),  # karma.mp4: a length byte in front
        ("\x0bGoPro MET  ", True),  # max-heromode.mp4: length byte and padding
        (" GoPro MET ", True),
        ("GoPro MET2", False),
        ("GoPro TCD", False),
        (None, False),
    ],
)
def test_handler_name_matching(stored: str | None, found: bool) -> None:
    stream = SimpleNamespace(metadata={} if stored is None else {"handler_name": stored})
    assert (_handler_name(stream) == "GoPro MET") is found
    assert (telemetry_stream(SimpleNamespace(streams=[stream])) is stream) is found


# -- fuzz: bit flips inside the gpmd payloads of a real file -------------------------------------


@pytest.fixture(scope="module")
def muxed(tmp_path_factory) -> tuple[bytes, list[tuple[int, int]]]:
    path = mux_gopro(tmp_path_factory.mktemp("gpmd") / "GX010001.MP4", [NO_FIX, FIX])
    return path.read_bytes(), gpmd_entries(path)


@settings(
    max_examples=150,
    deadline=5000,  # ms: a probe of this small file takes a few ms; a hang fails
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(data=st.data())
def test_fuzz_flipped_payload_bytes_end_as_telemetry_or_warning(muxed, data) -> None:
    original, entries = muxed
    buf = bytearray(original)
    for _ in range(data.draw(st.integers(1, 6))):
        offset, size = data.draw(st.sampled_from(entries))
        i = offset + data.draw(st.integers(0, size - 1))
        buf[i] ^= 1 << data.draw(st.integers(0, 7))
    r = probe_fileobj(io.BytesIO(bytes(buf)), "GX010001.MP4")
    assert r.ok and r.reason is None, r.reason  # the video is untouched: never quarantined
    t = r.telemetry
    assert t is not None
    if t.telemetry:
        assert t.telemetry_warning is None and t.payloads_read >= 1
    else:
        assert t.telemetry_warning.startswith("telemetry track cannot be parsed: ")
    assert_no_coordinates(t)


# -- S3 -------------------------------------------------------------------------------------------------


@pytest.mark.s3
def test_telemetry_from_s3_matches_local(s3_env, tmp_path: Path) -> None:
    from gopro_tools.s3_server import new_prefix

    src = tmp_path / "src"
    mux_gopro(src / "footage/100GOPRO/GX010001.MP4", [NO_FIX, FIX, NO_FIX])
    keys = ["100GOPRO/GX010001.MP4"]
    for n in sorted(SAMPLE_MP4S):
        if (SAMPLES / n).is_file():
            shutil.copyfile(SAMPLES / n, src / "footage/100GOPRO" / n)
            keys.append(f"100GOPRO/{n}")
    root = f"s3://{s3_env.bucket}/{new_prefix()}"
    s3_env.upload_tree(src, root)
    remote = probe_many(root, keys, max_workers=1)
    for key, r in zip(keys, remote):
        local = probe_object(str(src), key)
        assert r.ok and r.telemetry == local.telemetry, key
        assert r.bytes_read == local.bytes_read  # same reader, same accounting on both backends
    assert remote[0].telemetry.location_cell == "u4pru" and remote[0].telemetry.payloads_read == 2


def test_a_reader_bug_is_a_warning_not_a_quarantine(tmp_path: Path, monkeypatch) -> None:
    """R2b: a track that cannot be read leaves the clip licensable, whatever the cause."""

    def broken(payloads, **kwargs):
        next(iter(payloads))
        raise RuntimeError("unexpected")

    monkeypatch.setattr(probe_mod, "summarize", broken)
    r = probe_file(mux_gopro(tmp_path / "GX010004.MP4", [FIX]))
    assert r.ok and r.telemetry.telemetry is False
    assert r.telemetry.telemetry_warning == "telemetry track cannot be read: RuntimeError: unexpected"
