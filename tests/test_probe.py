"""Header-only probe, fingerprint and the process pool (contract R2, R4, §3), on real MP4s
encoded with PyAV into tmp_path. No mocks: hangs are real FIFOs, workers are real processes."""

from __future__ import annotations

import errno
import io
import multiprocessing
import os
import random
import shutil
import struct
import time
from fractions import Fraction
from pathlib import Path

import av
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gopro_assets.domain.footage.probe import (
    FP_SAMPLED_TOTAL,
    CachingReader,
    ProbeResult,
    fingerprint_fileobj,
    fingerprint_ranges,
    media_payload_ranges,
    probe_fileobj,
    probe_many,
    probe_object,
)
from gopro_tools.media import zero_durations

MB = 1_000_000


# -- real files ------------------------------------------------------------------------------


def make_mp4(
    path: Path,
    width: int = 320,
    height: int = 240,
    fps: int = 25,
    frames: int = 50,
    codec: str = "libx264",
    shade: int = 80,
    faststart: bool = False,
    audio: bool = False,
) -> Path:
    """A real MP4: flat frames with a moving bar (cheap to encode)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    opts = {"movflags": "+faststart"} if faststart else {}
    with av.open(str(path), "w", format="mp4", options=opts) as out:
        v = out.add_stream(codec, rate=fps)
        v.width, v.height, v.pix_fmt = width, height, "yuv420p"
        if codec == "libx264":
            v.options = {"preset": "ultrafast"}
        elif codec == "libx265":
            v.options = {"preset": "ultrafast", "x265-params": "log-level=error"}
        a = out.add_stream("aac", rate=48000, layout="stereo") if audio else None
        for i in range(frames):
            f = av.VideoFrame(width, height, "yuv420p")
            y = f.planes[0]
            ls = y.buffer_size // y.height
            x = (i * 8) % max(1, width - 8)
            row = bytes([shade]) * x + bytes([235]) * 8 + bytes([shade]) * (ls - x - 8)
            y.update(row * y.height)
            for p in f.planes[1:]:
                p.update(bytes([128]) * p.buffer_size)
            f.pts = i
            for pkt in v.encode(f):
                out.mux(pkt)
        for pkt in v.encode():
            out.mux(pkt)
        if a is not None:
            for i in range(int(frames / fps * 48000 / 1024)):
                af = av.AudioFrame(format="fltp", layout="stereo", samples=1024)
                for p in af.planes:
                    p.update(bytes(p.buffer_size))
                af.sample_rate, af.pts = 48000, i * 1024
                for pkt in a.encode(af):
                    out.mux(pkt)
            for pkt in a.encode():
                out.mux(pkt)
    return path


def make_audio_only(path: Path, seconds: float = 2.0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w", format="mp4") as out:
        a = out.add_stream("aac", rate=48000, layout="stereo")
        for i in range(int(seconds * 48000 / 1024)):
            af = av.AudioFrame(format="fltp", layout="stereo", samples=1024)
            for p in af.planes:
                p.update(bytes(p.buffer_size))
            af.sample_rate, af.pts = 48000, i * 1024
            for pkt in a.encode(af):
                out.mux(pkt)
        for pkt in a.encode():
            out.mux(pkt)
    return path


def make_big_mp4(
    path: Path, target_bytes: int, faststart: bool, fps: int = 30, huge_keyframe: bool = False
) -> tuple[Path, int]:
    """A large real MP4 fast: one detailed 720p keyframe (~0.3 MB, like a camera's) encoded
    once and its packet muxed repeatedly. Returns the path and the frame count.
    ``huge_keyframe``: a 4K frame of pure noise at high quality instead (~8 MB)."""
    rng = random.Random(11)
    opts = {"movflags": "+faststart"} if faststart else {}
    width, height = (3840, 2160) if huge_keyframe else (1280, 720)
    with av.open(str(path), "w", format="mp4", options=opts) as out:
        v = out.add_stream("libx264", rate=fps)
        v.width, v.height, v.pix_fmt = width, height, "yuv420p"
        v.options = {"preset": "ultrafast", "crf": "10" if huge_keyframe else "23"}
        f = av.VideoFrame(width, height, "yuv420p")
        y = f.planes[0]
        detail = y.buffer_size if huge_keyframe else y.buffer_size // 4
        y.update(rng.randbytes(detail) + bytes([90]) * (y.buffer_size - detail))
        for p in f.planes[1:]:
            p.update(bytes([128]) * p.buffer_size)
        f.pts = 0
        pkts = list(v.encode(f)) + list(v.encode())
        data, tb = bytes(pkts[0]), pkts[0].time_base
        step = int(Fraction(1, fps) / tb)
        n = max(2, target_bytes // len(data))
        for i in range(n):
            p = av.Packet(data)
            p.stream, p.time_base = v, tb
            p.pts = p.dts = i * step
            p.duration = step
            p.is_keyframe = True
            out.mux(p)
    return path, n


def top_level_boxes(path: Path) -> list[str]:
    boxes, off, size_total = [], 0, path.stat().st_size
    with open(path, "rb") as f:
        while off + 8 <= size_total:
            f.seek(off)
            size, typ = struct.unpack(">I4s", f.read(8))
            if size == 1:
                size = struct.unpack(">Q", f.read(8))[0]
            elif size == 0:
                size = size_total - off
            boxes.append(typ.decode("latin-1"))
            off += size
    return boxes


def pad_to(path: Path, size: int) -> None:
    """Append a top-level ``free`` box so the file is exactly ``size`` bytes (still valid)."""
    missing = size - path.stat().st_size
    assert missing >= 8
    with open(path, "ab") as f:
        f.write(struct.pack(">I4s", missing, b"free") + bytes(missing - 8))


@pytest.fixture
def landing(tmp_path: Path) -> Path:
    root = tmp_path / "landing"
    (root / "footage").mkdir(parents=True)
    return root


def fp(path: Path) -> str:
    with open(path, "rb") as f:
        return fingerprint_fileobj(f, path.stat().st_size)


# -- metadata ----------------------------------------------------------------------------------


def test_probe_reads_header_metadata(landing: Path) -> None:
    path = make_mp4(landing / "footage" / "s1/2025/03/GH010042.MP4", 320, 240, fps=25, frames=50)
    r = probe_object(str(landing), "s1/2025/03/GH010042.MP4")
    assert r.ok and r.reason is None
    assert (r.width, r.height, r.fps, r.codec) == (320, 240, 25.0, "h264")
    assert r.duration_s == pytest.approx(2.0)
    assert r.size_bytes == path.stat().st_size
    assert r.bit_rate and r.bit_rate > 0
    assert r.fingerprint and r.fingerprint.startswith("fp1:")
    assert r.object_key == "s1/2025/03/GH010042.MP4"
    assert 0 < r.bytes_read <= r.size_bytes  # a small file is read at most once


@pytest.mark.parametrize("codec,name", [("libx264", "h264"), ("libx265", "hevc")])
def test_probe_vertical_clip(landing: Path, codec: str, name: str) -> None:
    make_mp4(landing / "footage" / "v.MP4", 180, 320, fps=30, frames=45, codec=codec)
    r = probe_object(str(landing), "v.MP4")
    assert r.ok, r.reason
    assert (r.width, r.height, r.codec, r.fps) == (180, 320, name, 30.0)
    assert r.duration_s == pytest.approx(1.5)


def test_video_track_duration_not_a_longer_audio_track(landing: Path) -> None:
    """R2: the video's own duration; audio that runs past it is not billable video."""
    make_mp4(landing / "footage" / "a.MP4", 160, 120, fps=10, frames=10, audio=True)
    with av.open(str(landing / "footage" / "a.MP4")) as c:
        container_s = c.duration / av.time_base
    r = probe_object(str(landing), "a.MP4")
    assert r.ok and r.duration_s == pytest.approx(1.0)
    assert container_s >= r.duration_s


def test_probe_fileobj_accepts_a_plain_python_file(tmp_path: Path) -> None:
    path = make_mp4(tmp_path / "x.mp4", 160, 120, fps=24, frames=24)
    with open(path, "rb") as f:
        r = probe_fileobj(f, "x.mp4")
    assert r.ok and (r.width, r.height, r.fps) == (160, 120, 24.0)
    assert r.fingerprint == fp(path)


# -- fingerprint (R4) -------------------------------------------------------------------------------


def test_fingerprint_same_for_byte_copy_and_different_for_same_size_clips(landing: Path) -> None:
    foot = landing / "footage"
    a = make_mp4(foot / "a.MP4", 320, 240, frames=40, shade=60)
    b = make_mp4(foot / "b.MP4", 320, 240, frames=40, shade=61)  # a different clip
    size = max(a.stat().st_size, b.stat().st_size) + 64
    pad_to(a, size)
    pad_to(b, size)
    shutil.copyfile(a, foot / "a_copy.MP4")
    ra, rb, rc = (probe_object(str(landing), k) for k in ("a.MP4", "b.MP4", "a_copy.MP4"))
    assert ra.ok and rb.ok and rc.ok
    assert ra.size_bytes == rb.size_bytes == size
    assert ra.fingerprint == rc.fingerprint
    assert ra.fingerprint != rb.fingerprint


def test_fingerprint_large_same_size_files_differ_in_the_header(tmp_path: Path) -> None:
    """Above 1 MiB only samples are read; two different encodes still differ there."""
    a, _ = make_big_mp4(tmp_path / "a.mp4", 3 * MB, faststart=False, fps=30)
    b, _ = make_big_mp4(tmp_path / "b.mp4", 3 * MB, faststart=False, fps=25)
    size = max(a.stat().st_size, b.stat().st_size) + 64
    pad_to(a, size)
    pad_to(b, size)
    assert size > FP_SAMPLED_TOTAL
    assert fp(a) != fp(b)


def test_fingerprint_reads_only_its_ranges(tmp_path: Path) -> None:
    """The documented residual risk: a byte outside the sampled ranges is not seen,
    a byte inside them is."""
    size = 8 * 1024 * 1024
    data = bytearray(random.Random(5).randbytes(size))
    ranges = fingerprint_ranges(size)
    base = tmp_path / "base.bin"
    base.write_bytes(data)
    inside = ranges[5][0] + 100
    covered = lambda i: any(o <= i < o + n for o, n in ranges)  # noqa: E731
    outside = next(i for i in range(ranges[1][0], size) if not covered(i))
    for pos, should_change in ((inside, True), (outside, False)):
        changed = bytearray(data)
        changed[pos] ^= 0xFF
        other = tmp_path / f"c{pos}.bin"
        other.write_bytes(changed)
        assert (fp(other) != fp(base)) is should_change


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=0, max_value=50 * 2**30))
def test_fingerprint_ranges_property(size: int) -> None:
    ranges = fingerprint_ranges(size)
    total = sum(n for _, n in ranges)
    assert total == min(size, FP_SAMPLED_TOTAL)
    end = 0
    for offset, length in ranges:
        assert offset >= end and length > 0  # sorted, non-overlapping
        end = offset + length
    assert end == size or size == 0  # the tail is always hashed


@settings(max_examples=60, deadline=None)
@given(
    st.binary(min_size=1, max_size=200_000),
    st.lists(st.tuples(st.integers(0, 210_000), st.integers(0, 70_000)), max_size=12),
)
def test_caching_reader_returns_the_same_bytes(data: bytes, reads: list[tuple[int, int]]) -> None:
    import io

    raw = io.BytesIO(data)
    reader = CachingReader(raw, len(data), block=4096)
    for offset, n in reads:
        reader.seek(offset)
        assert reader.read(n) == data[offset : offset + n]
    reader.seek(0, 2)
    assert reader.read() == b""
    reader.seek(0)
    assert reader.read() == data
    assert reader.bytes_read <= len(data)  # every block fetched at most once


# -- bad files (contract §3) ---------------------------------------------------------------------


def test_bad_files_are_reported_not_raised(tmp_path: Path, landing: Path) -> None:
    foot = landing / "footage"
    (foot / "empty.MP4").write_bytes(b"")
    (foot / "random.MP4").write_bytes(random.Random(1).randbytes(40_000))
    good = make_mp4(tmp_path / "good.mp4", 320, 240, frames=50)  # moov at the end
    data = good.read_bytes()
    (foot / "cut_head.MP4").write_bytes(data[: len(data) // 2])  # moov lost
    front = make_mp4(tmp_path / "front.mp4", 320, 240, frames=100, faststart=True)
    data = front.read_bytes()
    boxes = top_level_boxes(front)
    assert boxes.index("moov") < boxes.index("mdat")
    (foot / "cut_payload.MP4").write_bytes(data[: len(data) // 2])  # moov intact, samples gone
    make_audio_only(foot / "audio.MP4")
    one = make_mp4(tmp_path / "one.mp4", 64, 48, fps=30, frames=1)
    (foot / "zero.MP4").write_bytes(zero_durations(one.read_bytes()))
    (foot / "dir.MP4").mkdir()

    expected = {
        "missing.MP4": "video file missing",
        "empty.MP4": "empty file (0 bytes)",
        "random.MP4": "unreadable video: Invalid data found when processing input",
        "cut_head.MP4": "unreadable video: ",
        "cut_payload.MP4": "truncated file: ",
        "audio.MP4": "no video stream",
        "zero.MP4": "zero duration",
        "dir.MP4": "not a file",
        "../outside.MP4": "object_key leaves footage/",
        "/etc/passwd": "object_key leaves footage/",
        "s1/../../subscribers/x.csv": "object_key leaves footage/",
        "": "object_key leaves footage/",
        "s1\\..\\x.MP4": "object_key leaves footage/",  # backslashes: refused like the upload parser does
        "s1/x\0.MP4": "object_key leaves footage/",
    }
    for key, reason in expected.items():
        r = probe_object(str(landing), key)
        assert not r.ok, key
        assert r.reason and r.reason.startswith(reason), (key, r.reason)
    assert probe_object(str(landing), None).reason == "object_key leaves footage/"  # type: ignore[arg-type]
    r = probe_object(str(landing), "cut_payload.MP4")
    assert r.size_bytes and r.fingerprint  # still identified, for the quarantine row
    assert probe_object(str(tmp_path / "no-such-landing"), "x.MP4").reason == "video file missing"


def test_symlink_out_of_the_landing_zone_is_refused_unread(tmp_path: Path, landing: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    make_mp4(outside / "real.mp4", 160, 120, frames=10)
    os.mkfifo(outside / "trap.mp4")  # opening it would block: proves nothing is read
    (landing / "footage" / "s1").mkdir()
    os.symlink(outside / "real.mp4", landing / "footage" / "s1" / "escape.MP4")
    os.symlink(outside / "trap.mp4", landing / "footage" / "s1" / "trap.MP4")
    os.symlink("../../footage/inside.MP4", landing / "footage" / "s1" / "inside_link.MP4")
    make_mp4(landing / "footage" / "inside.MP4", 160, 120, frames=10)

    results = probe_many(str(landing), ["s1/escape.MP4", "s1/trap.MP4", "s1/inside_link.MP4"], timeout_s=10)
    assert [r.reason for r in results[:2]] == ["symlink leads outside the landing zone"] * 2
    assert results[2].ok  # a link that stays inside is fine


# -- many files: processes, order, time limit ---------------------------------------------------------


def test_probe_many_keeps_order_and_matches_probe_object(landing: Path) -> None:
    foot = landing / "footage"
    keys = []
    for i in range(7):
        make_mp4(foot / f"s{i % 3}/GH01{i:04d}.MP4", 64 + 16 * i, 48, fps=[24, 25, 30, 50, 60, 120, 30][i], frames=12)
        keys.append(f"s{i % 3}/GH01{i:04d}.MP4")
    keys.insert(3, "s9/missing.MP4")
    keys.insert(5, "../escape.MP4")
    keys.append(keys[0])  # the same key twice is probed twice
    results = probe_many(str(landing), keys, max_workers=2)
    assert [r.object_key for r in results] == keys
    assert all(isinstance(r, ProbeResult) for r in results)
    assert results == [probe_object(str(landing), k) for k in keys]
    assert [r.ok for r in results].count(False) == 2
    assert probe_many(str(landing), []) == []
    assert not multiprocessing.active_children()  # workers are shut down


def test_a_hanging_probe_times_out_and_its_worker_is_killed(landing: Path) -> None:
    foot = landing / "footage"
    make_mp4(foot / "a.MP4", 160, 120, frames=10)
    make_mp4(foot / "b.MP4", 160, 120, frames=10)
    os.mkfifo(foot / "stuck1.MP4")  # open() blocks until a writer appears: a stalled read
    os.mkfifo(foot / "stuck2.MP4")
    keys = ["a.MP4", "stuck1.MP4", "stuck2.MP4", "b.MP4"]
    started = time.monotonic()
    results = probe_many(str(landing), keys, max_workers=1, timeout_s=1.0)
    elapsed = time.monotonic() - started
    assert [r.object_key for r in results] == keys
    assert results[0].ok and results[3].ok  # the batch went on after two hangs
    assert [r.reason for r in results[1:3]] == ["probe timed out after 1 s"] * 2
    assert elapsed < 15
    # Nobody holds the FIFOs open for reading any more: the stuck workers were killed,
    # not abandoned (an in-process thread could not have been).
    for name in ("stuck1.MP4", "stuck2.MP4"):
        with pytest.raises(OSError) as exc:
            os.open(foot / name, os.O_WRONLY | os.O_NONBLOCK)
        assert exc.value.errno == errno.ENXIO
    assert not multiprocessing.active_children()


# -- bytes read --------------------------------------------------------------------------------------


@pytest.mark.parametrize("faststart", [False, True], ids=["moov_at_end", "moov_at_start"])
def test_bytes_read_stay_small_for_a_large_file(tmp_path: Path, landing: Path, faststart: bool) -> None:
    path, frames = make_big_mp4(landing / "footage" / "big.MP4", 64 * MB, faststart=faststart, fps=30)
    boxes = top_level_boxes(path)
    assert (boxes.index("moov") < boxes.index("mdat")) is faststart
    r = probe_object(str(landing), "big.MP4")
    assert r.ok, r.reason
    assert r.size_bytes > 60 * MB
    assert r.duration_s == pytest.approx(frames / 30)
    assert (r.width, r.height, r.fps) == (1280, 720, 30.0)
    assert r.bytes_read < 2 * MB, r.bytes_read  # probe + fingerprint together


@pytest.mark.parametrize("faststart", [False, True], ids=["moov_at_end", "moov_at_start"])
def test_a_keyframe_bigger_than_the_budget_is_not_read(tmp_path: Path, landing: Path, faststart: bool) -> None:
    # ffmpeg reads the first packet while opening the file; a 4K noise keyframe of several
    # MB would alone break the 2 MB budget. The payload is served as zeros instead
    # (CachingReader.serve_unread_as_zeros) and the header fields are unchanged.
    path, frames = make_big_mp4(landing / "footage" / "noise.MP4", 40 * MB, faststart=faststart, huge_keyframe=True)
    keyframe = path.stat().st_size // frames
    assert keyframe > 3 * MB
    r = probe_object(str(landing), "noise.MP4")
    assert r.ok, r.reason
    assert (r.width, r.height, r.fps, r.codec) == (3840, 2160, 30.0, "h264")
    assert r.duration_s == pytest.approx(frames / 30)
    assert r.bytes_read < 2 * MB, r.bytes_read
    # the same fields as reading the whole file the plain way
    with av.open(str(path)) as whole:
        s = whole.streams.video[0]
        assert (s.width, s.height, float(s.average_rate), s.bit_rate) == (r.width, r.height, r.fps, r.bit_rate)


def _box(kind: bytes, payload: int, large: bool = False) -> bytes:
    if large:
        return struct.pack(">I4sQ", 1, kind, 16 + payload) + bytes(payload)
    return struct.pack(">I4s", 8 + payload, kind) + bytes(payload)


@pytest.mark.parametrize(
    "layout, expected",
    [
        ([_box(b"ftyp", 12), _box(b"mdat", 100), _box(b"moov", 40)], [(28, 128)]),
        ([_box(b"ftyp", 12), _box(b"moov", 40), _box(b"mdat", 100, large=True)], [(84, 184)]),
        ([_box(b"ftyp", 12), _box(b"mdat", 10), _box(b"free", 5), _box(b"mdat", 20)], [(28, 38), (59, 79)]),
        ([_box(b"ftyp", 12), struct.pack(">I4s", 0, b"mdat") + bytes(50)], [(28, 78)]),  # size 0: to the end
        ([_box(b"ftyp", 12), struct.pack(">I4s", 500, b"mdat") + bytes(50)], [(28, 78)]),  # cut off: to the end
        ([_box(b"ftyp", 12), struct.pack(">I4s", 3, b"mdat") + bytes(50)], []),  # unparseable: nothing skipped
    ],
    ids=["moov_at_end", "largesize", "two_mdats", "size_zero", "truncated", "malformed"],
)
def test_media_payload_ranges_from_box_headers(layout, expected) -> None:
    data = b"".join(layout)
    reader = CachingReader(io.BytesIO(data), len(data))
    assert media_payload_ranges(reader, len(data)) == expected


def test_payload_served_as_zeros_only_where_never_read(tmp_path: Path) -> None:
    data = bytes(range(256)) * 1024  # 256 KiB, 16 blocks of 16 KiB
    reader = CachingReader(io.BytesIO(data), len(data), block=16 * 1024)
    reader.seek(40 * 1024)
    assert reader.read(1024) == data[40 * 1024 : 41 * 1024]  # block 2 read for real (fingerprint)
    reader.serve_unread_as_zeros([(20 * 1024, 200 * 1024)])
    before = reader.bytes_read
    reader.seek(0)
    got = reader.read()
    assert len(got) == len(data)
    assert got[32 * 1024 : 48 * 1024] == data[32 * 1024 : 48 * 1024]  # cached: the real bytes
    assert got[48 * 1024 : 192 * 1024] == bytes(144 * 1024)  # whole blocks inside the range: zeros, never fetched
    assert got[: 32 * 1024] == data[: 32 * 1024] and got[192 * 1024 :] == data[192 * 1024 :]  # partly outside: real
    assert reader.bytes_read - before == len(data) - 16 * 1024 - 144 * 1024
