"""The telemetry facts of one clip (contract R2b) from its GPMF payloads and container tags.

Pure logic, no Dagster, no I/O: :func:`summarize` takes the payloads of the ``gpmd`` track
as an iterable, in track order, and pulls from it only until the R2b decision is complete,
so a caller that reads each payload lazily (the probe: :func:`gopro_assets.domain.footage.
probe.probe_fileobj`) reads no further than R2b says:

* the first payload gives ``has_imu`` (its ``ACCL`` and ``GYRO`` both hold samples),
  ``is_drone`` (a device whose ``DVNM`` contains ``Karma``) and the ``DVNM`` of device 1;
* the first payload holding a fixed GPS sample (``GPS5`` with ``GPSF`` >= 2, or ``GPS9``
  with fix >= 2) gives ``has_gps`` and ``location_cell`` (the precision-5 geohash of the
  median latitude and the median longitude of that payload's fixed samples), and reading
  stops there; a clip without a fix is read to the end of its track.

Choices where the contract is silent (say so in docs/TELEMETRY.md when it is written):

* ``telemetry`` is false when the file has no track, when its track holds no non-empty
  payload (an empty packet is not a payload), and when the track cannot be parsed. Whenever
  ``telemetry`` is false every other field is null/false (``telemetry_warning`` apart), so
  ``firmware`` and ``recorded_at`` are read from the container only for clips with
  telemetry ("a file without the track gets nulls/false").
* ``firmware``: the container tag ``firmware``, else the first GPMF ``FIRM``/``FMWR``.
* ``recorded_at``: the container's ``creation_time`` exactly as written (GoPro writes the
  camera's local time labelled UTC; it is not converted).
* A GPS sample counts as fixed only with coordinates on the globe (|lat| <= 90,
  |lon| <= 180, finite); other samples of a fixed payload are ignored.
* ``telemetry_warning`` is set when the track exists but cannot be parsed; the reason says
  which payload and what was wrong, never a value (values include coordinates).

Exact coordinates never leave this module: they are reduced to ``location_cell`` in
:meth:`_Accumulator.add`, and no field, message or log line holds one.
"""

from __future__ import annotations

import dataclasses
import statistics
from collections.abc import Iterable
from typing import Any

from gopro_assets.domain.footage import geohash
from gopro_assets.domain.footage.gpmf import GpmfError, devices, gps_samples, iter_entries, parse

# Contract R2b: firmware prefix -> camera model.
FIRMWARE_MODELS: dict[str, str] = {
    "HD5": "HERO5 Black",
    "HD6": "HERO6 Black",
    "HD7": "HERO7 Black",
    "HD8": "HERO8 Black",
    "HD9": "HERO9 Black",
    "H21": "HERO10 Black",
    "H22": "HERO11 Black",
    "H23": "HERO12 Black",
    "H24": "HERO13 Black",
    "H19": "MAX",
    "FS1": "Fusion",
}
LOCATION_PRECISION = 5
DRONE_MARKER = "Karma"
# A GoPro payload is one second of telemetry, a few kB to a few tens of kB (HERO8: ~6 kB).
# Anything far larger is not a GoPro payload: refused before it is read.
MAX_PAYLOAD_BYTES = 4 * 1024 * 1024
# One payload per second: 10 hours of video. A track declaring more is refused (a
# hostile sample table could otherwise make the probe read for ever).
MAX_PAYLOADS = 36_000

TELEMETRY_COLUMNS = (
    "telemetry",
    "camera_model",
    "firmware",
    "recorded_at",
    "has_gps",
    "has_imu",
    "is_drone",
    "location_cell",
    "telemetry_warning",
)


@dataclasses.dataclass(frozen=True)
class TelemetrySummary:
    """R2b's per-clip telemetry columns, plus how many payloads were read to get them."""

    telemetry: bool = False
    camera_model: str | None = None
    firmware: str | None = None
    recorded_at: str | None = None
    has_gps: bool = False
    has_imu: bool = False
    is_drone: bool = False
    location_cell: str | None = None
    telemetry_warning: str | None = None
    payloads_read: int = 0

    def columns(self) -> dict[str, Any]:
        """The R2b columns (what the inventory stores), without ``payloads_read``."""
        return {name: getattr(self, name) for name in TELEMETRY_COLUMNS}


NO_TELEMETRY = TelemetrySummary()


def camera_model_from_firmware(firmware: str | None) -> str | None:
    """R2b's model for a firmware string by its 3-character prefix (None if unknown)."""
    if not firmware:
        return None
    return FIRMWARE_MODELS.get(firmware.strip()[:3].upper())


def _gpmf_firmware(top: tuple) -> str | None:
    for _, klv in iter_entries(top):
        if klv.key in ("FIRM", "FMWR") and klv.type == "c":
            text = klv.text()
            if text:
                return text
    return None


class _Accumulator:
    """R2b facts gathered payload by payload; ``add`` says when the decision is complete."""

    def __init__(self) -> None:
        self.payloads = 0
        self.device1_name: str | None = None
        self.gpmf_firmware: str | None = None
        self.has_imu = False
        self.is_drone = False
        self.location_cell: str | None = None

    def add(self, payload: bytes) -> bool:
        """Read one payload; True when nothing later can change the result."""
        top = parse(payload)
        if not top:
            return False  # zero padding only: not a payload
        self.payloads += 1
        devs = devices(top)
        if self.payloads == 1:
            dev1 = next((d for d in devs if d.device_id == 1), devs[0])
            self.device1_name = dev1.name
            self.is_drone = any(d.name and DRONE_MARKER in d.name for d in devs)
            samples = {"ACCL": 0, "GYRO": 0}
            for d in devs:
                for s in d.streams:
                    for e in s.entries:
                        if e.key in samples and not e.nested:
                            samples[e.key] += e.repeat
            self.has_imu = all(samples.values())
            self.gpmf_firmware = _gpmf_firmware(top)  # a camera writes it in every payload or none
        lats: list[float] = []
        lons: list[float] = []
        for d in devs:
            for s in d.streams:
                for g in gps_samples(s, fixed_only=True):
                    lats.append(g.lat)
                    lons.append(g.lon)
        if lats:
            self.location_cell = geohash.encode(statistics.median(lats), statistics.median(lons), LOCATION_PRECISION)
            return True
        return False


def summarize(
    payloads: Iterable[bytes],
    firmware_tag: str | None = None,
    creation_time: str | None = None,
) -> TelemetrySummary:
    """R2b's telemetry facts of a clip whose track yields ``payloads`` (in track order).

    Pulls payloads only until the decision is complete (see the module docstring).
    Never raises for bad telemetry: a :class:`GpmfError` raised while reading or parsing
    a payload (the iterable may raise it too, e.g. for a payload too large to read) gives
    ``telemetry = False`` with the reason in ``telemetry_warning``. Other exceptions from
    the iterable (a storage error) propagate.
    """
    acc = _Accumulator()
    index = 0
    try:
        for index, payload in enumerate(payloads, start=1):
            if index > MAX_PAYLOADS:
                raise GpmfError(f"track holds more than {MAX_PAYLOADS} payloads")
            if len(payload) > MAX_PAYLOAD_BYTES:
                raise GpmfError(f"payload of {len(payload)} bytes (limit {MAX_PAYLOAD_BYTES})")
            if acc.add(payload):
                break
    except GpmfError as exc:
        where = f"payload {index}: " if index else ""
        return TelemetrySummary(
            telemetry_warning=f"telemetry track cannot be parsed: {where}{exc}", payloads_read=acc.payloads
        )
    if acc.payloads == 0:
        return TelemetrySummary(payloads_read=0)
    firmware = (firmware_tag or "").strip() or acc.gpmf_firmware
    return TelemetrySummary(
        telemetry=True,
        camera_model=camera_model_from_firmware(firmware) or acc.device1_name or None,
        firmware=firmware or None,
        recorded_at=creation_time or None,
        has_gps=acc.location_cell is not None,
        has_imu=acc.has_imu,
        is_drone=acc.is_drone,
        location_cell=acc.location_cell,
        payloads_read=acc.payloads,
    )
