"""Real MP4 files for the demo landing zone and for the tests: one encoder (PyAV).

:func:`encode_mp4` writes a real MP4 (H.264, HEVC or MPEG-4 Part 2 video; optionally a
silent AAC track before or after it and a GoPro telemetry track; ``moov`` at the end or,
with ``faststart``, at the front) from a :class:`VideoSpec`. The telemetry track is what a
GoPro writes and the probe reads (contract R2b): a data stream with the ``gpmd`` sample
entry and the handler name "GoPro MET", one GPMF payload per second (:func:`gpmf_payload`:
``DVNM``, ``FMWR``, ``GPS5`` with its ``GPSF`` fix, ``ACCL`` and ``GYRO``, and for a drone a
second device named "GoPro Karma v1.0"). :func:`mux_gopro` muxes given payloads (one
video frame each) for tests that build GPMF by hand. It is cheap at any
size: frames are a flat vertical gradient with a bar that steps across (a ``shade`` gives
a flat grey picture), and one short closed GOP is encoded and its packets repeated up to
the clip's length, so a 10-minute 4K take costs one GOP of encoding.

Deterministic: the same spec gives byte-identical files (fixed encoder thread counts, no
clock), so the demo generator (``gopro_tools/demo_landing.py``) stays reproducible for a
seed, and two test clips with different shades never share a fingerprint (R4).

Used by the demo generator, the benchmarks and the tests (``tests/conftest.py``
``encode_mp4`` and its ``mp4`` fixture).
"""

from __future__ import annotations

import dataclasses
import heapq
import math
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import av

__all__ = [
    "AAC_FRAME",
    "AUDIO_RATE",
    "ENCODER",
    "VideoSpec",
    "encode_audio_only",
    "encode_mp4",
    "gpmf_payload",
    "mux_gopro",
    "zero_durations",
]

ENCODER = {"h264": "libx264", "hevc": "libx265", "mpeg4": "mpeg4"}
_CODEC_OF_ENCODER = {encoder: codec for codec, encoder in ENCODER.items()}
LONG_CLIP_S = 240  # longer takes get 2-second GOPs (disk)
BAR_STEPS = 2  # positions of the moving bar per encoded GOP
ENCODER_THREADS = "2"  # fixed, so the bytes do not depend on the machine's core count
AUDIO_RATE = 48000
AAC_FRAME = 1024
TELEMETRY_HANDLER = "GoPro MET"  # the handler name the probe finds the track by (R2b)
KARMA = "GoPro Karma v1.0"  # the DVNM of the Karma drone's own GPMF device (R2b is_drone)


@dataclass
class VideoSpec:
    """How to encode one video file (the defaults: a 2-second 64x36 H.264 clip at 1 fps)."""

    width: int = 64
    height: int = 36
    fps: int = 1
    n_frames: int = 2
    codec: str = "h264"  # h264 | hevc | mpeg4 (the encoder names libx264, libx265 are accepted too)
    audio: str = "none"  # none | after | first (audio track before the video track)
    telemetry: bool = False  # a GoPro telemetry track ("GoPro MET" gpmd), one GPMF payload per second
    faststart: bool = False  # moov box at the front (else at the end, the muxer default)
    y_top: int = 60
    y_bottom: int = 180
    u: int = 128
    v: int = 128
    bar_y: int = 235
    gps: tuple[float, float] | None = (32.75, -117.25)  # where the GPS5 track starts; None: no GPS stream
    gop: int = 0  # frames per encoded (and then repeated) GOP; 0: see _gop()
    # the telemetry's content (R2b), with telemetry=True
    camera: str = "HERO11 Black"  # DVNM of GPMF device 1
    firmware: str | None = "H22.01.02.32.00"  # GPMF FMWR: its prefix gives camera_model (H22 -> HERO11 Black)
    gps_fix: int = 3  # GPSF of every GPS5 sample: 0 no fix (indoors), 2 2D, 3 3D
    imu: bool = True  # ACCL and GYRO streams
    drone: bool = False  # a second device named "GoPro Karma v1.0": flown by a Karma drone
    telemetry_corrupt: bool = False  # payloads that are not GPMF: a track that cannot be parsed
    recorded_at: str | None = None  # container creation_time, e.g. "2025-03-04T10:20:30.000000Z"
    location: str | None = None  # container location tag (ISO 6709, as a MAX writes it): never to be stored


def encode_mp4(
    path: str | Path, spec: VideoSpec | None = None, *, seconds: float | None = None, shade: int | None = None, **fields
) -> Path:
    """Write one real MP4 at ``path`` (parent folders created) and return its path.

    ``spec`` says everything (default :class:`VideoSpec`); keyword arguments replace its
    fields (``width=1920, fps=30, codec="hevc", audio="after", ...``), with two shorthands:
    ``seconds`` sets ``n_frames = round(seconds * fps)`` (at least one frame) and ``shade``
    draws a flat grey picture of that luma (0..255) with a contrasting bar, so that clips
    of different shades have different bytes and fingerprints.
    """
    spec = dataclasses.replace(spec or VideoSpec(), **fields)
    spec.codec = _CODEC_OF_ENCODER.get(spec.codec, spec.codec)
    if spec.codec not in ENCODER:
        raise ValueError(f"codec must be one of {', '.join(ENCODER)}, got {spec.codec!r}")
    if seconds is not None:
        spec.n_frames = max(1, round(seconds * spec.fps))
    if shade is not None:
        spec.y_top = spec.y_bottom = shade % 256
        spec.bar_y = (shade + 128) % 256
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _encode(path, spec)
    return path


def encode_audio_only(path: str | Path, seconds: float) -> Path:
    """An MP4 with a silent AAC track and no video stream (contract §3 "no video stream")."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _audio_only(path, seconds)
    return path


def _klv(key: bytes, type_char: bytes, size: int, repeat: int, data: bytes) -> bytes:
    """One GPMF key-length-value entry, padded to 32 bits."""
    return key + type_char + bytes([size]) + repeat.to_bytes(2, "big") + data + bytes(-len(data) % 4)


def _nest(key: bytes, children: bytes) -> bytes:
    return _klv(key, b"\0", 4, len(children) // 4, children)


def _text(key: bytes, text: str) -> bytes:
    data = text.encode("latin-1")
    return _klv(key, b"c", 1, len(data), data)


def gpmf_payload(
    second: int = 0,
    *,
    camera: str = "HERO11 Black",
    firmware: str | None = "H22.01.02.32.00",
    gps: tuple[float, float] | None = (32.75, -117.25),
    gps_fix: int = 3,
    imu: bool = True,
    drone: bool = False,
) -> bytes:
    """One second of GoPro telemetry (GPMF, contract R2b) as a camera writes it: device 1
    (``DVID`` 1, ``DVNM`` ``camera``, ``FMWR`` ``firmware``) with 18 Hz ``GPS5`` (``GPSF``
    ``gps_fix``, drifting slowly from ``gps``), 200 Hz ``ACCL`` and ``GYRO`` when ``imu``;
    and with ``drone`` a second device named "GoPro Karma v1.0" with a battery stream, as
    the Karma's own telemetry appears in its camera's track (karma.mp4 of the samples)."""
    streams = b""
    if gps is not None:
        lat, lon = gps
        samples = b"".join(
            struct.pack(
                ">iiiii",
                int((lat + (second * 18 + j) * 2e-6) * 1e7),
                int((lon + (second * 18 + j) * 3e-6) * 1e7),
                int(12.5 * 1000),
                4200 + j,
                4300 + j,
            )
            for j in range(18)
        )
        streams += _nest(
            b"STRM",
            _text(b"STNM", "GPS (Lat., Long., Alt., 2D speed, 3D speed)")
            + _klv(b"GPSF", b"L", 4, 1, struct.pack(">I", gps_fix))
            + _klv(b"GPSP", b"S", 2, 1, struct.pack(">H", 150))
            + _klv(b"SCAL", b"l", 4, 5, struct.pack(">5i", 10_000_000, 10_000_000, 1000, 1000, 100))
            + _klv(b"GPS5", b"l", 20, 18, samples),
        )
    if imu:
        accl = b"".join(struct.pack(">hhh", 418 * 9 + j % 7, -20 * (j % 11), 7) for j in range(200))
        gyro = b"".join(struct.pack(">hhh", j % 5, 2, -3) for j in range(200))
        streams += _nest(
            b"STRM",
            _text(b"STNM", "Accelerometer")
            + _klv(b"SCAL", b"s", 2, 1, struct.pack(">h", 418))
            + _klv(b"ACCL", b"s", 6, 200, accl),
        )
        streams += _nest(
            b"STRM",
            _text(b"STNM", "Gyroscope")
            + _klv(b"SCAL", b"s", 2, 1, struct.pack(">h", 939))
            + _klv(b"GYRO", b"s", 6, 200, gyro),
        )
    camera_dev = _klv(b"DVID", b"L", 4, 1, struct.pack(">I", 1)) + _text(b"DVNM", camera)
    if firmware:
        camera_dev += _text(b"FMWR", firmware)
    out = _nest(b"DEVC", camera_dev + streams)
    if drone:
        battery = _nest(
            b"STRM",
            _text(b"STNM", "Karma battery")
            + _klv(b"SCAL", b"L", 4, 1, struct.pack(">I", 100))
            + _klv(b"KBAT", b"L", 4, 1, struct.pack(">I", 1520)),
        )
        karma = _klv(b"DVID", b"L", 4, 1, struct.pack(">I", 16835857)) + _text(b"DVNM", KARMA) + battery
        out += _nest(b"DEVC", karma)
    return out


def _gpmf_second(spec: VideoSpec, second: int) -> bytes:
    """The payload of one second of ``spec``'s telemetry track."""
    if spec.telemetry_corrupt:  # not GPMF: the probe's reader gives up on payload 1 (a warning)
        return b"GoPro MET? no: this payload is not GPMF " + bytes([second % 256]) * 8
    return gpmf_payload(
        second,
        camera=spec.camera,
        firmware=spec.firmware,
        gps=spec.gps,
        gps_fix=spec.gps_fix,
        imu=spec.imu,
        drone=spec.drone,
    )


def _segment_frames(spec: VideoSpec, k: int) -> Iterator[av.VideoFrame]:
    """``k`` cheap frames: a vertical gradient with a bar that steps across a quarter of
    it in a few jumps (between jumps the frames are identical, so the P-frames are nearly
    free and the bytes per second are dominated by one keyframe per GOP)."""
    w, h = spec.width, spec.height
    probe = av.VideoFrame(w, h, "yuv420p")
    y_ls = probe.planes[0].buffer_size // probe.planes[0].height
    c_sizes = [p.buffer_size for p in probe.planes[1:]]
    runs: list[list[int]] = []  # [value, number of rows] of the gradient
    for r in range(h):
        val = spec.y_top + (spec.y_bottom - spec.y_top) * r // max(1, h - 1)
        if runs and runs[-1][0] == val:
            runs[-1][1] += 1
        else:
            runs.append([val, 1])
    bw = max(8, (w // 48) & ~1)
    bar = bytes([spec.bar_y]) * bw
    x0 = (spec.u * w // 256) & ~1
    u_plane, v_plane = bytes([spec.u]) * c_sizes[0], bytes([spec.v]) * c_sizes[1]
    steps = min(k, BAR_STEPS)
    last_x, y_plane = -1, b""
    for i in range(k):
        step = i * steps // k
        x = min(w - bw, x0 + (w // 4) * step // max(1, steps - 1)) & ~1
        if x != last_x:
            y_plane = b"".join((bytes([v]) * x + bar + bytes([v]) * (y_ls - x - bw)) * n for v, n in runs)
            last_x = x
        frame = av.VideoFrame(w, h, "yuv420p")
        frame.planes[0].update(y_plane)
        frame.planes[1].update(u_plane)
        frame.planes[2].update(v_plane)
        frame.pts = i
        yield frame


def _video_options(codec: str, k: int) -> dict[str, str]:
    if codec == "h264":
        return {
            "preset": "ultrafast",
            "crf": "34",
            "threads": ENCODER_THREADS,
            "x264-params": f"keyint={k}:min-keyint={k}:scenecut=0:bframes=0:cabac=1",
        }
    if codec == "hevc":
        return {
            "preset": "ultrafast",
            "crf": "32",
            "x265-params": f"log-level=error:keyint={k}:min-keyint={k}:scenecut=0:bframes=0:open-gop=0"
            f":pools={ENCODER_THREADS}:frame-threads=1",
        }
    return {"g": str(k), "bf": "0", "threads": ENCODER_THREADS}


def _packet(stream: Any, data: bytes, pts: int, dts: int, tb: Fraction, duration: int, key: bool) -> av.Packet:
    p = av.Packet(data)
    p.stream = stream
    p.time_base = tb
    p.pts, p.dts, p.duration = pts, dts, duration
    p.is_keyframe = key
    return p


def _audio_packets(stream: Any, seconds: float) -> Iterator[tuple[float, int, av.Packet]]:
    """Silent AAC covering ``seconds``: encoder priming packets, then the steady-state
    silent packet repeated (identical bytes for silence, and cheap)."""
    encoded = []
    for i in range(8):
        frame = av.AudioFrame(format="fltp", layout="stereo", samples=AAC_FRAME)
        for plane in frame.planes:
            plane.update(bytes(plane.buffer_size))
        frame.sample_rate = AUDIO_RATE
        frame.pts = i * AAC_FRAME
        encoded += [(bytes(p), p.pts, p.dts) for p in stream.encode(frame)]
    tb = Fraction(1, AUDIO_RATE)
    head = encoded[:3]
    steady = encoded[3][0]
    first_pts = head[0][1]
    total = math.ceil(seconds * AUDIO_RATE / AAC_FRAME) + 1
    for i in range(total):
        data = head[i][0] if i < len(head) else steady
        pts = first_pts + i * AAC_FRAME
        yield pts / AUDIO_RATE, 1, _packet(stream, data, pts, pts, tb, AAC_FRAME, True)


def _gop(codec: str, fps: int, seconds: float) -> int:
    """Frames per encoded GOP. One GOP is encoded and its packets repeated, so the CPU
    cost is about one GOP's frames and the bytes per second about one keyframe (CABAC, of
    a flat frame: 1-3 KB) per GOP plus nearly empty P-frames. 8 frames for most clips,
    half a second for long takes (disk), up to one second for mpeg4 (no CABAC, but cheap
    to encode) and 4 frames for HEVC (slow to encode; tiny keyframes)."""
    if codec == "hevc":
        return 4
    if codec == "mpeg4":
        return min(fps, 30)
    return max(8, fps // 2) if seconds > LONG_CLIP_S else 8


def _encode(path: Path, spec: VideoSpec) -> None:
    """Write one MP4: a short closed GOP encoded once and its packets repeated."""
    k = spec.gop or _gop(spec.codec, spec.fps, spec.n_frames / spec.fps)
    k = max(1, min(k, spec.n_frames))
    options = {"movflags": "+faststart"} if spec.faststart else {}
    with av.open(str(path), "w", format="mp4", options=options) as out:
        if spec.recorded_at:
            out.metadata["creation_time"] = spec.recorded_at
        if spec.location:
            out.metadata["location"] = spec.location
        audio = out.add_stream("aac", rate=AUDIO_RATE, layout="stereo") if spec.audio == "first" else None
        video = out.add_stream(ENCODER[spec.codec], rate=spec.fps)
        video.width, video.height, video.pix_fmt = spec.width, spec.height, "yuv420p"
        video.options = _video_options(spec.codec, k)
        if spec.audio == "after":
            audio = out.add_stream("aac", rate=AUDIO_RATE, layout="stereo")
        data = None
        if spec.telemetry:  # ffmpeg's mov muxer writes a bin_data stream with the `gpmd` sample entry
            data = out.add_data_stream("bin_data")
            data.metadata["handler_name"] = TELEMETRY_HANDLER
        packets = []
        for frame in _segment_frames(spec, k):
            packets += [(bytes(p), p.pts, p.dts, p.is_keyframe, p.time_base) for p in video.encode(frame)]
        packets += [(bytes(p), p.pts, p.dts, p.is_keyframe, p.time_base) for p in video.encode()]
        tb = packets[0][4] or Fraction(1, spec.fps)
        step = int(round(Fraction(1, spec.fps) / tb))  # one frame in packet time units
        loop = step * len(packets)
        seconds = spec.n_frames / spec.fps

        def video_packets() -> Iterator[tuple[float, int, av.Packet]]:
            tbf = float(tb)
            gop = [(payload, pts, pts if dts is None else dts, key) for payload, pts, dts, key, _ in packets]
            n = 0
            for rep in range(0, spec.n_frames, len(gop)):
                shift = rep // len(gop) * loop
                for payload, pts, dts, key in gop:
                    if n == spec.n_frames:
                        return
                    n += 1
                    yield (dts + shift) * tbf, 0, _packet(video, payload, pts + shift, dts + shift, tb, step, key)

        def data_packets() -> Iterator[tuple[float, int, av.Packet]]:
            ms = Fraction(1, 1000)
            total_ms = math.ceil(seconds * 1000)
            for s in range(math.ceil(seconds)):  # one GPMF payload per second, as a camera writes
                dur = min(1000, total_ms - s * 1000)
                yield float(s), 2, _packet(data, _gpmf_second(spec, s), s * 1000, s * 1000, ms, dur, True)

        sources = [video_packets()]
        if audio is not None:
            sources.append(_audio_packets(audio, seconds))
        if data is not None:
            sources.append(data_packets())
        # (time, stream order) is unique across the sources, so the packets are never compared
        for _, _, packet in heapq.merge(*sources):
            out.mux(packet)


def mux_gopro(
    path: str | Path,
    payloads: list[bytes],
    creation_time: str | None = "2024-06-01T10:20:30.000000Z",
    handler: str = TELEMETRY_HANDLER,
    size: tuple[int, int] = (64, 36),
    seed: int = 7,
) -> Path:
    """A real MP4 like a GoPro's from given GPMF ``payloads``: one H.264 frame and one
    payload per second, the payloads in a data stream (``gpmd``) with the handler name
    ``handler``. For tests that build GPMF by hand (tests/test_gpmf.py); ``seed`` draws
    the frames' noise, so two files with the same payloads differ when their seeds do."""
    import numpy as np

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    width, height = size
    with av.open(str(path), "w", format="mp4") as out:
        if creation_time:
            out.metadata["creation_time"] = creation_time
        v = out.add_stream("libx264", rate=1)
        v.width, v.height, v.pix_fmt = width, height, "yuv420p"
        v.options = {"preset": "ultrafast", "threads": ENCODER_THREADS}
        d = out.add_data_stream("bin_data")  # ffmpeg's mov muxer: sample entry `gpmd`
        d.metadata["handler_name"] = handler
        d.time_base = Fraction(1, 1000)
        rng = np.random.default_rng(seed)
        for i, data in enumerate(payloads):
            pixels = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
            for pkt in v.encode(av.VideoFrame.from_ndarray(pixels, format="rgb24")):
                out.mux(pkt)
            pkt = av.Packet(data)
            pkt.stream = d
            pkt.pts = pkt.dts = i * 1000
            pkt.duration = 1000
            pkt.time_base = Fraction(1, 1000)
            out.mux(pkt)
        for pkt in v.encode():
            out.mux(pkt)
    return path


def _audio_only(path: Path, seconds: float) -> None:
    with av.open(str(path), "w", format="mp4") as out:
        audio = out.add_stream("aac", rate=AUDIO_RATE, layout="stereo")
        for _, _, packet in _audio_packets(audio, seconds):
            out.mux(packet)


_MP4_CONTAINERS = {b"moov", b"trak", b"mdia", b"minf", b"stbl", b"edts"}


def zero_durations(data: bytes) -> bytes:
    """Return an MP4 whose movie, track and media durations and sample deltas are all 0:
    a file with a video stream and no duration (contract §3 "zero duration")."""
    buf = bytearray(data)

    def walk(off: int, end: int) -> None:
        while off + 8 <= end:
            size, typ = struct.unpack(">I4s", buf[off : off + 8])
            hdr = 8
            if size == 1:
                size = struct.unpack(">Q", buf[off + 8 : off + 16])[0]
                hdr = 16
            elif size == 0:
                size = end - off
            if size < hdr:
                return
            body = off + hdr
            if typ in _MP4_CONTAINERS:
                walk(body, off + size)
            elif typ in (b"mvhd", b"mdhd", b"tkhd"):
                ver = buf[body]
                times = 16 if ver == 1 else 8
                n = 8 if ver == 1 else 4
                p = body + 4 + times + (4 if typ != b"tkhd" else 8)
                buf[p : p + n] = bytes(n)
            elif typ == b"stts":
                count = struct.unpack(">I", buf[body + 4 : body + 8])[0]
                for i in range(count):
                    q = body + 8 + i * 8 + 4
                    buf[q : q + 4] = bytes(4)
            elif typ == b"elst":
                ver = buf[body]
                count = struct.unpack(">I", buf[body + 4 : body + 8])[0]
                n = 8 if ver == 1 else 4
                for i in range(count):
                    q = body + 8 + i * (2 * n + 4)
                    buf[q : q + n] = bytes(n)
            off += size

    walk(0, len(buf))
    return bytes(buf)
