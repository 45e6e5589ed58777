"""Materialize one SQL model: run it over the lake, write its partitions, run its data tests.

The one way a model is run: the Dagster asset (``components/sql_models.py``), the
Dagster-free pipeline (``gopro_tools/pipeline.py``, the demo generator and the benchmarks)
and the tests (``tests/conftest.py``) all call :func:`materialize_model`; each only turns
its :class:`ModelRun` into what it reports (asset checks, a row count, an assertion).

- Unpartitioned: recomputed and overwritten unless the table's last commit records the
  very inputs, code and variables of this run (:func:`runner.recompute_unless_up_to_date`);
  its data tests run either way, on the rows it holds. An ``incremental_strategy: merge``
  model computes and rewrites only the rows of the keys whose inputs changed
  (:func:`runner.merge_unless_up_to_date`); its data tests run on those rows.
- Daily: the range of days in runs of whole days of about ``DAILY_ROWS_PER_QUERY`` rows
  (:func:`next_day_chunk`), each replacing its own days.
- Monthly: month by month in order, each replacing its month: a month's opening balance
  is the previous month's carried-forward amount, read from this same table (R11).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta

import pyarrow as pa

from gopro_assets.lake.delta_store import DeltaStore
from gopro_assets.sql_engine.runner import (
    DataTest,
    SqlModel,
    connect_for_model,
    merge_unless_up_to_date,
    recompute_unless_up_to_date,
    run_model,
    run_tests,
)

# Rows one query of a daily-partitioned model should hold: a range of days is computed in
# runs of whole days of about this many rows, so a long range of a model with many rows a
# day is never held in memory at once.
DAILY_ROWS_PER_QUERY = 4_000_000
# Offending rows kept per data test (over all the partitions of a run).
SAMPLE_ROWS = 20


@dataclass
class DataTestOutcome:
    """One data test over a run: offending rows counted in every partition written, and
    the first ``SAMPLE_ROWS`` of them."""

    test: DataTest
    failures: int = 0
    sample: list[dict] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return self.failures == 0

    @property
    def blocking(self) -> bool:
        return self.test.severity == "error"


@dataclass
class ModelRun:
    """What :func:`materialize_model` did."""

    model: SqlModel
    rows_written: int = 0  # an unpartitioned model left as it was: the rows it holds
    recomputed: bool = True  # False: unpartitioned and up to date, nothing written
    tests: list[DataTestOutcome] = field(default_factory=list)  # empty with data_tests=False
    rows: pa.Table | None = None  # the rows computed (or held), with keep_rows=True

    @property
    def errors(self) -> list[DataTestOutcome]:
        """The failed tests of ``error`` severity (blocking checks)."""
        return [t for t in self.tests if t.blocking and not t.passed]


def table_rows(store: DeltaStore, table: str) -> int:
    """Row count from the Delta log's file statistics (no data file is read)."""
    dt = store.table(table)
    if dt is None:
        return 0
    return sum(n or 0 for n in pa.table(dt.get_add_actions(flatten=True)).column("num_records").to_pylist())


def next_day_chunk(day: date, last: date, rows_per_day: int | None) -> date:
    """The last day of the run of whole days starting at ``day`` that should hold about
    DAILY_ROWS_PER_QUERY rows, given the rows per day measured so far (None: one day, to
    measure it)."""
    step = 1 if rows_per_day is None else max(1, DAILY_ROWS_PER_QUERY // max(rows_per_day, 1))
    # compare in days first: day + step can pass date.max for a small lake
    return last if (last - day).days < step else day + timedelta(days=step - 1)


def _as_date(value) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value)[:10])


def materialize_model(
    store: DeltaStore,
    model: SqlModel,
    variables: dict,
    *,
    days: tuple[date, date] | None = None,
    months: Iterable[date] | None = None,
    data_tests: bool = True,
    keep_rows: bool = False,
) -> ModelRun:
    """Run ``model`` with the run ``variables`` (as_of, share rate, ...) and write its table.

    ``days=(first, last)``: the days of a daily-partitioned model (each run of days sets
    ``range_start``/``range_end``); ``months``: the first days of the months of a monthly
    one (each sets ``month`` and ``month_start``); neither for an unpartitioned model.
    ``data_tests``: run the model's data tests on what it wrote (or holds, when up to date).
    ``keep_rows``: return those rows in ``ModelRun.rows`` (every piece held in memory).
    """
    partition = model.partition or {}
    kind, column = partition.get("kind"), partition.get("column")
    run = ModelRun(model, tests=[DataTestOutcome(t) for t in model.tests] if data_tests else [])
    kept: list[pa.Table] = []

    def check(con, result: pa.Table) -> None:
        if data_tests:
            for outcome, (_, n, sample) in zip(
                run.tests, run_tests(con, model, result, limit=SAMPLE_ROWS), strict=True
            ):
                outcome.failures += n
                outcome.sample.extend(sample[: SAMPLE_ROWS - len(outcome.sample)])
        if keep_rows:
            kept.append(result)

    def write_partition(extra: dict, predicate: str) -> None:
        run_vars = variables | extra
        con = connect_for_model(store, model, run_vars)
        try:
            result = run_model(con, model)
            store.replace_where(model.name, result, predicate)
            run.rows_written += result.num_rows
            check(con, result)
        finally:
            con.close()

    if kind == "daily":
        if days is None or months is not None:
            raise ValueError(f"{model.name} is partitioned by day: give days=(first, last)")
        # a long range in bounded pieces, each replacing its own days (the same rows in the
        # end), sized by the rows per day the pieces so far wrote (the first: one day)
        day, last, per_day = _as_date(days[0]), _as_date(days[-1]), None
        while day <= last:
            end = next_day_chunk(day, last, per_day)
            before = run.rows_written
            write_partition({"range_start": day, "range_end": end}, f"{column} >= '{day}' AND {column} <= '{end}'")
            per_day = (run.rows_written - before) // ((end - day).days + 1)
            day = end + timedelta(days=1)
    elif kind == "monthly":
        if months is None or days is not None:
            raise ValueError(f"{model.name} is partitioned by month: give months=[first day of each month]")
        # Month by month, in order: each month's opening balance is the previous month's
        # carried-forward amount (R11), read from this same table.
        for start in sorted({_as_date(m).replace(day=1) for m in months}):
            month = start.strftime("%Y-%m")
            write_partition({"month": month, "month_start": start}, f"{column} = '{month}'")
    else:
        if days is not None or months is not None:
            raise ValueError(f"{model.name} is not partitioned: give neither days nor months")
        con = connect_for_model(store, model, variables)
        try:
            recompute = merge_unless_up_to_date if model.merges else recompute_unless_up_to_date
            result = recompute(store, model, con, variables)
            if result is None:  # inputs unchanged since its last computation: its checks still run on its rows
                run.recomputed = False
                if data_tests or keep_rows:
                    result = store.read(model.name)
                    run.rows_written = result.num_rows
                else:
                    run.rows_written = table_rows(store, model.name)
            else:
                run.rows_written = result.num_rows
            if result is not None:
                check(con, result)
        finally:
            con.close()
    if keep_rows and kept:
        run.rows = kept[0] if len(kept) == 1 else pa.concat_tables(kept, promote_options="default")
    return run
