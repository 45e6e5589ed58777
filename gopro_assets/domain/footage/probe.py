"""Technical metadata (contract R2) and content fingerprints (R4) of landing-zone videos.

Pure logic, no Dagster import. Everything is read from the file itself, never from the
upload row. Two costs matter at footage scale and shape this module:

* **I/O.** Clips are hundreds of MB to 4 GB and may live on S3. The probe reads the
  container and stream headers only (no frame decoding) and the fingerprint reads a
  fixed 1 MiB sample, through one block cache, so a probe costs about 1-2 MB of reads
  whatever the file size and wherever the ``moov`` box sits (see docs/FINGERPRINT.md),
  plus the GoPro telemetry payloads R2b reads (:func:`read_telemetry`: exactly their
  bytes, up to the first GPS fix, the whole ``gpmd`` track for a clip without one).
* **Robustness.** A bad file must become a quarantine row, never an exception or a hung
  run: :func:`probe_object` never raises, and :func:`probe_many` runs each probe in a
  worker process it can kill when a probe outlives its time limit.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import multiprocessing
import multiprocessing.connection
import os
import signal
import time
from collections import deque
from typing import Any

import av
import av.error
import pyarrow.fs as pafs

from gopro_assets.domain.footage.gpmf import GpmfError
from gopro_assets.domain.footage.telemetry import MAX_PAYLOAD_BYTES, NO_TELEMETRY, TelemetrySummary, summarize
from gopro_assets.lake.storage import FileRoot, is_s3

FOOTAGE_PREFIX = "footage/"

# --- probe settings ----------------------------------------------------------------
# ffmpeg's avformat_find_stream_info reads packets until it has "enough" (5 MB /
# 5 s by default). Everything R2 needs comes from the MP4/MOV header, so ask for the
# minimum: it then reads only the first packet in file order.
PROBE_CONTAINER_OPTIONS = {"probesize": "32", "analyzeduration": "0", "enable_drefs": "0"}
# Contract §2: footage is MP4/MOV, so only ffmpeg's mov demuxer may read it. Letting
# ffmpeg guess the format from the bytes lets a hostile upload pick another demuxer: an
# "ffconcat" text opens files relative to the worker's working directory (a read outside
# the landing zone), an SDP text opens network sockets. The mov demuxer's external data
# references (drefs, which name other files) stay off: `enable_drefs=0` above, pinned
# although it is ffmpeg's default. See docs/RELIABILITY.md.
PROBE_FORMAT = "mov"
# Size of PyAV's I/O buffer, i.e. of most reads it makes. Small enough to keep bytes
# read low, large enough that a 500 kB moov box on S3 is a handful of range GETs.
PROBE_BUFFER_SIZE = 64 * 1024
# Granularity of the block cache shared by the fingerprint and the probe.
CACHE_BLOCK = 16 * 1024
# A file is truncated when its size is below this share of the sample bytes its header
# describes (ffmpeg derives each stream's bit rate from the sum of its sample sizes).
TRUNCATION_TOLERANCE = 0.99

# --- fingerprint settings (docs/FINGERPRINT.md) ---------------------------------------
FP_VERSION = "fp1"
FP_HEAD = 256 * 1024
FP_TAIL = 256 * 1024
FP_SAMPLES = 16
FP_SAMPLE = 32 * 1024
FP_SAMPLED_TOTAL = FP_HEAD + FP_TAIL + FP_SAMPLES * FP_SAMPLE  # 1 MiB

DEFAULT_TIMEOUT_S = 20.0
# A worker that cannot even start (import error, no resources) within this many
# seconds means the machine is broken, not the file: probe_many raises then.
WORKER_START_TIMEOUT_S = 120.0

REASON_MISSING = "video file missing"
REASON_EMPTY = "empty file (0 bytes)"
REASON_NO_VIDEO = "no video stream"
REASON_ZERO_DURATION = "zero duration"
REASON_SYMLINK = "symlink leads outside the landing zone"
REASON_BAD_KEY = "object_key leaves footage/"


@dataclasses.dataclass(frozen=True)
class ProbeResult:
    """What R2 needs from one video, or why it could not be had (ok=False)."""

    object_key: str
    ok: bool
    reason: str | None
    duration_s: float | None
    width: int | None
    height: int | None
    fps: float | None
    codec: str | None
    bit_rate: int | None
    size_bytes: int | None
    fingerprint: str | None
    bytes_read: int | None
    # R2b telemetry facts (camera, GPS cell, IMU, drone), read in the same open as the
    # header; None when the probe failed (ok=False) or ran before telemetry was read.
    telemetry: TelemetrySummary | None = None


def _result(object_key: str, ok: bool = False, reason: str | None = None, **fields: Any) -> ProbeResult:
    base: dict[str, Any] = dict.fromkeys(
        ("duration_s", "width", "height", "fps", "codec", "bit_rate", "size_bytes", "fingerprint", "bytes_read")
    )
    base.update(fields)
    return ProbeResult(object_key=object_key, ok=ok, reason=reason, **base)


def timeout_reason(timeout_s: float) -> str:
    return f"probe timed out after {timeout_s:g} s"


# --- I/O ---------------------------------------------------------------------------------


class CachingReader:
    """Seekable read-only view of a file that fetches each block once and counts bytes.

    The fingerprint and ffmpeg read overlapping ranges (the header, the first packet);
    the cache makes the overlap free, and ``bytes_read`` is what really came from
    storage, which is what benchmarks report. Works with any object that has
    ``seek``/``read`` (a pyarrow NativeFile, an ``open(..., "rb")`` file).
    """

    def __init__(self, raw: Any, size: int, block: int = CACHE_BLOCK):
        self._raw = raw
        self._size = size
        self._block = block
        self._blocks: dict[int, bytes] = {}
        self._pos = 0
        self.bytes_read = 0
        self.read_calls = 0
        self._unread: list[tuple[int, int]] = []  # see serve_unread_as_zeros

    @property
    def size(self) -> int:
        return self._size

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = 0) -> int:
        if whence == 0:
            pos = offset
        elif whence == 1:
            pos = self._pos + offset
        elif whence == 2:
            pos = self._size + offset
        else:
            raise ValueError(f"unsupported whence {whence}")
        if pos < 0:
            raise ValueError("negative seek position")
        self._pos = pos
        return pos

    def serve_unread_as_zeros(self, ranges: list[tuple[int, int]]) -> None:
        """From now on, a block lying wholly inside one of the byte ``ranges`` and not read
        yet is served as zeros without touching storage. For the media payload (``mdat``)
        after the fingerprint: the probe needs the headers only, but ffmpeg's
        avformat_find_stream_info always reads the first packet, a keyframe of up to a
        few MB (docs/FINGERPRINT.md)."""
        self._unread = sorted(ranges)

    def _zeros_instead(self, block: int) -> bool:
        start, end = block * self._block, min((block + 1) * self._block, self._size)
        return any(lo <= start and end <= hi for lo, hi in self._unread)

    def _fetch(self, first: int, stop: int) -> None:
        """Read blocks [first, stop) from storage in one request."""
        start = first * self._block
        end = min(stop * self._block, self._size)
        self._raw.seek(start)
        chunks = []
        got = 0
        while got < end - start:
            chunk = self._raw.read(end - start - got)
            if not chunk:
                break
            chunks.append(bytes(chunk))
            got += len(chunk)
        self.read_calls += 1
        self.bytes_read += got
        data = b"".join(chunks)
        if got < end - start:  # the file shrank under us: treat the new end as EOF
            self._size = start + got
        for i in range(first, stop):
            piece = data[(i - first) * self._block : (i - first + 1) * self._block]
            if piece:
                self._blocks[i] = piece

    def read(self, n: int | None = -1) -> bytes:
        if n is None or n < 0:
            n = self._size - self._pos
        end = min(self._pos + n, self._size)
        if end <= self._pos:
            return b""
        first, last = self._pos // self._block, (end - 1) // self._block
        b = first
        while b <= last:
            if b in self._blocks or self._zeros_instead(b):
                b += 1
                continue
            run = b
            while b <= last and b not in self._blocks and not self._zeros_instead(b):
                b += 1
            self._fetch(run, b)
        end = min(end, self._size)
        if end <= self._pos:
            return b""
        last = (end - 1) // self._block
        data = b"".join(self._blocks.get(i) or self._zero_block(i) for i in range(first, last + 1))
        off = self._pos - first * self._block
        out = data[off : off + (end - self._pos)]
        self._pos += len(out)
        return out

    def _zero_block(self, i: int) -> bytes:
        return bytes(max(0, min(self._block, self._size - i * self._block))) if self._zeros_instead(i) else b""

    def read_span(self, offset: int, length: int) -> bytes:
        """Exactly the bytes [offset, offset + length), never served as zeros: from the
        cache when every block is there, else fetched from storage in one request of
        exactly that range (not rounded to blocks, not cached), counted in ``bytes_read``.
        For the telemetry payloads, a few kB each inside the media payload."""
        if offset < 0 or length < 0 or offset + length > self._size:
            raise ValueError(f"span [{offset}, {offset + length}) outside the file ({self._size} bytes)")
        if length == 0:
            return b""
        first, last = offset // self._block, (offset + length - 1) // self._block
        if all(i in self._blocks for i in range(first, last + 1)):
            data = b"".join(self._blocks[i] for i in range(first, last + 1))
            start = offset - first * self._block
            return data[start : start + length]
        self._raw.seek(offset)
        chunks, got = [], 0
        while got < length:
            chunk = self._raw.read(length - got)
            if not chunk:
                break
            chunks.append(bytes(chunk))
            got += len(chunk)
        self.read_calls += 1
        self.bytes_read += got
        if got < length:
            raise OSError(f"file ended at byte {offset + got}, expected {offset + length} (changed while reading?)")
        return b"".join(chunks)


def media_payload_ranges(reader: Any, size: int, max_boxes: int = 64) -> list[tuple[int, int]]:
    """Byte ranges of the payload of the file's top-level ``mdat`` boxes (headers
    excluded), from the box headers alone (ISO/IEC 14496-12: 32-bit size and type, a
    64-bit size when the size is 1, to the end of the file when 0). Stops at the first
    header that does not parse: ffmpeg then judges the file as it is."""
    out, pos = [], 0
    for _ in range(max_boxes):
        if pos + 8 > size:
            break
        reader.seek(pos)
        head = reader.read(16)
        if len(head) < 8:
            break
        box_size, header = int.from_bytes(head[:4], "big"), 8
        if box_size == 1:
            if len(head) < 16:
                break
            box_size, header = int.from_bytes(head[8:16], "big"), 16
        elif box_size == 0:
            box_size = size - pos
        if box_size < header:
            break
        if head[4:8] == b"mdat":
            out.append((pos + header, min(pos + box_size, size)))
        pos += box_size
    return out


def _file_size(fileobj: Any) -> int:
    size = getattr(fileobj, "size", None)
    if callable(size):
        return int(size())
    if isinstance(size, int):
        return size
    pos = fileobj.tell()
    end = fileobj.seek(0, 2)
    end = fileobj.tell() if end is None else end
    fileobj.seek(pos)
    return int(end)


def _read_exact(fileobj: Any, offset: int, length: int) -> bytes:
    fileobj.seek(offset)
    chunks, got = [], 0
    while got < length:
        chunk = fileobj.read(length - got)
        if not chunk:
            raise OSError(f"file ended at byte {offset + got}, expected {offset + length} (changed while reading?)")
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def fingerprint_ranges(size: int) -> list[tuple[int, int]]:
    """(offset, length) pairs the fingerprint hashes, a function of the size only."""
    if size <= FP_SAMPLED_TOTAL:
        return [(0, size)] if size else []
    span = size - FP_HEAD - FP_TAIL - FP_SAMPLE  # room for sample start offsets
    ranges = [(0, FP_HEAD)]
    ranges += [(FP_HEAD + span * i // (FP_SAMPLES - 1), FP_SAMPLE) for i in range(FP_SAMPLES)]
    ranges.append((size - FP_TAIL, FP_TAIL))
    return ranges


def fingerprint_fileobj(fileobj: Any, size: int) -> str:
    """Content fingerprint (R4): sha256 over the size and 1 MiB of fixed samples.

    Reads the first and last 256 KiB (the ``moov`` box with every sample's size and
    offset, codec headers, the first frames) and 16 evenly spaced 32 KiB samples of the
    payload; files up to 1 MiB are hashed whole. See docs/FINGERPRINT.md.
    """
    h = hashlib.sha256()
    h.update(FP_VERSION.encode() + b"\0")
    h.update(int(size).to_bytes(8, "big"))
    for offset, length in fingerprint_ranges(int(size)):
        h.update(_read_exact(fileobj, offset, length))
    return f"{FP_VERSION}:{h.hexdigest()}"


# --- probe -----------------------------------------------------------------------------


def _error_text(exc: BaseException) -> str:
    text = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    return " ".join(str(text).split())


def _seconds(value: Any, time_base: Any) -> float | None:
    if value is None or time_base is None:
        return None
    seconds = float(value * time_base)
    return seconds if seconds > 0 else None


def _inspect(container: Any, object_key: str, size: int, fingerprint: str) -> ProbeResult:
    """Read R2 fields from an opened container's headers (no decoding)."""
    common = {"size_bytes": size, "fingerprint": fingerprint}
    if not container.streams.video:
        return _result(object_key, reason=REASON_NO_VIDEO, **common)
    stream = container.streams.video[0]
    # The video track's own duration: an audio or telemetry track that runs longer
    # must not make the video billable for seconds it does not have.
    duration = _seconds(stream.duration, stream.time_base)
    if duration is None and container.duration and container.duration > 0:
        duration = container.duration / av.time_base
    ctx = stream.codec_context
    if ctx is None:  # a codec id ffmpeg does not know (e.g. a damaged stsd box): no frame size to read
        return _result(object_key, reason="unreadable video: unknown video codec", **common)
    width = int(stream.width or 0) or None
    height = int(stream.height or 0) or None
    rate = stream.average_rate or stream.guessed_rate or stream.base_rate
    fields = dict(
        duration_s=duration,
        width=width,
        height=height,
        fps=float(rate) if rate else None,
        codec=ctx.name if ctx is not None else None,
        bit_rate=int(stream.bit_rate or container.bit_rate or 0) or None,
        **common,
    )
    if duration is None:
        return _result(object_key, reason=REASON_ZERO_DURATION, **fields)
    if width is None or height is None:
        return _result(object_key, reason="unreadable video: no frame size in the header", **fields)
    # Header-only check for a cut-off upload whose moov sits at the front: the sample
    # tables promise more payload than the file holds.
    promised = 0.0
    for s in container.streams:
        secs = _seconds(getattr(s, "duration", None), getattr(s, "time_base", None))
        rate = getattr(s, "bit_rate", None)  # data (telemetry) streams have none
        if secs and rate:
            promised += rate * secs / 8
    if promised and size < promised * TRUNCATION_TOLERANCE:
        return _result(
            object_key,
            reason=f"truncated file: header describes {int(promised)} bytes of samples, file has {size}",
            **fields,
        )
    return _result(object_key, ok=True, **fields)


def probe_fileobj(fileobj: Any, object_key: str) -> ProbeResult:
    """Probe an open seekable binary file: header-only metadata plus fingerprint.

    Failures of the file itself (unreadable, no video, zero duration, truncated) come
    back as ok=False; storage errors raised by ``fileobj`` propagate as OSError.
    """
    size = _file_size(fileobj)
    if size == 0:
        return _result(object_key, reason=REASON_EMPTY, size_bytes=0, bytes_read=0)
    reader = CachingReader(fileobj, size)
    # Fingerprint first: its head/tail reads warm the cache for ffmpeg's header reads.
    fingerprint = fingerprint_fileobj(reader, size)
    # ffmpeg reads the first packet of the payload (below): serve it as zeros unless
    # cached; the fields read from the headers do not depend on it
    reader.serve_unread_as_zeros(media_payload_ranges(reader, size))
    reader.seek(0)
    common = {"size_bytes": size, "fingerprint": fingerprint}
    try:
        container = av.open(
            reader,
            mode="r",
            format=PROBE_FORMAT,
            container_options=dict(PROBE_CONTAINER_OPTIONS),
            buffer_size=PROBE_BUFFER_SIZE,
        )
    except av.error.FFmpegError as exc:
        return _result(
            object_key, reason=f"unreadable video: {_error_text(exc)}", bytes_read=reader.bytes_read, **common
        )
    except ValueError as exc:  # PyAV raises plain ValueError for some malformed inputs
        return _result(
            object_key, reason=f"unreadable video: {_error_text(exc)}", bytes_read=reader.bytes_read, **common
        )
    try:
        res = _inspect(container, object_key, size, fingerprint)
        if res.ok:
            res = dataclasses.replace(res, telemetry=read_telemetry(container, reader))
    finally:
        container.close()
    return dataclasses.replace(res, bytes_read=reader.bytes_read)


# --- telemetry (R2b) ------------------------------------------------------------------------

TELEMETRY_HANDLER = "GoPro MET"


def _handler_name(stream: Any) -> str:
    """A stream's ``handler_name`` without the leading length byte (a Pascal string in
    GoPro's ``hdlr`` box: ``"\\tGoPro MET"``, ``"\\x0bGoPro MET  "``) and padding spaces."""
    name = str((getattr(stream, "metadata", None) or {}).get("handler_name") or "")
    return name.lstrip("".join(map(chr, range(33)))).strip()


def telemetry_stream(container: Any) -> Any | None:
    """The GPMF track (handler name ``GoPro MET``), or None."""
    return next((s for s in container.streams if _handler_name(s) == TELEMETRY_HANDLER), None)


def _telemetry_payloads(container: Any, stream: Any, reader: CachingReader):
    """The track's payloads in order, each read when asked for (exactly its bytes).

    ffmpeg demuxes this stream only (every other stream is discarded, so their packets
    are skipped without a read); the packets' data come through the reader, which serves
    the media payload as zeros (see ``serve_unread_as_zeros``), so only their position and
    size are taken from ffmpeg and the payload bytes are read with
    :meth:`CachingReader.read_span`: a payload costs its own size, not an I/O buffer."""
    for other in container.streams:
        if other is not stream:
            other.discard = av.stream.Discard.all
    packets = container.demux(stream)
    try:
        while True:
            try:
                packet = next(packets)
            except StopIteration:
                return
            except (av.error.FFmpegError, ValueError) as exc:
                raise GpmfError(f"track unreadable: {_error_text(exc)}") from exc
            size, pos = packet.size, packet.pos
            if not size:
                continue  # the empty packet GoPro writes at the end; PyAV's flush packet
            if size > MAX_PAYLOAD_BYTES:
                raise GpmfError(f"payload of {size} bytes (limit {MAX_PAYLOAD_BYTES})")
            if pos is None or pos < 0 or pos + size > reader.size:
                raise GpmfError(f"payload at byte {pos} ({size} bytes) lies outside the file")
            yield reader.read_span(pos, size)
    finally:
        packets.close()


def read_telemetry(container: Any, reader: CachingReader) -> TelemetrySummary:
    """R2b telemetry of an opened container (its header already read): reads the
    ``gpmd`` payloads in order and stops where R2b's decision is complete (see
    :mod:`gopro_assets.domain.footage.telemetry`). A broken track gives a summary with a
    ``telemetry_warning``, never an exception; storage errors propagate."""
    stream = telemetry_stream(container)
    if stream is None:
        return NO_TELEMETRY
    tags = container.metadata or {}
    payloads = _telemetry_payloads(container, stream, reader)
    try:
        return summarize(payloads, firmware_tag=tags.get("firmware"), creation_time=tags.get("creation_time"))
    except OSError:
        raise  # storage: the probe's own error handling applies, as for the header
    except Exception as exc:  # noqa: BLE001 - R2b: a bad track never quarantines the clip
        return TelemetrySummary(
            telemetry_warning=f"telemetry track cannot be read: {type(exc).__name__}: {_error_text(exc)}"
        )
    finally:
        payloads.close()


@functools.lru_cache(maxsize=8)
def _file_root(landing_root: str) -> FileRoot:
    """One FileRoot (and S3 client) per landing root per process."""
    return FileRoot(landing_root)


def probe_object(landing_root: str, object_key: str) -> ProbeResult:
    """Probe ``footage/<object_key>`` under the landing root. Never raises.

    Checks, in order: the key stays under footage/; a local symlink does not lead out of
    the landing zone (checked before any byte is read); the file exists and is not
    empty; then :func:`probe_fileobj`.
    """
    key = object_key if isinstance(object_key, str) else repr(object_key)
    try:
        if not isinstance(object_key, str) or "\\" in object_key or "\0" in object_key:
            return _result(key, reason=REASON_BAD_KEY)  # same rule as the upload parser
        try:
            rel = FOOTAGE_PREFIX + FileRoot.safe_rel_path(object_key)
        except ValueError:
            return _result(key, reason=REASON_BAD_KEY)
        root = _file_root(landing_root if is_s3(landing_root) else os.path.abspath(landing_root))
        if not root.is_inside(rel):
            return _result(key, reason=REASON_SYMLINK)
        info = root.fs.get_file_info(root.full_path(rel))
        if info.type == pafs.FileType.NotFound:
            return _result(key, reason=REASON_MISSING)
        if info.type == pafs.FileType.Directory:
            return _result(key, reason="not a file (a directory)")
        if info.type == pafs.FileType.File and not info.size:
            return _result(key, reason=REASON_EMPTY, size_bytes=0, bytes_read=0)
        # Other types (a FIFO, a device) are opened like files: a read that never
        # returns is cut by probe_many's per-file time limit.
        with root.open(rel) as f:
            return probe_fileobj(f, key)
    except FileNotFoundError:
        return _result(key, reason=REASON_MISSING)
    except OSError as exc:
        return _result(key, reason=f"storage error: {_error_text(exc)}")
    except Exception as exc:  # noqa: BLE001 - the contract: a bad file never stops the run
        return _result(key, reason=f"probe failed: {type(exc).__name__}: {_error_text(exc)}")


# --- many files: worker processes with a per-file time limit -------------------------------


def _worker_main(conn: multiprocessing.connection.Connection, landing_root: str) -> None:
    """Worker loop: announce readiness, then probe one key per message until None."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    conn.send("ready")
    while True:
        try:
            msg = conn.recv()
        except (EOFError, OSError):
            return
        if msg is None:
            return
        index, key = msg
        conn.send((index, probe_object(landing_root, key)))


class _Worker:
    """One spawned worker process and the keys sent to it, oldest (the one it is
    probing) first. The time limit runs for the oldest key only."""

    def __init__(self, ctx: Any, landing_root: str):
        self.conn, child = ctx.Pipe(duplex=True)
        self.proc = ctx.Process(target=_worker_main, args=(child, landing_root), daemon=True)
        self.proc.start()
        child.close()
        self.started = time.monotonic()
        self.ready = False
        self.tasks: deque[int] = deque()
        self.deadline = float("inf")

    def assign(self, index: int, key: str, timeout_s: float) -> None:
        self.conn.send((index, key))
        self.tasks.append(index)
        if len(self.tasks) == 1:
            self.deadline = time.monotonic() + timeout_s

    def done(self, timeout_s: float) -> int:
        """The oldest key is finished; the worker starts on the next one right away."""
        index = self.tasks.popleft()
        self.deadline = time.monotonic() + timeout_s if self.tasks else float("inf")
        return index

    def kill(self) -> None:
        if self.proc.is_alive():
            self.proc.kill()
        self.proc.join(timeout=5)
        self.conn.close()

    def stop(self) -> None:
        try:
            self.conn.send(None)
        except OSError:
            pass
        self.proc.join(timeout=2)
        self.kill()


def _cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0)) or 1
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


# Keys in flight per worker: the one being probed plus one queued, so a worker never
# waits for the parent between two small files (about 2x throughput on tiny files).
_PIPELINE = 2


def probe_many(
    landing_root: str,
    object_keys: list[str],
    max_workers: int | None = None,
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> list[ProbeResult]:
    """Probe many objects in worker processes; results in input order.

    Design choices:

    * Always worker processes, even for one file: a probe stuck in a read (a stalled
      network mount, a FIFO) or inside ffmpeg cannot be interrupted within a process,
      only killed from outside. A worker costs about 0.2-0.4 s to start, small next to
      a run. (As with any ``spawn`` pool, a script calling this needs an
      ``if __name__ == "__main__":`` guard.)
    * ``spawn`` start method, never ``fork``: deltalake's tokio runtime panics in a
      forked child, and the caller may have it loaded.
    * The time limit counts from the moment a worker starts on the file. A worker whose
      probe passes ``timeout_s`` is killed and replaced; that file gets ok=False
      "probe timed out after N s", a key queued behind it goes back to the queue, and
      the batch goes on. A worker that dies (say, a crash inside ffmpeg) gives ok=False
      "probe crashed (worker exit code N)" the same way.
    * ``max_workers`` defaults to the CPUs this process may use. Probing is CPU-light
      and I/O-bound on S3, where more workers than CPUs can pay off.
    """
    keys = list(object_keys)
    if not keys:
        return []
    n_workers = max(1, min(max_workers or _cpu_count(), len(keys)))
    ctx = multiprocessing.get_context("spawn")
    results: list[ProbeResult | None] = [None] * len(keys)
    remaining = len(keys)
    todo = deque(range(len(keys)))
    workers: list[_Worker] = []
    start_failures = 0

    def finish(index: int, res: ProbeResult) -> None:
        nonlocal remaining
        if results[index] is None:
            remaining -= 1
        results[index] = res

    def retire(w: _Worker, reason_for_current: str | None) -> None:
        """Kill ``w``; its current key gets ``reason_for_current``, queued ones go back."""
        w.kill()
        if w.tasks:
            current = w.tasks.popleft()
            if reason_for_current is not None:
                finish(current, _result(keys[current], reason=reason_for_current))
            todo.extendleft(reversed(w.tasks))
            w.tasks.clear()
        workers.remove(w)

    try:
        for _ in range(n_workers):
            workers.append(_Worker(ctx, landing_root))
        while remaining:
            while todo and len(workers) < n_workers:
                workers.append(_Worker(ctx, landing_root))
            for w in workers:
                while w.ready and todo and len(w.tasks) < _PIPELINE:
                    i = todo.popleft()
                    w.assign(i, keys[i], timeout_s)
            now = time.monotonic()
            deadlines = [w.deadline for w in workers if w.tasks]
            wait_s = max(0.0, min(deadlines) - now) if deadlines else 1.0
            waitables: list[Any] = [w.conn for w in workers] + [w.proc.sentinel for w in workers]
            ready = set(multiprocessing.connection.wait(waitables, timeout=wait_s))
            for w in list(workers):
                if w.conn not in ready and w.proc.sentinel not in ready:
                    continue
                dead = False
                try:
                    while w.conn.poll():  # drain every message already there
                        msg = w.conn.recv()
                        if msg == "ready":
                            w.ready = True
                        else:
                            index, res = msg
                            w.done(timeout_s)
                            finish(index, res)
                except (EOFError, OSError):
                    dead = True
                if dead or not w.proc.is_alive():
                    code = w.proc.exitcode
                    if not w.ready:
                        start_failures += 1
                        if start_failures >= 3:
                            raise RuntimeError(f"probe workers fail to start (exit code {code})")
                    retire(w, f"probe crashed (worker exit code {code})")
            now = time.monotonic()
            for w in list(workers):
                if w.tasks and now >= w.deadline:
                    retire(w, timeout_reason(timeout_s))
                elif not w.ready and now - w.started > WORKER_START_TIMEOUT_S:
                    raise RuntimeError(f"probe worker did not start within {WORKER_START_TIMEOUT_S:g} s")
    finally:
        for w in workers:
            w.stop()
    return [r for r in results if r is not None]
