"""Column declarations: each table written from Python declares its columns once, here.

A :class:`Column` names the column, its Arrow type and a description; a column read from
a landing file also says how its value is parsed (``kind``, ``required``, ``default``,
``values``). A :class:`Table` is a name and its columns, and everything else derives from
it: the Arrow/Delta schema (:attr:`Table.schema`), the descriptions shown in Dagster's
column schema (:attr:`Table.docs`, used by ``gopro_assets/shared/metadata.py``) and the
landing parser's field list (:attr:`Table.parsed`, turned into converters by
``gopro_assets/domain/ingestion/landing.py``).

The declarations themselves live beside their domain: ``domain/ingestion/tables.py``
(landing tables, quarantine, ingested files), ``domain/footage/tables.py``,
``domain/licensing/tables.py`` and ``domain/valuation/tables.py``.

Pure: no Dagster, no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import pyarrow as pa

__all__ = ["ID_PATTERN", "ID_RE", "ID_RULE", "KINDS", "TS", "Column", "Table", "id_problem"]

TS = pa.timestamp("us", tz="UTC")  # every timestamp of the lake: UTC, microseconds

# Identifiers from the landing zone (subscriber, clip, deal, batch, buyer, event, payment
# and payout ids): 1 to 128 ASCII letters, digits, "-", "_", "." or ":" (docs/LANDING_RULES.md).
# Anything else (spaces inside, quotes, "=1+1", "/", non-ASCII, 129 characters) is bad input.
ID_PATTERN = r"[A-Za-z0-9_.:-]{1,128}"
ID_RE = re.compile(ID_PATTERN)
ID_MAX_LENGTH = 128
ID_RULE = "an id is 1 to 128 ASCII letters, digits, '-', '_', '.' or ':'"

# How a landing value is parsed (converters in domain/ingestion/landing.py):
KINDS = {
    "id": "an identifier matching ID_PATTERN, trimmed",
    "id_list": "a JSON list of ids (null -> []), duplicates removed, sorted",
    "text": "a non-empty string, trimmed (optional: blank -> null)",
    "country": "ISO 3166-1 alpha-2, two upper-case letters",
    "timestamp": "ISO-8601 with an offset or Z, converted to UTC",
    "bool": "a JSON boolean",
    "cents": "an integer (CSV text, optional sign) that fits in int64",
    "month": "YYYY-MM",
    "object_key": "a relative path under footage/, kept verbatim",
    "enum": "one of Column.values",
}


def id_problem(text: str) -> str | None:
    """Why ``text`` (already trimmed) is not an id, or None when it is one."""
    if ID_RE.fullmatch(text):
        return None
    if len(text) > ID_MAX_LENGTH:
        return f"is {len(text)} characters long ({ID_RULE})"
    bad = next((ch for ch in text if not ID_RE.fullmatch(ch)), "")
    return f"contains {bad!r} ({ID_RULE})"


@dataclass(frozen=True)
class Column:
    """One column: name, Arrow type, description; for a landing column also how it is read.

    ``kind`` is None for a column that is not read from a landing file as it is (a value
    computed by the pipeline, a lineage column, a nested deal value). ``required=False``
    lets the value be empty (CSV), null or missing (JSON), giving ``default`` (a value or
    a zero-argument factory such as ``list``).
    """

    name: str
    type: pa.DataType
    doc: str
    kind: str | None = None
    required: bool = True
    default: Any = None
    values: tuple[str, ...] = ()  # kind "enum": the accepted values

    def __post_init__(self) -> None:
        if self.kind is not None and self.kind not in KINDS:
            raise ValueError(f"column {self.name!r}: unknown kind {self.kind!r} (known: {', '.join(KINDS)})")
        if (self.kind == "enum") != bool(self.values):
            raise ValueError(f"column {self.name!r}: values are given for, and only for, kind 'enum'")

    @property
    def pattern(self) -> str | None:
        """The regular expression a value (each item of a list) must match, if any."""
        return ID_PATTERN if self.kind in ("id", "id_list") else None

    @property
    def arrow_field(self) -> pa.Field:
        return pa.field(self.name, self.type)


@dataclass(frozen=True)
class Table:
    """A table's name and its columns, in order."""

    name: str
    columns: tuple[Column, ...]

    def __post_init__(self) -> None:
        names = [c.name for c in self.columns]
        if len(set(names)) != len(names):
            raise ValueError(f"table {self.name!r}: duplicate column names")

    def __iter__(self) -> Iterator[Column]:
        return iter(self.columns)

    def __getitem__(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(f"table {self.name!r} has no column {name!r}")

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    @cached_property
    def schema(self) -> pa.Schema:
        """The Arrow schema the table is written with (Delta)."""
        return pa.schema([c.arrow_field for c in self.columns])

    @property
    def docs(self) -> dict[str, str]:
        """Column name -> description (Dagster's column schema)."""
        return {c.name: c.doc for c in self.columns}

    @property
    def parsed(self) -> tuple[Column, ...]:
        """The columns read from a landing file, in file order (the parser's field list)."""
        return tuple(c for c in self.columns if c.kind is not None)
