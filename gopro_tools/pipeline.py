"""The whole money path without Dagster, for scripts that need it in one process: the
demo generator (to derive consistent buyer payments and payouts) and the benchmarks.

Production runs go through Dagster (``gopro-lake materialize``); this calls the very same
library functions and SQL models in the same order, so it cannot drift from them in
logic, only in orchestration.
"""

from __future__ import annotations

from datetime import date, timedelta
from fractions import Fraction

from gopro_assets.domain.footage.inventory import refresh_inventory
from gopro_assets.domain.ingestion import landing
from gopro_assets.domain.ingestion.ingest import INGEST_ORDER, ingest_deals, ingest_kind, known_subscriber_validator
from gopro_assets.domain.licensing import deliveries
from gopro_assets.lake.delta_store import DeltaStore
from gopro_assets.lake.storage import FileRoot
from gopro_assets.sql_engine.runner import SQL_ROOT, connect_for_model, discover, recompute_unless_up_to_date, run_model


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


def _model(name: str):
    """The SQL model ``name``, parsed once per process (discover() parses every model's SQL
    with sqlglot and its YAML: most of a second a call, once per model run otherwise). Keyed on
    the model files' modification times, so an edited model is parsed again."""
    files = sorted(SQL_ROOT.glob("*/*.*"))
    key = tuple((str(p), p.stat().st_mtime_ns) for p in files)
    models = _MODELS.get(key)
    if models is None:
        _MODELS.clear()
        models = _MODELS[key] = {m.name: m for m in discover()}
    return models[name]


# Rows one query of a daily-partitioned model should hold: a range of days is computed in
# runs of whole days of about this many rows (consent_snapshots: one per subscriber and
# day, so a month for a million subscribers is 31 million rows, several GB at once).
DAILY_ROWS_PER_QUERY = 4_000_000


def _rows(store: DeltaStore, table: str) -> int:
    """Row count from the Delta log's file statistics (no data file is read)."""
    import pyarrow as pa

    dt = store.table(table)
    if dt is None:
        return 0
    return sum(n or 0 for n in pa.table(dt.get_add_actions(flatten=True)).column("num_records").to_pylist())


def day_chunks(store: DeltaStore, model, first: date, last: date) -> list[tuple[date, date]]:
    """``first``..``last`` in runs of whole days, each about DAILY_ROWS_PER_QUERY rows when a
    day holds about as many rows as the model's largest input (a subscriber-day per
    subscriber for consent_snapshots)."""
    per_day = max([_rows(store, t) for t in model.deps] + [1])
    step = max(1, DAILY_ROWS_PER_QUERY // per_day)
    out, day = [], first
    while day <= last:
        # compare in days first: day + step can pass date.max for a small lake
        end = last if (last - day).days < step else day + timedelta(days=step - 1)
        out.append((day, end))
        day = end + timedelta(days=1)
    return out


def run_sql(store: DeltaStore, name: str, variables: dict) -> int:
    model = _model(name)
    column = (model.partition or {}).get("column")
    if column is not None and "month" not in variables and (model.partition or {}).get("kind") == "daily":
        # a long range in bounded pieces, each replacing its own days: the same rows in the end
        first = date.fromisoformat(str(variables["range_start"])[:10])
        last = date.fromisoformat(str(variables["range_end"])[:10])
        written = 0
        for start, end in day_chunks(store, model, first, last):
            con = connect_for_model(store, model, variables | {"range_start": start, "range_end": end})
            result = run_model(con, model)
            con.close()
            store.replace_where(name, result, f"{column} >= '{start}' AND {column} <= '{end}'")
            written += result.num_rows
            del result
        return written
    con = connect_for_model(store, model, variables)
    if column is None:
        result = recompute_unless_up_to_date(store, model, con, variables)
        con.close()
        return _rows(store, name) if result is None else result.num_rows
    result = run_model(con, model)
    con.close()
    if "month" in variables:
        store.replace_where(name, result, f"{column} = '{variables['month']}'")
    else:
        store.replace_where(
            name, result, f"{column} >= '{variables['range_start']}' AND {column} <= '{variables['range_end']}'"
        )
    return result.num_rows


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
) -> dict:
    """Ingest, probe, deliver and compute revenue, allocations, statements and
    reconciliation through ``through`` (contract §6 semantics), then the valuation stage
    (features, clip_value_model, clip_valuations, library_valuation) unless ``valuation``
    is False (e.g. when only the money figures are wanted)."""
    from gopro_assets.settings import end_of_day

    root = FileRoot(landing_uri)
    for name in INGEST_ORDER:
        validate = known_subscriber_validator(store) if name == "uploads" else None
        ingest_kind(store, root, landing.LANDING_KINDS[name], validate=validate)
    ingest_deals(store, root)
    if probe_many is None:
        from gopro_assets.domain.footage.probe import probe_many
    days = [first_day + timedelta(days=i) for i in range((through - first_day).days + 1)]
    refresh_inventory(store, landing_uri, days, first_day, probe_many)
    base = {
        "as_of": end_of_day(through).isoformat(),
        "share_rate_num": share_rate.numerator,
        "share_rate_den": share_rate.denominator,
        "min_payout_cents": min_payout_cents,
        "review_days": review_days,
    }
    run_sql(store, "int_consent_timeline", base)
    run_sql(store, "int_clip_exclusion_timeline", base)
    if snapshots:
        run_sql(store, "consent_snapshots", base | {"range_start": days[0], "range_end": days[-1]})
    deliveries.ensure_tables(store)
    deals = {d["deal_id"]: d for d in store.read("license_deals").to_pylist()}
    for batch in deliveries.due_batches(store, end_of_day(through)):
        if batch["deal_id"] in deals:
            deliveries.deliver_batch(store, batch, deals[batch["deal_id"]], review_days)
    for name in ["batch_revenue", "revenue_share_allocations", "buyer_receivables", "late_revocations"]:
        run_sql(store, name, base)
    months = _months(first_day, through)
    for month in months:
        run_sql(store, "revenue_share_statements", base | {"month": month.strftime("%Y-%m"), "month_start": month})
        run_sql(store, "payout_reconciliation", base | {"month": month.strftime("%Y-%m"), "month_start": month})
    if valuation:
        from gopro_assets.domain.valuation.model import run_stage  # features, model, clip_valuations, library_valuation

        run_stage(store, base, run_sql)
    return {"months": [m.strftime("%Y-%m") for m in months]}
