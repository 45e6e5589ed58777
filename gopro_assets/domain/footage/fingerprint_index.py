"""A compact index of the inventory's fingerprints, so that R4 (duplicates across the
whole library) does not read every inventory partition each night.

R4 judges a new clip against every clip ever inventoried. Reading the ``fingerprint``
column of ``footage_inventory`` costs a pass over one Parquet file per upload day (366
files and 0.5 s after a year at 2M clips a year, growing without end). The index table
``footage_fingerprint_index`` holds one small row per inventoried clip, in few files:

    fp_key      BIGINT  63 bits of the MD5 of the fingerprint (DuckDB ``md5_number``)
    upload_day  DATE    the clip's inventory partition
    day_files   VARCHAR the exact data files of that partition the row was read from
    upload_month        the index's own partition: a re-run of a day rewrites one month's rows

A lookup reads the index (8 + 4 bytes a clip, plus a dictionary-encoded token), keeps
the days whose ``day_files`` are still the partition's files in the inventory's Delta
log, finds the days that hold one of the new keys, and reads only those partitions'
real fingerprints. A partition the index does not describe exactly (never indexed, or
rewritten since: a re-run, an R4 relabel, a crash between the two writes, a concurrent
writer) is read whole, as before. So the index only ever saves reads: the rows R4 sees
are the inventory's own, and a stale or missing index costs time, never a duplicate.
Nothing else reads this table; OPTIMIZE/VACUUM keep it in a few files
(gopro_assets/defs/operations/maintenance.py covers every table of the lake).
"""

from __future__ import annotations

import hashlib
from datetime import date
from typing import NamedTuple

import pyarrow as pa

from gopro_assets.domain.footage.tables import FINGERPRINT_INDEX, INVENTORY, INVENTORY_SCHEMA
from gopro_assets.lake import duck
from gopro_assets.sql_engine.runner import register_table

INDEX = FINGERPRINT_INDEX.name
INDEX_SCHEMA = FINGERPRINT_INDEX.schema
# 63 bits of the fingerprint's MD5 (a BIGINT without overflow). A collision only makes a
# lookup read one more partition: the match itself is on the whole fingerprint.
FP_KEY_SQL = "CAST(md5_number(fingerprint) >> 65 AS BIGINT)"


def fp_keys(fingerprints: pa.Array | pa.ChunkedArray) -> pa.ChunkedArray:
    con = duck.connect()
    try:
        con.register("fps", pa.table({"fingerprint": fingerprints}))
        return con.sql(f"SELECT {FP_KEY_SQL} AS fp_key FROM fps").to_arrow_table()["fp_key"]
    finally:
        con.close()


def day_files(store) -> tuple[int | None, dict[date, str]]:
    """(inventory version, {upload_day: token of the partition's data files}) from the
    Delta log (no data file is read): a token changes whenever its partition is rewritten."""
    dt = store.table(INVENTORY)
    if dt is None:
        return None, {}
    actions = pa.table(dt.get_add_actions(flatten=True))
    by_day: dict[date, list[str]] = {}
    for path, day in zip(actions.column("path").to_pylist(), actions.column("partition.upload_day").to_pylist()):
        by_day.setdefault(day if isinstance(day, date) else date.fromisoformat(str(day)), []).append(path)
    return dt.version(), {
        day: hashlib.sha256("\n".join(sorted(paths)).encode()).hexdigest()[:32] for day, paths in by_day.items()
    }


def _days_predicate(days) -> str:
    return "upload_day IN (" + ", ".join(f"'{d.isoformat()}'" for d in sorted(days)) + ")"


def _index_predicate(days) -> str:
    months = sorted({d.strftime("%Y-%m") for d in days})
    return "upload_month IN (" + ", ".join(f"'{m}'" for m in months) + ") AND " + _days_predicate(days)


def _inventory_rows(
    store, version: int | None, days, columns: list[str], fingerprints: pa.Array | None = None
) -> pa.Table:
    """Rows of the inventory partitions ``days`` at ``version`` (only those with
    ``fingerprints``); DuckDB opens only those partitions' files."""
    empty = INVENTORY_SCHEMA.empty_table().select(columns)
    if not days or version is None:
        return empty
    con = duck.connect()
    try:
        where = _days_predicate(days)
        register_table(con, store, INVENTORY, version, prune=where)
        if fingerprints is not None:
            con.register("wanted", pa.table({"fingerprint": fingerprints}))
            where += " AND fingerprint IN (SELECT fingerprint FROM wanted)"
        result = con.sql(f"SELECT {', '.join(columns)} FROM {INVENTORY} WHERE {where}").to_arrow_table()
    finally:
        con.close()
    return result.cast(empty.schema)


class Lookup(NamedTuple):
    rows: pa.Table  # the inventory rows with one of the fingerprints, as a whole scan finds them
    read_days: set[date]  # the partitions read
    unindexed_days: set[date]  # read because the index did not describe them: to reindex


def rows_with_fingerprints(store, fingerprints: list[str], columns: list[str]) -> Lookup:
    """The inventory rows (``columns``) whose fingerprint is one of ``fingerprints``,
    exactly as a scan of the whole inventory finds them."""
    # every read at one inventory version: the one whose files the tokens describe
    version, tokens = day_files(store)
    if not tokens or not fingerprints:
        return Lookup(_inventory_rows(store, version, [], columns), set(), set())
    wanted = pa.array(sorted(set(fingerprints)), pa.string())
    indexed: set[date] = set()
    candidate_days: set[date] = set()
    if store.exists(INDEX):
        con = duck.connect()
        try:
            register_table(con, store, INDEX)
            con.register("keys", pa.table({"fp_key": fp_keys(wanted)}))
            con.register(
                "tokens",
                pa.table(
                    {
                        "upload_day": pa.array(list(tokens), pa.date32()),
                        "day_files": pa.array(list(tokens.values()), pa.string()),
                    }
                ),
            )
            # per day whose index rows were read from exactly the day's files now: does it
            # hold one of the keys?
            for day, hit in con.execute(
                f"SELECT upload_day, bool_or(fp_key IN (SELECT fp_key FROM keys)) FROM {INDEX} "
                "SEMI JOIN tokens USING (upload_day, day_files) GROUP BY upload_day"
            ).fetchall():
                indexed.add(day)
                if hit:
                    candidate_days.add(day)
        finally:
            con.close()
    stale = set(tokens) - indexed
    read = candidate_days | stale
    return Lookup(_inventory_rows(store, version, read, columns, wanted), read, stale)


def reindex(store, days) -> None:
    """Rewrite the index rows of ``days`` from the inventory as it is now. Best effort:
    a failed write (a concurrent writer) leaves those days stale, read whole next time."""
    days = sorted(set(days))
    if not days:
        return
    version, tokens = day_files(store)
    rows = _inventory_rows(store, version, [d for d in days if d in tokens], ["fingerprint", "upload_day"])
    index = pa.table(
        {
            "fp_key": fp_keys(rows["fingerprint"]) if rows.num_rows else pa.array([], pa.int64()),
            "upload_day": rows["upload_day"].cast(pa.date32()),
            "day_files": pa.array([tokens[d] for d in rows["upload_day"].to_pylist()], pa.string()),
            "upload_month": pa.array([d.strftime("%Y-%m") for d in rows["upload_day"].to_pylist()], pa.string()),
        },
        schema=INDEX_SCHEMA,
    )
    try:
        store.replace_where(INDEX, index, _index_predicate(days), partition_by=["upload_month"])
    except Exception:  # noqa: BLE001 - an accelerator: R4 stays exact without it (module docstring)
        pass
