"""Identifiers from the landing zone follow one documented pattern (docs/LANDING_RULES.md):
1 to 128 ASCII letters, digits, ``-``, ``_``, ``.`` or ``:``. A row with any other id is
bad input and goes to ``quarantine_rows`` with a readable reason (contract §3); an id of
the pattern comes through ingestion unchanged."""

from __future__ import annotations

import csv
import io
import json
import re
import tempfile
from pathlib import Path

import pyarrow.compute as pc
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gopro_assets.domain.ingestion import tables as decl
from gopro_assets.domain.ingestion.ingest import QUARANTINE, ingest_deals, ingest_kind
from gopro_assets.domain.ingestion.landing import LANDING_KINDS, parse_consent_events, parse_deal
from gopro_assets.domain.tables import ID_PATTERN
from gopro_assets.lake.delta_store import DeltaStore
from gopro_assets.lake.storage import FileRoot

# The documented pattern, written out (the code's constant must say the same).
ID_RE = re.compile(r"[A-Za-z0-9_.:-]{1,128}")
SUB_HEADER = "subscriber_id,email,country,subscribed_at,cancelled_at,invited_at"


def test_the_pattern_is_the_documented_one():
    assert ID_RE.pattern == ID_PATTERN
    doc = (Path(__file__).parents[1] / "docs" / "LANDING_RULES.md").read_text()
    assert f"`{ID_PATTERN}`" in doc


def test_every_landing_id_column_is_declared_with_the_id_kind():
    """subscriber, clip, deal, batch, buyer, event, payment and payout ids."""
    id_names = {"subscriber_id", "clip_id", "deal_id", "batch_id", "buyer_id", "event_id", "payment_id", "payout_id"}
    declared = {
        (t.name, c.name): c.kind for t in (*decl.LANDING_TABLES, decl.LICENSE_DEALS) for c in t if c.name in id_names
    }
    assert declared and all(kind == "id" for kind in declared.values()), declared
    assert decl.LICENSE_BATCHES["batch_id"].kind == "id"
    assert decl.CONSENT_EVENTS["excluded_buyers"].kind == "id_list"
    assert all(c.pattern == ID_PATTERN for t in decl.TABLES.values() for c in t if c.kind in ("id", "id_list"))


def test_a_subscriber_with_a_formula_id_is_quarantined_with_the_reason(tmp_path):
    """Issue 12: subscriber ``=1+1`` used to be ingested, earn, and land in the payout CSV."""
    landing = tmp_path / "landing"
    (landing / "subscribers").mkdir(parents=True)
    (landing / "subscribers" / "s.csv").write_text(
        f"{SUB_HEADER}\n"
        "s01,s01@example.com,US,2025-01-01T00:00:00Z,,2025-01-02T00:00:00Z\n"
        "=1+1,s02@example.com,US,2025-01-01T00:00:00Z,,2025-01-02T00:00:00Z\n"
    )
    store = DeltaStore(str(tmp_path / "lake"))
    report = ingest_kind(store, FileRoot(str(landing)), LANDING_KINDS["subscribers"])
    assert (report.rows, report.quarantined) == (1, 1)  # the run goes on with the good row
    assert store.read("subscribers").column("subscriber_id").to_pylist() == ["s01"]
    [q] = store.read(QUARANTINE).to_pylist()
    assert (q["source"], q["position"]) == ("subscribers/s.csv", 3)
    assert q["raw"].startswith("=1+1,")
    assert q["reason"] == (
        "line 3: field 'subscriber_id' '=1+1' is not a valid id: it contains '=' "
        "(an id is 1 to 128 ASCII letters, digits, '-', '_', '.' or ':')"
    )


@pytest.mark.parametrize(
    "value, problem",
    [
        ("a b", "it contains ' '"),
        ("x/y", "it contains '/'"),
        ("ünï", "it contains 'ü'"),
        ("@acme", "it contains '@'"),
        ("X" * 129, "it is 129 characters long"),
    ],
)
def test_excluded_buyers_and_deal_ids_follow_the_pattern(value, problem):
    line = json.dumps(
        {
            "event_id": "E1",
            "subscriber_id": "S1",
            "event_at": "2025-01-03T00:00:00Z",
            "action": "opt_in",
            "excluded_buyers": ["acme-ai", value],
        }
    )
    [q] = parse_consent_events("consent_events/a.jsonl", (line + "\n").encode()).quarantine
    assert "field 'excluded_buyers' item 1: " in q["reason"] and problem in q["reason"]
    deal = {
        "deal_id": "D1",
        "buyer_id": value,
        "buyer_name": "Any name, é and spaces are fine here",
        "signed_at": "2025-01-01T00:00:00Z",
        "pricing": {"model": "flat_fee"},
        "batches": [{"batch_id": value, "cutoff_at": "2025-01-31T00:00:00Z", "fee_cents": 100}],
    }
    result = parse_deal("deals/D1.json", json.dumps(deal).encode())
    assert result.deal is None
    reason = result.quarantine[0]["reason"]
    assert "field 'buyer_id' " in reason and "field 'batches[0].batch_id' " in reason and problem in reason


def test_longest_and_shortest_ids_are_valid():
    line = {"event_id": "X" * 128, "subscriber_id": "a", "event_at": "2025-01-03T00:00:00Z", "action": "opt_out"}
    result = parse_consent_events("consent_events/a.jsonl", (json.dumps(line) + "\n").encode())
    assert result.quarantine == [] and result.rows[0]["event_id"] == "X" * 128


# -- random ids through ingestion into Delta ---------------------------------------------------

_NO_NEWLINE = st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\n\x85\u2028\u2029")
RANDOM_ID = st.one_of(
    st.from_regex(ID_RE, fullmatch=True),  # of the pattern
    st.text(_NO_NEWLINE, max_size=12),  # anything at all
    st.sampled_from(["=1+1", "+1", "-1", "@x", "\t=1", " s1 ", "a b", "x" * 128, "x" * 129, "é", "s1;s2"]),
)


def _expect(text: str) -> str | None:
    """What the id must come out as, or None when the row must be quarantined."""
    stripped = text.strip()
    return stripped if ID_RE.fullmatch(stripped) else None


@settings(
    max_examples=25,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    payouts=st.lists(st.tuples(RANDOM_ID, RANDOM_ID), min_size=1, max_size=6),
    events=st.lists(st.tuples(RANDOM_ID, RANDOM_ID), min_size=1, max_size=6, unique_by=lambda t: t[0].strip()),
)
def test_random_ids_either_quarantine_or_round_trip_through_ingestion(payouts, events):
    with tempfile.TemporaryDirectory() as tmp:
        landing, store = Path(tmp) / "landing", DeltaStore(str(Path(tmp) / "lake"))
        root = FileRoot(str(landing))
        # payouts/*.csv (every row kept: no dedup), ids in two columns
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(["payout_id", "subscriber_id", "statement_month", "amount_cents", "paid_at"])
        for pid, sid in payouts:
            writer.writerow([pid, sid, "2025-01", "100", "2025-02-01T00:00:00Z"])
        (landing / "payouts").mkdir(parents=True)
        (landing / "payouts" / "p.csv").write_bytes(buf.getvalue().encode("utf-8"))
        # consent_events/*.jsonl (ids as JSON strings, event ids unique)
        (landing / "consent_events").mkdir(parents=True)
        (landing / "consent_events" / "e.jsonl").write_bytes(
            "".join(
                json.dumps(
                    {"event_id": eid, "subscriber_id": sid, "event_at": "2025-01-01T00:00:00Z", "action": "opt_in"}
                )
                + "\n"
                for eid, sid in events
            ).encode("utf-8")
        )
        ingest_kind(store, root, LANDING_KINDS["payouts"])
        ingest_kind(store, root, LANDING_KINDS["consent_events"])
        quarantine = {(q["source"], q["position"]): q["reason"] for q in store.read(QUARANTINE).to_pylist()}

        for table, path, pairs, first_line, names in (
            ("payouts", "payouts/p.csv", payouts, 2, ("payout_id", "subscriber_id")),
            ("consent_events", "consent_events/e.jsonl", events, 1, ("event_id", "subscriber_id")),
        ):
            stored = {
                r["_source_line"]: (r[names[0]], r[names[1]])
                for r in store.read(table, filter=pc.field("_source_path") == path).to_pylist()
            }
            for i, pair in enumerate(pairs):
                line = first_line + i
                expected = tuple(_expect(v) for v in pair)
                if None not in expected:
                    assert stored[line] == expected and (path, line) not in quarantine
                else:
                    assert line not in stored
                    reason = quarantine[(path, line)]
                    for name, value, exp in zip(names, pair, expected):
                        if exp is None:
                            why = "is empty" if not value.strip() else "is not a valid id"
                            assert f"field '{name}' " in reason and why in reason, (value, reason)
        assert len(quarantine) == sum(None in tuple(map(_expect, p)) for p in (*payouts, *events))


def test_deal_with_a_bad_batch_id_is_quarantined_whole_and_the_run_goes_on(tmp_path):
    landing = tmp_path / "landing"
    (landing / "deals").mkdir(parents=True)
    good = {
        "deal_id": "D-1",
        "buyer_id": "acme-ai",
        "buyer_name": "Acme AI",
        "signed_at": "2025-01-01T00:00:00Z",
        "pricing": {"model": "flat_fee"},
        "batches": [{"batch_id": "B-1", "cutoff_at": "2025-01-31T00:00:00Z", "fee_cents": 100}],
    }
    bad = good | {"deal_id": "D-2", "batches": [good["batches"][0] | {"batch_id": "=B1"}]}
    (landing / "deals" / "D-1.json").write_text(json.dumps(good))
    (landing / "deals" / "D-2.json").write_text(json.dumps(bad))
    store = DeltaStore(str(tmp_path / "lake"))
    ingest_deals(store, FileRoot(str(landing)))
    assert store.read("license_deals").column("deal_id").to_pylist() == ["D-1"]
    [q] = store.read(QUARANTINE).to_pylist()
    assert q["source"] == "deals/D-2.json" and "field 'batches[0].batch_id' '=B1' is not a valid id" in q["reason"]
