"""Hostile and broken videos (contract §3): every file ends as an inventory row or a
quarantine row with a reason; no exception, no hang, no read outside the landing zone.

Real parts only: small MP4s encoded with PyAV, real files, FIFOs and symlinks under
tmp_path, the real worker pool with its per-file time limit. Hypothesis drives bit flips,
byte overwrites, box-size edits and truncations of real MP4s (both `moov` layouts). The
number of fuzz cases tried is printed at the end of the module (docs/RELIABILITY.md).
"""

from __future__ import annotations

import collections
import errno
import io
import math
import multiprocessing
import os
import struct
import threading
import time
import zlib
from pathlib import Path

import av
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_probe import make_audio_only, make_mp4

from gopro_assets.domain.footage.probe import ProbeResult, probe_fileobj, probe_many, probe_object

CASES: collections.Counter = collections.Counter()  # outcome class -> fuzz cases tried


@pytest.fixture(scope="module", autouse=True)
def _report_cases(request):
    yield
    total = sum(v for k, v in CASES.items() if not k.startswith("("))
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    if reporter is not None and capture is not None and total:
        with capture.global_and_fixture_disabled():
            reporter.write_line(f"\n[fuzz-probe] {total} video fuzz cases tried: {dict(sorted(CASES.items()))}")


def _outcome(r: ProbeResult) -> str:
    if r.ok:
        return "ok"
    reason = r.reason or ""
    for prefix in (
        "unreadable video",
        "truncated file",
        "probe timed out",
        "probe crashed",
        "probe failed",
        "storage error",
        "no video stream",
        "zero duration",
        "empty file",
        "video file missing",
    ):
        if reason.startswith(prefix):
            return prefix
    return reason


def check_result(r: ProbeResult, key: str, size: int | None = None) -> None:
    """A probe result is either sane metadata or a quarantine reason, never half of each."""
    assert isinstance(r, ProbeResult)
    assert r.object_key == key
    if r.ok:
        assert r.reason is None
        assert r.duration_s is not None and math.isfinite(r.duration_s) and r.duration_s > 0
        assert r.width and r.width > 0 and r.height and r.height > 0
        assert r.fps is None or (math.isfinite(r.fps) and r.fps > 0)
        assert r.codec and r.fingerprint and r.fingerprint.startswith("fp1:")
        if size is not None:
            assert r.size_bytes == size
    else:
        assert isinstance(r.reason, str) and r.reason.strip(), r
        # An unexpected exception inside the probe would surface as "probe failed: ...":
        # each failure mode must have its own readable reason.
        assert not r.reason.startswith("probe failed"), r.reason


# -- the seed files and their box layout ---------------------------------------------------------

_CONTAINERS = {b"moov", b"trak", b"mdia", b"minf", b"stbl", b"dinf", b"edts", b"udta"}


def box_headers(data: bytes, start: int = 0, end: int | None = None, depth: int = 0) -> list[int]:
    """Offsets of every box header (top level and inside the usual container boxes)."""
    end = len(data) if end is None else end
    out, off = [], start
    while off + 8 <= end:
        size, typ = struct.unpack(">I4s", data[off : off + 8])
        header = 8
        if size == 1 and off + 16 <= end:
            size, header = struct.unpack(">Q", data[off + 8 : off + 16])[0], 16
        elif size == 0:
            size = end - off
        if size < header:
            break
        out.append(off)
        if typ in _CONTAINERS and depth < 8:
            out += box_headers(data, off + header, min(off + size, end), depth + 1)
        off += size
    return out


@pytest.fixture(scope="module")
def seeds(tmp_path_factory) -> dict[str, bytes]:
    d = tmp_path_factory.mktemp("seeds")
    return {
        "moov_end_audio": make_mp4(d / "a.mp4", 64, 48, fps=10, frames=20, audio=True).read_bytes(),
        "moov_front": make_mp4(d / "b.mp4", 64, 48, fps=25, frames=30, faststart=True).read_bytes(),
        "hevc": make_mp4(d / "c.mp4", 64, 64, fps=30, frames=12, codec="libx265").read_bytes(),
    }


SEED_NAMES = ["moov_end_audio", "moov_front", "hevc"]


@st.composite
def mutations(draw, data: bytes) -> bytes:
    """Structured damage to a real MP4: most edits hit box headers and the moov box, where
    the demuxer's parsing happens; some hit anywhere; then maybe a truncation."""
    b = bytearray(data)
    headers = box_headers(data)
    for _ in range(draw(st.integers(1, 6))):
        op = draw(st.sampled_from(["flip", "flip_header", "byte", "box_size", "zero_range", "insert"]))
        if op == "flip":
            off = draw(st.integers(0, len(b) - 1))
            b[off] ^= 1 << draw(st.integers(0, 7))
        elif op == "flip_header":  # a bit in a box header or the 32 bytes after it (version, counts, sizes)
            off = min(len(b) - 1, draw(st.sampled_from(headers)) + draw(st.integers(0, 40)))
            b[off] ^= 1 << draw(st.integers(0, 7))
        elif op == "byte":
            off = draw(st.integers(0, len(b) - 1))
            b[off] = draw(st.sampled_from([0x00, 0xFF, 0x7F, 0x80, draw(st.integers(0, 255))]))
        elif op == "box_size":  # lie about a box's size
            off = draw(st.sampled_from(headers))
            size = draw(st.sampled_from([0, 1, 7, 8, 9, 2**31 - 1, 2**32 - 1, draw(st.integers(0, 2**32 - 1))]))
            if off + 4 <= len(b):
                b[off : off + 4] = struct.pack(">I", size)
        elif op == "zero_range":
            off = draw(st.integers(0, len(b) - 1))
            n = draw(st.integers(1, 64))
            b[off : off + n] = bytes(len(b[off : off + n]))
        else:
            off = draw(st.integers(0, len(b)))
            b[off:off] = draw(st.binary(min_size=1, max_size=32))
        if not b:
            break
    if b and draw(st.integers(0, 3)) == 0:
        b = b[: draw(st.integers(1, len(b)))]
    return bytes(b)


@st.composite
def fuzzed_videos(draw, seeds: dict[str, bytes]) -> tuple[str, bytes]:
    name = draw(st.sampled_from(SEED_NAMES))
    return name, draw(mutations(seeds[name]))


# -- in process: many cases, each through probe_object (the function that never raises) --------


def test_fuzzed_mp4s_probe_to_a_row_or_a_reason(tmp_path_factory, seeds):
    landing = tmp_path_factory.mktemp("fuzz_landing")
    (landing / "footage").mkdir()
    counter = iter(range(10**9))

    @settings(
        max_examples=400,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(case=fuzzed_videos(seeds))
    def run(case):
        _, data = case
        key = f"s1/F{next(counter):05d}.MP4"
        path = landing / "footage" / key
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(data)
        started = time.monotonic()
        r = probe_object(str(landing), key)
        assert time.monotonic() - started < 5, "a header-only probe of a tiny file must be quick"
        if data:
            check_result(r, key, size=len(data))
        else:
            assert r.reason == "empty file (0 bytes)"
        # probe_fileobj on the same bytes agrees (no state leaks between probes)
        if data:
            again = probe_fileobj(io.BytesIO(data), key)
            assert (again.ok, again.reason, again.duration_s, again.width, again.fingerprint) == (
                r.ok,
                r.reason,
                r.duration_s,
                r.width,
                r.fingerprint,
            )
        CASES["in_process"] += 1
        CASES[f"(in_process {_outcome(r)})"] += 1
        path.unlink()

    run()


# -- the worker pool: batches of fuzzed files under the per-file time limit ---------------------


def test_fuzzed_batches_through_the_worker_pool(tmp_path_factory, seeds):
    landing = tmp_path_factory.mktemp("fuzz_pool")
    (landing / "footage").mkdir()
    batch_no = iter(range(10**6))

    @settings(max_examples=6, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
    @given(batch=st.lists(fuzzed_videos(seeds), min_size=6, max_size=14))
    def run(batch):
        b = next(batch_no)
        keys, sizes = [], []
        for i, (_, data) in enumerate(batch):
            key = f"b{b}/F{i:03d}.MP4"
            (landing / "footage" / key).parent.mkdir(exist_ok=True)
            (landing / "footage" / key).write_bytes(data)
            keys.append(key)
            sizes.append(len(data))
        keys.append("b0/missing.MP4")
        results = probe_many(str(landing), keys, max_workers=2, timeout_s=20)
        assert [r.object_key for r in results] == keys
        for key, size, r in zip(keys, sizes, results):
            if size == 0:
                assert r.reason == "empty file (0 bytes)"
            else:
                check_result(r, key, size=size)
            # the worker's answer is the in-process answer: a worker adds isolation, not behaviour
            assert r == probe_object(str(landing), key)
            CASES["worker_pool"] += 1
            CASES[f"(worker_pool {_outcome(r)})"] += 1
        assert results[-1].reason == "video file missing"
        assert not multiprocessing.active_children()

    run()


# -- named hostile inputs ---------------------------------------------------------------------------


def png_bytes(width: int = 8, height: int = 4) -> bytes:
    """A minimal valid PNG, built by hand (raw bytes, no encoder)."""

    def chunk(tag: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + tag + body + struct.pack(">I", zlib.crc32(tag + body) & 0xFFFFFFFF)

    raw = b"".join(b"\x00" + bytes(3 * width) for _ in range(height))
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


def pyav_image(path: Path, codec: str) -> Path:
    """A still image written by PyAV's image2 muxer (a real PNG or JPEG file), named .MP4."""
    path.parent.mkdir(parents=True, exist_ok=True)
    pix = {"png": "rgb24", "mjpeg": "yuvj420p"}[codec]
    with av.open(str(path), "w", format="image2") as out:
        s = out.add_stream(codec)
        s.width, s.height, s.pix_fmt = 32, 16, pix
        frame = av.VideoFrame.from_ndarray(np.full((16, 32, 3), 90, np.uint8), format="rgb24").reformat(format=pix)
        for p in [*s.encode(frame), *s.encode()]:
            out.mux(p)
    return path


class FifoWatch:
    """A FIFO outside the landing zone and a thread that notices if anyone opens it for
    reading (a writer's non-blocking open succeeds only while a reader has it open)."""

    def __init__(self, path: Path):
        os.mkfifo(path)
        self.path, self.opened, self._stop = path, False, threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def _watch(self):
        while not self._stop.is_set():
            try:
                os.close(os.open(self.path, os.O_WRONLY | os.O_NONBLOCK))
                self.opened = True
            except OSError as exc:
                assert exc.errno == errno.ENXIO
            time.sleep(0.005)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def test_non_videos_and_container_tricks_are_quarantined_without_side_effects(tmp_path, seeds, monkeypatch):
    landing = tmp_path / "landing"
    foot = landing / "footage"
    outside = tmp_path / "outside"
    outside.mkdir()
    good = seeds["moov_front"]
    files = {
        "empty.MP4": b"",
        "cut_10.MP4": good[:10],  # inside the ftyp box
        "cut_half.MP4": good[: len(good) // 2],
        "text.MP4": b"hello, this is not a video\nat all\n",
        "csv.MP4": b"subscriber_id,email\ns1,one@example.com\n",
        "srt.MP4": b"1\n00:00:01,000 --> 00:00:02,000\nhello\n",
        "png_raw.MP4": png_bytes(),
        "zeros.MP4": bytes(4096),
        # formats that name other files or the network: only the mov demuxer may run
        "concat_rel.MP4": b"ffconcat version 1.0\nfile trap.mp4\n",
        "concat_abs.MP4": f"ffconcat version 1.0\nfile {outside / 'trap.mp4'}\n".encode(),
        "hls.MP4": f"#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:10,\nfile://{outside / 'trap.mp4'}\n#EXT-X-ENDLIST\n".encode(),
        "sdp.MP4": b"v=0\no=- 0 0 IN IP4 127.0.0.1\ns=x\nc=IN IP4 127.0.0.1\nt=0 0\nm=video 5004 RTP/AVP 96\na=rtpmap:96 H264/90000\n",
    }
    for name, data in files.items():
        (foot / name).parent.mkdir(parents=True, exist_ok=True)
        (foot / name).write_bytes(data)
    pyav_image(foot / "png_pyav.MP4", "png")
    pyav_image(foot / "jpeg_pyav.MP4", "mjpeg")
    make_audio_only(foot / "audio_only.MP4")
    assert (foot / "png_pyav.MP4").read_bytes().startswith(b"\x89PNG")

    expected = dict.fromkeys([*files, "png_pyav.MP4", "jpeg_pyav.MP4"], "unreadable video")
    expected |= {
        "empty.MP4": "empty file (0 bytes)",
        "cut_half.MP4": "truncated file",
        "audio_only.MP4": "no video stream",
    }
    keys = sorted(expected)
    # The worker's working directory is where a relative "ffconcat" entry would resolve.
    monkeypatch.chdir(outside)
    with FifoWatch(outside / "trap.mp4") as trap:
        started = time.monotonic()
        results = probe_many(str(landing), keys, max_workers=2, timeout_s=8)
        in_process = [probe_object(str(landing), k) for k in keys]
        elapsed = time.monotonic() - started
    assert not trap.opened, "a landing file made the probe open a file outside the landing zone"
    for key, r, r2 in zip(keys, results, in_process):
        assert r == r2
        assert not r.ok and r.reason.startswith(expected[key]), (key, r.reason)
        CASES["named"] += 1
    # The SDP file used to open RTP sockets and wait 10 s for packets; now nothing waits.
    assert elapsed < 8 + 5, elapsed


def test_symlinks_never_lead_the_probe_out_of_the_landing_zone(tmp_path):
    landing = tmp_path / "landing"
    foot = landing / "footage"
    foot.mkdir(parents=True)
    outside = tmp_path / "outside"
    outside.mkdir()
    make_mp4(outside / "real.MP4", 64, 48, frames=5)
    make_mp4(foot / "inside.MP4", 64, 48, frames=5)
    os.symlink(outside, foot / "linked_dir")  # a directory link: footage/linked_dir/real.MP4
    os.symlink(outside / "real.MP4", foot / "hop2.MP4")
    os.symlink(foot / "hop2.MP4", foot / "hop1.MP4")  # a chain that ends outside
    os.symlink("/dev/zero", foot / "devzero.MP4")
    os.symlink(foot / "loop_b.MP4", foot / "loop_a.MP4")
    os.symlink(foot / "loop_a.MP4", foot / "loop_b.MP4")
    os.symlink(foot / "gone.MP4", foot / "dangling.MP4")
    os.symlink("inside.MP4", foot / "ok_link.MP4")
    keys = ["linked_dir/real.MP4", "hop1.MP4", "devzero.MP4", "loop_a.MP4", "dangling.MP4", "ok_link.MP4"]
    with FifoWatch(outside / "trap.MP4") as trap:
        os.symlink(outside / "trap.MP4", foot / "trap.MP4")
        keys.append("trap.MP4")
        results = probe_many(str(landing), keys, max_workers=2, timeout_s=8)
    assert not trap.opened
    reasons = {k: r.reason for k, r in zip(keys, results)}
    for k in ["linked_dir/real.MP4", "hop1.MP4", "devzero.MP4", "trap.MP4"]:
        assert reasons[k] == "symlink leads outside the landing zone", (k, reasons[k])
    assert reasons["dangling.MP4"] == "video file missing"
    assert reasons["loop_a.MP4"] and not results[keys.index("loop_a.MP4")].ok  # ELOOP: a storage error
    assert results[keys.index("ok_link.MP4")].ok
    CASES["named"] += len(keys)


def test_a_file_that_keeps_the_demuxer_busy_is_cut_by_the_time_limit(tmp_path):
    """Millions of empty top-level boxes: ffmpeg walks them one by one inside C code, where
    no Python signal can stop it. Only killing the worker process ends the probe."""
    landing = tmp_path / "landing"
    foot = landing / "footage"
    foot.mkdir(parents=True)
    ftyp = struct.pack(">I4s", 20, b"ftyp") + b"isom\0\0\0\0isom"
    (foot / "boxes.MP4").write_bytes(ftyp + struct.pack(">I4s", 8, b"free") * 4_000_000)  # 32 MB
    make_mp4(foot / "after.MP4", 64, 48, frames=5)
    started = time.monotonic()
    results = probe_many(str(landing), ["boxes.MP4", "after.MP4"], max_workers=1, timeout_s=1.0)
    elapsed = time.monotonic() - started
    assert results[0].reason == "probe timed out after 1 s", results[0]
    assert results[1].ok  # the batch went on with a fresh worker
    assert elapsed < 15
    assert not multiprocessing.active_children()
    CASES["named"] += 2
