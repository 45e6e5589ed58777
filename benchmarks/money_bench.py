"""The money path at scale: the consent intervals, deliveries, revenue, allocations,
statements and reconciliation of a year, beside a bare DuckDB GROUP BY over the same
deliveries; the storage of a year of consent state beside the old daily grain; and a
batch night (three batches due) beside a night without batches.

The lake holds a year of synthetic data (``synth``: ingested tables and the probed
inventory written directly). The path then runs with the library functions and SQL models
that the Dagster assets call (``gopro_tools.pipeline.run_sql``,
``gopro_assets.domain.licensing.deliveries``), in a fresh process, so the wall time and peak RSS are
those of the money path alone. The reference is one ``GROUP BY deal, batch, subscriber``
over the resulting ``deal_deliveries`` table with the same exact (HUGEINT) weights,
also in a fresh process: the least any allocation could cost.

Consent storage: ``consent_snapshots`` holds validity intervals (contract §5 v2), built
once from the year of events by the money path. The old grain (one row per subscriber and
day from the day they subscribed) is not built for a year: its row count is exact (the sum
over the year's days of the subscribers subscribed by the end of the day) and its bytes are
that count times the bytes per row of one day of it, written as the old model wrote it
(same columns, unpartitioned Delta, one day per write) from the intervals at that day's end.

The batch night reuses ``incremental_bench``: a lake built with a year of history up to
two days before the last month end, the nightly of the day before the month end (nothing
due), then, on the lake it left, the nightly of the month end, at whose end the batches of
the three deals (one shared cutoff) are due.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shutil
import time
from datetime import date, timedelta
from pathlib import Path

from benchmarks import Figure, Scale, emit, log, run_worker

GB = 2**30
MB = 2**20
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
        {"task": "money", "lake": str(lake), "through": through.isoformat()},
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
    log("money: consent state storage for the year, beside the old daily grain")
    storage = run_worker(
        "benchmarks.money_bench",
        {
            "task": "storage",
            "lake": str(lake),
            "scratch": str(workdir / "old_grain"),
            "first_day": FIRST_DAY.isoformat(),
            "through": through.isoformat(),
        },
        log=log,
    )
    figures.append(storage_figure(storage))
    shutil.rmtree(lake, ignore_errors=True)  # the batch night builds its own lake
    from benchmarks import incremental_bench

    night_figures, night = incremental_bench.batch_night(scale, workdir / "batch_night")
    figures.extend(night_figures)
    return figures, {"generate": gen, "money": money, "bare": bare, "storage": storage, "batch_night": night}


def storage_figure(storage: dict) -> Figure:
    iv, old = storage["intervals"], storage["daily_grain"]
    return Figure(
        "money",
        f"consent state storage, {storage['days']} days (a year at 12 batch months): consent_snapshots intervals",
        round(iv["bytes"] / MB, 3),
        "MiB",
        "the old daily grain (one row per subscriber and day), rows exact, bytes = rows x bytes/row of one day",
        round(old["bytes"] / MB, 3),
        "informational (issue 14: beside the old daily grain)",
        None,
        note=f"{iv['rows']:,} rows in {iv['files']} files vs {old['rows']:,} rows "
        f"({old['rows'] / max(1, iv['rows']):.0f}x the rows, {old['bytes'] / max(1, iv['bytes']):.0f}x the bytes; "
        f"one day of the old grain: {old['day_rows']:,} rows, {old['day_bytes']:,} bytes, "
        f"{old['bytes_per_row']:.2f} bytes/row)",
        detail=storage,
    )


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
    first_day: date = FIRST_DAY,
    review_days: int = 7,
    months: list[date] | None = None,
    breakdown: bool = False,
) -> dict:
    """The money path of ``lib.pipeline.run_all`` after ingestion and probing, stage by
    stage: the clip exclusion timeline and the consent intervals (``consent_snapshots``,
    a full build the first time, incremental after), the deliveries of every due batch (one
    judgement per cutoff), revenue, allocations, receivables and late revocations, and the
    statements and reconciliation of every closed month. ``breakdown``: also time the
    parts of the deliveries (:func:`deliveries_breakdown`)."""
    from fractions import Fraction

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

    sql("int_clip_exclusion_timeline", base)
    stages["clip_exclusion_timeline"] = time.monotonic() - t
    t = time.monotonic()
    sql("consent_snapshots", base)  # unpartitioned: every subscriber's intervals, from every event
    stages["consent_snapshots"] = time.monotonic() - t
    t = time.monotonic()
    if breakdown:
        with deliveries_breakdown() as parts:
            models["deliver_batch"] = deliver_due(store, end_of_day(through), review_days)
        models["deliveries_breakdown_s"] = {k: round(v, 3) for k, v in parts.items()}
    else:
        models["deliver_batch"] = deliver_due(store, end_of_day(through), review_days)
    stages["deliveries"] = time.monotonic() - t
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


@contextlib.contextmanager
def deliveries_breakdown():
    """Where the deliveries' time goes: wrap, for the duration, the building blocks
    ``deliveries`` calls (the product code is not changed) and sum their wall time. The
    judgement of a cutoff (``CutoffJudgement``: R4 over the whole inventory once per
    inventory version, owner eligibility and clip exclusions at the cutoff) holds its own
    connections and queries; the rest is per batch."""
    from gopro_assets.domain.licensing import deliveries as d
    from gopro_assets.lake.delta_store import DeltaStore

    totals: dict[str, float] = {}
    inside = []  # the judgement being computed, if any
    patched = []

    def wrap(owner, name: str, key: str, split: bool = False, marks: bool = False) -> None:
        real = getattr(owner, name)

        def timed(*args, **kwargs):
            k = (f"judgement.{key}" if inside else key) if split else key
            if marks:
                inside.append(True)
            t = time.monotonic()
            try:
                return real(*args, **kwargs)
            finally:
                totals[k] = totals.get(k, 0.0) + time.monotonic() - t
                if marks:
                    inside.pop()

        patched.append((owner, name, real))
        setattr(owner, name, timed)

    wrap(d.CutoffJudgement, "__init__", "cutoff_judgement", marks=True)
    wrap(d, "non_original_clips", "judgement.r4_non_original_clips")
    wrap(d, "connect", "connect", split=True)
    wrap(d, "fetch_arrow", "queries", split=True)
    wrap(d, "due_batches", "due_batches")
    wrap(d, "is_delivered", "is_delivered")
    wrap(d, "batch_deliveries", "select_r6")
    wrap(DeltaStore, "version", "input_versions", split=True)
    wrap(DeltaStore, "replace_where", "write_deliveries")
    wrap(DeltaStore, "insert_new", "write_marker")
    try:
        yield totals
    finally:
        for owner, name, real in reversed(patched):
            setattr(owner, name, real)


def deliver_due(store, as_of, review_days: int) -> list[dict]:
    """Every batch due by ``as_of`` delivered as the deal_deliveries asset does
    (``deliveries.deliver_due_batches``: the batches of one cutoff share its judgement), with
    the time each took. The first batch of a cutoff carries the judgement of the cutoff."""
    from gopro_assets.domain.licensing import deliveries

    deliveries.ensure_tables(store)
    deals = {d["deal_id"]: d for d in store.read("license_deals").to_pylist()}
    out, t = [], time.monotonic()
    for batch, row in deliveries.deliver_due_batches(store, as_of, deals, review_days):
        now = time.monotonic()
        out.append(
            {
                "batch": f"{batch['deal_id']}/{batch['batch_id']}",
                "cutoff_at": str(batch["cutoff_at"]),
                "s": round(now - t, 3),
                "candidates": row["candidates"] if row else None,  # None: frozen by another writer
                "clips": row["clips"] if row else None,
            }
        )
        t = now
    return out


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
    started = time.monotonic()
    out = money_path(store, through, breakdown=True)
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


def _storage(args: dict) -> dict:
    """The consent state of the year as stored: ``consent_snapshots`` (intervals) as the
    money path left it, and the old daily grain (rows exact, bytes from one day of it)."""
    import pyarrow as pa

    from gopro_assets.lake.delta_store import DeltaStore
    from gopro_assets.sql_engine.runner import connect, fetch_arrow

    store = DeltaStore(args["lake"])
    first, through = date.fromisoformat(args["first_day"]), date.fromisoformat(args["through"])
    adds = pa.table(store.table("consent_snapshots").get_add_actions(flatten=True))
    part = "partition.valid_to_month"
    by_part = {}
    if part in adds.column_names:
        for current, rows, size in zip(
            adds[part].to_pylist(), adds["num_records"].to_pylist(), adds["size_bytes"].to_pylist(), strict=True
        ):
            key = f"valid_to_month={current}"
            agg = by_part.setdefault(key, {"files": 0, "rows": 0, "bytes": 0})
            agg["files"], agg["rows"], agg["bytes"] = agg["files"] + 1, agg["rows"] + (rows or 0), agg["bytes"] + size
    intervals = {
        "rows": sum(n or 0 for n in adds["num_records"].to_pylist()),
        "bytes": sum(adds["size_bytes"].to_pylist()),
        "files": adds.num_rows,
        "subscribers": None,
        "by_partition": by_part,
    }
    con = connect(store, ["subscribers", "consent_snapshots"], {})
    con.execute("SET TimeZone = 'UTC'")
    intervals["subscribers"] = con.execute("SELECT count(DISTINCT subscriber_id) FROM consent_snapshots").fetchall()[0][
        0
    ]
    # the old grain: a row per day of the year for every subscriber subscribed by its end
    # (subscribed_at <= the day's last microsecond, i.e. subscribed on that UTC day or before)
    rows = con.execute(
        f"""SELECT coalesce(sum(greatest(0, datediff('day', greatest(DATE '{first}', CAST(subscribed_at AS DATE)),
                                                 DATE '{through}') + 1)), 0)
            FROM subscribers WHERE subscribed_at IS NOT NULL"""
    ).fetchall()[0][0]
    # the same count the way the old model made its rows (a subscriber x day grid), where
    # it is affordable: a check of the sum above
    grid_rows = None
    if intervals["subscribers"] <= 50_000:
        grid_rows = con.execute(
            f"""SELECT count(*) FROM subscribers AS s
                JOIN range(TIMESTAMPTZ '{first} 00:00:00+00', TIMESTAMPTZ '{through} 00:00:00+00' + INTERVAL 1 DAY,
                           INTERVAL 1 DAY) AS r(d)
                  ON s.subscribed_at <= r.d + INTERVAL 1 DAY - INTERVAL 1 MICROSECOND"""
        ).fetchall()[0][0]
    # one day of it (the year's last: the largest population), as the old model wrote it,
    # with the state of the interval holding the end of that day
    t = f"TIMESTAMPTZ '{through.isoformat()} 00:00:00+00' + INTERVAL 1 DAY - INTERVAL 1 MICROSECOND"
    started = time.monotonic()
    day = fetch_arrow(
        con,
        f"""SELECT DATE '{through}' AS snapshot_date, s.subscriber_id,
                   coalesce(c.opted_in, false) AS opted_in,
                   coalesce(c.excluded_buyers, CAST([] AS VARCHAR[])) AS excluded_buyers,
                   coalesce(c.is_eligible, false) AS is_eligible,
                   c.ineligible_reason, c.enrolled_at, c.consent_event_id
            FROM subscribers AS s
            LEFT JOIN consent_snapshots AS c
              ON c.subscriber_id = s.subscriber_id AND c.valid_from <= {t} AND (c.valid_to IS NULL OR c.valid_to > {t})
            WHERE s.subscribed_at <= {t}
            ORDER BY snapshot_date, subscriber_id""",
    )
    day_query_s = time.monotonic() - started
    scratch = DeltaStore(args["scratch"])
    scratch.append("consent_snapshots_daily_grain", day)
    day_adds = pa.table(scratch.table("consent_snapshots_daily_grain").get_add_actions(flatten=True))
    day_bytes = sum(day_adds["size_bytes"].to_pylist())
    con.close()
    daily = {
        "rows": int(rows),
        "rows_by_grid_join": grid_rows,
        "day": through.isoformat(),
        "day_rows": day.num_rows,
        "day_bytes": day_bytes,
        "day_files": day_adds.num_rows,
        "bytes_per_row": day_bytes / max(1, day.num_rows),
        "bytes": round(day_bytes / max(1, day.num_rows) * int(rows)),
        "day_query_s": round(day_query_s, 3),
    }
    # what analysts now read instead of a month of daily snapshots: consent_daily's counts
    from gopro_assets.settings import end_of_day
    from gopro_tools.pipeline import run_sql

    month_start = through.replace(day=1)
    started = time.monotonic()
    run_sql(
        store,
        "consent_daily",
        {
            "as_of": end_of_day(through).isoformat(),
            "share_rate_num": 1,
            "share_rate_den": 2,
            "min_payout_cents": 1000,
            "review_days": 7,
            "range_start": month_start,
            "range_end": through,
        },
    )
    daily["consent_daily_month_s"] = round(time.monotonic() - started, 3)
    return {"days": (through - first).days + 1, "intervals": intervals, "daily_grain": daily}


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
    task = {"generate": _generate, "money": _money, "bare": _bare, "storage": _storage}[args["task"]]
    emit(task(args))


if __name__ == "__main__":
    main()
