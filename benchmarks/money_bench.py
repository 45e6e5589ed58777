"""The money path at scale: consent snapshots for a month, deliveries, revenue,
allocations, statements and reconciliation, beside a bare DuckDB GROUP BY over the same
deliveries.

The lake holds a year of synthetic data (``synth``: ingested tables and the probed
inventory written directly). The path then runs with the library functions and SQL models
that the Dagster assets call (``gopro_tools.pipeline.run_sql``,
``gopro_assets.domain.licensing.deliveries``), in a fresh process, so the wall time and peak RSS are
those of the money path alone. The reference is one ``GROUP BY deal, batch, subscriber``
over the resulting ``deal_deliveries`` table with the same exact (HUGEINT) weights,
also in a fresh process: the least any allocation could cost.
"""

from __future__ import annotations

import argparse
import json
import time
from datetime import date, timedelta
from pathlib import Path

from benchmarks import Figure, Scale, emit, log, run_worker

GB = 2**30
FIRST_DAY = date(2025, 1, 1)


def world_spec(scale: Scale):
    from gopro_tools.synth import WorldSpec

    return WorldSpec(
        subscribers=scale.subscribers,
        clips_per_year=scale.clips_per_year,
        start=FIRST_DAY,
        horizon_days=366,
        batch_months=scale.batch_months,
    )


def run(scale: Scale, workdir: Path) -> tuple[list[Figure], dict]:
    lake = workdir / "money_lake"
    # through the last batch's month end (2025-12-31 with twelve monthly batches per deal)
    last_end = world_spec(scale).day_date(0)
    for _ in range(scale.batch_months):
        last_end = (last_end.replace(day=28) + timedelta(days=4)).replace(day=1)
    through = last_end - timedelta(days=1)
    through_day = (through - FIRST_DAY).days
    log(f"money: generating a year of data ({scale.subscribers:,} subscribers, {scale.clips_per_year:,} clips)")
    gen = run_worker(
        "benchmarks.money_bench",
        {"task": "generate", "scale": scale.name, "lake": str(lake), "through_day": through_day},
        log=log,
    )
    log("money: running the money path")
    money = run_worker(
        "benchmarks.money_bench",
        {
            "task": "money",
            "lake": str(lake),
            "through": through.isoformat(),
            "snapshot_month": through.strftime("%Y-%m"),
        },
        log=log,
    )
    log("money: bare GROUP BY over the same deliveries")
    bare = run_worker("benchmarks.money_bench", {"task": "bare", "lake": str(lake)}, log=log)
    wall, ref = money["wall_s"], bare["wall_s"]
    stages = money["stages"]
    figures = [
        Figure(
            "money",
            "money path wall time",
            round(wall, 2),
            "s",
            "bare DuckDB GROUP BY over the deliveries",
            round(ref, 2),
            "<= 5x the bare query",
            wall <= 5 * ref,
            note=f"{wall / ref:.1f}x the bare query; {money['counts']['deal_deliveries']:,} deliveries",
            detail={"stages_s": stages, "models_s": money["models"], "counts": money["counts"]},
        ),
        Figure(
            "money",
            "money path peak RSS",
            round(money["peak_rss_bytes"] / GB, 2),
            "GiB",
            "bare GROUP BY peak RSS",
            round(bare["peak_rss_bytes"] / GB, 2),
            "< 4 GiB",
            money["peak_rss_bytes"] < 4 * GB,
        ),
    ]
    # the same comparison for the part that scales with the deliveries only
    post = sum(stages[k] for k in ("revenue_allocations", "statements"))
    figures.append(
        Figure(
            "money",
            "revenue + allocations + statements (after deliveries)",
            round(post, 2),
            "s",
            "bare GROUP BY",
            round(ref, 2),
            "<= 5x the bare query",
            post <= 5 * ref,
            note=f"{post / ref:.1f}x the bare query",
        )
    )
    return figures, {"generate": gen, "money": money, "bare": bare}


# -- worker side ----------------------------------------------------------------------------------


def _generate(args: dict) -> dict:
    from benchmarks import SCALES
    from gopro_tools.synth import Synth, write_lake

    spec = world_spec(SCALES[args["scale"]])
    started = time.monotonic()
    counts = write_lake(Synth(spec), args["lake"], args["through_day"])
    return {"wall_s": time.monotonic() - started, "counts": counts}


def money_path(
    store,
    through: date,
    snapshot_days: list[date],
    first_day: date = FIRST_DAY,
    review_days: int = 7,
    months: list[date] | None = None,
    timer=None,
) -> dict:
    """The money path of ``lib.pipeline.run_all`` after ingestion and probing, stage by stage."""
    from fractions import Fraction

    from gopro_assets.domain.licensing import deliveries
    from gopro_assets.settings import end_of_day
    from gopro_tools.pipeline import _months, run_sql

    stages, models = {}, {}
    rate = Fraction(1, 2)
    base = {
        "as_of": end_of_day(through).isoformat(),
        "share_rate_num": rate.numerator,
        "share_rate_den": rate.denominator,
        "min_payout_cents": 1000,
        "review_days": review_days,
    }

    def sql(name: str, variables: dict, key: str | None = None) -> None:
        t = time.monotonic()
        run_sql(store, name, variables)
        models[key or name] = round(models.get(key or name, 0) + time.monotonic() - t, 3)

    t = time.monotonic()
    sql("int_consent_timeline", base)
    sql("int_clip_exclusion_timeline", base)
    stages["timelines"] = time.monotonic() - t
    if snapshot_days:
        t = time.monotonic()
        sql("consent_snapshots", base | {"range_start": snapshot_days[0], "range_end": snapshot_days[-1]})
        stages["consent_snapshots"] = time.monotonic() - t
    t = time.monotonic()
    deliveries.ensure_tables(store)
    deals = {d["deal_id"]: d for d in store.read("license_deals").to_pylist()}
    batch_times = []
    for batch in deliveries.due_batches(store, end_of_day(through)):
        if batch["deal_id"] in deals:
            tb = time.monotonic()
            row = deliveries.deliver_batch(store, batch, deals[batch["deal_id"]], review_days)
            if row is not None:  # None: already frozen by another writer
                batch_times.append(
                    {
                        "batch": f"{row['deal_id']}/{row['batch_id']}",
                        "s": round(time.monotonic() - tb, 2),
                        "candidates": row["candidates"],
                        "clips": row["clips"],
                    }
                )
    stages["deliveries"] = time.monotonic() - t
    models["deliver_batch"] = batch_times
    t = time.monotonic()
    for name in ["batch_revenue", "revenue_share_allocations", "buyer_receivables", "late_revocations"]:
        sql(name, base)
    stages["revenue_allocations"] = time.monotonic() - t
    t = time.monotonic()
    for month in months if months is not None else _months(first_day, through):
        sql("revenue_share_statements", base | {"month": month.strftime("%Y-%m"), "month_start": month})
        sql("payout_reconciliation", base | {"month": month.strftime("%Y-%m"), "month_start": month})
    stages["statements"] = time.monotonic() - t
    return {"stages": {k: round(v, 3) for k, v in stages.items()}, "models": models}


def _rows(store, table: str) -> int:
    import pyarrow as pa

    dt = store.table(table)
    if dt is None:
        return 0
    return sum(n or 0 for n in pa.table(dt.get_add_actions(flatten=True)).column("num_records").to_pylist())


def _money(args: dict) -> dict:
    from gopro_assets.lake.delta_store import DeltaStore

    store = DeltaStore(args["lake"])
    through = date.fromisoformat(args["through"])
    month_start = date.fromisoformat(args["snapshot_month"] + "-01")
    snapshot_days = [month_start + timedelta(days=i) for i in range((through - month_start).days + 1)]
    started = time.monotonic()
    out = money_path(store, through, snapshot_days)
    out["wall_s"] = time.monotonic() - started
    out["counts"] = {
        t: _rows(store, t)
        for t in [
            "subscribers",
            "footage_inventory",
            "consent_snapshots",
            "deal_deliveries",
            "batch_revenue",
            "revenue_share_allocations",
            "revenue_share_statements",
            "payout_reconciliation",
            "late_revocations",
        ]
    }
    return out


BARE_SQL = """
SELECT deal_id, batch_id, subscriber_id, count(*) AS clips, sum(billable_seconds) AS billable_seconds,
       sum(CAST(billable_seconds AS HUGEINT) * coalesce(tier_price_cents, 1)) AS weight
FROM deal_deliveries
GROUP BY deal_id, batch_id, subscriber_id
"""


def _bare(args: dict) -> dict:
    import duckdb

    from gopro_assets.lake.delta_store import DeltaStore

    started = time.monotonic()
    con = duckdb.connect()
    con.register("deal_deliveries", DeltaStore(args["lake"]).dataset("deal_deliveries"))
    result = con.sql(BARE_SQL).to_arrow_table()
    return {"wall_s": time.monotonic() - started, "groups": result.num_rows}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--worker", required=True)
    args = json.loads(parser.parse_args().worker)
    task = {"generate": _generate, "money": _money, "bare": _bare}[args["task"]]
    emit(task(args))


if __name__ == "__main__":
    main()
