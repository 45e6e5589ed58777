"""Structured fuzzing of every landing parser, and of ingestion into real Delta tables
(contract §2, §3; docs/LANDING_RULES.md; docs/RELIABILITY.md).

`tests/test_landing.py` already feeds random bytes and randomly edited lines to the
parsers. Here Hypothesis builds *near-valid* files from a model of each kind: every field
is drawn either valid (ids of the documented pattern, unicode text, padded with whitespace,
any UTC offset, huge but legal numbers, duplicated ids, ...) or broken in one named way
(missing, null, wrong JSON type, an id outside the pattern, naive timestamp, out-of-range
number, unpaired surrogate, ...). Rows may also be broken as
a whole (duplicate JSON keys, NaN, a 5,000-digit number, wrong CSV field count, a stray
quote) and files as a whole (BOM, CRLF/CR, blank lines, reordered or missing CSV columns,
a byte that is not UTF-8). The model predicts the outcome of every line, so the test
checks more than "no exception": a valid line must come out as exactly the expected row,
a broken one as a quarantine entry whose reason names every problem.

The number of generated cases is printed at the end of the module.
"""

from __future__ import annotations

import collections
import csv
import io
import json
import re
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pyarrow.compute as pc
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_landing import _check_nothing_lost

from gopro_assets.domain.ingestion import landing
from gopro_assets.domain.ingestion.ingest import QUARANTINE, ingest_deals, ingest_kind, known_subscriber_validator
from gopro_assets.domain.ingestion.landing import LANDING_KINDS, QUARANTINE_SCHEMA, dedup, parse_deal, to_arrow
from gopro_assets.lake.delta_store import DeltaStore
from gopro_assets.lake.privacy import EMAIL_PLACEHOLDER, find_emails, redact_emails
from gopro_assets.lake.storage import FileRoot

UTC = UTC
INT64_MAX = 2**63 - 1
CASES: collections.Counter = collections.Counter()


@pytest.fixture(scope="module", autouse=True)
def _report_cases(request):
    yield
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    if reporter is not None and capture is not None and CASES:
        with capture.global_and_fixture_disabled():
            reporter.write_line(f"\n[fuzz-inputs] cases tried: {dict(sorted(CASES.items()))}")


# =========================================================================== the model

MISSING = object()  # a JSON field left out


@dataclass
class Cell:
    raw: Any  # the JSON value, or the CSV cell text
    expected: Any = None  # the parsed value, when the cell is valid
    problem: str | None = None  # a fragment the reason must contain, when the cell is bad


@dataclass
class Row:
    cells: dict[str, Any]  # field -> Cell (or MISSING)
    extra: dict = field(default_factory=dict)  # unknown JSON fields (ignored by the parser)
    line_problem: str | None = None  # the whole line is bad (set when serialised)
    text: str = ""

    @property
    def problems(self) -> list[str]:
        if self.line_problem:
            return [self.line_problem]
        return [c.problem for c in self.cells.values() if c is not MISSING and c.problem]

    def expected_row(self) -> dict:
        return {k: c.expected for k, c in self.cells.items()}


# -- valid values ---------------------------------------------------------------------------


def one_in(draw, n: int) -> bool:
    """True about once in ``n`` draws. Hypothesis favours the ends of an integer range, so
    the hit is a value in the middle of it."""
    return draw(st.integers(0, n - 1)) == n // 2


_EDGE = st.characters(blacklist_categories=("Cc", "Cs", "Zs", "Zl", "Zp"))  # never stripped
_INNER = st.characters(blacklist_categories=("Cc", "Cs"))  # anything printable, \u2028 included
_PAD = st.sampled_from(["", "", " ", "  ", "\t", " \t "])


@st.composite
def any_text(draw, pool: list[str] | None = None) -> str:
    """Free text as it may appear in a file: any script, maybe padded, maybe huge, maybe reused."""
    if pool and one_in(draw, 3):
        core = draw(st.sampled_from(pool))
    elif one_in(draw, 40):
        core = "X" * draw(st.integers(1_000, 5_000))  # huge but legal
    else:
        core = draw(_EDGE) + draw(st.text(_INNER, max_size=10)) + draw(_EDGE) if draw(st.booleans()) else draw(_EDGE)
    return draw(_PAD) + core + draw(_PAD)


# The documented id pattern (docs/LANDING_RULES.md), written out here rather than imported:
# 1 to 128 ASCII letters, digits, "-", "_", "." or ":".
ID_RE = re.compile(r"[A-Za-z0-9_.:-]{1,128}")
_ID_CHARS = st.sampled_from("abcxyzABCXYZ0189-_.:")


@st.composite
def id_text(draw, pool: list[str] | None = None) -> str:
    """An id as it may appear in a file: of the pattern, maybe padded, maybe as long as
    allowed, maybe reused (``valid_id_text``); or, now and then, any text at all, which
    the model then expects quarantined unless it happens to match the pattern."""
    if one_in(draw, 12):
        return draw(any_text(pool))
    return draw(valid_id_text(pool))


@st.composite
def valid_id_text(draw, pool: list[str] | None = None) -> str:
    if pool and one_in(draw, 3):
        core = draw(st.sampled_from(pool))
    elif one_in(draw, 40):
        core = "X" * 128  # the longest id
    else:
        core = draw(st.text(_ID_CHARS, min_size=1, max_size=12))
    return draw(_PAD) + core + draw(_PAD)


def is_id(text: str) -> bool:
    return ID_RE.fullmatch(text.strip()) is not None


def cell_id(pool=None):
    return id_text(pool).map(lambda t: Cell(t, t.strip()) if is_id(t) else Cell(t, problem="is not a valid id"))


_OFFSETS = st.one_of(
    st.sampled_from(
        [timedelta(0), timedelta(hours=-8), timedelta(hours=5, minutes=30), timedelta(hours=14), timedelta(hours=-12)]
    ),
    st.integers(-(23 * 60 + 59), 23 * 60 + 59).map(lambda m: timedelta(minutes=m)),
)


@st.composite
def cell_ts(draw) -> Cell:
    dt = draw(st.datetimes(min_value=datetime(1900, 1, 1), max_value=datetime(2200, 12, 31))).replace(
        tzinfo=timezone(draw(_OFFSETS))
    )
    spec = draw(st.sampled_from(["seconds", "milliseconds", "microseconds", "auto"]))
    if spec == "seconds":
        dt = dt.replace(microsecond=0)
    elif spec == "milliseconds":
        dt = dt.replace(microsecond=dt.microsecond // 1000 * 1000)
    text = dt.isoformat(sep=draw(st.sampled_from(["T", " "])), timespec=spec)
    if dt.utcoffset() == timedelta(0) and draw(st.booleans()):
        text = text[:-6] + "Z"
    return Cell(draw(_PAD) + text + draw(_PAD), dt.astimezone(UTC))


@st.composite
def cell_amount(draw) -> Cell:
    n = draw(
        st.one_of(
            st.integers(-(10**6), 10**6),
            st.sampled_from([0, INT64_MAX, -INT64_MAX - 1]),
            st.integers(-INT64_MAX - 1, INT64_MAX),
        )
    )
    digits = "0" * draw(st.integers(0, 3)) + str(abs(n))
    sign = "-" if n < 0 else draw(st.sampled_from(["", "", "+"]))
    return Cell(draw(_PAD) + sign + digits + draw(_PAD), n)


def cell_month():
    return (
        st.tuples(st.integers(1000, 9999), st.integers(1, 12))
        .map(lambda t: f"{t[0]:04d}-{t[1]:02d}")
        .map(lambda m: Cell(m, m))
    )


def cell_country():
    return st.text(st.sampled_from("ABCDEFGHIJKLMNOPQRSTUVWXYZ"), min_size=2, max_size=2).flatmap(
        lambda c: _PAD.map(lambda p: Cell(p + c, c))
    )


@st.composite
def cell_email(draw) -> Cell:
    local = draw(st.text(st.sampled_from("abcxyz.+_-0123456789é"), min_size=1, max_size=12)).strip(".") or "u"
    text = f"{local}@{draw(st.sampled_from(['example.com', 'exämple.de', 'mail.example.co.uk']))}"
    return Cell(draw(_PAD) + text + draw(_PAD), text)


@st.composite
def cell_object_key(draw) -> Cell:
    seg = st.text(st.characters(blacklist_categories=("Cc", "Cs"), blacklist_characters="/\\"), min_size=1, max_size=8)
    parts = draw(st.lists(seg.filter(lambda s: s != ".." and s.strip()), min_size=1, max_size=4))
    key = "/".join(parts) + ".MP4"
    if key[1:2] == ":" and key[:1].isalpha():  # "C:..." reads as a drive letter
        key = "x" + key
    return Cell(key, key)  # kept verbatim, not trimmed


@st.composite
def cell_id_list(draw) -> Cell:
    items = draw(st.lists(id_text(["acme-ai", " acme-ai", "orbital-labs"]), max_size=4))
    if not all(is_id(i) for i in items):
        return Cell(items, problem="is not a valid id")
    return Cell(items, sorted({i.strip() for i in items}))


@st.composite
def cell_opt_text(draw, fmt: str) -> Cell:
    choice = draw(st.integers(0, 3))
    if choice == 0:  # missing (JSON) / empty cell (CSV) -> null
        return Cell(MISSING, None) if fmt == "json" else Cell("", None)
    if choice == 1:  # null / blank -> null
        return Cell(None, None) if fmt == "json" else Cell("   ", None)
    if choice == 2:
        return Cell(draw(_PAD), None)  # a blank string is null too
    text = draw(any_text(["surf", "Drone", "drone"]))
    return Cell(text, text.strip())


# -- broken values, with the fragment the reason must contain ---------------------------------

_WRONG_JSON = st.sampled_from([0, 42, -1.5, True, False, [], ["a"], {}, {"k": "v"}])


def broken(name: str, kind: str, fmt: str, optional: bool):
    """A broken value for field ``name`` of type ``kind``."""
    named = f"'{name}'"
    options = []
    if fmt == "json" and not optional:
        options += [
            st.just(Cell(MISSING, problem=f"missing required field {named}")),
            st.just(Cell(None, problem=f"field {named} is null")),
        ]
    if kind in ("id", "ts", "enum", "country", "month", "object_key", "email") and fmt == "json":
        options.append(_WRONG_JSON.map(lambda v: Cell(v, problem=f"field {named}" if kind != "enum" else named)))
    if kind in ("id", "email", "country", "month") and not optional:
        options.append(_PAD.map(lambda p: Cell(p, problem=f"field {named} is empty")))
    if kind == "id" and fmt == "json":
        options.append(st.just(Cell("S\ud800", problem="unpaired UTF-16 surrogate")))
    if kind == "id":  # outside the id pattern (CSV injection, spaces, paths, non-ASCII, too long)
        options += [
            st.sampled_from(["=1+1", "+1", "@SUM(A1)", "a b", "x/y", "ünï-42", "S1;S2", "'S1'"]).map(
                lambda v: Cell(v, problem=f"field {named} {v!r} is not a valid id")
            ),
            st.just(Cell("X" * 129, problem="is 129 characters long")),
        ]
    if kind == "ts":
        options += [
            st.just(Cell("2025-03-01T10:00:00", problem="has no UTC offset")),
            st.just(Cell("2025-03-01", problem="has no UTC offset")),
            st.just(Cell("yesterday", problem="is not ISO-8601")),
            st.just(Cell("2025-02-30T00:00:00Z", problem="is not ISO-8601")),
            st.just(Cell("２０２５-01-01T00:00:00Z", problem="is not ISO-8601")),
            st.just(Cell("0001-01-01T00:00:00+01:00", problem="out of range in UTC")),
            st.just(Cell("9999-12-31T23:30:00-01:00", problem="out of range in UTC")),
        ]
        if fmt == "json":
            options.append(st.just(Cell(1735689600, problem="timestamp must be a string")))
    if kind == "enum":
        options.append(
            st.sampled_from(["OPT_IN", "pause", "opt-in", "Exclude", ""]).map(
                lambda v: Cell(v, problem="unknown action")
            )
        )
    if kind == "country":
        options.append(
            st.sampled_from(["us", "USA", "U1", "ÜS", "u@s.com"]).map(
                lambda v: Cell(v, problem="is not an ISO 3166-1 alpha-2 code")
            )
        )
    if kind == "month":
        options.append(
            st.sampled_from(["2025-13", "2025-1", "25-01", "2025-00", "2025/01"]).map(
                lambda v: Cell(v, problem="is not a month YYYY-MM")
            )
        )
    if kind == "amount":
        options += [
            st.sampled_from(["12.50", "1e3", "1,000", "1_000", "٣", "0x10", "ten", "--1"]).map(
                lambda v: Cell(v, problem="is not an integer number of cents")
            ),
            st.sampled_from([str(2**63), str(-(2**63) - 1), "9" * 5000]).map(
                lambda v: Cell(v, problem="does not fit in a 64-bit integer")
            ),
            st.just(Cell("", problem=f"field {named} is empty")),
        ]
    if kind == "object_key":
        options.append(
            st.sampled_from(
                ["/etc/passwd", "../x.MP4", "s1/../../x", "C:x.MP4", "s1\\x.MP4", "", "  ", "s1/x\x00.MP4"]
            ).map(lambda v: Cell(v, problem="is absolute or leaves footage/"))
        )
    if kind == "bool":
        options.append(
            st.sampled_from(["true", 1, 0, "false", [], {}]).map(
                lambda v: Cell(v, problem=f"field {named} must be a JSON boolean")
            )
        )
    if kind == "id_list":
        options += [
            st.sampled_from(["acme-ai", 5, {"a": 1}]).map(lambda v: Cell(v, problem=f"field {named} must be a list")),
            st.sampled_from([[""], ["ok", "  "], [1], [None]]).map(lambda v: Cell(v, problem=f"field {named} item")),
        ]
    if kind == "opt_text" and fmt == "json":
        options.append(
            st.sampled_from([1, True, ["x"]]).map(lambda v: Cell(v, problem=f"field {named} must be a string"))
        )
    if kind == "opt_ts":
        options += [
            st.just(Cell("2025-03-01T10:00:00", problem="has no UTC offset")),
            st.just(Cell("soon", problem="is not ISO-8601")),
        ]
    return st.one_of(options) if options else None


# -- the six tabular kinds ----------------------------------------------------------------------

# (field, type, optional)
SPECS: dict[str, list[tuple[str, str, bool]]] = {
    "subscribers": [
        ("subscriber_id", "id", False),
        ("email", "email", False),
        ("country", "country", False),
        ("subscribed_at", "ts", False),
        ("cancelled_at", "opt_ts", True),
        ("invited_at", "opt_ts", True),
    ],
    "buyer_payments": [
        ("payment_id", "id", False),
        ("deal_id", "id", False),
        ("batch_id", "id", False),
        ("amount_cents", "amount", False),
        ("received_at", "ts", False),
    ],
    "payouts": [
        ("payout_id", "id", False),
        ("subscriber_id", "id", False),
        ("statement_month", "month", False),
        ("amount_cents", "amount", False),
        ("paid_at", "ts", False),
    ],
    "consent_events": [
        ("event_id", "id", False),
        ("subscriber_id", "id", False),
        ("event_at", "ts", False),
        ("action", "enum", False),
        ("excluded_buyers", "id_list", True),
    ],
    "clip_exclusions": [
        ("event_id", "id", False),
        ("subscriber_id", "id", False),
        ("clip_id", "id", False),
        ("event_at", "ts", False),
        ("action", "enum", False),
    ],
    "uploads": [
        ("clip_id", "id", False),
        ("subscriber_id", "id", False),
        ("object_key", "object_key", False),
        ("uploaded_at", "ts", False),
        ("published", "bool", False),
        ("activity", "opt_text", True),
        ("mount", "opt_text", True),
    ],
}
FORMAT = {k: ("csv" if LANDING_KINDS[k].suffixes == (".csv",) else "json") for k in SPECS}
ENUMS = {"consent_events": ["opt_in", "opt_out"], "clip_exclusions": ["exclude", "include"]}
ID_POOL = ["S1", " S1", "S1 ", "s1", "S2", "u.n:i_42-"]  # duplicates, also after trimming


def valid_cell(kind_name: str, name: str, typ: str, fmt: str):
    if typ == "id":
        return cell_id(ID_POOL)
    if typ == "email":
        return cell_email()
    if typ == "country":
        return cell_country()
    if typ == "ts":
        return cell_ts()
    if typ == "opt_ts":
        return st.one_of(cell_ts(), st.just(Cell("", None)), st.just(Cell("  ", None)))
    if typ == "amount":
        return cell_amount()
    if typ == "month":
        return cell_month()
    if typ == "enum":
        return st.tuples(st.sampled_from(ENUMS[kind_name]), _PAD).map(lambda t: Cell(t[1] + t[0], t[0]))
    if typ == "object_key":
        return cell_object_key()
    if typ == "bool":
        return st.booleans().map(lambda b: Cell(b, b))
    if typ == "opt_text":
        return cell_opt_text(fmt)
    if typ == "id_list":
        return st.one_of(cell_id_list(), st.just(Cell(MISSING, [])), st.just(Cell(None, [])))
    raise AssertionError(typ)


@st.composite
def gen_row(draw, kind_name: str, bad_rate: int) -> Row:
    """A row; each field is broken with probability 1/bad_rate."""
    fmt = FORMAT[kind_name]
    cells: dict[str, Any] = {}
    for name, typ, optional in SPECS[kind_name]:
        bad = broken(name, typ, fmt, optional)
        if bad is not None and one_in(draw, bad_rate):
            cells[name] = draw(bad)
        else:
            cells[name] = draw(valid_cell(kind_name, name, typ, fmt))
    if kind_name == "consent_events":
        action, eb = cells["action"], cells["excluded_buyers"]
        if action.problem is None and action.expected == "opt_out" and eb.problem is None and eb.expected:
            # excluded_buyers on an opt_out is bad input; the parser reports it only when
            # nothing else is wrong with the row
            if not any(c.problem for c in cells.values()):
                eb.problem = "given on an opt_out"
    for name, typ, optional in SPECS[kind_name]:
        c = cells[name]
        if c.raw is MISSING and c.problem is None:
            c.expected = [] if typ == "id_list" else None
    row = Row(cells)
    if fmt == "json" and one_in(draw, 4):
        row.extra = draw(
            st.dictionaries(
                st.sampled_from(["note", "ver", "sig", "v2_field"]),
                st.one_of(st.none(), st.integers(), st.text(max_size=5), st.lists(st.integers(), max_size=2)),
                max_size=2,
            )
        )
    return row


def _json_line(draw, row: Row) -> str:
    obj = {k: c.raw for k, c in row.cells.items() if c.raw is not MISSING}
    obj |= row.extra
    keys = draw(st.permutations(list(obj)))
    obj = {k: obj[k] for k in keys}
    has_surrogate = "\ud800" in json.dumps(obj, ensure_ascii=False)
    text = json.dumps(obj, ensure_ascii=has_surrogate or draw(st.booleans()))
    trouble = draw(st.integers(0, 49))
    if trouble == 10 and obj:
        k = draw(st.sampled_from(list(obj)))
        text = text[:-1] + (", " if len(obj) else "") + f"{json.dumps(k)}: {json.dumps(obj[k])}" + "}"
        row.line_problem = "duplicate key"
    elif trouble == 11:
        text = text[:-1] + (", " if obj else "") + '"score": NaN}'
        row.line_problem = "NaN is not valid JSON"
    elif trouble == 12:
        text = text[:-1] + (", " if obj else "") + '"big": 1' + "0" * 5000 + "}"
        row.line_problem = "malformed JSON"
    elif trouble == 13:
        text = json.dumps(list(obj.values()), ensure_ascii=True)
        row.line_problem = "expected a JSON object, got array"
    elif trouble == 14:
        text = text[: max(1, len(text) // 2)]
        row.line_problem = "malformed JSON"
    return text


def _csv_line(draw, row: Row, header: list[str]) -> str:
    values = []
    for name in header:
        c = row.cells.get(name)
        values.append(c.raw if c is not None else draw(st.text(_INNER, max_size=6)))
    buf = io.StringIO()
    csv.writer(buf, quoting=draw(st.sampled_from([csv.QUOTE_MINIMAL, csv.QUOTE_ALL])), lineterminator="").writerow(
        values
    )
    text = buf.getvalue()
    trouble = draw(st.integers(0, 49))
    if trouble == 10:
        text += ",surplus"
        row.line_problem = f"expected {len(header)} fields, found {len(header) + 1}"
    elif trouble == 11 and len(values) > 1:
        buf = io.StringIO()
        csv.writer(buf, lineterminator="").writerow(values[:-1])
        text = buf.getvalue()
        row.line_problem = f"expected {len(header)} fields, found {len(header) - 1}"
    elif trouble == 12:
        text = '"' + text
        row.line_problem = "malformed CSV line"
    return text


@dataclass
class GenFile:
    path: str
    data: bytes
    rows: dict[int, Row]  # line number -> row model
    whole_file_problem: str | None = None


@st.composite
def gen_file(draw, kind_name: str, path: str, bad_rate: int = 12, allow_file_problems: bool = True) -> GenFile:
    fmt = FORMAT[kind_name]
    rows = draw(st.lists(gen_row(kind_name, bad_rate), max_size=10))
    lines: list[str] = []
    header: list[str] = []
    whole = None
    if fmt == "csv":
        header = list(draw(st.permutations([f[0] for f in SPECS[kind_name]])))
        if one_in(draw, 5):
            header.insert(draw(st.integers(0, len(header))), "note")  # extra columns are ignored
        head = list(header)
        file_trouble = draw(st.integers(0, 29)) if allow_file_problems else -1
        if file_trouble == 14:
            dropped = head.pop(draw(st.integers(0, len(head) - 1)))
            if dropped != "note":
                whole = "CSV header missing column(s)"
            header = head
        elif file_trouble == 15:
            head.append(head[0])
            whole = "duplicate column(s)"
        lines.append(",".join(f" {h}" if draw(st.booleans()) else h for h in head))
    by_line: dict[int, Row] = {}
    for row in rows:
        while one_in(draw, 5):
            lines.append(draw(st.sampled_from(["", " ", "\t", "  \t"])))
        row.text = _csv_line(draw, row, header) if fmt == "csv" else _json_line(draw, row)
        lines.append(row.text)
        by_line[len(lines)] = row
    eol = draw(st.sampled_from(["\n", "\r\n", "\r"]))
    text = eol.join(lines) + (eol if lines and draw(st.booleans()) else "")
    data = text.encode("utf-8")
    if draw(st.booleans()):
        data = b"\xef\xbb\xbf" + data
    if allow_file_problems and one_in(draw, 30):
        at = draw(st.integers(0, len(data)))
        data = data[:at] + b"\xff" + data[at:]
        whole = "file is not valid UTF-8"
    if fmt == "csv" and not text.strip(" \t\r\n"):
        whole = "file has no CSV header"
    return GenFile(path, data, by_line, whole)


def check_file(kind_name: str, f: GenFile, result: landing.ParseResult) -> None:
    """The parser's output is exactly what the model predicts, line by line."""
    fmt = FORMAT[kind_name]
    _check_nothing_lost(result, f.data, LANDING_KINDS[kind_name].schema, has_header=fmt == "csv", path=f.path)
    if f.whole_file_problem:
        assert result.rows == [] and len(result.quarantine) == 1
        q = result.quarantine[0]
        assert q["position"] == 0 and f.whole_file_problem in q["reason"], q["reason"]
        CASES["whole_file_quarantined"] += 1
        return
    rows = {r["_source_line"]: r for r in result.rows}
    quarantined = {q["position"]: q for q in result.quarantine}
    for lineno, row in f.rows.items():
        CASES["lines"] += 1
        problems = row.problems
        if not problems:
            assert lineno in rows, (lineno, row.text, quarantined.get(lineno))
            got = dict(rows[lineno])
            assert got.pop("_source_path") == f.path and got.pop("_source_line") == lineno
            assert got == row.expected_row(), (row.text, got)
            CASES["lines_valid"] += 1
        else:
            assert lineno in quarantined, (lineno, row.text, problems, rows.get(lineno))
            q = quarantined[lineno]
            assert q["raw"] == row.text and q["reason"].startswith(f"line {lineno}: ")
            for p in problems:
                assert p in q["reason"], (p, q["reason"], row.text)
            CASES["lines_quarantined"] += 1
    assert set(rows) | set(quarantined) == set(f.rows)


# =========================================================================== parser tests


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)
@given(kind_name=st.sampled_from(sorted(SPECS)), data=st.data())
def test_near_valid_files_parse_exactly_as_the_model_predicts(kind_name, data):
    path = f"{LANDING_KINDS[kind_name].prefix}fuzz{LANDING_KINDS[kind_name].suffixes[0]}"
    f = data.draw(gen_file(kind_name, path))
    result = LANDING_KINDS[kind_name].parse(path, f.data)
    check_file(kind_name, f, result)
    CASES[f"files_{kind_name}"] += 1


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(kind_name=st.sampled_from(sorted(SPECS)), data=st.data())
def test_duplicated_ids_resolve_by_the_contract_rule(kind_name, data):
    """Subscribers: the last row per trimmed id wins; events and uploads: the first; payments
    and payouts keep every row. Checked across two files, in lexical path order."""
    kind = LANDING_KINDS[kind_name]
    files = [
        data.draw(gen_file(kind_name, f"{kind.prefix}{n}{kind.suffixes[0]}", bad_rate=12, allow_file_problems=False))
        for n in ("a", "b")
    ]
    parsed = [r for f in files for r in kind.parse(f.path, f.data).rows]
    kept = dedup(parsed, kind)
    key = lambda r: tuple(r[c] for c in kind.key)  # noqa: E731
    winners: dict = {}
    for r in parsed:  # the contract, written out
        if kind.keep == "last" or key(r) not in winners:
            winners[key(r)] = r
    assert sorted(map(key, kept)) == sorted(winners) and all(winners[key(r)] is r for r in kept)
    positions = [(r["_source_path"], r["_source_line"]) for r in kept]
    assert positions == sorted(positions)
    CASES["dedup_files"] += 2


# -- deals --------------------------------------------------------------------------------------

TIERS = ("aerial", "uhd", "hd", "sd")


@dataclass
class DealModel:
    obj: dict
    expected_deal: dict | None
    expected_batches: list[dict]
    problems: list[str]


@st.composite
def gen_deal(draw) -> DealModel:
    problems: list[str] = []
    obj: dict = {}
    exp: dict = {}
    for key in ("deal_id", "buyer_id", "buyer_name"):
        text = draw((valid_id_text if key != "buyer_name" else any_text)(["D1", " D1", "acme-ai"]))
        obj[key], exp[key] = text, text.strip()
    ts = draw(cell_ts())
    obj["signed_at"], exp["signed_at"] = ts.raw, ts.expected
    model = draw(st.sampled_from(["per_minute", "flat_fee"]))
    exp["pricing_model"] = model
    exp |= {f"price_{t}_cents": None for t in TIERS}
    big = st.one_of(st.integers(0, 100_000), st.sampled_from([0, INT64_MAX]))
    if model == "per_minute":
        tiers = draw(st.lists(st.sampled_from(TIERS), min_size=1, max_size=4, unique=True))
        prices = {t: draw(big) for t in tiers}
        obj["pricing"] = {"model": model, "tier_prices_cents": prices}
        exp |= {f"price_{t}_cents": p for t, p in prices.items()}
    else:
        obj["pricing"] = {"model": model}
    exp["sensor_bonus_cents"] = None
    if model == "per_minute" and draw(st.booleans()):  # v2, R7: per_minute only
        obj["pricing"]["sensor_bonus_cents"] = v = draw(st.one_of(st.none(), big))
        exp["sensor_bonus_cents"] = v
    crit_exp = {
        "min_short_side_px": None,
        "min_fps": None,
        "activities": None,
        "unpublished_only": None,
        "min_duration_s": None,
        "requires_gps": None,
        "requires_imu": None,
        "camera_models": None,
        "location_cells": None,
        "whole_recordings": None,
    }
    if draw(st.integers(0, 3)):
        crit: dict = {}
        if draw(st.booleans()):
            crit["min_short_side_px"] = v = draw(st.one_of(st.none(), big))
            crit_exp["min_short_side_px"] = v
        for k in ("min_fps", "min_duration_s"):
            if draw(st.booleans()):
                crit[k] = v = draw(st.one_of(st.none(), st.integers(0, 240), st.floats(0, 1e6, allow_nan=False)))
                crit_exp[k] = None if v is None else float(v)
        if draw(st.booleans()):
            acts = draw(st.one_of(st.none(), st.lists(any_text(["surf", " surf", "ski"]), min_size=1, max_size=4)))
            crit["activities"] = acts
            crit_exp["activities"] = None if acts is None else sorted({a.strip() for a in acts})
        for k in ("unpublished_only", "requires_gps", "requires_imu", "whole_recordings"):
            if draw(st.booleans()):
                crit[k] = v = draw(st.sampled_from([None, True, False]))
                crit_exp[k] = v
        if draw(st.booleans()):  # v2: any text, compared ignoring case later (R5)
            models = draw(st.one_of(st.none(), st.lists(any_text(["HERO7 Black", "hero7 black", "MAX"]), max_size=3)))
            models = models or None  # [] is its own damage (a list that matches nothing)
            crit["camera_models"] = models
            crit_exp["camera_models"] = None if models is None else sorted({m.strip() for m in models})
        if draw(st.booleans()):  # v2: geohash prefixes in either case, stored lower case
            cells = draw(
                st.one_of(
                    st.none(),
                    st.lists(
                        st.text("0123456789bcdefghjkmnpqrstuvwxyzBCDEFGHJKMNPQRSTUVWXYZ", min_size=1, max_size=12),
                        min_size=1,
                        max_size=3,
                    ),
                )
            )
            crit["location_cells"] = cells
            crit_exp["location_cells"] = None if cells is None else sorted({c.lower() for c in cells})
        obj["criteria"] = crit
    elif draw(st.booleans()):
        obj["criteria"] = None
    exp |= crit_exp
    batches, exp_batches = [], []
    n = draw(st.integers(1, 4))
    ids = draw(st.lists(valid_id_text(), min_size=n, max_size=n, unique_by=lambda s: s.strip()))
    for bid in ids:
        cut = draw(cell_ts())
        b = {"batch_id": bid, "cutoff_at": cut.raw}
        eb = {
            "deal_id": exp["deal_id"],
            "batch_id": bid.strip(),
            "cutoff_at": cut.expected,
            "max_minutes": None,
            "fee_cents": None,
            "revenue_month": cut.expected.strftime("%Y-%m"),
        }  # R10: the UTC month
        mm = draw(st.sampled_from(["missing", "null", "value"]))
        if mm == "null":
            b["max_minutes"] = None
        elif mm == "value":
            b["max_minutes"] = eb["max_minutes"] = draw(st.one_of(st.integers(1, 10_000), st.just(INT64_MAX)))
        if model == "flat_fee":
            b["fee_cents"] = eb["fee_cents"] = draw(big)
        batches.append(dict(zip(draw(st.permutations(list(b))), [None] * len(b))) | b)
        exp_batches.append(eb)
    obj["batches"] = batches

    # -- damage, each with the fragment the reason must contain. Some damages hide others
    # (an unknown pricing model skips the price checks, a batches value that is not a list
    # skips the batch checks), so conflicting ones are not combined.
    count = draw(st.sampled_from([0, 0, 0, 1, 1, 2, 3]))
    damages = set(draw(st.lists(st.integers(0, 22), min_size=count, max_size=count, unique=True)))
    if 11 in damages or 14 in damages:  # an invalid batch id would hide the duplicate / is replaced
        damages -= {19}
    if 6 in damages:
        damages -= {3, 4, 5, 15, 16, 17, 22}
    if 14 in damages:
        damages -= {11, 12, 13, 15, 16}
    if 5 in damages:
        damages -= {3, 4}
    touched: set[str] = set()
    for d in sorted(damages - {0}):
        if d == 1:
            key = draw(st.sampled_from(["deal_id", "buyer_id", "buyer_name"]))
            obj[key] = draw(st.sampled_from([None, 7, True, [], "   "]))
            problems.append(f"field '{key}'")
            touched.add(key)
        elif d == 2:
            obj["signed_at"] = "2026-01-05T00:00:00"
            problems.append("has no UTC offset")
            touched.add("signed_at")
        elif d == 3 and model == "per_minute":
            t = next(iter(obj["pricing"]["tier_prices_cents"]))
            obj["pricing"]["tier_prices_cents"][t] = draw(st.sampled_from([200.0, 2.5, "200", True, -1, 2**63, 10**30]))
            problems.append(f"pricing.tier_prices_cents.{t} must be")
            touched.add("pricing")
        elif d == 4 and model == "per_minute":
            obj["pricing"]["tier_prices_cents"]["4k"] = 500
            problems.append("unknown tier(s) '4k'")
            touched.add("pricing")
        elif d == 5 and model == "per_minute":
            obj["pricing"]["tier_prices_cents"] = {}
            problems.append("tier_prices_cents is empty")
            touched.add("pricing")
        elif d == 6:
            obj["pricing"]["model"] = "auction"
            problems.append("unknown pricing.model 'auction'")
            touched.add("pricing")
        elif d == 7:
            obj[draw(st.sampled_from(["criterias", "Deal_ID", "notes"]))] = 1
            problems.append("unknown key(s)")
        elif d == 8:
            obj["criteria"] = (obj.get("criteria") or {}) | {"colour": "red"}
            problems.append("unknown criteria key(s) 'colour'")
        elif d == 9:
            obj["criteria"] = (obj.get("criteria") or {}) | {"activities": []}
            problems.append("criteria.activities is an empty list")
        elif d == 10:
            obj["criteria"] = (obj.get("criteria") or {}) | {"min_fps": draw(st.sampled_from(["24", -1, True, [24]]))}
            problems.append("criteria.min_fps must be")
        elif d == 18:
            obj["criteria"] = (obj.get("criteria") or {}) | {"min_duration_s": draw(st.sampled_from([-0.5, -1]))}
            problems.append("criteria.min_duration_s must be a finite non-negative number")
        elif d == 11:
            obj["batches"].append(dict(obj["batches"][0]))
            problems.append("is not unique within the deal")
            touched.add("batches")
        elif d == 12:
            i = draw(st.integers(0, len(obj["batches"]) - 1))
            obj["batches"][i]["max_minutes"] = draw(st.sampled_from([0, -5, 1.5, "60", 2**64]))
            problems.append(f"batches[{i}].max_minutes must be")
            touched.add("batches")
        elif d == 13:
            i = draw(st.integers(0, len(obj["batches"]) - 1))
            obj["batches"][i].pop("cutoff_at", None)
            problems.append(f"missing required field 'batches[{i}].cutoff_at'")
            touched.add("batches")
        elif d == 14:
            obj["batches"] = draw(st.sampled_from([[], "B1", None]))
            problems.append("batch")
            touched.add("batches")
        elif d == 15 and model == "flat_fee":
            obj["batches"][0].pop("fee_cents", None)
            problems.append("needs fee_cents")
            touched |= {"batches", "pricing"}
        elif d == 16 and model == "per_minute":
            obj["batches"][0]["fee_cents"] = 100
            problems.append("fee_cents is not allowed under per_minute")
            touched |= {"batches", "pricing"}
        elif d == 17 and model == "flat_fee":
            obj["pricing"]["tier_prices_cents"] = {"hd": 1}
            problems.append("not allowed for flat_fee")
            touched.add("pricing")
        elif d == 19:
            i = draw(st.integers(0, len(obj["batches"]) - 1))
            obj["batches"][i]["batch_id"] = bad = draw(st.sampled_from(["B 1", "=B1", "B/1", "Bé"]))
            problems.append(f"field 'batches[{i}].batch_id' {bad!r} is not a valid id")
            touched.add("batches")
        elif d == 21:  # v2: a location cell outside the geohash alphabet, or too long
            bad = draw(st.sampled_from(["u4pra", "9q8yi", "dr5l", "o", "", "9q8yyk9q8yyk9", 5]))
            obj["criteria"] = (obj.get("criteria") or {}) | {"location_cells": [bad]}
            problems.append("criteria.location_cells item 0:")
        elif d == 22:  # v2, R7: the sensor bonus is per_minute only, a non-negative integer
            if model == "flat_fee":
                obj["pricing"]["sensor_bonus_cents"] = draw(st.sampled_from([None, 0, 50]))
                problems.append("pricing.sensor_bonus_cents is not allowed for flat_fee pricing")
            else:
                obj["pricing"]["sensor_bonus_cents"] = draw(st.sampled_from([-1, 2.5, "50", True, 2**63]))
                problems.append("pricing.sensor_bonus_cents must be")
            touched.add("pricing")
        elif d == 20:
            free = [k for k in ("deal_id", "buyer_id") if k not in touched]
            if free:
                key = draw(st.sampled_from(free))
                obj[key] = bad = draw(st.sampled_from(["=1+1", "acme ai", "D-2026/001", "x" * 129]))
                problems += [f"field '{key}'", "is not a valid id: it " + ("is 129" if len(bad) > 100 else "contains")]
                touched.add(key)
    if 0 in damages:  # last, and only on a key no other damage depends on
        free = [k for k in ("deal_id", "buyer_id", "buyer_name", "signed_at", "pricing", "batches") if k not in touched]
        if free:
            key = draw(st.sampled_from(free))
            del obj[key]
            problems.append(f"missing required field '{key}'")
    ok = not problems
    return DealModel(obj, exp if ok else None, exp_batches if ok else [], problems)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(model=gen_deal(), data=st.data())
def test_near_valid_deals_parse_exactly_as_the_model_predicts(model, data):
    indent = data.draw(st.sampled_from([None, 2, "\t"]))
    text = json.dumps(model.obj, indent=indent, ensure_ascii=data.draw(st.booleans()))
    problems = list(model.problems)
    line_trouble = data.draw(st.integers(0, 19))
    if line_trouble == 10:
        text = text.rstrip()[:-1] + f", {json.dumps(next(iter(model.obj)))}: 1}}"
        problems = ["duplicate key"]
    elif line_trouble == 11:
        text = text.rstrip()[:-1] + ', "x": NaN}'
        problems = ["NaN is not valid JSON"]
    elif line_trouble == 12:
        text = "[" + text + "]"
        problems = ["expected a JSON object, got array"]
    elif line_trouble == 13:
        text = text.rstrip()[:-1] + ', "n": ' + "7" * 5000 + "}"
        problems = ["malformed JSON"]
    eol = data.draw(st.sampled_from(["\n", "\r\n", "\r"]))
    raw = text.replace("\n", eol).encode("utf-8")
    if data.draw(st.booleans()):
        raw = b"\xef\xbb\xbf" + raw
    if data.draw(st.integers(0, 29)) == 15:
        raw = raw + b"\xc3"
        problems = ["file is not valid UTF-8"]
    result = parse_deal("deals/fuzz.json", raw)
    CASES["deal_files"] += 1
    if not problems:
        assert result.quarantine == [], result.quarantine
        deal = dict(result.deal)
        assert (deal.pop("_source_path"), deal.pop("_source_line")) == ("deals/fuzz.json", 0)
        assert deal == model.expected_deal
        batches = [{k: v for k, v in b.items() if not k.startswith("_")} for b in result.batches]
        assert batches == model.expected_batches
        to_arrow([result.deal], landing.DEAL_SCHEMA)
        to_arrow(result.batches, landing.BATCH_SCHEMA)
        CASES["deal_files_valid"] += 1
    else:
        assert result.deal is None and result.batches == [] and len(result.quarantine) == 1
        q = result.quarantine[0]
        assert q["position"] == 0
        if problems != ["file is not valid UTF-8"]:
            assert q["reason"].startswith("invalid deal, the whole file is quarantined: "), q["reason"]
        for p in problems:
            assert p in q["reason"], (p, q["reason"])
        to_arrow(result.quarantine, QUARANTINE_SCHEMA)
        CASES["deal_files_quarantined"] += 1


# =========================================================================== through ingestion


def _lake_rows(store: DeltaStore, table: str, schema) -> list[dict]:
    t = store.read(table, schema=schema)
    return sorted(t.to_pylist(), key=lambda r: (r["_source_path"], r["_source_line"]))


@settings(
    max_examples=8,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture],
)
@given(kind_name=st.sampled_from(sorted(SPECS)), data=st.data())
def test_ingest_kind_on_delta_keeps_every_line_as_a_row_or_a_quarantine_entry(kind_name, data):
    """Generated files go through ingest_kind into real Delta tables, in two rounds (the
    second is incremental: a MERGE). Every non-blank line of every file ends up as a table
    row, a quarantine row, or a row superseded by its duplicate under the contract's rule;
    quarantine text holds no e-mail address; re-ingesting changes no Delta version."""
    kind = LANDING_KINDS[kind_name]
    with tempfile.TemporaryDirectory() as tmp:
        landing_dir, store = Path(tmp) / "landing", DeltaStore(str(Path(tmp) / "lake"))
        root = FileRoot(str(landing_dir))
        known_subs = {"S1", "S2"}
        if kind_name == "uploads":  # uploads are checked against the subscribers ingested before them
            sub = landing_dir / "subscribers" / "s.csv"
            sub.parent.mkdir(parents=True)
            sub.write_text(
                "subscriber_id,email,country,subscribed_at,cancelled_at,invited_at\n"
                "S1,a@example.com,US,2025-01-01T00:00:00Z,,\nS2,b@example.com,US,2025-01-01T00:00:00Z,,\n"
            )
            ingest_kind(store, root, LANDING_KINDS["subscribers"])
        rounds = [["b", "d"], ["a", "c"]]  # the second round's files sort before and between the first's
        all_files: list[GenFile] = []
        for names in rounds:
            for n in names:
                f = data.draw(gen_file(kind_name, f"{kind.prefix}{n}/{n}{kind.suffixes[0]}", bad_rate=8))
                (landing_dir / f.path).parent.mkdir(parents=True, exist_ok=True)
                (landing_dir / f.path).write_bytes(f.data)
                all_files.append(f)
            validate = known_subscriber_validator(store) if kind_name == "uploads" else None
            report = ingest_kind(store, root, kind, validate=validate)
            assert sorted(report.files_ingested) == sorted(f"{kind.prefix}{n}/{n}{kind.suffixes[0]}" for n in names)
        all_files.sort(key=lambda f: f.path)

        # the model, over every file in lexical order
        parsed_rows, expected_q = [], {}
        for f in all_files:
            result = kind.parse(f.path, f.data)
            check_file(kind_name, f, result)
            for q in result.quarantine:
                expected_q[(q["source"], q["position"])] = q
            for r in result.rows:
                if kind_name == "uploads" and r["subscriber_id"] not in known_subs:
                    expected_q[(r["_source_path"], r["_source_line"])] = {"reason": "names unknown subscriber"}
                else:
                    parsed_rows.append(r)
        expected_rows = to_arrow(dedup(parsed_rows, kind), kind.schema).to_pylist()
        assert _lake_rows(store, kind_name, kind.schema) == sorted(
            expected_rows, key=lambda r: (r["_source_path"], r["_source_line"])
        )

        stored_q = store.read(QUARANTINE, filter=pc.field("source").isin([f.path for f in all_files])).to_pylist()
        assert {(q["source"], q["position"]) for q in stored_q} == set(expected_q)
        for q in stored_q:
            exp = expected_q[(q["source"], q["position"])]
            assert q["reason"].strip()
            assert not find_emails(q["raw"]) and not find_emails(q["reason"])
            if "raw" in exp:
                assert q["raw"] == redact_emails(exp["raw"]) and q["reason"] == redact_emails(exp["reason"])
            else:
                assert exp["reason"] in q["reason"]
        # every line accounted for: a row, a quarantine entry, or a duplicate of a kept row
        kept_keys = {tuple(r[c] for c in kind.key) for r in expected_rows}
        for r in parsed_rows:
            assert tuple(r[c] for c in kind.key) in kept_keys
        CASES["ingested_files"] += len(all_files)
        CASES["ingested_lines"] += sum(len(f.rows) for f in all_files)

        versions = {t: store.version(t) for t in (kind_name, QUARANTINE, "ingested_files")}
        again = ingest_kind(
            store, root, kind, validate=known_subscriber_validator(store) if kind_name == "uploads" else None
        )
        assert again.files_ingested == []
        assert {t: store.version(t) for t in versions} == versions


@settings(
    max_examples=6,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(models=st.lists(gen_deal(), min_size=1, max_size=4))
def test_ingest_deals_on_delta(models):
    """Deal files through ingest_deals: valid ones become deal and batch rows, each bad file
    exactly one quarantine row, and a deal_id defined twice is quarantined the second time."""
    with tempfile.TemporaryDirectory() as tmp:
        landing_dir, store = Path(tmp) / "landing", DeltaStore(str(Path(tmp) / "lake"))
        (landing_dir / "deals").mkdir(parents=True)
        for i, m in enumerate(models):
            (landing_dir / "deals" / f"{i:02d}.json").write_text(json.dumps(m.obj), encoding="utf-8")
        ingest_deals(store, FileRoot(str(landing_dir)))
        seen, exp_deals, exp_q = set(), [], set()
        for i, m in enumerate(models):
            path = f"deals/{i:02d}.json"
            if m.problems or m.expected_deal["deal_id"] in seen:
                exp_q.add(path)
            else:
                seen.add(m.expected_deal["deal_id"])
                exp_deals.append(m)
        deals = store.read("license_deals").to_pylist()
        assert [d["deal_id"] for d in deals] == [m.expected_deal["deal_id"] for m in exp_deals]
        batches = store.read("license_batches").to_pylist()
        assert len(batches) == sum(len(m.expected_batches) for m in exp_deals)
        q = store.read(QUARANTINE).to_pylist()
        assert {r["source"] for r in q} == exp_q and len(q) == len(exp_q)
        assert all(r["position"] == 0 and r["reason"].strip() for r in q)
        CASES["ingested_deal_files"] += len(models)


def test_a_subscriber_row_with_an_email_is_quarantined_without_the_email(tmp_path):
    """The one case the brief names: a malformed subscribers line carries an address."""
    (tmp_path / "landing" / "subscribers").mkdir(parents=True)
    (tmp_path / "landing" / "subscribers" / "s.csv").write_text(
        "subscriber_id,email,country,subscribed_at,cancelled_at,invited_at\n"
        "S1,jane.doe@example.com,US,2025-01-01T00:00:00,,\n"  # naive timestamp
        "S2,john@example.com,john@example.com,2025-01-01T00:00:00Z,,\n"  # an address in the country column
        "S3,x@example.com,US\n"
    )  # wrong field count
    store = DeltaStore(str(tmp_path / "lake"))
    ingest_kind(store, FileRoot(str(tmp_path / "landing")), LANDING_KINDS["subscribers"])
    q = sorted(store.read(QUARANTINE).to_pylist(), key=lambda r: r["position"])
    assert [r["position"] for r in q] == [2, 3, 4]
    assert q[0]["raw"] == f"S1,{EMAIL_PLACEHOLDER},US,2025-01-01T00:00:00,,"
    assert "has no UTC offset" in q[0]["reason"]
    assert q[1]["raw"] == f"S2,{EMAIL_PLACEHOLDER},{EMAIL_PLACEHOLDER},2025-01-01T00:00:00Z,,"
    assert EMAIL_PLACEHOLDER in q[1]["reason"] and "alpha-2" in q[1]["reason"]
    assert all(not find_emails(r["raw"] + r["reason"]) and "@" not in r["raw"] + r["reason"] for r in q)
    assert store.read("subscribers").num_rows == 0
