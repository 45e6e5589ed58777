"""Probing: files per second of the inventory path (``probe_many``) on real MP4s, beside a
bare PyAV open-and-read-headers loop and ``ffprobe`` run once per file; and the bytes the
probe reads from multi-hundred-MB files with the ``moov`` box at the start or at the end.

The footage is real and generated here with PyAV:

* many small clips: a few dozen distinct encodes (H.264 and HEVC, 360p to 4K, 24-120 fps,
  with and without an AAC track and a GoPro-style telemetry track, moov at the start or the
  end), each copied many times with a unique 16-byte ``free`` box appended, so every file
  has its own content (and fingerprint) without encoding it again;
* a few long camera-like clips, 1080p60 at about 45 Mbit/s and 4K30 at about 90 Mbit/s,
  each written twice (moov at the start and at the end): one closed GOP of noisy frames is
  encoded once and its packets are repeated for the whole duration (the technique of
  ``gopro_tools/media.py``, the demo's and the tests' encoder), so a 1 GB file costs seconds.
* the long 1080p60 clip again with a real-sized GoPro telemetry track (R2b): one ~7 kB
  GPMF payload per second over its whole duration, a GPS fix from payload 1 or none at all,
  for the bytes read (header + fingerprint < 2 MB, plus exactly the payloads read) and the
  storage requests, locally and through S3; and files/s on the small clips that have a
  telemetry track, beside the bare loop and as CPU time per clip in one process.

Every method reads files that were just written (page cache), measured in fresh processes.
"""

from __future__ import annotations

import argparse
import json
import shutil
import struct
import subprocess
import time
from fractions import Fraction
from pathlib import Path

from benchmarks import Figure, Scale, emit, log, run_worker

MB = 1_000_000
MiB = 2**20


# -- footage ------------------------------------------------------------------------------------


def _small_specs(n: int):
    from gopro_tools.media import VideoSpec as ClipSpec

    res = [(1920, 1080), (1280, 720), (2704, 1520), (1080, 1920), (640, 360), (3840, 2160), (854, 480)]
    out = []
    for k in range(n):
        w, h = res[k % len(res)]
        codec = "hevc" if k % 5 == 3 and max(w, h) <= 1920 else "h264"
        fps = [30, 60, 25, 24, 120, 30, 50][k % 7] if max(w, h) <= 1920 else 30
        seconds = 3 if max(w, h) >= 3840 else 4 + (k * 7) % 17
        out.append(
            ClipSpec(
                width=w,
                height=h,
                fps=fps,
                n_frames=seconds * fps,
                codec=codec,
                audio=["none", "after", "first"][k % 3] if codec != "mpeg4" else "none",
                telemetry=k % 2 == 0,
                faststart=k % 3 == 0,
                y_top=40 + k % 100,
                u=90 + k % 60,
            )
        )
    return out


def _encode_small(root: Path, scale: Scale) -> tuple[list[str], list[str]]:
    from gopro_tools.media import encode_mp4  # the demo's cheap real MP4s

    encodes = []
    scratch = root / "_encodes"
    scratch.mkdir(parents=True, exist_ok=True)
    for k, spec in enumerate(_small_specs(scale.probe_distinct_encodes)):
        path = scratch / f"enc{k:03d}.MP4"
        encode_mp4(path, spec)
        encodes.append(path.read_bytes())
    specs = _small_specs(scale.probe_distinct_encodes)
    keys, with_telemetry = [], []
    for i in range(scale.probe_small_files):
        data = encodes[i % len(encodes)]
        # a top-level free box with the file number: valid MP4, unique bytes
        tail = struct.pack(">I4s", 16, b"free") + i.to_bytes(8, "big")
        key = f"sub-{i % 97:07d}/2025/01/GH01{i:07d}.MP4"
        (root / "footage" / key).parent.mkdir(parents=True, exist_ok=True)
        (root / "footage" / key).write_bytes(data + tail)
        keys.append(key)
        if specs[i % len(encodes)].telemetry:
            with_telemetry.append(key)
    shutil.rmtree(scratch)
    return keys, with_telemetry


# A real HERO payload is ~6-8 kB per second (GPS5 at 18 Hz, ACCL/GYRO at 200 Hz, CORI,
# GRAV, ... : gopro-samples/README); gpmf_payload() writes ~3 kB, so a filler stream pads it.
TELEMETRY_PAYLOAD_BYTES = 7000


def _real_sized_payload(second: int, gps_fix: int) -> bytes:
    """One second of GPMF as gopro_tools.media writes it (device 1, GPS5 with ``gps_fix``,
    ACCL, GYRO), padded to ~TELEMETRY_PAYLOAD_BYTES with a 60 Hz-like ``CORI`` stream
    inside the same DEVC (the probe's reader parses and ignores it)."""
    from gopro_tools.media import _klv, _nest, _text, gpmf_payload

    base = gpmf_payload(second, gps_fix=gps_fix)
    missing = max(0, TELEMETRY_PAYLOAD_BYTES - len(base) - 48)
    n = max(1, missing // 8)
    cori = _nest(
        b"STRM",
        _text(b"STNM", "CameraOrientation")
        + _klv(b"SCAL", b"s", 2, 1, struct.pack(">h", 32767))
        + _klv(b"CORI", b"s", 8, n, struct.pack(">4h", 32767, 0, 0, 0) * n),
    )
    return _nest(b"DEVC", base[8:] + cori)


def _encode_big(
    path: Path,
    width: int,
    height: int,
    fps: int,
    seconds: int,
    noise: float,
    faststart: bool,
    gop: int = 16,
    gps_fix: int | None = None,
) -> None:
    """A long clip: one closed GOP of partly noisy frames (camera-like bit rate), repeated,
    with a silent AAC track interleaved as a camera writes it; with ``gps_fix`` set, also a
    GoPro telemetry track ("GoPro MET", ``gpmd``) of one real-sized payload per second
    whose GPS5 samples carry that GPSF (0: no fix anywhere, 3: a 3D fix from payload 1)."""
    import av
    import numpy as np

    from gopro_tools.media import TELEMETRY_HANDLER, _audio_packets, _packet

    rng = np.random.default_rng(width + fps)
    options = {"movflags": "+faststart"} if faststart else {}
    with av.open(str(path), "w", format="mp4", options=options) as out:
        video = out.add_stream("libx264", rate=fps)
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        video.options = {
            "preset": "ultrafast",
            "crf": "23",
            "threads": "2",
            "x264-params": f"keyint={gop}:min-keyint={gop}:scenecut=0:bframes=0",
        }
        audio = out.add_stream("aac", rate=48000, layout="stereo")
        data = None
        if gps_fix is not None:
            data = out.add_data_stream("bin_data")
            data.metadata["handler_name"] = TELEMETRY_HANDLER
        base = np.tile(np.linspace(40, 200, height, dtype=np.uint8)[:, None], (1, width))
        packets = []
        for i in range(gop):
            y = base.copy()
            rows = int(height * noise)
            y[:rows] = rng.integers(0, 64, (rows, width), dtype=np.uint8) * 4 + 20
            frame = av.VideoFrame(width, height, "yuv420p")
            ls = frame.planes[0].line_size
            frame.planes[0].update(np.pad(y, ((0, 0), (0, ls - width))).tobytes())
            for p in frame.planes[1:]:
                p.update(bytes([128]) * p.buffer_size)
            frame.pts = i
            packets += [(bytes(p), p.pts, p.dts, p.is_keyframe, p.time_base) for p in video.encode(frame)]
        packets += [(bytes(p), p.pts, p.dts, p.is_keyframe, p.time_base) for p in video.encode()]
        tb = packets[0][4] or Fraction(1, fps)
        step = int(round(Fraction(1, fps) / tb))
        loop = step * len(packets)
        n_frames = seconds * fps

        def video_packets():
            for n in range(n_frames):
                rep, j = divmod(n, len(packets))
                payload, pts, dts, key, _ = packets[j]
                dts_n = (dts if dts is not None else pts) + rep * loop
                yield float(dts_n * tb), 0, _packet(video, payload, pts + rep * loop, dts_n, tb, step, key)

        def data_packets():
            ms = Fraction(1, 1000)
            for sec in range(seconds):
                payload = _real_sized_payload(sec, gps_fix)
                yield float(sec), 2, _packet(data, payload, sec * 1000, sec * 1000, ms, 1000, True)

        import heapq

        sources = [video_packets(), _audio_packets(audio, seconds)]
        if data is not None:
            sources.append(data_packets())
        for _, _, packet in heapq.merge(*sources, key=lambda x: (x[0], x[1])):
            out.mux(packet)


def make_footage(root: Path, scale: Scale) -> dict:
    started = time.monotonic()
    small, small_telemetry = _encode_small(root, scale)
    big = []
    s1080, s4k = scale.big_file_seconds
    for w, h, fps, seconds, noise in [(1920, 1080, 60, s1080, 0.07), (3840, 2160, 30, s4k, 0.06)]:
        for faststart in (True, False):
            key = f"sub-big/2025/01/GX01{w}{'F' if faststart else 'E'}.MP4"
            path = root / "footage" / key
            path.parent.mkdir(parents=True, exist_ok=True)
            _encode_big(path, w, h, fps, seconds, noise, faststart)
            big.append(
                {
                    "key": key,
                    "size": path.stat().st_size,
                    "moov": "start" if faststart else "end",
                    "resolution": f"{w}x{h}",
                    "fps": fps,
                    "seconds": seconds,
                }
            )
    # The worst case for the read budget: 4K frames of pure noise, keyframes of several MB
    # (ffmpeg reads the first packet while opening a file; docs/FINGERPRINT.md). Only for
    # the bytes-read figures: not a camera's bit rate, so not in the files/s mix.
    worst = []
    for faststart in (True, False):
        key = f"sub-big/2025/01/GX01NOISE{'F' if faststart else 'E'}.MP4"
        path = root / "footage" / key
        _encode_big(path, 3840, 2160, 30, min(2, s4k), 1.0, faststart)
        worst.append(
            {
                "key": key,
                "size": path.stat().st_size,
                "moov": "start" if faststart else "end",
                "resolution": "3840x2160 full-frame noise",
                "fps": 30,
                "seconds": min(2, s4k),
            }
        )
    # R2b's cost: the long 1080p60 clip again, with a real-sized telemetry track (one ~7 kB
    # payload per second over the whole duration), a fix in payload 1 or none at all.
    s_tel = s1080
    telemetry = []
    for fix, gps_fix in (("fix", 3), ("nofix", 0)):
        for faststart in (True, False):
            key = f"sub-big/2025/01/GX01T{fix.upper()}{'F' if faststart else 'E'}.MP4"
            path = root / "footage" / key
            _encode_big(path, 1920, 1080, 60, s_tel, 0.07, faststart, gps_fix=gps_fix)
            telemetry.append(
                {
                    "key": key,
                    "size": path.stat().st_size,
                    "moov": "start" if faststart else "end",
                    "resolution": "1920x1080",
                    "fps": 60,
                    "seconds": s_tel,
                    "gps": fix,
                    "payloads": s_tel,
                    "payload_bytes": [len(_real_sized_payload(sec, gps_fix)) for sec in range(s_tel)],
                }
            )
    return {
        "small": small,
        "small_telemetry": small_telemetry,
        "big": big,
        "worst": worst,
        "telemetry": telemetry,
        "seconds": time.monotonic() - started,
        "small_bytes": sum((root / "footage" / k).stat().st_size for k in small),
    }


# -- measurements (worker side) -------------------------------------------------------------------


def _probe_many(args: dict) -> dict:
    from gopro_assets.domain.footage.probe import probe_many

    keys = args["keys"]
    started = time.monotonic()
    results = probe_many(args["landing"], keys)
    wall = time.monotonic() - started
    return {
        "wall_s": wall,
        "files": len(keys),
        "ok": sum(r.ok for r in results),
        "meta": {r.object_key: [r.duration_s, r.width, r.height, r.fps, r.codec] for r in results},
        "bytes_read": {r.object_key: r.bytes_read for r in results},
    }


def _in_process(args: dict) -> dict:
    """One process, no workers: the per-file cost of probe_object with the R2b telemetry
    read and with it left out (read_telemetry stubbed), and of the bare PyAV loop, each
    over the same keys twice, alternating, best pass kept: where the time goes on a
    loaded machine, without worker start-up or scheduling."""
    import av

    from gopro_assets.domain.footage import probe

    root = Path(args["landing"]) / "footage"
    real = probe.read_telemetry

    def with_telemetry():
        for key in args["keys"]:
            probe.probe_object(args["landing"], key)

    def without_telemetry():
        probe.read_telemetry = lambda container, reader: None
        try:
            with_telemetry()
        finally:
            probe.read_telemetry = real

    def bare():
        meta = []
        for key in args["keys"]:
            with av.open(str(root / key)) as c:
                s = c.streams.video[0]
                meta.append((s.duration, s.width, s.height, s.average_rate, s.codec_context.name, s.bit_rate))
        return meta

    best = {"with_telemetry": float("inf"), "without_telemetry": float("inf"), "bare": float("inf")}
    with_telemetry()  # imports, first-open costs
    for _ in range(2):
        for name, fn in (("with_telemetry", with_telemetry), ("without_telemetry", without_telemetry), ("bare", bare)):
            t = time.process_time()
            fn()
            best[name] = min(best[name], time.process_time() - t)
    return {"files": len(args["keys"]), "cpu_s": best}


def _bare_pyav(args: dict) -> dict:
    import av

    root = Path(args["landing"]) / "footage"
    started = time.monotonic()
    meta = {}
    for key in args["keys"]:
        with av.open(str(root / key)) as c:
            s = c.streams.video[0]
            dur = float(s.duration * s.time_base) if s.duration else c.duration / av.time_base
            meta[key] = [dur, s.width, s.height, float(s.average_rate or 0), s.codec_context.name, s.bit_rate]
    return {"wall_s": time.monotonic() - started, "files": len(args["keys"]), "meta": meta}


def _ffprobe(args: dict) -> dict:
    root = Path(args["landing"]) / "footage"
    started = time.monotonic()
    meta = {}
    for key in args["keys"]:
        out = subprocess.run(
            ["ffprobe", "-v", "error", "-show_format", "-show_streams", "-of", "json", str(root / key)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        info = json.loads(out)
        v = next(s for s in info["streams"] if s["codec_type"] == "video")
        num, den = (int(x) for x in v["avg_frame_rate"].split("/"))
        meta[key] = [
            float(v.get("duration") or info["format"]["duration"]),
            v["width"],
            v["height"],
            num / den if den else 0.0,
            v["codec_name"],
        ]
    return {"wall_s": time.monotonic() - started, "files": len(args["keys"]), "meta": meta}


def _big(args: dict) -> dict:
    from gopro_assets.domain.footage import probe
    from gopro_assets.domain.footage.probe import probe_object

    # Count, per probe, the telemetry payload bytes (read_span) and the storage requests
    # (the reader's read_calls, i.e. ranged GETs on S3), without changing the probe.
    seen: dict = {}
    init, read_span = probe.CachingReader.__init__, probe.CachingReader.read_span

    def counting_init(self, *a, **kw):
        init(self, *a, **kw)
        seen["reader"], seen["spans"], seen["span_bytes"] = self, 0, 0

    def counting_read_span(self, offset, length):
        seen["spans"] += 1
        seen["span_bytes"] += length
        return read_span(self, offset, length)

    probe.CachingReader.__init__ = counting_init
    probe.CachingReader.read_span = counting_read_span
    out = {}
    for key in args["keys"]:
        seen.clear()
        started = time.monotonic()
        r = probe_object(args["landing"], key)
        tel = r.telemetry
        out[key] = {
            "telemetry_payloads_read": seen.get("spans", 0),
            "telemetry_payload_bytes": seen.get("span_bytes", 0),
            "read_calls": seen["reader"].read_calls if "reader" in seen else None,
            "telemetry": None
            if tel is None
            else {"telemetry": tel.telemetry, "has_gps": tel.has_gps, "warning": tel.telemetry_warning},
            "ok": r.ok,
            "reason": r.reason,
            "bytes_read": r.bytes_read,
            "size": r.size_bytes,
            "seconds": time.monotonic() - started,
            "duration_s": r.duration_s,
        }
    return out


def _big_on_s3(workdir: Path, landing: Path, keys: list[str]) -> dict:
    """The big files' bytes read through S3: SeaweedFS ``weed mini`` on loopback (the
    tests' server, gopro_tools/s3_server.py), each probe a series of ranged GETs."""
    try:
        from gopro_tools.s3_server import SeaweedS3, weed_binary

        weed_binary()
    except Exception as exc:  # noqa: BLE001 - the figure is reported as not measured, with why
        return {"skipped": f"{type(exc).__name__}: {exc}"}
    server = SeaweedS3(workdir / "seaweedfs", buckets=["bench"])
    server.start()
    try:
        local = workdir / "s3-upload"
        for key in keys:
            (local / "footage" / key).parent.mkdir(parents=True, exist_ok=True)
            (local / "footage" / key).hardlink_to(landing / "footage" / key)
        root = f"s3://{server.bucket}/landing"
        server.upload_tree(local, root)
        log(f"probe: {len(keys)} long clips uploaded to {root}")
        results = run_worker(
            "benchmarks.probe_bench", {"task": "big", "landing": root, "keys": keys}, env=server.env(), log=log
        )
        return {"results": {k: v for k, v in results.items() if k in keys}}
    finally:
        server.stop()


# -- the benchmark --------------------------------------------------------------------------------


def _same(a: list, b: list) -> bool:
    return abs(a[0] - b[0]) < 0.05 and a[1] == b[1] and a[2] == b[2] and abs(a[3] - b[3]) < 0.01 and a[4] == b[4]


def run(scale: Scale, workdir: Path) -> tuple[list[Figure], dict]:
    landing = workdir / "landing"
    log(f"probe: encoding {scale.probe_small_files} small clips and 4 long ones")
    footage = make_footage(landing, scale)
    keys = footage["small"] + [b["key"] for b in footage["big"]]
    log(
        f"probe: footage written in {footage['seconds']:.0f}s "
        f"({footage['small_bytes'] / MB:.0f} MB small, {sum(b['size'] for b in footage['big']) / MB:.0f} MB long)"
    )
    common = {"landing": str(landing), "keys": keys}
    run_worker("benchmarks.probe_bench", {"task": "probe_many", **common})  # warm-up: page cache, imports
    many = run_worker("benchmarks.probe_bench", {"task": "probe_many", **common}, log=log)
    bare = run_worker("benchmarks.probe_bench", {"task": "bare", **common}, log=log)
    ff_keys = footage["small"][: max(0, scale.ffprobe_files - len(footage["big"]))] + [b["key"] for b in footage["big"]]
    ff = run_worker("benchmarks.probe_bench", {"task": "ffprobe", "landing": str(landing), "keys": ff_keys}, log=log)
    tel_keys = footage["small_telemetry"]
    tel_common = {"landing": str(landing), "keys": tel_keys}
    tel_many = run_worker("benchmarks.probe_bench", {"task": "probe_many", **tel_common}, log=log)
    tel_bare = run_worker("benchmarks.probe_bench", {"task": "bare", **tel_common}, log=log)
    tel_cpu = run_worker("benchmarks.probe_bench", {"task": "in_process", **tel_common}, log=log)
    sized = footage["big"] + footage["worst"] + footage["telemetry"]
    big = run_worker(
        "benchmarks.probe_bench", {"task": "big", "landing": str(landing), "keys": [b["key"] for b in sized]}, log=log
    )
    on_s3 = _big_on_s3(workdir, landing, [b["key"] for b in sized])
    rate = many["files"] / many["wall_s"]
    bare_rate = bare["files"] / bare["wall_s"]
    ff_rate = ff["files"] / ff["wall_s"]
    agree = sum(_same(many["meta"][k], ff["meta"][k]) for k in ff_keys)
    tel_rate = tel_many["files"] / tel_many["wall_s"]
    tel_bare_rate = tel_bare["files"] / tel_bare["wall_s"]
    figures = [
        Figure(
            "probe",
            "probe_many files/s (inventory path)",
            round(rate, 1),
            "files/s",
            "bare PyAV open+headers loop",
            round(bare_rate, 1),
            ">= 0.8x the bare PyAV loop",
            rate >= 0.8 * bare_rate,
            note=f"{rate / bare_rate:.2f}x bare PyAV; {many['files']} files ({len(footage['big'])} long), "
            f"{many['ok']} ok; includes worker start-up and the 1 MiB fingerprint",
        ),
        Figure(
            "probe",
            "probe_many files/s vs ffprobe",
            round(rate, 1),
            "files/s",
            "ffprobe per file",
            round(ff_rate, 1),
            ">= 30x ffprobe",
            rate >= 30 * ff_rate,
            note=f"{rate / ff_rate:.0f}x ffprobe; metadata identical to ffprobe on {agree}/{len(ff_keys)} files",
        ),
        Figure(
            "probe",
            "probe_many files/s, small clips with a telemetry track (R2b read)",
            round(tel_rate, 1),
            "files/s",
            "bare PyAV open+headers loop (no telemetry read)",
            round(tel_bare_rate, 1),
            ">= 0.8x the bare PyAV loop",
            tel_rate >= 0.8 * tel_bare_rate,
            note=f"{tel_rate / tel_bare_rate:.2f}x bare PyAV; {tel_many['files']} files, {tel_many['ok']} ok; "
            "includes worker start-up and the 1 MiB fingerprint",
        ),
        Figure(
            "probe",
            "CPU ms per small clip with telemetry, one process: probe with R2b / without R2b / bare PyAV",
            round(tel_cpu["cpu_s"]["with_telemetry"] * 1000 / tel_cpu["files"], 2),
            "ms",
            "probe without the telemetry read",
            round(tel_cpu["cpu_s"]["without_telemetry"] * 1000 / tel_cpu["files"], 2),
            note=f"bare PyAV {tel_cpu['cpu_s']['bare'] * 1000 / tel_cpu['files']:.2f} ms; CPU time (process_time), "
            "best of 2 passes, so the machine's load does not count",
        ),
    ]
    for where, results in (("", big), ("on S3 (SeaweedFS on loopback), ", on_s3.get("results"))):
        if results is None:
            figures.append(
                Figure(
                    "probe",
                    "bytes read on S3",
                    0,
                    "MiB",
                    target="< 2 MB per file",
                    ok=None,
                    note=f"not measured: {on_s3.get('skipped')}",
                )
            )
            continue
        for b in sized:
            r = results[b["key"]]
            if "gps" in b:  # with a real-sized telemetry track: < 2 MB plus the payloads read
                tel = r.get("telemetry") or {}
                expect_gps = b["gps"] == "fix"
                other = r["bytes_read"] - r["telemetry_payload_bytes"]
                figures.append(
                    Figure(
                        "probe",
                        f"bytes read {where}{b['resolution']}@{b['fps']} {b['seconds']}s + telemetry "
                        f"({b['payloads']} payloads of ~{TELEMETRY_PAYLOAD_BYTES // 1000} kB), "
                        f"{'GPS fix in payload 1' if expect_gps else 'no GPS fix'}, moov at {b['moov']}",
                        round(r["bytes_read"] / MiB, 3),
                        "MiB",
                        "file size",
                        round(b["size"] / MiB, 1),
                        "< 2 MB + the telemetry payloads read",
                        bool(r["ok"] and other < 2 * MB and tel.get("has_gps") is expect_gps and tel.get("telemetry")),
                        note=f"{other / MiB:.3f} MiB header+fingerprint + {r['telemetry_payload_bytes'] / 1000:.1f} kB "
                        f"in {r['telemetry_payloads_read']}/{b['payloads']} payloads "
                        f"(track {sum(b['payload_bytes']) / 1000:.0f} kB); {r['read_calls']} storage reads; "
                        f"{r['seconds'] * 1000:.0f} ms; has_gps={tel.get('has_gps')} ok={r['ok']} {r['reason'] or ''}".strip(),
                        detail={
                            "bytes_read": r["bytes_read"],
                            "telemetry_payload_bytes": r["telemetry_payload_bytes"],
                            "telemetry_payloads_read": r["telemetry_payloads_read"],
                            "read_calls": r["read_calls"],
                            "other_bytes": other,
                        },
                    )
                )
                continue
            figures.append(
                Figure(
                    "probe",
                    f"bytes read {where}{b['resolution']}@{b['fps']} {b['seconds']}s, moov at {b['moov']}",
                    round(r["bytes_read"] / MiB, 3),
                    "MiB",
                    "file size",
                    round(b["size"] / MiB, 1),
                    "< 2 MB per file",
                    r["ok"] and r["bytes_read"] < 2 * MB,
                    note=f"{r['seconds'] * 1000:.0f} ms; ok={r['ok']} {r['reason'] or ''}".strip(),
                )
            )
    details = {
        "footage": {k: v for k, v in footage.items() if k not in ("small", "small_telemetry")},
        "probe_many_s": many["wall_s"],
        "telemetry_small_files": len(tel_keys),
        "telemetry_probe_many_s": tel_many["wall_s"],
        "telemetry_bare_s": tel_bare["wall_s"],
        "telemetry_in_process_cpu_s": tel_cpu["cpu_s"],
        "bare_s": bare["wall_s"],
        "ffprobe_s": ff["wall_s"],
        "ffprobe_files": len(ff_keys),
        "big": big,
        "big_on_s3": on_s3,
        "metadata_agree_with_ffprobe": f"{agree}/{len(ff_keys)}",
        "peak_rss": {"probe_many_parent": many["peak_rss_bytes"], "bare": bare["peak_rss_bytes"]},
    }
    return figures, details


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--worker", required=True)
    args = json.loads(parser.parse_args().worker)
    task = {"probe_many": _probe_many, "bare": _bare_pyav, "in_process": _in_process, "ffprobe": _ffprobe, "big": _big}[
        args["task"]
    ]
    emit(task(args))


if __name__ == "__main__":
    main()
