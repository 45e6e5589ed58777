"""DuckDB connections for the lake's queries: one in-process database, a connection each.

Opening a DuckDB database costs about 20 ms; a new connection to an open one about 1 ms,
and a run opens hundreds (every SQL model, every batch's delivery query, every
unchanged-content test before a write). What one query registers (Arrow tables, views of
Parquet files), its variables and temporary objects stay in its own connection; macros
live in the shared catalog, loaded once.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable
from pathlib import Path

import duckdb

_lock = threading.Lock()
_database: duckdb.DuckDBPyConnection | None = None
_owner_pid: int | None = None
_macros_loaded: set[str] = set()


def connect(macros: Iterable[Path] = ()) -> duckdb.DuckDBPyConnection:
    """A new connection (close it when done) with UTC as its time zone and ``macros``
    (files of CREATE OR REPLACE MACRO statements) defined."""
    global _database, _owner_pid
    with _lock:
        # (a forked child must not use its parent's database; the lake's workers are spawned)
        if _database is None or _owner_pid != os.getpid():
            _database, _owner_pid = duckdb.connect(), os.getpid()
            _macros_loaded.clear()
        for path in macros:
            key = str(path)
            if key not in _macros_loaded:
                _database.execute(Path(path).read_text())
                _macros_loaded.add(key)
        con = _database.cursor()
    con.execute("SET TimeZone = 'UTC'")
    return con
