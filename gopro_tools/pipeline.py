"""The whole money path without Dagster, for scripts that need it in one process: the
demo generator (to derive consistent buyer payments and payouts) and the benchmarks.

Production runs go through Dagster (``gopro-lake materialize``). This runs the very same
steps in an order of the very same asset graph (``gopro_assets.definitions.defs``): each
SQL model through the engine's ``materialize_model`` (as its asset does) and each Python
asset through the library function its asset calls (``PYTHON_STEPS``), so it cannot drift
from them in logic nor in order, only in orchestration. An asset with neither fails the
run (and tests/test_pipeline.py) until it gets a step here.
"""

from __future__ import annotations

import functools
import graphlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from fractions import Fraction

from gopro_assets.domain.footage.inventory import refresh_inventory
from gopro_assets.domain.ingestion import landing
from gopro_assets.domain.ingestion.ingest import (
    INGEST_ORDER,
    QUARANTINE,
    ingest_deals,
    ingest_kind,
    known_subscriber_validator,
)
from gopro_assets.domain.licensing import deliveries
from gopro_assets.lake.delta_store import DeltaStore
from gopro_assets.lake.storage import FileRoot
from gopro_assets.sql_engine.materialize import ModelRun, materialize_model
from gopro_assets.sql_engine.runner import SQL_ROOT, discover


def _months(first: date, through: date) -> list[date]:
    """First days of the months that are complete by the end of ``through``."""
    out, m = [], first.replace(day=1)
    while True:
        nxt = (m.replace(day=28) + timedelta(days=4)).replace(day=1)
        if nxt - timedelta(days=1) > through:
            return out
        out.append(m)
        m = nxt


_MODELS: dict[tuple, dict] = {}


def _models() -> dict:
    """The SQL models by name, parsed once per process (discover() parses every model's SQL
    with sqlglot and its YAML: most of a second a call, once per model run otherwise). Keyed on
    the model files' modification times, so an edited model is parsed again."""
    files = sorted(SQL_ROOT.glob("*/*.*"))
    key = tuple((str(p), p.stat().st_mtime_ns) for p in files)
    models = _MODELS.get(key)
    if models is None:
        _MODELS.clear()
        models = _MODELS[key] = {m.name: m for m in discover()}
    return models


def _model(name: str):
    """The SQL model ``name`` (see :func:`_models`)."""
    return _models()[name]


PARTITION_VARIABLES = ("range_start", "range_end", "month", "month_start")


def materialize_sql(
    store: DeltaStore,
    name: str,
    variables: dict,
    *,
    days: tuple[date, date] | None = None,
    months: list[date] | None = None,
    data_tests: bool = False,
) -> ModelRun:
    """The SQL model ``name`` through the engine's ``materialize_model``. Its data tests run
    only with ``data_tests`` (the Dagster run turns them into asset checks; the scripts
    that use this want the tables)."""
    return materialize_model(store, _model(name), variables, days=days, months=months, data_tests=data_tests)


def run_sql(store: DeltaStore, name: str, variables: dict, *, data_tests: bool = False) -> int:
    """Materialize the SQL model ``name``; ``variables`` carry its partitions as its asset
    sets them: ``range_start``/``range_end`` (daily), ``month``/``month_start`` (monthly).
    Returns the rows written (an unpartitioned model left as it was: the rows it holds)."""
    kind = (_model(name).partition or {}).get("kind")
    base = {k: v for k, v in variables.items() if k not in PARTITION_VARIABLES}
    days = (variables["range_start"], variables["range_end"]) if kind == "daily" else None
    months = [variables.get("month_start") or f"{variables['month']}-01"] if kind == "monthly" else None
    return materialize_sql(store, name, base, days=days, months=months, data_tests=data_tests).rows_written


# -- the steps: one per node of the asset graph (a multi-asset once) ----------------------------
@dataclass
class PipelineRun:
    """What the steps of one :func:`run_all` share."""

    store: DeltaStore
    landing_uri: str
    first_day: date
    through: date
    variables: dict  # the run variables of the SQL models (as_of, share rate, ...)
    review_days: int
    probe_many: Callable | None
    data_tests: bool = False
    models: dict[str, ModelRun] = field(default_factory=dict)

    @property
    def days(self) -> list[date]:
        return [self.first_day + timedelta(days=i) for i in range((self.through - self.first_day).days + 1)]

    @property
    def months(self) -> list[date]:
        return _months(self.first_day, self.through)


def _ingest(run: PipelineRun) -> None:
    """ingest_landing: every tabular kind in its order, then the deals."""
    root = FileRoot(run.landing_uri)
    for name in INGEST_ORDER:
        validate = known_subscriber_validator(run.store) if name == "uploads" else None
        ingest_kind(run.store, root, landing.LANDING_KINDS[name], validate=validate)
    ingest_deals(run.store, root)


def _inventory(run: PipelineRun) -> None:
    """footage_inventory (and footage_quarantine): every day of the run probed."""
    probe_many = run.probe_many
    if probe_many is None:
        from gopro_assets.domain.footage.probe import probe_many
    refresh_inventory(run.store, run.landing_uri, run.days, run.first_day, probe_many)


def _recordings(run: PipelineRun) -> None:
    """footage_recordings: the recordings of the whole inventory (R15)."""
    from gopro_assets.domain.footage.recordings import refresh_recordings

    refresh_recordings(run.store)


def _deliver(run: PipelineRun) -> None:
    """deal_deliveries (and delivered_batches): every batch due by the end of ``through``."""
    from gopro_assets.settings import end_of_day

    deliveries.ensure_tables(run.store)
    deals = {d["deal_id"]: d for d in run.store.read("license_deals").to_pylist()}
    for _ in deliveries.deliver_due_batches(run.store, end_of_day(run.through), deals, run.review_days):
        pass


def _train_value_model(run: PipelineRun) -> None:
    from gopro_assets.domain.valuation.model import train_from_lake

    train_from_lake(run.store)


def _value_clips(run: PipelineRun) -> None:
    from gopro_assets.domain.valuation.model import value_lake

    value_lake(run.store)


# The Python assets, keyed by asset key: the library function their asset calls. The keys
# of one multi-asset name the same function, run once.
PYTHON_STEPS: dict[str, Callable[[PipelineRun], None]] = {
    **dict.fromkeys([*INGEST_ORDER, "license_deals", "license_batches", QUARANTINE], _ingest),
    **dict.fromkeys(["footage_inventory", "footage_quarantine"], _inventory),
    "footage_recordings": _recordings,
    **dict.fromkeys(["deal_deliveries", "delivered_batches"], _deliver),
    "clip_value_model": _train_value_model,
    "clip_valuations": _value_clips,
}
# Assets that write no lake table, which this leaves to Dagster and the CLI.
NOT_TABLES = {"payout_export": "the month's finance files under <exports>/<YYYY-MM>/ (gopro-lake export)"}


@dataclass(frozen=True)
class Step:
    """One node of the asset graph: its asset keys (a multi-asset's all), what it needs
    from other steps and how this pipeline runs it."""

    name: str  # the Dagster op's (a multi-asset's name, else the asset's)
    keys: tuple[str, ...]
    deps: frozenset[str]  # asset keys of other steps it reads
    group: str
    partitioning: str | None  # "daily" | "monthly" | None
    kind: str  # "sql" | "python" | "files" (not run here: NOT_TABLES)


def plan(defs=None) -> list[Step]:
    """The steps of ``defs`` (default: the code location's) in a topological order of its
    asset graph, from Dagster's public API: the asset specs with their deps, and for each
    asset the assets definition it is computed by (a multi-asset's keys are one step).
    Independent steps come in the order of their names. Raises LookupError for an asset
    this pipeline has no step for."""
    if defs is None:
        return list(_code_location_plan())
    import dagster as dg

    specs = {spec.key.to_user_string(): spec for spec in defs.resolve_all_asset_specs()}
    models = _models()
    steps: dict[str, Step] = {}  # by asset key
    for key in specs:
        if key in steps:
            continue
        assets_def = defs.resolve_assets_def(key)
        keys = tuple(sorted(k.to_user_string() for k in assets_def.keys))
        deps = frozenset(d.asset_key.to_user_string() for k in keys for d in specs[k].deps) - set(keys)
        pdefs = [specs[k].partitions_def for k in keys if specs[k].partitions_def is not None]
        partitioning = (
            None
            if not pdefs
            else "daily"
            if isinstance(pdefs[0], dg.DailyPartitionsDefinition)
            else "monthly"
            if isinstance(pdefs[0], dg.MonthlyPartitionsDefinition)
            else type(pdefs[0]).__name__
        )
        if len(keys) == 1 and keys[0] in models:
            kind = "sql"
        elif all(k in PYTHON_STEPS for k in keys) and len({PYTHON_STEPS[k] for k in keys}) == 1:
            kind = "python"
        elif all(k in NOT_TABLES for k in keys):
            kind = "files"
        else:
            raise LookupError(
                f"asset(s) {', '.join(keys)}: no step in gopro_tools/pipeline.py (a SQL model, one PYTHON_STEPS "
                "function for all the keys of one assets definition, or NOT_TABLES)"
            )
        step = Step(assets_def.node_def.name, keys, deps, specs[keys[0]].group_name or "default", partitioning, kind)
        steps.update(dict.fromkeys(keys, step))
    unique = {step.keys: step for step in steps.values()}
    sorter = graphlib.TopologicalSorter()
    for step in unique.values():
        sorter.add(step.keys, *{steps[d].keys for d in step.deps if d in steps})
    sorter.prepare()
    order = []
    while sorter.is_active():
        ready = sorted(sorter.get_ready())
        order.extend(unique[k] for k in ready)
        sorter.done(*ready)
    return order


@functools.cache
def _code_location_plan() -> tuple[Step, ...]:
    from gopro_assets.definitions import defs

    return tuple(plan(defs))


def run_all(
    store: DeltaStore,
    landing_uri: str,
    first_day: date,
    through: date,
    share_rate: Fraction = Fraction(1, 2),
    min_payout_cents: int = 1000,
    review_days: int = 7,
    probe_many=None,
    snapshots: bool = True,
    valuation: bool = True,
    data_tests: bool = False,
) -> dict:
    """Every step of the asset graph, in its order, through ``through`` (contract §6
    semantics): ingestion, probing, deliveries, revenue, allocations, statements and
    reconciliation, and the valuation stage (features, clip_value_model, clip_valuations,
    library_valuation). Daily models cover ``first_day``..``through``, monthly ones the
    months complete by ``through``, the others run once.

    ``snapshots=False`` leaves out consent_daily (the per-day counts) and ``valuation=False`` the valuation
    group (e.g. when only the money figures are wanted); a step that reads a table left
    out, which does not exist, is left out too. ``data_tests``: run the SQL models' data
    tests too (their outcomes are in ``models`` of the result).
    Returns ``{"months": [YYYY-MM], "steps": [step names in the order run], "models": {name: ModelRun}}``.
    """
    from gopro_assets.settings import end_of_day

    run = PipelineRun(
        store=store,
        landing_uri=landing_uri,
        first_day=first_day,
        through=through,
        variables={
            "as_of": end_of_day(through).isoformat(),
            "share_rate_num": share_rate.numerator,
            "share_rate_den": share_rate.denominator,
            "min_payout_cents": min_payout_cents,
            "review_days": review_days,
            "first_day": first_day.isoformat(),
        },
        review_days=review_days,
        probe_many=probe_many,
        data_tests=data_tests,
    )
    left_out: set[str] = set()
    done = []
    for step in plan():
        if (
            step.kind == "files"
            or (not snapshots and "consent_daily" in step.keys)
            or (not valuation and step.group == "valuation")
            or any(d in left_out and not store.exists(d) for d in step.deps)
        ):
            left_out.update(step.keys)
            continue
        if step.kind == "python":
            PYTHON_STEPS[step.keys[0]](run)
        else:
            run.models[step.name] = materialize_sql(
                store,
                step.keys[0],
                run.variables,
                days=(run.first_day, run.through) if step.partitioning == "daily" else None,
                months=run.months if step.partitioning == "monthly" else None,
                data_tests=data_tests,
            )
        done.append(step.name)
    return {"months": [m.strftime("%Y-%m") for m in run.months], "steps": done, "models": run.models}
