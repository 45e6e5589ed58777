"""A reader for GPMF, the KLV telemetry format GoPro cameras write (contract R2b).

Pure Python, no Dagster, no I/O: it takes the bytes of one payload (one sample of the
``gpmd`` track, or a whole track's payloads concatenated) and returns the entries. The
format, from GoPro's gpmf-parser documentation and checked on the real payloads in
``../shared/gopro-samples/gpmf/``:

* Every entry (KLV) has an 8-byte header: a 4-character key (``A-Z a-z 0-9`` and space),
  a 1-byte type, a 1-byte structure size and a 2-byte big-endian repeat count, followed by
  ``size * repeat`` bytes of data padded with zeros to a multiple of 4 bytes. All numbers
  are big-endian. A 32-bit zero between entries is padding.
* Type 0 nests more entries: a payload is a list of ``DEVC`` (device) entries, each
  holding ``DVID`` (id), ``DVNM`` (name) and ``STRM`` (stream) entries; a stream holds
  "sticky" properties (``SCAL``, ``TYPE``, ``UNIT``, ``GPSF`` ...) followed by its samples
  (``ACCL``, ``GYRO``, ``GPS5`` ...).
* Types (byte sizes): ``b``/``B`` int8/uint8 (1), ``c`` ASCII text (1), ``s``/``S``
  int16/uint16 (2), ``l``/``L`` int32/uint32 (4), ``f`` float32 (4), ``F`` FourCC (4),
  ``q`` Q15.16 fixed point (4), ``j``/``J`` int64/uint64 (8), ``d`` float64 (8), ``Q``
  Q31.32 fixed point (8), ``U`` UTC date-time ``yymmddhhmmss.sss`` (16), ``G`` 128-bit
  id (16), ``?`` a record described by the stream's ``TYPE`` string (e.g. ``lllllllSS``;
  ``f[8]`` repeats a type), ``#`` compressed (kept opaque here: no GoPro stream this
  project reads uses it).
* A sample's elements are divided by the stream's ``SCAL`` (the last one before the
  samples): one value for every element, or one value per element.

Robustness: the input is untrusted (an upload). Everything that goes wrong in here raises
:class:`GpmfError` with a readable reason, and nothing else: sizes are checked against
the enclosing container before any slice, nesting is bounded by :data:`MAX_DEPTH`, and the
work is linear in the input size (every entry consumes at least 8 bytes), so a hostile
payload can neither hang the reader nor make it allocate more than about its own size.
Reasons name keys and byte offsets, never values (telemetry values include coordinates,
which are personal data: see :mod:`gopro_assets.domain.footage.telemetry`).
"""

from __future__ import annotations

import dataclasses
import math
import struct
from collections.abc import Iterator

# DEVC > STRM > samples is depth 2 in every GoPro payload seen; gpmf-parser allows 16.
MAX_DEPTH = 16

TYPE_SIZES: dict[str, int] = {
    "b": 1,
    "B": 1,
    "c": 1,
    "s": 2,
    "S": 2,
    "l": 4,
    "L": 4,
    "f": 4,
    "F": 4,
    "q": 4,
    "j": 8,
    "J": 8,
    "d": 8,
    "Q": 8,
    "U": 16,
    "G": 16,
}
NUMERIC_FORMATS: dict[str, str] = {
    "b": "b",
    "B": "B",
    "s": "h",
    "S": "H",
    "l": "i",
    "L": "I",
    "f": "f",
    "q": "i",  # then / 2**16
    "j": "q",
    "J": "Q",
    "d": "d",
    "Q": "q",  # then / 2**32
}
NEST = "\0"
COMPLEX = "?"
COMPRESSED = "#"
_KEY_CHARS = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789 ")
# A TYPE string longer than this is not a GoPro record (gpmf-parser's limit is 64).
MAX_TYPE_ELEMENTS = 64


class GpmfError(ValueError):
    """The bytes are not well-formed GPMF (or not the GPMF this reader understands)."""


@dataclasses.dataclass(frozen=True, slots=True)
class Klv:
    """One GPMF entry. ``data`` is the unpadded payload (empty for a nested entry, whose
    entries are in ``children``); ``offset`` is the header's byte offset in the input."""

    key: str
    type: str
    struct_size: int
    repeat: int
    data: bytes
    offset: int
    children: tuple[Klv, ...] = ()

    @property
    def nested(self) -> bool:
        return self.type == NEST

    def text(self) -> str:
        """A ``c`` (or ``U``) entry as one string, NULs and surrounding spaces removed.
        Latin-1, because GoPro writes e.g. ``m/s²`` with the single byte 0xB2."""
        if self.type not in ("c", "U"):
            raise GpmfError(f"{self.key!r} at byte {self.offset}: type {self.type!r} is not text")
        return self.data.replace(b"\0", b"").decode("latin-1").strip()

    def strings(self) -> list[str]:
        """A ``c`` entry as one string per sample (e.g. ``UNIT`` with structure size 3)."""
        if self.type not in ("c", "U"):
            raise GpmfError(f"{self.key!r} at byte {self.offset}: type {self.type!r} is not text")
        n = self.struct_size
        return [self.data[i : i + n].split(b"\0", 1)[0].decode("latin-1").strip() for i in range(0, len(self.data), n)]


def parse(payload: bytes | bytearray | memoryview, max_depth: int = MAX_DEPTH) -> tuple[Klv, ...]:
    """The top-level entries of a payload (or of concatenated payloads): ``DEVC`` only.

    Raises :class:`GpmfError` on anything malformed: a header cut short, a key that is
    not four key characters, a structure size of 0, data that overruns its container, a
    nested entry deeper than ``max_depth``, a top-level entry other than a ``DEVC``.
    Trailing zero padding is allowed. An empty input holds no entry.
    """
    buf = bytes(payload)
    top = _walk(buf, 0, len(buf), 0, max_depth)
    for klv in top:
        if klv.key != "DEVC" or not klv.nested:
            raise GpmfError(f"top level holds {klv.key!r} at byte {klv.offset}, expected nested DEVC entries")
    return top


_HEADER = struct.Struct(">4sBBH")
_KEY_BYTES = bytes(sorted(_KEY_CHARS))


def _walk(buf: bytes, start: int, end: int, depth: int, max_depth: int) -> tuple[Klv, ...]:
    # The hot loop of the reader (a HERO8 payload has ~110 entries): one struct call per
    # header, the key checked by bytes.translate (C), no per-byte Python work.
    out: list[Klv] = []
    append, unpack = out.append, _HEADER.unpack_from
    pos = start
    while pos < end:
        if end - pos < 8:
            if not any(buf[pos:end]):
                break  # trailing zero padding
            raise GpmfError(f"truncated entry header at byte {pos} ({end - pos} bytes left in its container)")
        raw_key, type_byte, struct_size, repeat = unpack(buf, pos)
        if raw_key == b"\0\0\0\0":  # padding between entries
            pos += 4
            continue
        if raw_key.translate(None, _KEY_BYTES):
            raise GpmfError(f"invalid key {raw_key!r} at byte {pos}")
        key = raw_key.decode("latin-1")
        if depth == 0 and (key != "DEVC" or type_byte != 0):
            raise GpmfError(f"top level holds {key!r} at byte {pos}, expected nested DEVC entries")
        if struct_size == 0:
            raise GpmfError(f"{key!r} at byte {pos}: structure size 0")
        size = struct_size * repeat
        data_start = pos + 8
        if data_start + size > end:
            raise GpmfError(
                f"{key!r} at byte {pos}: {size} bytes of data overrun its container ({end - data_start} bytes left)"
            )
        if type_byte == 0:
            if depth + 1 >= max_depth:
                raise GpmfError(f"{key!r} at byte {pos}: nested deeper than {max_depth} levels")
            append(
                Klv(
                    key,
                    NEST,
                    struct_size,
                    repeat,
                    b"",
                    pos,
                    _walk(buf, data_start, data_start + size, depth + 1, max_depth),
                )
            )
        else:
            append(Klv(key, chr(type_byte), struct_size, repeat, buf[data_start : data_start + size], pos))
        pos = data_start + ((size + 3) & ~3)
    return tuple(out)


def iter_entries(entries: tuple[Klv, ...], depth: int = 0) -> Iterator[tuple[int, Klv]]:
    """Every entry, depth first in file order, with its nesting depth (0 = top level)."""
    for klv in entries:
        yield depth, klv
        if klv.nested:
            yield from iter_entries(klv.children, depth + 1)


# --- values ---------------------------------------------------------------------------------


def expand_type(type_string: str) -> str:
    """A ``TYPE`` string with ``x[n]`` repeats expanded (``f[3]L`` -> ``fffL``), NULs
    dropped; every letter must be a fixed-size type."""
    out: list[str] = []
    i, n = 0, len(type_string)
    while i < n:
        ch = type_string[i]
        if ch == "\0":
            i += 1
            continue
        if ch == "[":
            close = type_string.find("]", i)
            digits = type_string[i + 1 : close] if close > 0 else ""
            if not out or not digits.isdigit():
                raise GpmfError(f"TYPE {type_string!r}: bad repeat at character {i}")
            count = int(digits)
            if count < 1 or len(out) + count - 1 > MAX_TYPE_ELEMENTS:
                raise GpmfError(f"TYPE {type_string!r}: repeat {count} out of range")
            out.extend(out[-1] * (count - 1))
            i = close + 1
            continue
        if ch not in TYPE_SIZES:
            raise GpmfError(f"TYPE {type_string!r}: unknown element type {ch!r}")
        out.append(ch)
        if len(out) > MAX_TYPE_ELEMENTS:
            raise GpmfError(f"TYPE {type_string!r}: more than {MAX_TYPE_ELEMENTS} elements")
        i += 1
    if not out:
        raise GpmfError("empty TYPE")
    return "".join(out)


def element_types(klv: Klv, type_string: str | None = None) -> str:
    """The element types of one sample of ``klv`` (``sss`` for a 3-axis ``ACCL``)."""
    if klv.nested:
        raise GpmfError(f"{klv.key!r} at byte {klv.offset}: a nested entry has no values")
    if klv.type == COMPLEX:
        if type_string is None:
            raise GpmfError(f"{klv.key!r} at byte {klv.offset}: '?' record without a TYPE in its stream")
        types = expand_type(type_string)
        width = sum(TYPE_SIZES[t] for t in types)
        if width != klv.struct_size:
            raise GpmfError(
                f"{klv.key!r} at byte {klv.offset}: TYPE {types!r} is {width} bytes, samples are {klv.struct_size}"
            )
        return types
    size = TYPE_SIZES.get(klv.type)
    if size is None:
        raise GpmfError(f"{klv.key!r} at byte {klv.offset}: unsupported type {klv.type!r}")
    if klv.type == "c":
        return "c"  # text: one string per sample
    if klv.struct_size % size:
        raise GpmfError(
            f"{klv.key!r} at byte {klv.offset}: structure size {klv.struct_size} is not a multiple of {size}"
        )
    return klv.type * (klv.struct_size // size)


def _element(t: str, raw: bytes) -> object:
    fmt = NUMERIC_FORMATS.get(t)
    if fmt is not None:
        value = struct.unpack(">" + fmt, raw)[0]
        if t == "q":
            return value / 65536.0
        if t == "Q":
            return value / 4294967296.0
        return value
    if t in ("F", "U", "c"):
        return raw.decode("latin-1")
    return raw.hex()  # G


def values(klv: Klv, type_string: str | None = None) -> list[tuple]:
    """The samples of an entry, unscaled: one tuple of elements per repeat. Text (``c``)
    is one string per sample, or a single string when the structure size is 1 (how GoPro
    writes names: ``DVNM`` type ``c`` size 1 repeat 6 is "Camera"); FourCCs are
    4-character strings, GUIDs hex."""
    types = element_types(klv, type_string)
    if types == "c":
        return [(klv.text(),)] if klv.struct_size == 1 else [(s,) for s in klv.strings()]
    if len(set(types)) == 1 and types[0] in NUMERIC_FORMATS and types[0] not in "qQ":
        # One struct call for the whole entry (ACCL/GYRO hold hundreds of samples).
        count = len(types)
        flat = struct.unpack(f">{count * klv.repeat}{NUMERIC_FORMATS[types[0]]}", klv.data)
        return [flat[i : i + count] for i in range(0, len(flat), count)]
    out = []
    pos = 0
    for _ in range(klv.repeat):
        sample = []
        for t in types:
            size = TYPE_SIZES[t]
            sample.append(_element(t, klv.data[pos : pos + size]))
            pos += size
        out.append(tuple(sample))
    return out


@dataclasses.dataclass(frozen=True)
class Stream:
    """One ``STRM``: its entries in file order (properties, then samples)."""

    entries: tuple[Klv, ...]

    @property
    def keys(self) -> list[str]:
        return [e.key for e in self.entries]

    def find(self, key: str) -> Klv | None:
        """The first entry with ``key``."""
        return next((e for e in self.entries if e.key == key), None)

    def _before(self, klv: Klv, key: str) -> Klv | None:
        """The last ``key`` entry before ``klv`` (how gpmf-parser finds SCAL and TYPE)."""
        found = None
        for e in self.entries:
            if e is klv:
                return found
            if e.key == key:
                found = e
        return found

    def type_string(self, klv: Klv) -> str | None:
        t = self._before(klv, "TYPE")
        return None if t is None else t.text()

    def raw(self, key: str) -> list[tuple]:
        """Unscaled samples of the first ``key`` entry ([] without one)."""
        klv = self.find(key)
        if klv is None:
            return []
        return values(klv, self.type_string(klv) if klv.type == COMPLEX else None)

    def scaled(self, key: str) -> list[tuple]:
        """Samples of the first ``key`` entry divided by the stream's ``SCAL`` (numbers
        become floats; text elements stay as they are). No ``SCAL`` means 1."""
        klv = self.find(key)
        if klv is None:
            return []
        types = element_types(klv, self.type_string(klv) if klv.type == COMPLEX else None)
        samples = values(klv, self.type_string(klv) if klv.type == COMPLEX else None)
        scal = self._before(klv, "SCAL")
        divisors = [1.0] * len(types)
        if scal is not None:
            flat = [x for sample in values(scal) for x in sample]
            if not flat or not all(isinstance(x, int | float) for x in flat):
                raise GpmfError(f"SCAL at byte {scal.offset}: not numeric")
            if len(flat) == 1:
                divisors = [float(flat[0])] * len(types)
            elif len(flat) == len(types):
                divisors = [float(x) for x in flat]
            else:
                raise GpmfError(f"SCAL at byte {scal.offset}: {len(flat)} values for {klv.key}'s {len(types)} elements")
            if any(d == 0 or not math.isfinite(d) for d in divisors):
                raise GpmfError(f"SCAL at byte {scal.offset}: a divisor is zero or not finite")
        numeric = [t in NUMERIC_FORMATS for t in types]
        return [
            tuple(x / d if num else x for x, d, num in zip(sample, divisors, numeric, strict=False))
            for sample in samples
        ]


@dataclasses.dataclass(frozen=True)
class Device:
    """One ``DEVC``: id, name, its own entries and its streams."""

    device_id: int | str | None
    name: str | None
    entries: tuple[Klv, ...]
    streams: tuple[Stream, ...]

    def stream_with(self, key: str) -> Stream | None:
        return next((s for s in self.streams if s.find(key) is not None), None)


def devices(payload: bytes | bytearray | memoryview | tuple[Klv, ...]) -> list[Device]:
    """The devices of a payload (bytes, or the result of :func:`parse`)."""
    top = payload if isinstance(payload, tuple) else parse(payload)
    out = []
    for devc in top:
        device_id: int | str | None = None
        name = None
        streams = []
        for e in devc.children:
            if e.key == "DVID" and device_id is None and not e.nested and e.repeat >= 1:
                first = values(e)[0][0]
                device_id = first if isinstance(first, int | str) else None
            elif e.key == "DVNM" and name is None and not e.nested:
                name = e.text()
            elif e.key == "STRM" and e.nested:
                streams.append(Stream(e.children))
        out.append(Device(device_id, name, devc.children, tuple(streams)))
    return out


# --- GPS ------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class GpsSample:
    """One GPS sample. ``fix``: 0 none, 2 2D, 3 3D (``GPSF`` for ``GPS5``, the ninth
    element of ``GPS9``); None when a ``GPS5`` stream has no ``GPSF``. Coordinates are
    personal data: never log or store these, only a coarse cell (R2b)."""

    lat: float
    lon: float
    alt: float
    speed_2d: float
    speed_3d: float
    fix: int | None
    days_since_2000: float | None = None
    seconds_since_midnight: float | None = None
    dop: float | None = None

    @property
    def fixed(self) -> bool:
        """A fix of 2 or more with coordinates on the globe."""
        return (
            self.fix is not None
            and self.fix >= 2
            and math.isfinite(self.lat)
            and math.isfinite(self.lon)
            and -90.0 <= self.lat <= 90.0
            and -180.0 <= self.lon <= 180.0
        )


def gps_samples(stream: Stream, fixed_only: bool = False) -> list[GpsSample]:
    """The ``GPS9`` samples of a stream if it has them, else its ``GPS5`` samples with
    the stream's ``GPSF`` fix ([] for a stream without GPS). ``fixed_only``: only the
    samples that are :attr:`GpsSample.fixed` (a ``GPS5`` stream without a fix is then
    not decoded at all)."""
    if stream.find("GPS9") is not None:
        out = []
        for s in stream.scaled("GPS9"):
            if len(s) < 9:
                raise GpmfError(f"GPS9 samples have {len(s)} elements, expected 9")
            fix = s[8]
            out.append(
                GpsSample(s[0], s[1], s[2], s[3], s[4], int(fix) if math.isfinite(fix) else None, s[5], s[6], s[7])
            )
        return [g for g in out if g.fixed] if fixed_only else out
    if stream.find("GPS5") is None:
        return []
    fix = None
    gpsf = stream.find("GPSF")
    if gpsf is not None and gpsf.repeat >= 1:
        first = values(gpsf)[0][0]
        fix = int(first) if isinstance(first, int | float) and math.isfinite(first) else None
    if fixed_only and (fix is None or fix < 2):
        return []
    dop = None
    gpsp = stream.find("GPSP")
    if gpsp is not None and gpsp.repeat >= 1:
        first = values(gpsp)[0][0]
        dop = first / 100.0 if isinstance(first, int | float) else None
    out = []
    for s in stream.scaled("GPS5"):
        if len(s) < 5:
            raise GpmfError(f"GPS5 samples have {len(s)} elements, expected 5")
        out.append(GpsSample(s[0], s[1], s[2], s[3], s[4], fix, dop=dop))
    return [g for g in out if g.fixed] if fixed_only else out
