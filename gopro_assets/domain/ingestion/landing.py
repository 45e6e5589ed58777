"""Parsing and validation of landing-zone files into valid rows and quarantine rows.

Contract §2 (landing zone) and §3 (bad input). Pure logic, no Dagster imports: every
function takes a file's relative path and its bytes and returns plain Python rows that
:func:`to_arrow` turns into Arrow tables with the schemas below. Each table's columns are
declared once, in ``domain/ingestion/tables.py``: the field lists the parsers follow and
the schemas here derive from those declarations.

Nothing is lost: every non-blank line of a CSV (after its header) or JSONL file becomes
exactly one valid row or one quarantine entry, unless the whole file is rejected, in which
case it becomes exactly one quarantine entry with ``position == 0``. Parsers never raise
on bad input. The choices made where the contract is silent are in ``docs/LANDING_RULES.md``.
"""

from __future__ import annotations

import csv
import json
import math
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa

from gopro_assets.domain.finance.money import revenue_month
from gopro_assets.domain.ingestion import tables as decl
from gopro_assets.domain.ingestion.tables import TIERS
from gopro_assets.domain.tables import Column, Table, id_problem

__all__ = [
    "BATCH_SCHEMA",
    "DEAL_KIND",
    "DEAL_SCHEMA",
    "LANDING_KINDS",
    "QUARANTINE_SCHEMA",
    "DealParse",
    "LandingKind",
    "ParseResult",
    "dedup",
    "kind_for_path",
    "parse_buyer_payments",
    "parse_clip_exclusions",
    "parse_consent_events",
    "parse_deal",
    "parse_payouts",
    "parse_subscribers",
    "parse_timestamp",
    "parse_uploads",
    "to_arrow",
]

RAW_FILE_LIMIT = 2000  # characters of a whole rejected file kept in quarantine.raw
_SHOW_LIMIT = 80  # characters of an offending value quoted in a reason
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


# --------------------------------------------------------------------------- results


@dataclass
class ParseResult:
    """Valid rows (contract fields + ``_source_path``/``_source_line``) and quarantine rows."""

    rows: list[dict] = field(default_factory=list)
    quarantine: list[dict] = field(default_factory=list)


@dataclass
class DealParse:
    """A deal file: the deal row and its batch rows, or ``deal=None`` and one quarantine row."""

    deal: dict | None = None
    batches: list[dict] = field(default_factory=list)
    quarantine: list[dict] = field(default_factory=list)


def _q(source: str, position: int, raw: str, reason: str) -> dict:
    return {"source": source, "position": position, "raw": raw, "reason": reason}


def _file_raw(text: str) -> str:
    if len(text) <= RAW_FILE_LIMIT:
        return text
    return text[:RAW_FILE_LIMIT] + f"\n... [truncated: the file has {len(text)} characters]"


def _clip(text: str) -> str:
    return text if len(text) <= _SHOW_LIMIT else text[: _SHOW_LIMIT - 3] + "..."


def _show(value: Any) -> str:
    """A value quoted for a reason: repr (escapes control chars and lone surrogates), short."""
    return _clip(repr(value))


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def _describe(value: Any) -> str:
    """'string '12'' / 'number 42' / 'null' for wrong-type messages."""
    kind = _json_type(value)
    if value is None:
        return kind
    if isinstance(value, (list, dict)):
        try:
            return f"{kind} {_clip(json.dumps(value, ensure_ascii=True))}"
        except (RecursionError, ValueError):
            return kind
    return f"{kind} {_show(value)}"


# --------------------------------------------------------------------------- timestamps


def parse_timestamp(value: str) -> datetime:
    """ISO-8601 with an offset or ``Z`` -> aware UTC datetime (microseconds).

    Raises ``ValueError`` with a readable message when the value is not a string, not
    ISO-8601, has no UTC offset (contract §2: naive timestamps are bad input), or falls
    outside the representable range once converted to UTC. Digits beyond microseconds
    are truncated (the lake stores microseconds).
    """
    if not isinstance(value, str):
        raise ValueError(f"timestamp must be a string, got {_describe(value)}")
    text = value.strip()
    if not text:
        raise ValueError("timestamp is empty")
    if not text.isascii():
        raise ValueError(f"timestamp {_show(value)} is not ISO-8601")
    try:
        dt = datetime.fromisoformat(text)
    except ValueError as exc:
        raise ValueError(f"timestamp {_show(value)} is not ISO-8601 ({exc})") from None
    if dt.tzinfo is None or dt.utcoffset() is None:
        raise ValueError(f"timestamp {_show(value)} has no UTC offset")
    try:
        return dt.astimezone(UTC)
    except (OverflowError, ValueError):
        raise ValueError(f"timestamp {_show(value)} is out of range in UTC") from None


# --------------------------------------------------------------------------- field converters
#
# Each converter takes the raw value (a str for CSV, any JSON value for JSONL) and returns
# the typed value or raises _FieldError with a message that does not name the field (the
# caller prefixes "field 'x' ...").


class _FieldError(ValueError):
    pass


class _BareError(_FieldError):
    """A message that reads well without the "field 'x'" prefix."""


def _valid_str(value: str) -> str:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise _FieldError(f"{_show(value)} contains an unpaired UTF-16 surrogate") from None
    return value


def _string(value: Any) -> str:
    if not isinstance(value, str):
        raise _FieldError(f"must be a string, got {_describe(value)}")
    return _valid_str(value)


def _conv_text(value: Any) -> str:
    """Non-empty trimmed text (email, buyer_name)."""
    text = _string(value).strip()
    if not text:
        raise _FieldError("is empty")
    return text


def _conv_id(value: Any) -> str:
    """An id from the landing zone: trimmed, then 1..128 of ``[A-Za-z0-9_.:-]`` (tables.ID_PATTERN)."""
    text = _conv_text(value)
    problem = id_problem(text)
    if problem is not None:
        raise _FieldError(f"{_show(text)} is not a valid id: it {problem}")
    return text


def _conv_country(value: Any) -> str:
    text = _conv_text(value)
    if not re.fullmatch(r"[A-Z]{2}", text):
        raise _FieldError(f"{_show(text)} is not an ISO 3166-1 alpha-2 code (two upper-case letters)")
    return text


def _conv_ts(value: Any) -> datetime:
    if isinstance(value, str) and not value.strip():
        raise _FieldError("is empty")
    try:
        return parse_timestamp(value)
    except ValueError as exc:
        raise _FieldError(str(exc)) from None


def _conv_opt_str(value: Any) -> str | None:
    """String or null; empty/blank string -> null."""
    if value is None:
        return None
    text = _string(value).strip()
    return text or None


def _conv_bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise _FieldError(f"must be a JSON boolean (true or false), got {_describe(value)}")
    return value


_INT_RE = re.compile(r"[+-]?[0-9]+")


def _conv_int64_text(value: Any) -> int:
    """An integer written in a CSV cell: ASCII digits with an optional sign, fits int64."""
    text = _string(value).strip()
    if not text:
        raise _FieldError("is empty")
    if not _INT_RE.fullmatch(text):
        raise _FieldError(f"{_show(text)} is not an integer number of cents")
    digits = text.lstrip("+-").lstrip("0") or "0"  # leading zeros never overflow int()'s digit limit
    number = 0 if len(digits) > 19 else (-int(digits) if text.startswith("-") else int(digits))
    if len(digits) > 19 or not INT64_MIN <= number <= INT64_MAX:
        raise _FieldError(f"{_show(text)} does not fit in a 64-bit integer")
    return number


_MONTH_RE = re.compile(r"[0-9]{4}-(0[1-9]|1[0-2])")


def _conv_month(value: Any) -> str:
    text = _conv_text(value)
    if not _MONTH_RE.fullmatch(text):
        raise _FieldError(f"{_show(text)} is not a month YYYY-MM")
    return text


def _conv_object_key(value: Any) -> str:
    """A path under ``footage/``, kept verbatim (it names a file)."""
    text = _string(value)
    parts = text.split("/")
    if (
        not text.strip()
        or text.startswith("/")
        or "\\" in text
        or "\x00" in text
        or re.match(r"[A-Za-z]:", text)
        or ".." in parts
    ):
        raise _FieldError(f"{_show(text)} is absolute or leaves footage/")
    return text


def _list_of(conv: Callable[[Any], str]) -> Callable[[Any], list[str]]:
    """A list of values read by ``conv``, null -> []; duplicates removed, sorted."""

    def conv_list(value: Any) -> list[str]:
        if value is None:
            return []
        if not isinstance(value, list):
            raise _FieldError(f"must be a list of strings, got {_describe(value)}")
        out = set()
        for i, item in enumerate(value):
            try:
                out.add(conv(item))
            except _FieldError as exc:
                raise _FieldError(f"item {i}: {exc}") from None
        return sorted(out)

    return conv_list


# criteria.location_cells: geohash prefixes, 1..12 characters of the geohash alphabet
# (the digits and the lower-case letters but a, i, l, o); accepted in either case, stored lower
GEOHASH_ALPHABET = "0123456789bcdefghjkmnpqrstuvwxyz"
_GEOHASH_PREFIX = re.compile(f"[{GEOHASH_ALPHABET}]{{1,12}}")


def _conv_geohash(value: Any) -> str:
    """A geohash prefix (criteria.location_cells): 1..12 of the geohash alphabet, lower case."""
    text = _conv_text(value).lower()
    if not _GEOHASH_PREFIX.fullmatch(text):
        raise _FieldError(
            f"{_show(value)} is not a geohash prefix (1 to 12 characters of 0-9 and the letters b-z except i, l, o)"
        )
    return text


_conv_id_list = _list_of(_conv_id)  # excluded_buyers
_conv_text_list = _list_of(_conv_text)  # criteria.activities, criteria.camera_models
_conv_geohash_list = _list_of(_conv_geohash)  # criteria.location_cells


def _conv_enum(*allowed: str) -> Callable[[Any], str]:
    expected = " or ".join(allowed) if len(allowed) <= 2 else ", ".join(allowed)

    def conv(value: Any) -> str:
        text = _string(value).strip()
        if text not in allowed:
            raise _BareError(f"unknown action {_show(text)} (expected {expected})")
        return text

    return conv


_CONVERTERS: dict[str, Callable[[Any], Any]] = {
    "id": _conv_id,
    "id_list": _conv_id_list,
    "text": _conv_text,
    "country": _conv_country,
    "timestamp": _conv_ts,
    "bool": _conv_bool,
    "cents": _conv_int64_text,
    "month": _conv_month,
    "object_key": _conv_object_key,
}


def _converter(column: Column) -> Callable[[Any], Any]:
    """The converter of a declared landing column (by its ``kind``)."""
    if column.kind == "enum":
        return _conv_enum(*column.values)
    if column.kind == "text" and not column.required:
        return _conv_opt_str  # a blank string is null too
    return _CONVERTERS[column.kind]


@dataclass(frozen=True)
class _Field:
    name: str
    conv: Callable[[Any], Any]
    optional: bool = False  # may be empty (CSV), null or missing (JSON) -> default
    default: Any = None


def _fields(table: Table) -> list[_Field]:
    """The parser's field list: the table's columns read from the file, in order."""
    return [_Field(c.name, _converter(c), not c.required, c.default) for c in table.parsed]


# --------------------------------------------------------------------------- text handling


_LINE_SPLIT = re.compile(r"\r\n|\r|\n")


def _decode(rel_path: str, data: bytes) -> tuple[str | None, dict | None]:
    """UTF-8 text (a leading BOM removed) or a whole-file quarantine row."""
    try:
        return data.decode("utf-8-sig"), None
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        bad = data[exc.start : exc.start + 1].hex()
        text = data.decode("utf-8", errors="backslashreplace")
        reason = (
            f"file is not valid UTF-8: {exc.reason} (byte 0x{bad} at offset {exc.start}, line {line});"
            " the whole file is quarantined"
        )
        return None, _q(rel_path, 0, _file_raw(text), reason)


def _is_blank(line: str) -> bool:
    return not line.strip(" \t")


def _lines(text: str) -> list[str]:
    """Physical lines (split on CRLF, CR or LF, terminators removed); line n is index n-1."""
    lines = _LINE_SPLIT.split(text)
    if lines and lines[-1] == "":
        lines.pop()
    return lines


def _convert(fields: Iterable[_Field], values: dict, errors: list[str], csv_cells: bool) -> dict:
    """Convert ``values`` by ``fields``, appending readable errors.

    An optional field takes its default when missing or null, and (CSV only, where every
    cell is a string) when its cell is blank.
    """
    out: dict = {}
    for f in fields:
        if f.name not in values:
            if f.optional:
                out[f.name] = f.default() if callable(f.default) else f.default
            else:
                errors.append(f"missing required field '{f.name}'")
            continue
        value = values[f.name]
        if f.optional and (value is None or (csv_cells and not value.strip())):
            out[f.name] = f.default() if callable(f.default) else f.default
            continue
        if value is None:
            errors.append(f"field '{f.name}' is null")
            continue
        try:
            out[f.name] = f.conv(value)
        except _BareError as exc:
            errors.append(str(exc))
        except _FieldError as exc:
            errors.append(f"field '{f.name}' {exc}")
    return out


def _accept_row(result, fields, values: dict, csv_cells: bool, check, rel_path: str, lineno: int, line: str) -> None:
    """Convert one CSV or JSON line's values; keep the row, or quarantine it with every reason."""
    errors: list[str] = []
    row = _convert(fields, values, errors, csv_cells=csv_cells)
    if not errors and check is not None:
        errors.extend(check(row))
    if errors:
        result.quarantine.append(_q(rel_path, lineno, line, f"line {lineno}: " + "; ".join(errors)))
        return
    row["_source_path"] = rel_path
    row["_source_line"] = lineno
    result.rows.append(row)


# --------------------------------------------------------------------------- CSV


def _parse_csv(
    rel_path: str, data: bytes, fields: list[_Field], check: Callable[[dict], list[str]] | None = None
) -> ParseResult:
    result = ParseResult()
    text, bad = _decode(rel_path, data)
    if bad is not None:
        result.quarantine.append(bad)
        return result
    lines = _lines(text)
    header_idx = next((i for i, line in enumerate(lines) if not _is_blank(line)), None)
    names = [f.name for f in fields]
    if header_idx is None:
        result.quarantine.append(
            _q(rel_path, 0, _file_raw(text), f"file has no CSV header (expected columns: {', '.join(names)})")
        )
        return result
    try:
        header = [h.strip() for h in next(csv.reader([lines[header_idx]], strict=True, skipinitialspace=True))]
    except csv.Error as exc:
        result.quarantine.append(
            _q(rel_path, 0, _file_raw(text), f"line {header_idx + 1}: malformed CSV header: {exc}")
        )
        return result
    dupes = sorted({h for h in header if header.count(h) > 1})
    missing = [n for n in names if n not in header]
    if dupes or missing:
        problems = []
        if missing:
            problems.append(f"missing column(s) {', '.join(missing)}")
        if dupes:
            problems.append(f"duplicate column(s) {', '.join(_show(d) for d in dupes)}")
        result.quarantine.append(
            _q(
                rel_path,
                0,
                _file_raw(text),
                f"line {header_idx + 1}: CSV header {'; '.join(problems)}"
                f" (expected columns: {', '.join(names)}); the whole file is quarantined",
            )
        )
        return result

    for idx in range(header_idx + 1, len(lines)):
        line = lines[idx]
        if _is_blank(line):
            continue
        lineno = idx + 1
        try:
            cells = next(csv.reader([line], strict=True, skipinitialspace=True))
        except csv.Error as exc:
            result.quarantine.append(_q(rel_path, lineno, line, f"line {lineno}: malformed CSV line: {exc}"))
            continue
        if len(cells) != len(header):
            result.quarantine.append(
                _q(rel_path, lineno, line, f"line {lineno}: expected {len(header)} fields, found {len(cells)}")
            )
            continue
        _accept_row(result, fields, dict(zip(header, cells)), True, check, rel_path, lineno, line)
    return result


# --------------------------------------------------------------------------- JSON


class _StrictJSONError(ValueError):
    pass


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict:
    out: dict = {}
    for key, value in pairs:
        if key in out:
            raise _StrictJSONError(f"duplicate key {_show(key)} in a JSON object")
        out[key] = value
    return out


def _no_constant(name: str) -> Any:
    raise _StrictJSONError(f"{name} is not valid JSON")


def _loads(text: str) -> Any:
    """Strict JSON: no duplicate keys, no NaN/Infinity. Raises ValueError with a readable message."""
    try:
        return json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_no_constant)
    except json.JSONDecodeError as exc:
        raise ValueError(f"malformed JSON: {exc.msg} (line {exc.lineno} column {exc.colno})") from None
    except _StrictJSONError as exc:
        raise ValueError(f"malformed JSON: {exc}") from None
    except RecursionError:
        raise ValueError("malformed JSON: nested too deeply") from None
    except ValueError as exc:  # e.g. an integer literal with more than 4300 digits
        raise ValueError(f"malformed JSON: {exc}") from None


def _parse_jsonl(
    rel_path: str, data: bytes, fields: list[_Field], check: Callable[[dict], list[str]] | None = None
) -> ParseResult:
    result = ParseResult()
    text, bad = _decode(rel_path, data)
    if bad is not None:
        result.quarantine.append(bad)
        return result
    for idx, line in enumerate(_lines(text)):
        if _is_blank(line):
            continue
        lineno = idx + 1
        try:
            obj = _loads(line)
        except ValueError as exc:
            msg = str(exc).replace(" (line 1 column ", " (column ")
            result.quarantine.append(_q(rel_path, lineno, line, f"line {lineno}: {msg}"))
            continue
        if not isinstance(obj, dict):
            result.quarantine.append(
                _q(rel_path, lineno, line, f"line {lineno}: expected a JSON object, got {_json_type(obj)}")
            )
            continue
        _accept_row(result, fields, obj, False, check, rel_path, lineno, line)
    return result


# --------------------------------------------------------------------------- the six tabular kinds

SUBSCRIBER_FIELDS = _fields(decl.SUBSCRIBERS)
CONSENT_FIELDS = _fields(decl.CONSENT_EVENTS)
CLIP_EXCLUSION_FIELDS = _fields(decl.CLIP_EXCLUSIONS)
UPLOAD_FIELDS = _fields(decl.UPLOADS)
BUYER_PAYMENT_FIELDS = _fields(decl.BUYER_PAYMENTS)
PAYOUT_FIELDS = _fields(decl.PAYOUTS)


def _check_consent(row: dict) -> list[str]:
    if row["action"] == "opt_out" and row["excluded_buyers"]:
        return [
            f"excluded_buyers {_show(row['excluded_buyers'])} given on an opt_out"
            " (excluded_buyers is only allowed on opt_in)"
        ]
    return []


def parse_subscribers(rel_path: str, data: bytes) -> ParseResult:
    """``subscribers/*.csv`` (upserts by subscriber_id; not deduplicated here)."""
    return _parse_csv(rel_path, data, SUBSCRIBER_FIELDS)


def parse_consent_events(rel_path: str, data: bytes) -> ParseResult:
    """``consent_events/*.jsonl``."""
    return _parse_jsonl(rel_path, data, CONSENT_FIELDS, _check_consent)


def parse_clip_exclusions(rel_path: str, data: bytes) -> ParseResult:
    """``clip_exclusions/*.jsonl``."""
    return _parse_jsonl(rel_path, data, CLIP_EXCLUSION_FIELDS)


def parse_uploads(rel_path: str, data: bytes) -> ParseResult:
    """``uploads/*.jsonl`` (unknown subscribers are checked by the asset, not here)."""
    return _parse_jsonl(rel_path, data, UPLOAD_FIELDS)


def parse_buyer_payments(rel_path: str, data: bytes) -> ParseResult:
    """``buyer_payments/*.csv`` (negative amounts are refunds and are kept)."""
    return _parse_csv(rel_path, data, BUYER_PAYMENT_FIELDS)


def parse_payouts(rel_path: str, data: bytes) -> ParseResult:
    """``payouts/*.csv`` (negative amounts are reversals and are kept)."""
    return _parse_csv(rel_path, data, PAYOUT_FIELDS)


# --------------------------------------------------------------------------- deals

PRICING_MODELS = ("per_minute", "flat_fee")
_DEAL_KEYS = ("deal_id", "buyer_id", "buyer_name", "signed_at", "pricing", "criteria", "batches")
_PRICING_KEYS = ("model", "tier_prices_cents", "sensor_bonus_cents")  # sensor_bonus_cents: v2, R7
_CRITERIA_KEYS = (
    "min_short_side_px",
    "min_fps",
    "activities",
    "unpublished_only",
    "min_duration_s",
    # v2 (contract §2): R5 telemetry criteria, R6/R15 whole recordings
    "requires_gps",
    "requires_imu",
    "camera_models",
    "location_cells",
    "whole_recordings",
)
_BOOL_CRITERIA = ("unpublished_only", "requires_gps", "requires_imu", "whole_recordings")
_BATCH_KEYS = ("batch_id", "cutoff_at", "max_minutes", "fee_cents")


_BATCH_ID = _converter(decl.LICENSE_BATCHES["batch_id"])
_CUTOFF_AT = _converter(decl.LICENSE_BATCHES["cutoff_at"])


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return (_is_int(value) or isinstance(value, float)) and not isinstance(value, bool)


def _unknown(obj: dict, allowed: tuple[str, ...], where: str, errors: list[str]) -> None:
    extra = [k for k in obj if k not in allowed]
    if extra:
        errors.append(f"unknown key(s) {', '.join(_show(k) for k in extra)} in {where} (allowed: {', '.join(allowed)})")


def _deal_int(value: Any, where: str, errors: list[str], minimum: int) -> int | None:
    if not _is_int(value):
        errors.append(f"{where} must be an integer, got {_describe(value)}")
        return None
    if value < minimum or value > INT64_MAX:
        bound = "a non-negative integer" if minimum == 0 else f"an integer >= {minimum}"
        errors.append(f"{where} must be {bound} that fits in 64 bits, got {_show(value)}")
        return None
    return value


def _deal_number(value: Any, where: str, errors: list[str]) -> float | None:
    if not _is_number(value):
        errors.append(f"{where} must be a number, got {_describe(value)}")
        return None
    try:
        number = float(value)
    except OverflowError:
        number = math.inf
    if not math.isfinite(number) or number < 0:
        errors.append(f"{where} must be a finite non-negative number, got {_show(value)}")
        return None
    return number


def _deal_field(obj: dict, key: str, conv: Callable[[Any], Any], where: str, errors: list[str]) -> Any:
    if key not in obj:
        errors.append(f"missing required field '{where}{key}'")
        return None
    if obj[key] is None:
        errors.append(f"field '{where}{key}' is null")
        return None
    try:
        return conv(obj[key])
    except _FieldError as exc:
        errors.append(f"field '{where}{key}' {exc}")
        return None


def _validate_deal(obj: Any, rel_path: str) -> tuple[dict | None, list[dict], list[str]]:
    errors: list[str] = []
    if not isinstance(obj, dict):
        return None, [], [f"expected a JSON object, got {_json_type(obj)}"]
    _unknown(obj, _DEAL_KEYS, "the deal", errors)
    deal: dict = {
        **{c.name: _deal_field(obj, c.name, _converter(c), "", errors) for c in decl.LICENSE_DEALS.parsed},
        "pricing_model": None,
        **{f"price_{t}_cents": None for t in TIERS},
        **dict.fromkeys(_CRITERIA_KEYS),
        "sensor_bonus_cents": None,
    }

    # pricing
    pricing = obj.get("pricing")
    model = None
    if "pricing" not in obj:
        errors.append("missing required field 'pricing'")
    elif not isinstance(pricing, dict):
        errors.append(f"field 'pricing' must be an object, got {_describe(pricing)}")
    else:
        _unknown(pricing, _PRICING_KEYS, "pricing", errors)
        model = pricing.get("model")
        if "model" not in pricing:
            errors.append("missing required field 'pricing.model'")
        elif model not in PRICING_MODELS:
            errors.append(
                f"unknown pricing.model {_show(model) if isinstance(model, str) else _describe(model)}"
                " (expected per_minute or flat_fee)"
            )
            model = None
        else:
            deal["pricing_model"] = model
        prices = pricing.get("tier_prices_cents")
        if model == "per_minute":
            if "tier_prices_cents" not in pricing or prices is None:
                errors.append("per_minute pricing needs pricing.tier_prices_cents")
            elif not isinstance(prices, dict):
                errors.append(f"pricing.tier_prices_cents must be an object, got {_describe(prices)}")
            elif not prices:
                errors.append("pricing.tier_prices_cents is empty: no tier would be licensable")
            else:
                unknown = [t for t in prices if t not in TIERS]
                if unknown:
                    errors.append(
                        f"unknown tier(s) {', '.join(_show(t) for t in unknown)} in pricing.tier_prices_cents"
                        f" (known tiers: {', '.join(TIERS)})"
                    )
                for tier in TIERS:
                    if tier in prices:
                        deal[f"price_{tier}_cents"] = _deal_int(
                            prices[tier], f"pricing.tier_prices_cents.{tier}", errors, 0
                        )
        elif model == "flat_fee" and "tier_prices_cents" in pricing:
            errors.append(
                "pricing.tier_prices_cents is not allowed for flat_fee pricing (each batch carries fee_cents)"
            )
        # v2, R7: cents per minute added to the tier price of a clip with GPS and IMU
        if model == "flat_fee" and "sensor_bonus_cents" in pricing:
            errors.append(
                "pricing.sensor_bonus_cents is not allowed for flat_fee pricing (R7: the bonus is added to a"
                " per-minute tier price; a flat fee has none)"
            )
        elif pricing.get("sensor_bonus_cents") is not None:
            deal["sensor_bonus_cents"] = _deal_int(
                pricing["sensor_bonus_cents"], "pricing.sensor_bonus_cents", errors, 0
            )

    # criteria (optional; every key optional; null = no filter)
    criteria = obj.get("criteria")
    if criteria is not None:
        if not isinstance(criteria, dict):
            errors.append(f"field 'criteria' must be an object, got {_describe(criteria)}")
        else:
            extra = [k for k in criteria if k not in _CRITERIA_KEYS]
            if extra:
                errors.append(
                    f"unknown criteria key(s) {', '.join(_show(k) for k in extra)}: a filter that is not"
                    f" understood is never ignored (known: {', '.join(_CRITERIA_KEYS)})"
                )
            if criteria.get("min_short_side_px") is not None:
                deal["min_short_side_px"] = _deal_int(
                    criteria["min_short_side_px"], "criteria.min_short_side_px", errors, 0
                )
            for key in ("min_fps", "min_duration_s"):
                if criteria.get(key) is not None:
                    deal[key] = _deal_number(criteria[key], f"criteria.{key}", errors)
            for key, conv, anything in (
                ("activities", _conv_text_list, "any activity"),
                ("camera_models", _conv_text_list, "any camera"),  # v2; compared ignoring case (R5)
                ("location_cells", _conv_geohash_list, "anywhere"),  # v2
            ):
                items = criteria.get(key)
                if items is None:
                    continue
                if not isinstance(items, list):
                    errors.append(f"criteria.{key} must be a list of strings or null, got {_describe(items)}")
                elif not items:
                    errors.append(
                        f"criteria.{key} is an empty list: no clip could match (use null or leave it out for {anything})"
                    )
                else:
                    try:
                        deal[key] = conv(items)
                    except _FieldError as exc:
                        errors.append(f"criteria.{key} {exc}")
            for key in _BOOL_CRITERIA:
                flag = criteria.get(key)
                if flag is not None:
                    if isinstance(flag, bool):
                        deal[key] = flag
                    else:
                        errors.append(f"criteria.{key} must be true, false or null, got {_describe(flag)}")

    # batches
    batch_rows: list[dict] = []
    batches = obj.get("batches")
    if "batches" not in obj:
        errors.append("missing required field 'batches'")
    elif not isinstance(batches, list):
        errors.append(f"field 'batches' must be a list, got {_describe(batches)}")
    elif not batches:
        errors.append("batches is empty: a deal needs at least one batch")
    else:
        seen: set[str] = set()
        for i, b in enumerate(batches):
            where = f"batches[{i}]"
            if not isinstance(b, dict):
                errors.append(f"{where} must be an object, got {_describe(b)}")
                continue
            _unknown(b, _BATCH_KEYS, where, errors)
            bid = _deal_field(b, "batch_id", _BATCH_ID, f"{where}.", errors)
            if bid is not None:
                if bid in seen:
                    errors.append(f"{where}.batch_id {_show(bid)} is not unique within the deal")
                seen.add(bid)
            row = {
                "deal_id": deal["deal_id"],
                "batch_id": bid,
                "cutoff_at": _deal_field(b, "cutoff_at", _CUTOFF_AT, f"{where}.", errors),
                "max_minutes": None,
                "fee_cents": None,
            }
            if row["cutoff_at"] is not None:
                row["revenue_month"] = revenue_month(row["cutoff_at"])  # R10
            if b.get("max_minutes") is not None:
                row["max_minutes"] = _deal_int(b["max_minutes"], f"{where}.max_minutes", errors, 1)
            fee = b.get("fee_cents")
            if model == "flat_fee":
                if fee is None:
                    errors.append(f"{where} needs fee_cents (an integer >= 0) under flat_fee pricing")
                else:
                    row["fee_cents"] = _deal_int(fee, f"{where}.fee_cents", errors, 0)
            elif model == "per_minute" and "fee_cents" in b:
                errors.append(f"{where}.fee_cents is not allowed under per_minute pricing")
            row["_source_path"] = rel_path
            row["_source_line"] = 0
            batch_rows.append(row)

    deal["_source_path"] = rel_path
    deal["_source_line"] = 0
    return deal, batch_rows, errors


def parse_deal(rel_path: str, data: bytes) -> DealParse:
    """``deals/*.json``: one deal object. Any problem quarantines the whole file (position 0)."""
    text, bad = _decode(rel_path, data)
    if bad is not None:
        return DealParse(None, [], [bad])
    if not text.strip():
        return DealParse(None, [], [_q(rel_path, 0, _file_raw(text), "deal file is empty")])
    try:
        obj = _loads(text)
        deal, batches, errors = _validate_deal(obj, rel_path)
    except ValueError as exc:
        deal, batches, errors = None, [], [str(exc)]
    if errors:
        reason = "invalid deal, the whole file is quarantined: " + "; ".join(errors)
        return DealParse(None, [], [_q(rel_path, 0, _file_raw(text), reason)])
    return DealParse(deal, batches, [])


# --------------------------------------------------------------------------- arrow

# Derived from the declarations (domain/ingestion/tables.py); names kept for callers.
SUBSCRIBERS_SCHEMA = decl.SUBSCRIBERS.schema
CONSENT_EVENTS_SCHEMA = decl.CONSENT_EVENTS.schema
CLIP_EXCLUSIONS_SCHEMA = decl.CLIP_EXCLUSIONS.schema
UPLOADS_SCHEMA = decl.UPLOADS.schema
BUYER_PAYMENTS_SCHEMA = decl.BUYER_PAYMENTS.schema
PAYOUTS_SCHEMA = decl.PAYOUTS.schema
DEAL_SCHEMA = decl.LICENSE_DEALS.schema
BATCH_SCHEMA = decl.LICENSE_BATCHES.schema  # revenue_month, R10: UTC month of cutoff_at
QUARANTINE_SCHEMA = decl.QUARANTINE_ROWS.schema


def to_arrow(rows: list[dict], schema: pa.Schema) -> pa.Table:
    """Rows (dicts; extra keys ignored, missing keys null) -> a table with exactly ``schema``."""
    return pa.Table.from_pylist(list(rows), schema=schema)


# --------------------------------------------------------------------------- kinds and dedup


@dataclass(frozen=True)
class LandingKind:
    name: str
    prefix: str
    suffixes: tuple[str, ...]
    parse: Callable[[str, bytes], Any]
    table: Table  # the declaration of the table the rows go to
    key: tuple[str, ...]
    keep: str  # "last" (upsert) or "first"

    @property
    def schema(self) -> pa.Schema:
        return self.table.schema

    def matches(self, rel_path: str) -> bool:
        """True for a file of this kind (under ``prefix``, any depth; suffix case-insensitive)."""
        return rel_path.startswith(self.prefix) and rel_path.lower().endswith(self.suffixes)


LANDING_KINDS: dict[str, LandingKind] = {
    k.name: k
    for k in (
        LandingKind(
            "subscribers", "subscribers/", (".csv",), parse_subscribers, decl.SUBSCRIBERS, ("subscriber_id",), "last"
        ),
        LandingKind(
            "consent_events",
            "consent_events/",
            (".jsonl",),
            parse_consent_events,
            decl.CONSENT_EVENTS,
            ("event_id",),
            "first",
        ),
        LandingKind(
            "clip_exclusions",
            "clip_exclusions/",
            (".jsonl",),
            parse_clip_exclusions,
            decl.CLIP_EXCLUSIONS,
            ("event_id",),
            "first",
        ),
        LandingKind("uploads", "uploads/", (".jsonl",), parse_uploads, decl.UPLOADS, ("clip_id",), "first"),
        # Payments and payouts keep every row (keyed by position): R13 must see a payout_id
        # that appears twice to report it as `duplicate`; the reconciliation counts it once.
        LandingKind(
            "buyer_payments",
            "buyer_payments/",
            (".csv",),
            parse_buyer_payments,
            decl.BUYER_PAYMENTS,
            ("_source_path", "_source_line"),
            "first",
        ),
        LandingKind(
            "payouts", "payouts/", (".csv",), parse_payouts, decl.PAYOUTS, ("_source_path", "_source_line"), "first"
        ),
    )
}

# Deals are not tabular (parse returns a DealParse); described here for file discovery.
DEAL_KIND = LandingKind("deals", "deals/", (".json",), parse_deal, decl.LICENSE_DEALS, ("deal_id",), "first")


def kind_for_path(rel_path: str) -> LandingKind | None:
    """The landing kind a relative path belongs to (deals included), or None."""
    for kind in (*LANDING_KINDS.values(), DEAL_KIND):
        if kind.matches(rel_path):
            return kind
    return None


def dedup(rows: list[dict], kind: LandingKind | str) -> list[dict]:
    """Apply the contract's dedup rule to rows already in file order (files lexical, then line).

    ``keep == "last"`` (subscribers, upserts): the last row per key wins; ``"first"``: the
    first occurrence wins. The result keeps the winners in the order of their position.
    """
    if isinstance(kind, str):
        kind = DEAL_KIND if kind == DEAL_KIND.name else LANDING_KINDS[kind]
    winners: dict[tuple, int] = {}
    for i, row in enumerate(rows):
        k = tuple(row[c] for c in kind.key)
        if kind.keep == "last" or k not in winners:
            winners[k] = i
    return [rows[i] for i in sorted(winners.values())]
