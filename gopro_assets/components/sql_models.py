"""Turns every ``dbt_like_sql/**/<model>.sql`` into a Dagster asset with its data tests as
asset checks (blocking when their severity is ``error``). The pure parts (discovery,
sqlglot dependency parsing, running on DuckDB) live in ``sql_engine/runner.py``.
"""

from datetime import date
from pathlib import Path

import dagster as dg

from gopro_assets.shared.concurrency import LAKE_WRITER_POOL
from gopro_assets.shared.metadata import per_partition, table_metadata
from gopro_assets.shared.partitions import (
    START,
    as_of,
    daily_partitions,
    monthly_partitions,
    partition_days,
    single_run,
)
from gopro_assets.shared.resources import LakehouseResource
from gopro_assets.sql_engine.materialize import materialize_model
from gopro_assets.sql_engine.runner import SQL_ROOT, SqlModel, column_lineage, discover

PARTITIONS = {"daily": daily_partitions, "monthly": monthly_partitions}
REPO_ROOT = SQL_ROOT.parent


def run_variables(context: dg.AssetExecutionContext, lakehouse: LakehouseResource) -> dict:
    rate = lakehouse.share_rate_fraction
    return {
        "as_of": as_of(context).isoformat(),
        "share_rate_num": rate.numerator,
        "share_rate_den": rate.denominator,
        "min_payout_cents": lakehouse.min_payout,
        "review_days": lakehouse.review_window_days,
        "first_day": START.isoformat(),  # GOPRO_START_DATE: earlier uploads belong to its partition
    }


def _month_starts(context: dg.AssetExecutionContext) -> list[date]:
    return sorted(date.fromisoformat(k[:10]) for k in context.partition_keys)


def lineage_metadata(store, model: SqlModel) -> dg.TableColumnLineage:
    """Column lineage from the SQL (sqlglot), shown on the asset's page in the UI."""
    inputs = {}
    for table in [*model.deps, *([model.name] if model.reads_itself else [])]:
        dt = store.table(table)
        if dt is not None:
            inputs[table] = [f.name for f in dt.schema().fields]
    return dg.TableColumnLineage(
        deps_by_column={
            column: [dg.TableColumnDep(asset_key=dg.AssetKey(table), column_name=col) for table, col in deps]
            for column, deps in column_lineage(model, inputs).items()
            if deps
        }
    )


def declared_type(model: SqlModel, column: str) -> str:
    """The column's type as the model's .yml declares it; blank (not a wrong "string") when
    it does not. The first materialization shows the real Delta types."""
    return model.column_types.get(column) or ("BIGINT" if column in model.int64_columns else "")


def build_sql_asset(model: SqlModel) -> dg.AssetsDefinition:
    partitions_def = PARTITIONS.get((model.partition or {}).get("kind"))
    check_specs = [
        dg.AssetCheckSpec(
            name=t.name, asset=model.name, blocking=t.severity == "error", description=t.description or None
        )
        for t in model.tests
    ]

    @dg.asset(
        name=model.name,
        description=model.description,
        group_name=model.group,
        owners=model.owners,
        kinds=set(model.kinds),
        deps=model.deps,
        partitions_def=partitions_def,
        backfill_policy=single_run if partitions_def else None,
        # Money and whole-table models take turns across runs (gopro_assets/shared/concurrency.py);
        # daily partitions are disjoint writes and may run in parallel.
        pool=None if partitions_def is daily_partitions else LAKE_WRITER_POOL,
        check_specs=check_specs,
        metadata={
            "dagster/column_schema": dg.TableSchema(
                columns=[
                    dg.TableColumn(name, type=declared_type(model, name), description=doc or None)
                    for name, doc in model.columns.items()
                ]
            ),
            "sql_file": dg.MetadataValue.path(str(model.path.relative_to(REPO_ROOT))),
            "dagster/code_references": dg.CodeReferencesMetadataValue(
                code_references=[dg.LocalFileCodeReference(file_path=str(model.path), line_number=1)]
            ),
        },
    )
    def _sql_asset(context: dg.AssetExecutionContext, lakehouse: LakehouseResource):
        store = lakehouse.store()
        variables = run_variables(context, lakehouse)
        if partitions_def is daily_partitions:
            days = partition_days(context)
            run = materialize_model(store, model, variables, days=(days[0], days[-1]))
        elif partitions_def is monthly_partitions:
            run = materialize_model(store, model, variables, months=_month_starts(context))
        else:
            run = materialize_model(store, model, variables)
        if not run.recomputed:
            context.log.info(f"{model.name}: inputs unchanged since its last computation; not recomputed")

        for outcome in run.tests:
            test = outcome.test
            yield dg.AssetCheckResult(
                check_name=test.name,
                passed=outcome.passed,
                severity=dg.AssetCheckSeverity.ERROR if test.severity == "error" else dg.AssetCheckSeverity.WARN,
                metadata={
                    "offending_rows": outcome.failures,
                    "sample": dg.MetadataValue.json(outcome.sample),
                },
                description=test.description or None,
            )
        yield dg.MaterializeResult(
            metadata=per_partition(
                context,
                {
                    **table_metadata(store, model.name, model.columns, rows_written=run.rows_written),
                    "dagster/column_lineage": lineage_metadata(store, model),
                },
            )
        )

    return _sql_asset


def build_sql_assets(root: Path = SQL_ROOT, group: str | None = None) -> list[dg.AssetsDefinition]:
    return [build_sql_asset(m) for m in discover(root) if group is None or m.group == group]


class SqlModels(dg.Component, dg.Model, dg.Resolvable):
    """The SQL models whose ``.yml`` puts them in ``group``, as assets with their data tests."""

    group: str

    def build_defs(self, context: dg.ComponentLoadContext) -> dg.Definitions:
        assets = build_sql_assets(group=self.group)
        if not assets:
            raise ValueError(f"no SQL model in dbt_like_sql/ has group {self.group!r}")
        return dg.Definitions(assets=assets)
