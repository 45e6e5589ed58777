"""Landing-file parsers: contract §2 (landing zone) and §3 (bad input -> quarantine).

Choices where the contract is silent are in docs/LANDING_RULES.md; tests name them.
"""

from __future__ import annotations

import copy
import json
import re
from datetime import UTC, datetime

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gopro_assets.domain.ingestion.landing import (
    BATCH_SCHEMA,
    DEAL_KIND,
    DEAL_SCHEMA,
    LANDING_KINDS,
    QUARANTINE_SCHEMA,
    DealParse,
    ParseResult,
    dedup,
    kind_for_path,
    parse_buyer_payments,
    parse_clip_exclusions,
    parse_consent_events,
    parse_deal,
    parse_payouts,
    parse_subscribers,
    parse_timestamp,
    parse_uploads,
    to_arrow,
)

UTC = UTC


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


# --------------------------------------------------------------------------- helpers

SUB_HEADER = "subscriber_id,email,country,subscribed_at,cancelled_at,invited_at"
SUB_OK = "S1,s1@example.com,US,2025-01-01T00:00:00Z,,2025-01-02T00:00:00Z"
SUB_OK2 = "S2,s2@example.com,US,2025-01-01T00:00:00Z,,"
PAY_HEADER = "payment_id,deal_id,batch_id,amount_cents,received_at"
PAY_OK = "P1,D1,B1,1000,2025-02-01T00:00:00Z"
PAYOUT_HEADER = "payout_id,subscriber_id,statement_month,amount_cents,paid_at"
PAYOUT_OK = "PO1,S1,2025-01,1500,2025-02-05T00:00:00Z"

CONSENT_OK = {"event_id": "E1", "subscriber_id": "S1", "event_at": "2025-01-03T00:00:00Z", "action": "opt_in"}
EXCL_OK = {
    "event_id": "X1",
    "subscriber_id": "S1",
    "clip_id": "C1",
    "event_at": "2025-01-04T00:00:00Z",
    "action": "exclude",
}
UPLOAD_OK = {
    "clip_id": "C1",
    "subscriber_id": "S1",
    "object_key": "S1/GX010042.MP4",
    "uploaded_at": "2025-01-05T12:00:00+01:00",
    "published": False,
    "activity": "surf",
    "mount": "helmet",
}


def csv_bytes(*lines: str, eol: str = "\n") -> bytes:
    return (eol.join(lines) + eol).encode("utf-8")


def with_fields(base: dict, **changes) -> str:
    """A JSON line: ``base`` with fields changed (value ``...`` removes the field)."""
    obj = dict(base)
    for k, v in changes.items():
        if v is ...:
            obj.pop(k, None)
        else:
            obj[k] = v
    return json.dumps(obj)


def jsonl(*lines: str) -> bytes:
    return ("\n".join(lines) + "\n").encode("utf-8")


def assert_one_bad(result: ParseResult, position: int, raw: str, reason: str, good_lines: list[int]) -> None:
    assert len(result.quarantine) == 1, result.quarantine
    q = result.quarantine[0]
    assert q["position"] == position
    assert q["raw"] == raw
    assert q["reason"].startswith(f"line {position}: "), q["reason"]
    assert reason in q["reason"], q["reason"]
    assert [r["_source_line"] for r in result.rows] == good_lines


def assert_whole_file(result: ParseResult, reason: str) -> dict:
    assert result.rows == []
    assert len(result.quarantine) == 1, result.quarantine
    q = result.quarantine[0]
    assert q["position"] == 0
    assert reason in q["reason"], q["reason"]
    return q


# --------------------------------------------------------------------------- timestamps


@pytest.mark.parametrize(
    "text, expected",
    [
        ("2025-03-01T10:00:00-08:00", utc(2025, 3, 1, 18, 0)),
        ("2025-03-01T10:00:00Z", utc(2025, 3, 1, 10, 0)),
        ("2025-03-01T10:00:00+00:00", utc(2025, 3, 1, 10, 0)),
        ("2025-03-01T10:00:00+05:30", utc(2025, 3, 1, 4, 30)),
        ("2025-03-01T23:30:00-01:00", utc(2025, 3, 2, 0, 30)),  # crosses the UTC day
        ("2025-03-01T10:00:00.250Z", utc(2025, 3, 1, 10, 0, 0, 250000)),
        ("2025-03-01T10:00:00.123456789Z", utc(2025, 3, 1, 10, 0, 0, 123456)),  # truncated to µs
        ("2025-03-01 10:00:00Z", utc(2025, 3, 1, 10, 0)),  # RFC 3339 space separator
        (" 2025-03-01T10:00:00Z ", utc(2025, 3, 1, 10, 0)),
    ],
)
def test_parse_timestamp_converts_to_utc(text, expected):
    got = parse_timestamp(text)
    assert got == expected
    assert got.tzinfo == UTC


@pytest.mark.parametrize(
    "text, message",
    [
        ("2025-03-01T10:00:00", "timestamp '2025-03-01T10:00:00' has no UTC offset"),
        ("2025-03-01", "has no UTC offset"),
        ("", "timestamp is empty"),
        ("yesterday", "is not ISO-8601"),
        ("2025-02-30T00:00:00Z", "is not ISO-8601"),
        ("2025-03-01T10:00:00z", "is not ISO-8601"),
        ("0001-01-01T00:00:00+01:00", "out of range in UTC"),
        ("９９９９-01-01T00:00:00Z", "is not ISO-8601"),
        (1740823200, "must be a string, got number"),
    ],
)
def test_parse_timestamp_rejects(text, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        parse_timestamp(text)


# --------------------------------------------------------------------------- subscribers (CSV)


def test_subscribers_valid_rows_bom_crlf_and_utc():
    data = b"\xef\xbb\xbf" + csv_bytes(
        SUB_HEADER,
        "S1,s1@example.com,US,2025-03-01T10:00:00-08:00,,2025-03-01T00:00:00Z",
        "",
        '"S2"," s2@example.com ",US,2025-01-01T00:00:00Z,2025-06-01T00:00:00+02:00,',
        eol="\r\n",
    )
    result = parse_subscribers("subscribers/2025-03-01.csv", data)
    assert result.quarantine == []
    assert result.rows == [
        {
            "subscriber_id": "S1",
            "email": "s1@example.com",
            "country": "US",
            "subscribed_at": utc(2025, 3, 1, 18, 0),
            "cancelled_at": None,
            "invited_at": utc(2025, 3, 1),
            "_source_path": "subscribers/2025-03-01.csv",
            "_source_line": 2,
        },
        {
            "subscriber_id": "S2",
            "email": "s2@example.com",  # trimmed
            "country": "US",
            "subscribed_at": utc(2025, 1, 1),
            "cancelled_at": utc(2025, 5, 31, 22, 0),
            "invited_at": None,
            "_source_path": "subscribers/2025-03-01.csv",
            "_source_line": 4,  # physical line: the blank line 3 is skipped but counted
        },
    ]
    table = to_arrow(result.rows, LANDING_KINDS["subscribers"].schema)
    assert table.schema == LANDING_KINDS["subscribers"].schema
    assert table.column("subscribed_at").to_pylist()[0] == utc(2025, 3, 1, 18, 0)


def test_csv_extra_header_columns_ignored_and_order_free():
    data = csv_bytes(
        "country,note,subscriber_id,invited_at,email,cancelled_at,subscribed_at",
        "US,vip,S9,,s9@example.com,,2025-01-01T00:00:00Z",
    )
    result = parse_subscribers("subscribers/a.csv", data)
    assert result.quarantine == []
    assert result.rows[0]["subscriber_id"] == "S9"
    assert "note" not in result.rows[0]


def test_csv_quoted_fields_and_spaces_after_commas():
    data = csv_bytes(
        PAY_HEADER, 'P1, "D:1", B1 , 250 ,2025-02-01T00:00:00Z', 'P2, "D,1", B1 , 250 ,2025-02-01T00:00:00Z'
    )
    result = parse_buyer_payments("buyer_payments/a.csv", data)
    assert result.rows[0]["deal_id"] == "D:1"
    assert result.rows[0]["batch_id"] == "B1"
    assert result.rows[0]["amount_cents"] == 250
    # the quoted comma is read as part of the cell, and then refused by the id rule
    assert [q["position"] for q in result.quarantine] == [3]
    assert "field 'deal_id' 'D,1' is not a valid id: it contains ','" in result.quarantine[0]["reason"]


@pytest.mark.parametrize(
    "bad, reason",
    [
        (
            "S3,s3@example.com,US,2025-03-01T10:00:00,,",
            "field 'subscribed_at' timestamp '2025-03-01T10:00:00' has no UTC offset",
        ),
        (
            "S3,s3@example.com,US,2025-03-01T10:00:00Z,2025-04-01,",
            "field 'cancelled_at' timestamp '2025-04-01' has no UTC offset",
        ),
        ("S3,s3@example.com,US,2025-03-01T10:00:00Z,,soon", "field 'invited_at' timestamp 'soon' is not ISO-8601"),
        ("S3,s3@example.com,US,,,", "field 'subscribed_at' is empty"),
        (",s3@example.com,US,2025-03-01T10:00:00Z,,", "field 'subscriber_id' is empty"),
        ("   ,s3@example.com,US,2025-03-01T10:00:00Z,,", "field 'subscriber_id' is empty"),
        ("S3,,US,2025-03-01T10:00:00Z,,", "field 'email' is empty"),
        ("S3,s3@example.com,us,2025-03-01T10:00:00Z,,", "field 'country' 'us' is not an ISO 3166-1 alpha-2 code"),
        ("S3,s3@example.com,USA,2025-03-01T10:00:00Z,,", "field 'country' 'USA' is not an ISO 3166-1 alpha-2 code"),
        ("S3,s3@example.com,US,2025-03-01T10:00:00Z,,,extra", "expected 6 fields, found 7"),
        ("S3,s3@example.com,US,2025-03-01T10:00:00Z", "expected 6 fields, found 4"),
        ('S3,"s3@example.com,US,2025-03-01T10:00:00Z,,', "malformed CSV line: unexpected end of data"),
        ('S3,"s3"x@example.com,US,2025-03-01T10:00:00Z,,', "malformed CSV line"),
    ],
)
def test_subscribers_bad_rows_are_quarantined(bad, reason):
    data = csv_bytes(SUB_HEADER, SUB_OK, bad, SUB_OK2)
    result = parse_subscribers("subscribers/a.csv", data)
    assert_one_bad(result, 3, bad, reason, good_lines=[2, 4])
    assert result.quarantine[0]["source"] == "subscribers/a.csv"


def test_row_with_several_problems_lists_them_all():
    bad = ",,us,2025-03-01T10:00:00,,"
    result = parse_subscribers("subscribers/a.csv", csv_bytes(SUB_HEADER, bad))
    reason = result.quarantine[0]["reason"]
    for part in ("'subscriber_id' is empty", "'email' is empty", "'country' 'us'", "has no UTC offset"):
        assert part in reason


@pytest.mark.parametrize(
    "data, reason",
    [
        (b"", "file has no CSV header"),
        (b"\r\n  \n\n", "file has no CSV header"),
        (csv_bytes("subscriber_id,email,country,subscribed_at,cancelled_at", SUB_OK), "missing column(s) invited_at"),
        (csv_bytes(SUB_OK, SUB_OK2), "missing column(s) subscriber_id"),  # no header line at all
        (csv_bytes(SUB_HEADER + ",email", SUB_OK + ",x"), "duplicate column(s) 'email'"),
        (csv_bytes('subscriber_id,"email', SUB_OK), "malformed CSV header"),
        (csv_bytes(SUB_HEADER, SUB_OK).replace(b"s1@", b"s\xff@"), "file is not valid UTF-8"),
        (SUB_HEADER.encode("utf-16"), "file is not valid UTF-8"),  # UTF-16 with its BOM
        (
            csv_bytes(SUB_HEADER, "S1,j\xe9r\xf4me@example.com,US,2025-01-01T00:00:00Z,,").decode().encode("latin-1"),
            "line 2",
        ),
    ],
)
def test_csv_whole_file_quarantined(data, reason):
    q = assert_whole_file(parse_subscribers("subscribers/bad.csv", data), reason)
    assert q["source"] == "subscribers/bad.csv"
    assert len(q["raw"]) <= 2100


def test_whole_file_raw_is_truncated():
    data = csv_bytes("no,header,here", *(["x,y,z"] * 1000))
    q = assert_whole_file(parse_subscribers("subscribers/big.csv", data), "missing column(s)")
    assert q["raw"].startswith("no,header,here\nx,y,z")
    assert "truncated" in q["raw"]
    assert len(q["raw"]) < 2100


def test_non_utf8_reason_names_byte_and_line():
    data = csv_bytes(SUB_HEADER, SUB_OK, "S2,\xe9@example.com,US,2025-01-01T00:00:00Z,,").replace(b"\xc3\xa9", b"\xe9")
    q = assert_whole_file(parse_subscribers("subscribers/latin1.csv", data), "not valid UTF-8")
    assert "0xe9" in q["reason"] and "line 3" in q["reason"]
    assert "\\xe9" in q["raw"]  # the bad byte is kept, escaped


# --------------------------------------------------------------------------- buyer payments and payouts (CSV)


@pytest.mark.parametrize(
    "amount, expected",
    [
        ("1000", 1000),
        ("0", 0),
        ("-2500", -2500),
        ("+7", 7),
        ("007", 7),
        ("9223372036854775807", 2**63 - 1),
        ("-9223372036854775808", -(2**63)),
        ("0" * 5000 + "42", 42),
        ("-000", 0),
    ],
)
def test_buyer_payment_amounts_accepted(amount, expected):
    data = csv_bytes(PAY_HEADER, f"P1,D1,B1,{amount},2025-02-01T00:00:00-05:00")
    result = parse_buyer_payments("buyer_payments/a.csv", data)
    assert result.quarantine == []
    assert result.rows[0]["amount_cents"] == expected
    assert result.rows[0]["received_at"] == utc(2025, 2, 1, 5, 0)


@pytest.mark.parametrize(
    "amount, reason",
    [
        ("12.50", "field 'amount_cents' '12.50' is not an integer number of cents"),
        ("1e3", "'1e3' is not an integer number of cents"),
        ('"1,000"', "'1,000' is not an integer number of cents"),
        ("1_000", "is not an integer number of cents"),
        ("١٢", "is not an integer number of cents"),
        ("ten", "is not an integer number of cents"),
        ("", "field 'amount_cents' is empty"),
        ("9223372036854775808", "does not fit in a 64-bit integer"),
        ("-9223372036854775809", "does not fit in a 64-bit integer"),
        ("1" * 5000, "does not fit in a 64-bit integer"),
    ],
)
def test_buyer_payment_bad_amounts(amount, reason):
    bad = f"P2,D1,B1,{amount},2025-02-01T00:00:00Z"
    data = csv_bytes(PAY_HEADER, PAY_OK, bad)
    assert_one_bad(parse_buyer_payments("buyer_payments/a.csv", data), 3, bad, reason, good_lines=[2])


@pytest.mark.parametrize(
    "bad, reason",
    [
        ("PO2,S1,2025-13,100,2025-02-05T00:00:00Z", "field 'statement_month' '2025-13' is not a month YYYY-MM"),
        ("PO2,S1,2025-00,100,2025-02-05T00:00:00Z", "'2025-00' is not a month YYYY-MM"),
        ("PO2,S1,2025-1,100,2025-02-05T00:00:00Z", "'2025-1' is not a month YYYY-MM"),
        ("PO2,S1,202501,100,2025-02-05T00:00:00Z", "'202501' is not a month YYYY-MM"),
        ("PO2,S1,2025-01-31,100,2025-02-05T00:00:00Z", "is not a month YYYY-MM"),
        ("PO2,S1,,100,2025-02-05T00:00:00Z", "field 'statement_month' is empty"),
        ("PO2,S1,2025-01,10.5,2025-02-05T00:00:00Z", "'10.5' is not an integer number of cents"),
        ("PO2,S1,2025-01,100,2025-02-05 00:00", "field 'paid_at' timestamp '2025-02-05 00:00' has no UTC offset"),
        ("PO2,,2025-01,100,2025-02-05T00:00:00Z", "field 'subscriber_id' is empty"),
    ],
)
def test_payout_bad_rows(bad, reason):
    data = csv_bytes(PAYOUT_HEADER, PAYOUT_OK, "", bad)
    assert_one_bad(parse_payouts("payouts/2025-02.csv", data), 4, bad, reason, good_lines=[2])


def test_payout_valid_row():
    result = parse_payouts(
        "payouts/2025-02.csv", csv_bytes(PAYOUT_HEADER, PAYOUT_OK, "PO2,S2,2025-12,-300,2026-01-05T00:00:00Z")
    )
    assert result.quarantine == []
    assert result.rows[0] == {
        "payout_id": "PO1",
        "subscriber_id": "S1",
        "statement_month": "2025-01",
        "amount_cents": 1500,
        "paid_at": utc(2025, 2, 5),
        "_source_path": "payouts/2025-02.csv",
        "_source_line": 2,
    }
    assert result.rows[1]["amount_cents"] == -300  # a reversal is kept (docs/LANDING_RULES.md)


# --------------------------------------------------------------------------- consent events (JSONL)


def test_consent_valid_rows_defaults_and_unknown_fields():
    data = jsonl(
        json.dumps({**CONSENT_OK, "excluded_buyers": ["b2", "b1", "b2"], "channel": "app"}),
        "",
        with_fields(CONSENT_OK, event_id="E2", action="opt_out", event_at="2025-01-10T09:00:00+09:00"),
        with_fields(CONSENT_OK, event_id="E3", excluded_buyers=None),
        with_fields(CONSENT_OK, event_id="E4", action="opt_out", excluded_buyers=[]),
    )
    result = parse_consent_events("consent_events/a.jsonl", data)
    assert result.quarantine == []
    assert [r["_source_line"] for r in result.rows] == [1, 3, 4, 5]
    first = result.rows[0]
    assert first == {
        "event_id": "E1",
        "subscriber_id": "S1",
        "event_at": utc(2025, 1, 3),
        "action": "opt_in",
        "excluded_buyers": ["b1", "b2"],  # deduplicated and sorted
        "_source_path": "consent_events/a.jsonl",
        "_source_line": 1,
    }
    assert result.rows[1]["excluded_buyers"] == []  # missing -> []
    assert result.rows[1]["event_at"] == utc(2025, 1, 10, 0, 0)
    assert result.rows[2]["excluded_buyers"] == []  # null -> []
    table = to_arrow(result.rows, LANDING_KINDS["consent_events"].schema)
    assert table.column("excluded_buyers").to_pylist() == [["b1", "b2"], [], [], []]


@pytest.mark.parametrize(
    "bad, reason",
    [
        ('{"event_id": "E9" "subscriber_id": "S1"}', "malformed JSON: Expecting ',' delimiter"),
        ("{not json", "malformed JSON"),
        ('{"event_id": "E9",', "malformed JSON"),
        ("[1, 2]", "expected a JSON object, got array"),
        ('"E9"', "expected a JSON object, got string"),
        ("null", "expected a JSON object, got null"),
        (with_fields(CONSENT_OK, event_id=...), "missing required field 'event_id'"),
        (with_fields(CONSENT_OK, subscriber_id=...), "missing required field 'subscriber_id'"),
        (with_fields(CONSENT_OK, event_at=...), "missing required field 'event_at'"),
        (with_fields(CONSENT_OK, action=...), "missing required field 'action'"),
        (with_fields(CONSENT_OK, event_id=42), "field 'event_id' must be a string, got number 42"),
        (with_fields(CONSENT_OK, subscriber_id=True), "field 'subscriber_id' must be a string, got boolean True"),
        (with_fields(CONSENT_OK, subscriber_id=""), "field 'subscriber_id' is empty"),
        (with_fields(CONSENT_OK, subscriber_id=None), "field 'subscriber_id' is null"),
        (
            with_fields(CONSENT_OK, event_at="2025-03-01T10:00:00"),
            "field 'event_at' timestamp '2025-03-01T10:00:00' has no UTC offset",
        ),
        (with_fields(CONSENT_OK, event_at=1740823200), "field 'event_at' timestamp must be a string, got number"),
        (with_fields(CONSENT_OK, action="maybe"), "unknown action 'maybe' (expected opt_in or opt_out)"),
        (with_fields(CONSENT_OK, action="OPT_IN"), "unknown action 'OPT_IN'"),
        (with_fields(CONSENT_OK, action=None), "field 'action' is null"),
        (
            with_fields(CONSENT_OK, excluded_buyers="acme-ai"),
            "field 'excluded_buyers' must be a list of strings, got string",
        ),
        (
            with_fields(CONSENT_OK, excluded_buyers=["acme-ai", 7]),
            "field 'excluded_buyers' item 1: must be a string, got number 7",
        ),
        (with_fields(CONSENT_OK, excluded_buyers=[""]), "field 'excluded_buyers' item 0: is empty"),
        (
            with_fields(CONSENT_OK, action="opt_out", excluded_buyers=["acme-ai"]),
            "given on an opt_out (excluded_buyers is only allowed on opt_in)",
        ),
        ('{"event_id": "E9", "event_id": "E10", "subscriber_id": "S1"}', "malformed JSON: duplicate key 'event_id'"),
        ('{"event_id": "E9", "x": NaN}', "malformed JSON: NaN is not valid JSON"),
        (
            '{"event_id": "\\ud800", "subscriber_id": "S1", "event_at": "2025-01-03T00:00:00Z", "action": "opt_in"}',
            "unpaired UTF-16 surrogate",
        ),
        ("[" * 100000, "malformed JSON"),
    ],
    ids=lambda v: v[:40] if isinstance(v, str) else None,
)
def test_consent_bad_lines(bad, reason):
    data = jsonl(json.dumps(CONSENT_OK), bad, with_fields(CONSENT_OK, event_id="E2"))
    result = parse_consent_events("consent_events/a.jsonl", data)
    assert_one_bad(result, 2, bad, reason, good_lines=[1, 3])
    to_arrow(result.quarantine, QUARANTINE_SCHEMA)  # reasons and raw are always storable


def test_jsonl_crlf_bom_and_blank_lines():
    data = (
        b"\xef\xbb\xbf"
        + (json.dumps(CONSENT_OK) + "\r\n\r\n  \r\n" + with_fields(CONSENT_OK, event_id="E2") + "\r\n").encode()
    )
    result = parse_consent_events("consent_events/a.jsonl", data)
    assert result.quarantine == []
    assert [r["_source_line"] for r in result.rows] == [1, 4]


def test_empty_jsonl_file_is_fine():
    assert parse_consent_events("consent_events/empty.jsonl", b"") == ParseResult([], [])


def test_jsonl_non_utf8_quarantines_whole_file():
    data = jsonl(json.dumps(CONSENT_OK)) + b'{"event_id": "\xff"}\n'
    assert_whole_file(parse_consent_events("consent_events/a.jsonl", data), "file is not valid UTF-8")


# --------------------------------------------------------------------------- clip exclusions (JSONL)


def test_clip_exclusions_valid():
    data = jsonl(
        json.dumps(EXCL_OK), with_fields(EXCL_OK, event_id="X2", action="include", event_at="2025-01-04T01:00:00-03:00")
    )
    result = parse_clip_exclusions("clip_exclusions/a.jsonl", data)
    assert result.quarantine == []
    assert [(r["action"], r["event_at"]) for r in result.rows] == [
        ("exclude", utc(2025, 1, 4)),
        ("include", utc(2025, 1, 4, 4, 0)),
    ]
    assert to_arrow(result.rows, LANDING_KINDS["clip_exclusions"].schema).num_rows == 2


@pytest.mark.parametrize(
    "bad, reason",
    [
        (with_fields(EXCL_OK, action="delete"), "unknown action 'delete' (expected exclude or include)"),
        (with_fields(EXCL_OK, clip_id=...), "missing required field 'clip_id'"),
        (with_fields(EXCL_OK, clip_id=123), "field 'clip_id' must be a string, got number 123"),
        (with_fields(EXCL_OK, event_at="2025-01-04"), "has no UTC offset"),
    ],
)
def test_clip_exclusions_bad_lines(bad, reason):
    data = jsonl(json.dumps(EXCL_OK), "", bad)
    assert_one_bad(parse_clip_exclusions("clip_exclusions/a.jsonl", data), 3, bad, reason, good_lines=[1])


# --------------------------------------------------------------------------- uploads (JSONL)


def test_uploads_valid_and_optional_fields():
    data = jsonl(
        json.dumps(UPLOAD_OK),
        with_fields(UPLOAD_OK, clip_id="C2", activity=None, mount=None, published=True),
        with_fields(UPLOAD_OK, clip_id="C3", activity=..., mount=...),
        with_fields(UPLOAD_OK, clip_id="C4", activity="  ", object_key="a..b/./x.mp4"),
    )
    result = parse_uploads("uploads/a.jsonl", data)
    assert result.quarantine == []
    assert result.rows[0] == {
        "clip_id": "C1",
        "subscriber_id": "S1",
        "object_key": "S1/GX010042.MP4",
        "uploaded_at": utc(2025, 1, 5, 11, 0),
        "published": False,
        "activity": "surf",
        "mount": "helmet",
        "_source_path": "uploads/a.jsonl",
        "_source_line": 1,
    }
    assert [(r["activity"], r["mount"], r["published"]) for r in result.rows[1:]] == [
        (None, None, True),
        (None, None, False),
        (None, "helmet", False),
    ]
    assert result.rows[3]["object_key"] == "a..b/./x.mp4"
    table = to_arrow(result.rows, LANDING_KINDS["uploads"].schema)
    assert table.column("published").type == pa.bool_()


@pytest.mark.parametrize(
    "object_key",
    [
        "/etc/passwd",
        "../secret.mp4",
        "a/../../b.mp4",
        "a/..",
        "a\\b.mp4",
        "..\\x.mp4",
        "",
        "   ",
        "C:/x.mp4",
        "a\x00.mp4",
    ],
)
def test_uploads_object_key_outside_footage(object_key):
    bad = with_fields(UPLOAD_OK, clip_id="C9", object_key=object_key)
    data = jsonl(json.dumps(UPLOAD_OK), bad)
    result = parse_uploads("uploads/a.jsonl", data)
    assert_one_bad(result, 2, bad, "is absolute or leaves footage/", good_lines=[1])
    assert "field 'object_key'" in result.quarantine[0]["reason"]


@pytest.mark.parametrize(
    "change, reason",
    [
        ({"published": "true"}, "field 'published' must be a JSON boolean (true or false), got string 'true'"),
        ({"published": 1}, "field 'published' must be a JSON boolean (true or false), got number 1"),
        ({"published": None}, "field 'published' is null"),
        ({"published": ...}, "missing required field 'published'"),
        ({"activity": 5}, "field 'activity' must be a string, got number 5"),
        ({"mount": ["drone"]}, "field 'mount' must be a string, got array"),
        ({"object_key": 17}, "field 'object_key' must be a string, got number 17"),
        (
            {"uploaded_at": "2025-01-05T12:00:00"},
            "field 'uploaded_at' timestamp '2025-01-05T12:00:00' has no UTC offset",
        ),
        ({"clip_id": " "}, "field 'clip_id' is empty"),
    ],
)
def test_uploads_bad_lines(change, reason):
    bad = with_fields(UPLOAD_OK, **change)
    data = jsonl(bad, with_fields(UPLOAD_OK, clip_id="C2"))
    assert_one_bad(parse_uploads("uploads/a.jsonl", data), 1, bad, reason, good_lines=[2])


def test_ids_are_trimmed():
    result = parse_uploads("uploads/a.jsonl", jsonl(with_fields(UPLOAD_OK, clip_id=" C1 ", subscriber_id="S1\t")))
    assert (result.rows[0]["clip_id"], result.rows[0]["subscriber_id"]) == ("C1", "S1")


# --------------------------------------------------------------------------- dedup


def test_dedup_subscribers_last_row_wins_across_files():
    a = parse_subscribers(
        "subscribers/2025-01-01.csv",
        csv_bytes(SUB_HEADER, SUB_OK, SUB_OK2, "S1,new@example.com,US,2025-01-01T00:00:00Z,,2025-01-02T00:00:00Z"),
    )
    b = parse_subscribers(
        "subscribers/2025-01-02.csv",
        csv_bytes(SUB_HEADER, "S2,s2@example.com,US,2025-01-01T00:00:00Z,2025-03-01T00:00:00Z,"),
    )
    rows = dedup(a.rows + b.rows, "subscribers")
    assert [(r["subscriber_id"], r["_source_path"], r["_source_line"]) for r in rows] == [
        ("S1", "subscribers/2025-01-01.csv", 4),
        ("S2", "subscribers/2025-01-02.csv", 2),
    ]
    assert rows[0]["email"] == "new@example.com"
    assert rows[1]["cancelled_at"] == utc(2025, 3, 1)


def test_dedup_consent_first_occurrence_wins():
    data = jsonl(
        json.dumps(CONSENT_OK),
        with_fields(CONSENT_OK, event_id="E2", action="opt_out"),
        with_fields(CONSENT_OK, action="opt_out"),  # E1 again: ignored
    )
    later = jsonl(with_fields(CONSENT_OK, event_id="E2", action="opt_in"))
    rows = (
        parse_consent_events("consent_events/a.jsonl", data).rows
        + parse_consent_events("consent_events/b.jsonl", later).rows
    )
    kept = dedup(rows, LANDING_KINDS["consent_events"])
    assert [(r["event_id"], r["action"], r["_source_path"]) for r in kept] == [
        ("E1", "opt_in", "consent_events/a.jsonl"),
        ("E2", "opt_out", "consent_events/a.jsonl"),
    ]


@pytest.mark.parametrize(
    "name, key, keep",
    [
        ("subscribers", ("subscriber_id",), "last"),
        ("consent_events", ("event_id",), "first"),
        ("clip_exclusions", ("event_id",), "first"),
        ("uploads", ("clip_id",), "first"),
        ("buyer_payments", ("_source_path", "_source_line"), "first"),
        ("payouts", ("_source_path", "_source_line"), "first"),
    ],
)
def test_landing_kinds(name, key, keep):
    kind = LANDING_KINDS[name]
    assert (kind.name, kind.key, kind.keep) == (name, key, keep)
    assert kind.prefix == f"{name}/"
    assert kind.schema.field("_source_path").type == pa.string()
    assert kind.schema.field("_source_line").type == pa.int64()
    assert to_arrow([], kind.schema).schema == kind.schema
    assert kind_for_path(f"{name}/2025/01/x{kind.suffixes[0].upper()}") is kind


def test_kind_for_path():
    assert kind_for_path("deals/D1.json") is DEAL_KIND
    assert kind_for_path("consent_events/a.csv") is None
    assert kind_for_path("footage/a.MP4") is None
    assert set(LANDING_KINDS) == {
        "subscribers",
        "consent_events",
        "clip_exclusions",
        "uploads",
        "buyer_payments",
        "payouts",
    }


# --------------------------------------------------------------------------- deals

BASE_DEAL = {
    "deal_id": "D-2026-001",
    "buyer_id": "acme-ai",
    "buyer_name": "Acme AI",
    "signed_at": "2026-01-05T00:00:00Z",
    "pricing": {"model": "per_minute", "tier_prices_cents": {"aerial": 400, "uhd": 300, "hd": 200, "sd": 100}},
    "criteria": {
        "min_short_side_px": 1080,
        "min_fps": 24,
        "activities": ["surf", "ski"],
        "unpublished_only": True,
        "min_duration_s": 5,
    },
    "batches": [
        {"batch_id": "B1", "cutoff_at": "2026-01-31T23:59:59Z", "max_minutes": 600},
        {"batch_id": "B2", "cutoff_at": "2026-02-28T18:00:00-08:00"},
    ],
}
FLAT_DEAL = {
    "deal_id": "D-2026-002",
    "buyer_id": "beta-labs",
    "buyer_name": "Beta Labs",
    "signed_at": "2026-01-10T09:00:00+01:00",
    "pricing": {"model": "flat_fee"},
    "batches": [{"batch_id": "F1", "cutoff_at": "2026-01-31T00:00:00Z", "fee_cents": 250000, "max_minutes": None}],
}


def deal_bytes(obj) -> bytes:
    return json.dumps(obj, indent=2).encode()


def test_deal_per_minute_example_from_contract():
    result = parse_deal("deals/D-2026-001.json", deal_bytes(BASE_DEAL))
    assert result.quarantine == []
    assert result.deal == {
        "deal_id": "D-2026-001",
        "buyer_id": "acme-ai",
        "buyer_name": "Acme AI",
        "signed_at": utc(2026, 1, 5),
        "pricing_model": "per_minute",
        "price_aerial_cents": 400,
        "price_uhd_cents": 300,
        "price_hd_cents": 200,
        "price_sd_cents": 100,
        "min_short_side_px": 1080,
        "min_fps": 24.0,
        "activities": ["ski", "surf"],
        "unpublished_only": True,
        "min_duration_s": 5.0,
        # v2 keys the deal does not use: no filter, no bonus (tests/test_deals_v2.py)
        "requires_gps": None,
        "requires_imu": None,
        "camera_models": None,
        "location_cells": None,
        "whole_recordings": None,
        "sensor_bonus_cents": None,
        "_source_path": "deals/D-2026-001.json",
        "_source_line": 0,
    }
    assert result.batches == [
        {
            "deal_id": "D-2026-001",
            "batch_id": "B1",
            "cutoff_at": utc(2026, 1, 31, 23, 59, 59),
            "max_minutes": 600,
            "fee_cents": None,
            "revenue_month": "2026-01",
            "_source_path": "deals/D-2026-001.json",
            "_source_line": 0,
        },
        {
            "deal_id": "D-2026-001",
            "batch_id": "B2",
            "cutoff_at": utc(2026, 3, 1, 2, 0),
            "max_minutes": None,
            # R10: the UTC month of the cutoff, which is March in UTC
            "fee_cents": None,
            "revenue_month": "2026-03",
            "_source_path": "deals/D-2026-001.json",
            "_source_line": 0,
        },
    ]
    assert to_arrow([result.deal], DEAL_SCHEMA).schema == DEAL_SCHEMA
    assert to_arrow(result.batches, BATCH_SCHEMA).num_rows == 2


def test_deal_flat_fee_without_criteria():
    result = parse_deal("deals/D-2026-002.json", deal_bytes(FLAT_DEAL))
    assert result.quarantine == []
    deal = result.deal
    assert deal["pricing_model"] == "flat_fee"
    assert deal["signed_at"] == utc(2026, 1, 10, 8, 0)
    for col in (
        "price_aerial_cents",
        "price_uhd_cents",
        "price_hd_cents",
        "price_sd_cents",
        "min_short_side_px",
        "min_fps",
        "activities",
        "unpublished_only",
        "min_duration_s",
        "requires_gps",
        "requires_imu",
        "camera_models",
        "location_cells",
        "whole_recordings",
        "sensor_bonus_cents",
    ):
        assert deal[col] is None, col
    assert result.batches[0]["fee_cents"] == 250000
    assert result.batches[0]["max_minutes"] is None


def test_deal_missing_tier_and_null_criteria():
    obj = copy.deepcopy(BASE_DEAL)
    obj["pricing"]["tier_prices_cents"] = {"hd": 0, "sd": 100}
    obj["criteria"] = {"activities": None, "min_fps": None, "unpublished_only": False, "min_duration_s": 2.5}
    result = parse_deal("deals/d.json", deal_bytes(obj))
    assert result.quarantine == []
    d = result.deal
    assert (d["price_aerial_cents"], d["price_uhd_cents"], d["price_hd_cents"], d["price_sd_cents"]) == (
        None,
        None,
        0,
        100,
    )
    assert (d["activities"], d["min_fps"], d["unpublished_only"], d["min_duration_s"]) == (None, None, False, 2.5)


def _set(path: str, value):
    """A mutation of BASE_DEAL: set (or, with ``...``, delete) the value at a dotted path."""

    def mutate(obj):
        *parents, last = path.split(".")
        target = obj
        for p in parents:
            target = target[int(p)] if isinstance(target, list) else target[p]
        if isinstance(target, list):
            last = int(last)
        if value is ...:
            del target[last]
        else:
            target[last] = value
        return obj

    return mutate


@pytest.mark.parametrize(
    "mutate, reason",
    [
        (_set("pricing.model", "auction"), "unknown pricing.model 'auction' (expected per_minute or flat_fee)"),
        (_set("pricing.model", ...), "missing required field 'pricing.model'"),
        (_set("pricing", ...), "missing required field 'pricing'"),
        (_set("pricing", "per_minute"), "field 'pricing' must be an object"),
        (_set("pricing.tier_prices_cents", ...), "per_minute pricing needs pricing.tier_prices_cents"),
        (_set("pricing.tier_prices_cents", {}), "tier_prices_cents is empty"),
        (_set("pricing.tier_prices_cents", [400, 300]), "pricing.tier_prices_cents must be an object, got array"),
        (_set("pricing.tier_prices_cents.4k", 500), "unknown tier(s) '4k' in pricing.tier_prices_cents"),
        (_set("pricing.tier_prices_cents.hd", -1), "pricing.tier_prices_cents.hd must be a non-negative integer"),
        (_set("pricing.tier_prices_cents.hd", 2.5), "pricing.tier_prices_cents.hd must be an integer, got number 2.5"),
        (_set("pricing.tier_prices_cents.hd", 200.0), "pricing.tier_prices_cents.hd must be an integer"),
        (_set("pricing.tier_prices_cents.hd", True), "pricing.tier_prices_cents.hd must be an integer, got boolean"),
        (_set("pricing.tier_prices_cents.hd", "200"), "pricing.tier_prices_cents.hd must be an integer, got string"),
        (_set("pricing.tier_prices_cents.hd", 2**63), "fits in 64 bits"),
        (_set("pricing.currency", "EUR"), "unknown key(s) 'currency' in pricing"),
        (_set("batches.0.fee_cents", 100), "batches[0].fee_cents is not allowed under per_minute pricing"),
        (_set("batches", []), "batches is empty"),
        (_set("batches", ...), "missing required field 'batches'"),
        (_set("batches", {"batch_id": "B1"}), "field 'batches' must be a list"),
        (_set("batches.1", "B2"), "batches[1] must be an object, got string"),
        (_set("batches.1.batch_id", "B1"), "batches[1].batch_id 'B1' is not unique within the deal"),
        (_set("batches.1.batch_id", ...), "missing required field 'batches[1].batch_id'"),
        (
            _set("batches.0.cutoff_at", "2026-01-31T23:59:59"),
            "field 'batches[0].cutoff_at' timestamp '2026-01-31T23:59:59' has no UTC offset",
        ),
        (_set("batches.0.cutoff_at", ...), "missing required field 'batches[0].cutoff_at'"),
        (_set("batches.0.max_minutes", 0), "batches[0].max_minutes must be an integer >= 1"),
        (_set("batches.0.max_minutes", "600"), "batches[0].max_minutes must be an integer, got string"),
        (_set("batches.0.max_minute", 60), "unknown key(s) 'max_minute' in batches[0]"),
        (_set("criteria.colour", "red"), "unknown criteria key(s) 'colour'"),
        (_set("criteria", ["surf"]), "field 'criteria' must be an object"),
        (_set("criteria.activities", []), "criteria.activities is an empty list"),
        (_set("criteria.activities", "surf"), "criteria.activities must be a list of strings or null"),
        (_set("criteria.activities", ["surf", 3]), "criteria.activities item 1: must be a string"),
        (_set("criteria.unpublished_only", "yes"), "criteria.unpublished_only must be true, false or null"),
        (_set("criteria.min_fps", "24"), "criteria.min_fps must be a number, got string"),
        (_set("criteria.min_fps", -1), "criteria.min_fps must be a finite non-negative number"),
        (_set("criteria.min_duration_s", 10**400), "criteria.min_duration_s must be a finite non-negative number"),
        (_set("criteria.min_short_side_px", 1080.5), "criteria.min_short_side_px must be an integer"),
        (_set("criteria.min_short_side_px", False), "criteria.min_short_side_px must be an integer, got boolean"),
        (_set("criterias", {}), "unknown key(s) 'criterias' in the deal"),
        (_set("signed_at", "2026-01-05"), "field 'signed_at' timestamp '2026-01-05' has no UTC offset"),
        (_set("deal_id", ...), "missing required field 'deal_id'"),
        (_set("deal_id", 2026001), "field 'deal_id' must be a string, got number 2026001"),
        (_set("buyer_id", ""), "field 'buyer_id' is empty"),
        (_set("buyer_name", None), "field 'buyer_name' is null"),
    ],
)
def test_deal_invalid_quarantines_whole_file(mutate, reason):
    text = json.dumps(mutate(copy.deepcopy(BASE_DEAL)), indent=2)
    result = parse_deal("deals/bad.json", text.encode())
    assert result.deal is None and result.batches == []
    assert len(result.quarantine) == 1
    q = result.quarantine[0]
    assert (q["source"], q["position"], q["raw"]) == ("deals/bad.json", 0, text)
    assert q["reason"].startswith("invalid deal, the whole file is quarantined: ")
    assert reason in q["reason"], q["reason"]
    to_arrow(result.quarantine, QUARANTINE_SCHEMA)


@pytest.mark.parametrize(
    "mutate, reason",
    [
        (_set("batches.0.fee_cents", ...), "batches[0] needs fee_cents (an integer >= 0) under flat_fee pricing"),
        (_set("batches.0.fee_cents", None), "batches[0] needs fee_cents"),
        (_set("batches.0.fee_cents", -5), "batches[0].fee_cents must be a non-negative integer"),
        (_set("batches.0.fee_cents", 99.99), "batches[0].fee_cents must be an integer, got number 99.99"),
        (_set("pricing.tier_prices_cents", {"hd": 1}), "tier_prices_cents is not allowed for flat_fee pricing"),
    ],
)
def test_flat_fee_deal_validation(mutate, reason):
    text = json.dumps(mutate(copy.deepcopy(FLAT_DEAL)))
    result = parse_deal("deals/flat.json", text.encode())
    assert result.deal is None
    assert reason in result.quarantine[0]["reason"], result.quarantine[0]["reason"]


def test_flat_fee_zero_fee_is_allowed():
    result = parse_deal("deals/flat.json", deal_bytes(_set("batches.0.fee_cents", 0)(copy.deepcopy(FLAT_DEAL))))
    assert result.quarantine == [] and result.batches[0]["fee_cents"] == 0


@pytest.mark.parametrize(
    "data, reason",
    [
        (b"", "deal file is empty"),
        (b"  \n", "deal file is empty"),
        (b'{"deal_id": "D1",', "malformed JSON"),
        (b"[]", "expected a JSON object, got array"),
        (b'{"deal_id": "D1", "deal_id": "D2"}', "duplicate key 'deal_id'"),
        (b'{"deal_id": NaN}', "NaN is not valid JSON"),
        (b'{"deal_id": "D\xff"}', "file is not valid UTF-8"),
        (b"{}", "missing required field 'deal_id'"),
    ],
)
def test_deal_file_level_errors(data, reason):
    result = parse_deal("deals/x.json", data)
    assert result.deal is None and result.batches == []
    assert len(result.quarantine) == 1 and result.quarantine[0]["position"] == 0
    assert reason in result.quarantine[0]["reason"], result.quarantine[0]["reason"]


def test_deal_reports_every_problem_and_truncates_raw():
    obj = copy.deepcopy(BASE_DEAL)
    obj["pricing"]["model"] = "auction"
    obj["criteria"]["colour"] = "red"
    obj["batches"] = [{"batch_id": f"B{i}", "cutoff_at": "2026-01-31T00:00:00Z"} for i in range(200)] + [
        {"batch_id": "B0", "cutoff_at": "x"}
    ]
    text = json.dumps(obj)
    q = parse_deal("deals/big.json", text.encode()).quarantine[0]
    for part in (
        "unknown pricing.model 'auction'",
        "unknown criteria key(s) 'colour'",
        "'B0' is not unique",
        "timestamp 'x'",
    ):
        assert part in q["reason"]
    assert q["raw"].startswith(text[:2000]) and "truncated" in q["raw"]


# --------------------------------------------------------------------------- nothing is lost (property)

CSV_PARSERS = {
    "subscribers": (parse_subscribers, SUB_HEADER, [SUB_OK, SUB_OK2]),
    "buyer_payments": (parse_buyer_payments, PAY_HEADER, [PAY_OK]),
    "payouts": (parse_payouts, PAYOUT_HEADER, [PAYOUT_OK]),
}
JSONL_PARSERS = {
    "consent_events": (parse_consent_events, [json.dumps(CONSENT_OK), with_fields(CONSENT_OK, action="opt_out")]),
    "clip_exclusions": (parse_clip_exclusions, [json.dumps(EXCL_OK)]),
    "uploads": (parse_uploads, [json.dumps(UPLOAD_OK)]),
}

_fragments = st.sampled_from(
    [
        '"',
        ",",
        "\\",
        "{",
        "}",
        "[",
        "]",
        ":",
        "null",
        "true",
        "NaN",
        "\ufeff",
        "\x00",
        "\t",
        " ",
        "é",
        "\ud7ff",
        "2025-01-01T00:00:00",
        "Z",
        "+01:00",
        "-1",
        "1e3",
        "..",
        "/",
        '\\"',
        "\\ud800",
        "opt_in",
        "exclude",
        "\x0c",
        "\u2028",
    ]
)


def _mutated_line(samples: list[str]):
    """A line built from a valid sample with random edits, or random text."""
    edit = st.tuples(st.sampled_from(samples), st.integers(0, 200), st.integers(0, 8), st.lists(_fragments, max_size=3))
    return st.one_of(
        st.sampled_from(samples),
        edit.map(lambda t: t[0][: t[1]] + "".join(t[3]) + t[0][t[1] + t[2] :]),
        st.text(max_size=40),
        st.just(""),
        st.just("  \t"),
    )


def _file(samples: list[str], header: str | None):
    lines = st.lists(_mutated_line(samples), max_size=12)
    eol = st.sampled_from(["\n", "\r\n", "\r"])
    head = st.one_of(st.just(header), _mutated_line([header])) if header else st.just(None)
    bom = st.sampled_from([b"", b"\xef\xbb\xbf"])

    def build(parts):
        h, body, sep, b, final = parts
        all_lines = ([h] if h is not None else []) + body
        text = sep.join(all_lines) + (sep if final else "")
        return b + text.encode("utf-8", errors="surrogatepass")

    return st.tuples(head, lines, eol, bom, st.booleans()).map(build)


def _nonblank_line_numbers(data: bytes) -> tuple[list[str], list[int]] | None:
    """The file's lines and the 1-based numbers of its non-blank ones (None: not UTF-8)."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return None
    lines = re.split(r"\r\n|\r|\n", text)
    if lines and lines[-1] == "":
        lines.pop()
    return lines, [i + 1 for i, line in enumerate(lines) if line.strip(" \t")]


def _check_nothing_lost(result: ParseResult, data: bytes, schema: pa.Schema, has_header: bool, path: str) -> None:
    # every output is storable with the declared schemas
    to_arrow(result.rows, schema)
    to_arrow(result.quarantine, QUARANTINE_SCHEMA)
    assert all(q["source"] == path for q in result.quarantine)
    for row in result.rows:
        assert row["_source_path"] == path
        for value in row.values():
            if isinstance(value, datetime):
                assert value.utcoffset().total_seconds() == 0
    decoded = _nonblank_line_numbers(data)
    whole = [q for q in result.quarantine if q["position"] == 0]
    if whole:
        # the whole file quarantined exactly once, nothing else
        assert len(result.quarantine) == 1 and result.rows == []
        return
    assert decoded is not None, "non-UTF-8 input must quarantine the whole file"
    lines, nonblank = decoded
    expected = nonblank[1:] if has_header else nonblank
    seen = sorted([r["_source_line"] for r in result.rows] + [q["position"] for q in result.quarantine])
    assert seen == expected  # each non-blank data line exactly once: a row or a quarantine entry
    for q in result.quarantine:
        assert q["raw"] == lines[q["position"] - 1]
        assert q["reason"].startswith(f"line {q['position']}: ")


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(name=st.sampled_from(sorted(CSV_PARSERS)), data=st.data())
def test_csv_parsers_lose_nothing(name, data):
    parse, header, samples = CSV_PARSERS[name]
    raw = data.draw(st.one_of(st.binary(max_size=300), _file(samples, header)))
    path = f"{name}/fuzz.csv"
    result = parse(path, raw)
    _check_nothing_lost(result, raw, LANDING_KINDS[name].schema, has_header=True, path=path)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(name=st.sampled_from(sorted(JSONL_PARSERS)), data=st.data())
def test_jsonl_parsers_lose_nothing(name, data):
    parse, samples = JSONL_PARSERS[name]
    raw = data.draw(st.one_of(st.binary(max_size=300), _file(samples, None)))
    path = f"{name}/fuzz.jsonl"
    result = parse(path, raw)
    _check_nothing_lost(result, raw, LANDING_KINDS[name].schema, has_header=False, path=path)


def _deal_values():
    leaf = st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.floats(allow_nan=False),
        st.text(max_size=8),
        st.sampled_from(["2026-01-01T00:00:00Z", "2026-01-01T00:00:00", "per_minute", "flat_fee", "B1"]),
    )
    return st.recursive(
        leaf,
        lambda kids: st.one_of(st.lists(kids, max_size=3), st.dictionaries(st.text(max_size=6), kids, max_size=3)),
        max_leaves=8,
    )


@st.composite
def _deal_files(draw):
    choice = draw(st.integers(0, 2))
    if choice == 0:
        return draw(st.binary(max_size=300))
    obj = copy.deepcopy(draw(st.sampled_from([BASE_DEAL, FLAT_DEAL])))
    for _ in range(draw(st.integers(0 if choice == 1 else 1, 3))):
        # replace a random (possibly nested) value with a random JSON value
        target = obj
        while True:
            keys = list(target.keys()) if isinstance(target, dict) else list(range(len(target)))
            if not keys:
                break
            key = draw(st.sampled_from(keys))
            if isinstance(target[key], (dict, list)) and draw(st.booleans()):
                target = target[key]
                continue
            target[key] = draw(_deal_values())
            break
    return json.dumps(obj).encode()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(raw=_deal_files())
def test_deal_parser_never_raises(raw):
    result = parse_deal("deals/fuzz.json", raw)
    assert isinstance(result, DealParse)
    if result.deal is None:
        assert result.batches == []
        assert len(result.quarantine) == 1 and result.quarantine[0]["position"] == 0
        to_arrow(result.quarantine, QUARANTINE_SCHEMA)
    else:
        assert result.quarantine == [] and result.batches
        to_arrow([result.deal], DEAL_SCHEMA)
        to_arrow(result.batches, BATCH_SCHEMA)
        assert len({b["batch_id"] for b in result.batches}) == len(result.batches)
        assert all(b["deal_id"] == result.deal["deal_id"] for b in result.batches)
