"""Dagster metadata helpers: row counts and column schemas for the UI."""

from __future__ import annotations

import dagster as dg
import pyarrow as pa

from gopro_assets.domain.tables import Table
from gopro_assets.lake.delta_store import DeltaStore


def column_schema(schema: pa.Schema | Table, docs: dict[str, str] | None = None) -> dg.TableSchema:
    """Dagster's column schema of a declared table (domain/tables.py), or of an Arrow
    schema with column descriptions. Lineage columns (leading underscore) are left out."""
    if isinstance(schema, Table):
        schema, docs = schema.schema, schema.docs if docs is None else docs
    docs = docs or {}
    return dg.TableSchema(
        columns=[
            dg.TableColumn(name=f.name, type=str(f.type), description=docs.get(f.name))
            for f in schema
            if not f.name.startswith("_")  # lineage columns (_source_path, _source_line)
        ]
    )


def table_metadata(store: DeltaStore, table: str | Table, docs: dict[str, str] | None = None, **extra) -> dict:
    """Row count, column schema, Delta version and location of a table as it stands now
    (the column types from the Delta log, the descriptions from the declaration)."""
    if isinstance(table, Table):
        table, docs = table.name, table.docs if docs is None else docs
    dt = store.table(table)
    if dt is None:
        return {"dagster/row_count": 0, **extra}
    schema = dt.schema().to_arrow()
    # Row count from the Delta log's file statistics: no data file is read.
    rows = pa.table(dt.get_add_actions(flatten=True)).column("num_records").to_pylist()
    rows = sum(r or 0 for r in rows)
    return {
        "dagster/row_count": dg.MetadataValue.int(rows),
        "dagster/column_schema": column_schema(pa.schema(schema), docs),
        "dagster/uri": dg.MetadataValue.path(store.uri(table)),
        "delta_version": dg.MetadataValue.int(dt.version()),
        **extra,
    }


# Kept out of the materializations of a run over many partitions (see per_partition).
_BULKY_KEYS = ("dagster/column_schema", "dagster/column_lineage")


def per_partition(context: dg.AssetExecutionContext, metadata: dict) -> dict:
    """The metadata to record for an asset's run.

    Dagster copies a run's metadata onto the materialization of every partition it covers:
    a catch-up over ~690 days recorded 690 copies of each column schema and lineage, and
    SQLite took over twice as long to store them (docs/PERFORMANCE.md). A run over several
    partitions therefore records the small figures only; the column schema stays on the
    asset's definition (its spec metadata), and one-day runs record everything.
    """
    if not context.has_partition_key_range or len(context.partition_keys) <= 1:
        return metadata
    return without_bulky(metadata)


def without_bulky(metadata: dict) -> dict:
    """``metadata`` without the column schema and lineage (for a materialization of many partitions)."""
    return {k: v for k, v in metadata.items() if k not in _BULKY_KEYS}
