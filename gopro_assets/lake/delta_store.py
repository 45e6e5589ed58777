"""Delta tables on a local folder or ``s3://``: the one place that builds table paths.

Every output table lives at ``<lake>/<table_name>`` (contract §1). Writes are whole
Delta commits, so a crash never leaves a partial write visible; the write helpers
here are idempotent (overwrite a partition, replace rows by predicate, merge by key).
"""

from __future__ import annotations

import os
import random
import time
from collections import OrderedDict
from collections.abc import Iterable, Sequence

import pyarrow as pa
import pyarrow.dataset as pads
from deltalake import CommitProperties, DeltaTable, write_deltalake
from deltalake.exceptions import CommitFailedError, TableNotFoundError

from gopro_assets.lake import duck, retention
from gopro_assets.lake.storage import is_s3, storage_options_for


def sql_literal(value) -> str:
    """A literal for a Delta predicate (strings quoted, quotes doubled)."""
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    return str(value)


def in_list(column: str, values: Sequence) -> str:
    return f"{column} IN ({', '.join(sql_literal(v) for v in values)})"


def key_range(data: pa.Table, key: Sequence[str]) -> str:
    """`` AND t.k >= min AND t.k <= max`` for each string or integer key column of ``data``.

    Implied by ``t.k = s.k``, so a MERGE matches the same rows, but delta-rs can then skip
    the target files whose min/max statistics lie outside the range instead of scanning
    every file of the table: a night's new uploads (time-ordered ids) MERGE into a year of
    uploads in 0.05 s instead of 1.2 s for 2M rows (docs/PERFORMANCE.md).
    """
    import pyarrow.compute as pc

    out = []
    for k in key:
        column = data.column(k)
        if not (pa.types.is_string(column.type) or pa.types.is_integer(column.type)):
            continue
        bounds = pc.min_max(column)
        lo, hi = bounds["min"].as_py(), bounds["max"].as_py()
        if lo is None or hi is None:
            continue
        out.append(f" AND t.{k} >= {sql_literal(lo)} AND t.{k} <= {sql_literal(hi)}")
    return "".join(out)


# Bounded retries of a Delta commit that lost a race (CommitFailedError), with backoff.
COMMIT_RETRIES = 5


def _with_commit_retries(commit):
    """Run ``commit`` (a whole read-modify-commit against the latest snapshot) again when
    it lost a race to another writer; a failed commit wrote nothing visible."""
    for attempt in range(COMMIT_RETRIES + 1):
        try:
            return commit()
        except CommitFailedError:
            if attempt == COMMIT_RETRIES:
                raise
            time.sleep(min(5.0, 0.2 * 2**attempt) * (0.5 + random.random()))
    raise AssertionError("unreachable")


def _only_files(dataset: pads.Dataset, paths: set[str]) -> pads.Dataset:
    """``dataset`` restricted to the data files ``paths`` (partition values kept)."""
    fragments = [f for f in dataset.get_fragments() if f.path in paths]
    return pads.FileSystemDataset(fragments, dataset.schema, dataset.format, dataset.filesystem)


class SchemaEvolutionError(ValueError):
    """A stored Delta table whose columns this version cannot write by adding columns."""


def _same_type(stored: pa.DataType, declared: pa.DataType) -> bool:
    """The stored (Delta) type is the declared Arrow type, allowing for the string and
    timestamp spellings a round trip through the Delta log gives."""
    if stored == declared:
        return True
    strings = (pa.string(), pa.large_string(), pa.string_view())
    if stored in strings and declared in strings:
        return True
    return (
        pa.types.is_timestamp(stored)
        and pa.types.is_timestamp(declared)
        and (stored.tz is None) == (declared.tz is None)
    )


# Arrow datasets by (table uri, version, files): see DeltaStore.dataset.
_DATASETS: OrderedDict[tuple, pads.Dataset] = OrderedDict()
_DATASET_CACHE_SIZE = 64


class DeltaStore:
    """The lake: Delta tables under one root."""

    def __init__(self, root: str):
        self.root = root.rstrip("/")
        self.storage_options = storage_options_for(self.root)
        # One handle per table at its latest version, brought up to date on each use:
        # reading only the commits since costs ~1-3 ms where opening the table (replaying
        # its log since the last checkpoint) costs 5-20 ms, and a run asks for the same
        # tables hundreds of times (each batch's deliveries, each month's statements).
        self._latest: dict[str, DeltaTable] = {}

    def __repr__(self) -> str:  # never print storage options: they hold secrets
        return f"DeltaStore({self.root!r})"

    def uri(self, table: str) -> str:
        if "/" in table or ".." in table:
            raise ValueError(f"bad table name {table!r}")
        return f"{self.root}/{table}"

    def table(self, table: str, version: int | None = None) -> DeltaTable | None:
        """The table at ``version`` (latest when None); None when it does not exist.

        The latest-version handle is shared by the callers of this store: use it to read
        or to write (a write moves it to the new version), never to load an older version.
        """
        if version is None:
            dt = self._latest.get(table)
            if dt is not None and (is_s3(self.root) or os.path.isdir(f"{self.uri(table)}/_delta_log")):
                try:
                    dt.update_incremental()
                    return dt
                except Exception:  # noqa: BLE001 - removed or rewritten under us: open it afresh
                    pass
            self._latest.pop(table, None)
        try:
            dt = DeltaTable(self.uri(table), version=version, storage_options=self.storage_options or None)
        except TableNotFoundError:
            return None
        if version is None:
            self._latest[table] = dt
        return dt

    def exists(self, table: str) -> bool:
        return self.table(table) is not None

    def version(self, table: str) -> int | None:
        dt = self.table(table)
        return None if dt is None else dt.version()

    def dataset(self, table: str, version: int | None = None) -> pads.Dataset | None:
        """An Arrow dataset (projection and filter pushdown; DuckDB scans it directly).

        Built once per table version and process: deltalake gives every data file a
        fragment carrying its partition values and min/max statistics (for file pruning),
        which costs about 10 ms a file, seconds for a daily-partitioned table, and the
        same table is read many times in a run (each batch's delivery query, each month's
        statement). A version never changes, so the dataset of a version can be reused;
        the key includes the version's file list, so a table deleted and re-created at
        the same path and version number is not mistaken for the old one.
        """
        dt = self.table(table, version)
        if dt is None:
            return None
        key = (self.uri(table), dt.version(), hash(tuple(dt.file_uris())))
        ds = _DATASETS.get(key)
        if ds is None:
            ds = dt.to_pyarrow_dataset()
            _DATASETS[key] = ds
            while len(_DATASETS) > _DATASET_CACHE_SIZE:
                _DATASETS.popitem(last=False)
        else:
            _DATASETS.move_to_end(key)
        return ds

    def files_between(self, table: str, before: int, after: int) -> tuple[pads.Dataset, pads.Dataset]:
        """(added, removed): the data files that version ``after`` of ``table`` holds and
        ``before`` does not, and the other way round, as datasets (partition values kept).
        Delta data files never change once written, so every row that differs between the
        two versions is in one of them (a rewritten file's unchanged rows are in both).
        Raises LookupError when either version cannot be read (VACUUM, log retention)."""
        try:
            old, new = self.dataset(table, before), self.dataset(table, after)
        except Exception as err:  # noqa: BLE001 - a version whose log or files are gone
            raise LookupError(f"{table}: version {before} or {after} cannot be read: {err}") from err
        if old is None or new is None:
            raise LookupError(f"{table}: version {before} or {after} is gone")
        old_files = {f.path for f in old.get_fragments()}
        new_files = {f.path for f in new.get_fragments()}
        return _only_files(new, new_files - old_files), _only_files(old, old_files - new_files)

    def read_dataset(self, table: str, version: int | None = None, prune: str | None = None) -> pads.Dataset | None:
        """The table's dataset (see :meth:`read` for ``prune``); None when it does not exist."""
        return self._pruned_dataset(table, prune, version) if prune else self.dataset(table, version)

    def read(
        self,
        table: str,
        columns: list[str] | None = None,
        filter: pads.Expression | None = None,
        schema: pa.Schema | None = None,
        version: int | None = None,
        prune: str | None = None,
    ) -> pa.Table:
        """The table's rows; an empty table of ``schema`` when it does not exist yet.

        ``prune``: an SQL predicate implied by ``filter`` (``"upload_day >= '2025-03-01'"``)
        with which deltalake skips the files that cannot match while it reads the log,
        before building one dataset fragment per file (about 10 ms each: most of a
        one-day read of a table partitioned by day). ``filter`` still selects the rows.
        """
        ds = self.read_dataset(table, version, prune)
        if ds is None:
            if schema is None:
                raise FileNotFoundError(f"Delta table {table!r} does not exist in {self.root}")
            empty = schema.empty_table()
            return empty.select(columns) if columns else empty
        return ds.to_table(columns=columns, filter=filter)

    def files(self, table: str, prune: str | None = None, version: int | None = None) -> list[str]:
        """The data files of the table (at ``version``) that may hold rows matching the SQL
        predicate ``prune`` (all of them without one), sorted; [] when it does not exist."""
        ds = self.read_dataset(table, version, prune)
        return sorted(ds.files) if ds is not None else []

    def _pruned_dataset(self, table: str, predicate: str, version: int | None = None) -> pads.Dataset | None:
        """The dataset of the files that may hold rows matching ``predicate`` (a superset:
        callers still filter the rows), or the whole table's if deltalake cannot use it."""
        dt = self.table(table, version)
        if dt is None:
            return None
        try:
            return dt.to_pyarrow_dataset(file_pruning_predicate=predicate)
        except Exception:  # noqa: BLE001 - a predicate deltalake does not parse: no pruning
            return self.dataset(table, version)

    # -- writes ---------------------------------------------------------------
    def _write(self, table: str, data: pa.Table, **kwargs) -> None:
        # Concurrent writers (parallel partition runs) use Delta's optimistic concurrency.
        # Disjoint commits are reconciled by delta-rs itself; a real conflict (say two
        # writers replacing the same partition) fails the commit without writing anything,
        # and redoing the write against the new snapshot is correct for every mode used
        # here (a predicate overwrite is re-evaluated, an append was not applied).
        self._create_if_missing(table, data.schema, kwargs.get("partition_by"))
        _with_commit_retries(
            lambda: write_deltalake(self.uri(table), data, storage_options=self.storage_options or None, **kwargs)
        )

    def _create_if_missing(self, table: str, schema: pa.Schema, partition_by: list[str] | None) -> bool:
        """Create ``table`` empty when it does not exist; True when this call created it.

        Every write then lands on an existing table. Two writers that both find no table
        and both write their rows as its first commit are *not* a conflict for delta-rs:
        the loser is rebased onto the winner's version 0 and both sets of rows stay
        (measured: two racing ``replace_where`` of the same day left every row twice). An
        empty first commit has no rows to double; the later writes see each other's files
        and conflict as they should.
        """
        if table in self._latest or self.exists(table):  # a handle is only cached for a table that exists
            return False
        try:
            write_deltalake(
                self.uri(table),
                schema.empty_table(),
                mode="append",
                partition_by=partition_by,
                # the retention of a table whose versions are pinned (lake/retention.py)
                configuration=retention.creation_properties(table),
                storage_options=self.storage_options or None,
            )
            return True
        except Exception:  # noqa: BLE001 - another writer created it first: fine
            if self.exists(table):
                return False
            raise

    def add_missing_columns(self, table: str, schema: pa.Schema, fill: dict[str, str] | None = None) -> list[str]:
        """Schema evolution of an existing table to ``schema``: the columns of ``schema`` the
        table lacks are added (nullable), in one commit; then the rows already there are
        rewritten with them, null or the value ``fill`` gives (column -> SQL literal,
        ``{"severity": "'error'"}``), in one more. Returns the names added ([] when none, or
        when the table does not exist: its first write creates it whole).

        Why rewrite and not only add the columns to the log: pyarrow's dataset scanner, which
        DuckDB uses to read a table through deltalake (S3, and the checks), ignores a filter
        on a column that a data file lacks (``WHERE b IS NOT NULL`` returned that file's rows
        with b null; pyarrow 26, measured), so no data file may lack a column. The rewrite
        touches only the rows whose new columns are all null, the old ones: the code that
        declares ``schema`` must write at least one of them non-null in every row, so a
        concurrent writer's new rows are never matched.

        Only adding is automatic. A column whose stored type differs from ``schema``'s raises
        :class:`SchemaEvolutionError` naming the table, the column and both types, before
        anything is written (a rewrite of the table is a deliberate migration, not a run's
        side effect). Columns the table has and ``schema`` lacks are left alone; the writes
        of the code that declares ``schema`` then fail in delta-rs (SchemaMismatchError).
        """
        dt = self.table(table)
        if dt is None:
            return []
        from deltalake.schema import Field

        stored = {f.name: f.type for f in pa.schema(dt.schema().to_arrow())}
        clashes = [
            f"{f.name} is {stored[f.name]} in the table, {f.type} in the code"
            for f in schema
            if f.name in stored and not _same_type(stored[f.name], f.type)
        ]
        if clashes:
            raise SchemaEvolutionError(
                f"Delta table {table!r} in {self.root} cannot take the columns of this version: "
                + "; ".join(clashes)
                + ". Only new columns are added automatically; migrate or rebuild the table."
            )
        missing = [f for f in schema if f.name not in stored]
        if not missing:
            return []

        def add() -> None:
            current = self.table(table)
            have = set(pa.schema(current.schema().to_arrow()).names)
            todo = [Field.from_arrow(f.with_nullable(True)) for f in missing if f.name not in have]
            if todo:  # another writer may have added them meanwhile
                current.alter.add_columns(todo)

        _with_commit_retries(add)
        names = [f.name for f in missing]
        old_rows = " AND ".join(f'"{n}" IS NULL' for n in names)
        values = {n: (fill or {}).get(n, "NULL") for n in names}
        _with_commit_retries(lambda: self.table(table).update(predicate=old_rows, updates=values))
        return names

    def unchanged(self, table: str, data: pa.Table, predicate: str | None = None) -> bool:
        """True when the rows of ``table`` matching ``predicate`` (all rows when None) are
        exactly ``data`` as a multiset, with the same column names and types."""
        # only the files that may hold such rows (a one-day partition of a daily table)
        ds = self._pruned_dataset(table, predicate) if predicate else self.dataset(table)
        if ds is None:
            return False
        current = {f.name: f.type for f in ds.schema}
        if any(current.get(f.name) != f.type for f in data.schema) or len(current) != len(data.schema):
            return False
        cols = ", ".join(f'"{n}"' for n in data.schema.names)
        con = duck.connect()
        try:
            con.register("stored", ds)
            con.register("incoming", data)
            where = f" WHERE {predicate}" if predicate else ""
            stored_rows = con.execute(f"SELECT count(*) FROM stored{where}").fetchone()[0]
            if stored_rows != data.num_rows:
                return False
            diff = con.execute(
                f"SELECT count(*) FROM (SELECT {cols} FROM incoming EXCEPT ALL SELECT {cols} FROM stored{where})"
            ).fetchone()[0]
            return diff == 0
        finally:
            con.close()

    def overwrite(
        self,
        table: str,
        data: pa.Table,
        partition_by: list[str] | None = None,
        commit_metadata: dict[str, str] | None = None,
        skip_unchanged: bool = True,
    ) -> bool:
        """Replace the whole table (schema included) in one commit.

        A write that would not change the content is skipped (unless ``skip_unchanged``
        is False): re-runs leave the table at the same Delta version, so versions recorded
        elsewhere (audit, explain) stay true. Returns whether a commit was made.
        ``commit_metadata`` goes into the commit's info (``DeltaTable.history``).
        """
        if skip_unchanged and self.unchanged(table, data):
            return False
        extra = {"commit_properties": CommitProperties(custom_metadata=commit_metadata)} if commit_metadata else {}
        self._create_if_missing(table, data.schema, partition_by)
        if not self.table(table).file_uris():
            # An overwrite of a table without files removes nothing, so two racing writers
            # would both commit and leave their rows twice; a predicate makes delta-rs
            # check the other's added files against it, and the later one conflicts.
            extra["predicate"] = "true"
        self._write(table, data, mode="overwrite", schema_mode="overwrite", partition_by=partition_by, **extra)
        return True

    def replace_where(self, table: str, data: pa.Table, predicate: str, partition_by: list[str] | None = None) -> bool:
        """Atomically replace the rows matching ``predicate`` with ``data`` (one commit).

        Used for partition overwrites: re-running a partition gives the same rows, and an
        unchanged partition is not rewritten at all. Returns whether a commit was made.
        """
        created = self._create_if_missing(table, data.schema, partition_by)
        if self.unchanged(table, data, predicate):
            return created
        self._write(table, data, mode="overwrite", predicate=predicate)
        return True

    def append(self, table: str, data: pa.Table, partition_by: list[str] | None = None) -> None:
        self._write(table, data, mode="append", partition_by=partition_by)

    def delete(self, table: str, predicate: str) -> None:
        dt = self.table(table)
        if dt is not None:
            dt.delete(predicate)

    def upsert(
        self, table: str, data: pa.Table, key: Sequence[str], update_when: str | None = None, merge_schema: bool = False
    ) -> None:
        """MERGE ``data`` by ``key``: insert new keys, update matched rows when ``update_when``
        (a predicate on ``s``/``t``) holds, or always when it is None. ``merge_schema`` adds
        columns of ``data`` the table does not have yet (older rows read them as null)."""
        self._create_if_missing(table, data.schema, None)
        on = " AND ".join(f"t.{k} = s.{k}" for k in key) + key_range(data, key)
        _with_commit_retries(
            lambda: (
                self.table(table)
                .merge(data, predicate=on, source_alias="s", target_alias="t", merge_schema=merge_schema)
                .when_matched_update_all(predicate=update_when)
                .when_not_matched_insert_all()
                .execute()
            )
        )

    def apply_changes(
        self,
        table: str,
        deletes: pa.Table,
        inserts: pa.Table,
        key: Sequence[str],
        commit_metadata: dict[str, str] | None = None,
    ) -> dict:
        """Delete the rows ``deletes`` (matched by ``key``, which names one row) and insert
        ``inserts``, in one commit (a MERGE whose source holds both, told apart by an
        operation column). Only the data files holding a deleted row are rewritten; with
        nothing to change it still commits (an empty append) so ``commit_metadata`` is
        recorded. Returns the MERGE's metrics (files added and removed)."""
        props = {"commit_properties": CommitProperties(custom_metadata=commit_metadata)} if commit_metadata else {}
        if deletes.num_rows == 0 and inserts.num_rows == 0:
            self._write(table, inserts, mode="append", **props)
            return {"num_target_files_added": 0, "num_target_files_removed": 0}
        op = "_gopro_change"
        source = pa.concat_tables(
            [
                deletes.append_column(op, pa.array(["delete"] * deletes.num_rows, pa.string())),
                inserts.select(deletes.schema.names).append_column(
                    op, pa.array(["insert"] * inserts.num_rows, pa.string())
                ),
            ]
        )
        on = " AND ".join(f"t.{k} = s.{k}" for k in key) + f" AND s.{op} = 'delete'"
        return _with_commit_retries(
            lambda: (
                self.table(table)
                .merge(source, predicate=on, source_alias="s", target_alias="t", **props)
                .when_matched_delete()
                .when_not_matched_insert(
                    updates={c: f"s.{c}" for c in deletes.schema.names}, predicate=f"s.{op} = 'insert'"
                )
                .execute()
            )
        )

    def insert_new(self, table: str, data: pa.Table, key: Sequence[str]) -> int:
        """Insert the rows of ``data`` whose ``key`` is not in ``table`` yet, in one commit
        (MERGE ... WHEN NOT MATCHED INSERT); returns how many were inserted.

        Unlike a blind append, two writers inserting the same key cannot both succeed: the
        later commit conflicts, and its retry finds the key and inserts nothing. Markers
        that must exist once (``delivered_batches``) are written this way.
        """
        self._create_if_missing(table, data.schema, None)
        on = " AND ".join(f"t.{k} = s.{k}" for k in key)
        metrics = _with_commit_retries(
            lambda: (
                self.table(table)
                .merge(data, predicate=on, source_alias="s", target_alias="t")
                .when_not_matched_insert_all()
                .execute()
            )
        )
        return int(metrics.get("num_target_rows_inserted", 0))

    # -- maintenance (defs/operations/maintenance.py; retention: lake/retention.py) --------
    def properties(self, table: str) -> dict[str, str]:
        """The table's properties (``delta.*`` configuration); {} when it does not exist."""
        dt = self.table(table)
        return {k: v for k, v in dt.metadata().configuration.items() if v is not None} if dt is not None else {}

    def set_properties(self, table: str, properties: dict[str, str]) -> None:
        """Set table properties in one commit. A metadata change conflicts with any
        concurrent write, so a commit that lost the race is retried."""
        _with_commit_retries(lambda: self.table(table).alter.set_table_properties(properties))

    def vacuum(self, table: str, retention_hours: int = 168, keep_versions: Iterable[int] = ()) -> dict:
        """Delete the data files that no version within the window needs.

        The window is never shorter than the table's own ``delta.deletedFileRetentionDuration``
        (then enforced by delta-rs as well): the tables whose versions are pinned keep 8
        years whatever is asked. A table without one may be vacuumed below Delta's default
        of 168 h when asked explicitly. The files of ``keep_versions`` are never deleted,
        however old. A dry run comes first: when nothing is due, nothing is committed.
        """
        dt = self.table(table)
        if dt is None:
            return {}
        floor = retention.vacuum_floor_hours(dt.metadata().configuration)
        hours = retention_hours if floor is None else max(retention_hours, floor)
        enforce = floor is not None or hours >= retention.DEFAULT_DELETED_FILE_RETENTION_HOURS
        keep = sorted(set(keep_versions))  # sorted: deltalake walks the kept versions forward
        out = {"retention_hours": hours, "requested_hours": retention_hours, "kept_versions": keep, "files_deleted": 0}
        if dt.vacuum(retention_hours=hours, dry_run=True, enforce_retention_duration=enforce):
            deleted = dt.vacuum(
                retention_hours=hours, dry_run=False, enforce_retention_duration=enforce, keep_versions=keep or None
            )
            out["files_deleted"] = len(deleted)
        return out

    def checkpoint(self, table: str) -> dict:
        """Write a checkpoint of the latest version, then delete expired log files the way
        Delta does after its own checkpoints: only if the table allows it
        (``delta.enableExpiredLogCleanup``, off on the audited tables) and only files older
        than its ``delta.logRetentionDuration`` (30 days by default)."""
        dt = self.table(table)
        if dt is None:
            return {}
        dt.create_checkpoint()
        configuration = dt.metadata().configuration
        cleanup = retention.expired_log_cleanup(configuration)
        if cleanup:
            dt.cleanup_metadata()
        days = (retention.interval_hours(configuration.get(retention.LOG_RETENTION)) or 30 * 24) / 24
        return {
            "checkpoint_version": dt.version(),
            "log_cleanup": f"log files older than {days:g} days removed" if cleanup else "off (log kept)",
        }

    def optimize_and_vacuum(self, table: str, retention_hours: int = 168, keep_versions: Iterable[int] = ()) -> dict:
        """OPTIMIZE (compact small files, one commit when there is anything to compact), then
        :meth:`vacuum`. Returns the compaction metrics, with the vacuum's under ``vacuum``."""
        dt = self.table(table)
        if dt is None:
            return {}
        metrics = dt.optimize.compact()
        return metrics | {"vacuum": self.vacuum(table, retention_hours, keep_versions)}


__all__ = ["DeltaStore", "SchemaEvolutionError", "in_list", "is_s3", "sql_literal"]
