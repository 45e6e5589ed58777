"""Each table written from Python declares its columns once (gopro_assets/domain/tables.py):
the parser's field list, the Delta/Arrow schema and the Dagster column schema all derive
from that declaration, and they are the same as before the declarations existed."""

from __future__ import annotations

import json

import pyarrow as pa
import pytest

from gopro_assets.definitions import defs
from gopro_assets.domain.footage import tables as footage
from gopro_assets.domain.ingestion import landing
from gopro_assets.domain.ingestion import tables as ingestion
from gopro_assets.domain.ingestion.ingest import INGEST_ORDER, ingest_deals, ingest_kind, known_subscriber_validator
from gopro_assets.domain.licensing import tables as licensing
from gopro_assets.domain.tables import Column, Table
from gopro_assets.lake.delta_store import DeltaStore
from gopro_assets.lake.storage import FileRoot

TS, S, N, F, B = pa.timestamp("us", tz="UTC"), pa.string(), pa.int64(), pa.float64(), pa.bool_()
SRC = [("_source_path", S), ("_source_line", N)]

# The schemas as they were written out by hand before the declarations (pa.schema literals
# of landing.py, ingest.py, footage/tables.py, fingerprint_index.py, deliveries.py and
# valuation/model.py): the declarations must give exactly these.
PREVIOUS = {
    "subscribers": [
        ("subscriber_id", S),
        ("email", S),
        ("country", S),
        ("subscribed_at", TS),
        ("cancelled_at", TS),
        ("invited_at", TS),
        *SRC,
    ],
    "consent_events": [
        ("event_id", S),
        ("subscriber_id", S),
        ("event_at", TS),
        ("action", S),
        ("excluded_buyers", pa.list_(S)),
        *SRC,
    ],
    "clip_exclusions": [("event_id", S), ("subscriber_id", S), ("clip_id", S), ("event_at", TS), ("action", S), *SRC],
    "uploads": [
        ("clip_id", S),
        ("subscriber_id", S),
        ("object_key", S),
        ("uploaded_at", TS),
        ("published", B),
        ("activity", S),
        ("mount", S),
        *SRC,
    ],
    "buyer_payments": [
        ("payment_id", S),
        ("deal_id", S),
        ("batch_id", S),
        ("amount_cents", N),
        ("received_at", TS),
        *SRC,
    ],
    "payouts": [
        ("payout_id", S),
        ("subscriber_id", S),
        ("statement_month", S),
        ("amount_cents", N),
        ("paid_at", TS),
        *SRC,
    ],
    "license_deals": [
        ("deal_id", S),
        ("buyer_id", S),
        ("buyer_name", S),
        ("signed_at", TS),
        ("pricing_model", S),
        ("price_aerial_cents", N),
        ("price_uhd_cents", N),
        ("price_hd_cents", N),
        ("price_sd_cents", N),
        ("min_short_side_px", N),
        ("min_fps", F),
        ("activities", pa.list_(S)),
        ("unpublished_only", B),
        ("min_duration_s", F),
        # contract v2: R5 criteria, R6/R15 whole recordings, R7 sensor bonus
        ("requires_gps", B),
        ("requires_imu", B),
        ("camera_models", pa.list_(S)),
        ("location_cells", pa.list_(S)),
        ("whole_recordings", B),
        ("sensor_bonus_cents", N),
        *SRC,
    ],
    "license_batches": [
        ("deal_id", S),
        ("batch_id", S),
        ("cutoff_at", TS),
        ("max_minutes", N),
        ("fee_cents", N),
        ("revenue_month", S),
        *SRC,
    ],
    "quarantine_rows": [("source", S), ("position", N), ("raw", S), ("reason", S)],
    "ingested_files": [
        ("kind", S),
        ("path", S),
        ("sha256", S),
        ("rows", N),
        ("quarantined", N),
        ("size_bytes", N),
        ("mtime_ns", N),
    ],
    "footage_inventory": [
        ("clip_id", S),
        ("subscriber_id", S),
        ("object_key", S),
        ("uploaded_at", TS),
        ("published", B),
        ("activity", S),
        ("mount", S),
        ("duration_s", F),
        ("billable_seconds", N),
        ("width", N),
        ("height", N),
        ("short_side_px", N),
        ("fps", F),
        ("codec", S),
        ("bit_rate", N),
        ("size_bytes", N),
        ("fingerprint", S),
        ("tier", S),
        ("is_duplicate", B),
        ("duplicate_of", S),
        # contract v2: R2b telemetry (plus the reason a track could not be read) and R15
        ("telemetry", B),
        ("camera_model", S),
        ("firmware", S),
        ("recorded_at", TS),
        ("has_gps", B),
        ("has_imu", B),
        ("is_drone", B),
        ("location_cell", S),
        ("telemetry_warning", S),
        ("recording_id", S),
        ("chapter", N),
        ("upload_day", pa.date32()),
    ],
    "footage_quarantine": [
        ("clip_id", S),
        ("subscriber_id", S),
        ("object_key", S),
        ("reason", S),
        ("severity", S),  # contract v2: error | warning
        ("upload_day", pa.date32()),
    ],
    # contract v2 (R15)
    "footage_recordings": [
        ("recording_id", S),
        ("subscriber_id", S),
        ("chapters", N),
        ("complete", B),
        ("recording_duration_s", F),
        ("billable_seconds", N),
        ("first_clip_id", S),
    ],
    "footage_fingerprint_index": [("fp_key", N), ("upload_day", pa.date32()), ("day_files", S), ("upload_month", S)],
    "deal_deliveries": [
        ("deal_id", S),
        ("batch_id", S),
        ("clip_id", S),
        ("subscriber_id", S),
        ("tier", S),
        ("billable_seconds", N),
        ("tier_price_cents", N),
        ("revenue_month", S),
        ("cutoff_at", TS),
        ("selection_rank", N),
        # contract v2, frozen at delivery: R7 sensor bonus, R2b facts, R15 recording
        ("sensor_bonus_cents", N),
        ("has_gps", B),
        ("has_imu", B),
        ("camera_model", S),
        ("recording_id", S),
        ("chapter", N),
    ],
    "delivered_batches": [
        ("deal_id", S),
        ("batch_id", S),
        ("buyer_id", S),
        ("pricing_model", S),
        ("cutoff_at", TS),
        ("revenue_month", S),
        ("max_minutes", N),
        ("fee_cents", N),
        ("clips", N),
        ("billable_seconds", N),
        ("candidates", N),
        ("input_versions", S),
        # contract v2, frozen with the batch terms: R7 sensor bonus, R6 whole recordings
        ("sensor_bonus_cents", N),
        ("whole_recordings", B),
    ],
    "clip_valuations": [
        ("clip_id", S),
        ("predicted_cents_per_minute", F),
        ("billable_seconds", N),
        ("predicted_value_cents", F),
        ("model_version", S),
        ("model_kind", S),
    ],
}


def declared() -> dict[str, Table]:
    from gopro_assets.domain.valuation.tables import CLIP_VALUATIONS

    tables = [
        *ingestion.TABLES.values(),
        footage.FOOTAGE_INVENTORY,
        footage.FOOTAGE_QUARANTINE_TABLE,
        footage.FOOTAGE_RECORDINGS,
        footage.FINGERPRINT_INDEX,
        licensing.DEAL_DELIVERIES,
        licensing.DELIVERED_BATCHES,
        CLIP_VALUATIONS,
    ]
    return {t.name: t for t in tables}


def test_declarations_give_the_previous_schemas():
    tables = declared()
    assert set(tables) == set(PREVIOUS)
    for name, fields in PREVIOUS.items():
        assert tables[name].schema == pa.schema(fields), name
        assert all(c.doc.strip() for c in tables[name]), f"{name}: every column has a description"


def test_the_modules_schemas_are_the_declared_ones():
    from gopro_assets.domain.footage import fingerprint_index, inventory
    from gopro_assets.domain.ingestion import ingest
    from gopro_assets.domain.licensing import deliveries
    from gopro_assets.domain.valuation import model

    assert {k: v.schema for k, v in landing.LANDING_KINDS.items()} == {
        k: pa.schema(PREVIOUS[k]) for k in landing.LANDING_KINDS
    }
    pairs = [
        (landing.DEAL_SCHEMA, "license_deals"),
        (landing.BATCH_SCHEMA, "license_batches"),
        (landing.QUARANTINE_SCHEMA, "quarantine_rows"),
        (ingest.INGESTED_SCHEMA, "ingested_files"),
        (inventory.INVENTORY_SCHEMA, "footage_inventory"),
        (inventory.FOOTAGE_QUARANTINE_SCHEMA, "footage_quarantine"),
        (footage.RECORDINGS_SCHEMA, "footage_recordings"),
        (fingerprint_index.INDEX_SCHEMA, "footage_fingerprint_index"),
        (deliveries.DELIVERY_SCHEMA, "deal_deliveries"),
        (deliveries.DELIVERED_BATCH_SCHEMA, "delivered_batches"),
        (model.VALUATION_SCHEMA, "clip_valuations"),
    ]
    for schema, name in pairs:
        assert schema == pa.schema(PREVIOUS[name]), name


def test_parser_field_lists_come_from_the_declarations():
    """Same fields, in the same order, with the same optional fields and defaults as the
    hand-written lists they replace."""
    previous = {
        "SUBSCRIBER_FIELDS": ["subscriber_id", "email", "country", "subscribed_at", "cancelled_at?", "invited_at?"],
        "CONSENT_FIELDS": ["event_id", "subscriber_id", "event_at", "action", "excluded_buyers?"],
        "CLIP_EXCLUSION_FIELDS": ["event_id", "subscriber_id", "clip_id", "event_at", "action"],
        "UPLOAD_FIELDS": ["clip_id", "subscriber_id", "object_key", "uploaded_at", "published", "activity?", "mount?"],
        "BUYER_PAYMENT_FIELDS": ["payment_id", "deal_id", "batch_id", "amount_cents", "received_at"],
        "PAYOUT_FIELDS": ["payout_id", "subscriber_id", "statement_month", "amount_cents", "paid_at"],
    }
    for attr, names in previous.items():
        fields = getattr(landing, attr)
        assert [f.name + ("?" if f.optional else "") for f in fields] == names, attr
    consent = {f.name: f for f in landing.CONSENT_FIELDS}
    assert consent["excluded_buyers"].default is list
    for table in ingestion.LANDING_TABLES:  # every column of a landing table but lineage is parsed
        assert [c.name for c in table.parsed] == [c for c in table.names if not c.startswith("_")]


def test_dagster_column_schemas_come_from_the_declarations():
    tables = declared()
    shown = 0
    for spec in defs.resolve_all_asset_specs():
        name = spec.key.to_user_string()
        if name not in tables:
            continue
        column_schema = spec.metadata.get("dagster/column_schema")
        expected = [(c.name, str(c.type), c.doc) for c in tables[name] if not c.name.startswith("_")]
        assert column_schema is not None, name
        assert [(c.name, c.type, c.description) for c in column_schema.columns] == expected, name
        shown += 1
    assert shown == 15  # every declared table but ingested_files and the fingerprint index


def test_an_ingestion_run_writes_delta_tables_with_the_declared_schemas(tmp_path):
    root = tmp_path / "landing"
    files = {
        "subscribers/s.csv": "subscriber_id,email,country,subscribed_at,cancelled_at,invited_at\n"
        "S1,a@example.com,US,2025-01-01T00:00:00Z,,\n",
        "consent_events/c.jsonl": json.dumps(
            {"event_id": "E1", "subscriber_id": "S1", "event_at": "2025-01-02T00:00:00Z", "action": "opt_in"}
        )
        + "\n",
        "clip_exclusions/x.jsonl": json.dumps(
            {
                "event_id": "X1",
                "subscriber_id": "S1",
                "clip_id": "C1",
                "event_at": "2025-01-03T00:00:00Z",
                "action": "exclude",
            }
        )
        + "\n",
        "uploads/u.jsonl": json.dumps(
            {
                "clip_id": "C1",
                "subscriber_id": "S1",
                "object_key": "S1/C1.MP4",
                "uploaded_at": "2025-01-03T00:00:00Z",
                "published": False,
            }
        )
        + "\n",
        "buyer_payments/p.csv": "payment_id,deal_id,batch_id,amount_cents,received_at\n"
        "P1,D1,B1,100,2025-02-01T00:00:00Z\nP2,=D1,B1,100,2025-02-01T00:00:00Z\n",
        "payouts/p.csv": "payout_id,subscriber_id,statement_month,amount_cents,paid_at\n"
        "PO1,S1,2025-01,100,2025-02-01T00:00:00Z\n",
        "deals/D1.json": json.dumps(
            {
                "deal_id": "D1",
                "buyer_id": "acme-ai",
                "buyer_name": "Acme",
                "signed_at": "2025-01-01T00:00:00Z",
                "pricing": {"model": "per_minute", "tier_prices_cents": {"sd": 10}},
                "criteria": {"activities": ["surf"], "min_fps": 24},
                "batches": [{"batch_id": "B1", "cutoff_at": "2025-01-31T00:00:00Z", "max_minutes": 5}],
            }
        ),
    }
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    store, froot = DeltaStore(str(tmp_path / "lake")), FileRoot(str(root))
    for name in INGEST_ORDER:
        validate = known_subscriber_validator(store) if name == "uploads" else None
        assert ingest_kind(store, froot, landing.LANDING_KINDS[name], validate=validate).rows >= 1
    ingest_deals(store, froot)
    tables = declared()
    written = [*INGEST_ORDER, "license_deals", "license_batches", "quarantine_rows", "ingested_files"]
    for name in written:
        delta = pa.schema(store.table(name).schema().to_arrow())
        # Delta names a list's item "element": compare types with that spelling undone
        assert delta.names == tables[name].names, name
        got = [pa.list_(f.type.value_type) if pa.types.is_list(f.type) else f.type for f in delta]
        assert got == [c.type for c in tables[name]], name
        assert store.read(name).num_rows >= 1, name


def test_a_declaration_refuses_unknown_kinds_and_duplicate_columns():
    with pytest.raises(ValueError, match="unknown kind"):
        Column("x", pa.string(), "doc", kind="ids")
    with pytest.raises(ValueError, match="kind 'enum'"):
        Column("x", pa.string(), "doc", kind="enum")
    with pytest.raises(ValueError, match="duplicate"):
        Table("t", (Column("x", pa.string(), "a"), Column("x", pa.string(), "b")))
