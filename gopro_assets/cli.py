"""gopro-lake: demo landing zone, materialize (through Dagster), export, explain.

Every table is built by Dagster's own execution against the instance in DAGSTER_HOME,
so each CLI run appears in the Dagster UI.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from datetime import date
from pathlib import Path

from gopro_assets import settings

# Dagster's system tags for a single run over a partition range (public tag names,
# spelled out to avoid importing dagster's private modules).
RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"


def ensure_dagster_home() -> Path:
    """DAGSTER_HOME defaults to ./.dagster_home (contract §1), with telemetry off and the
    lake_writer pool limited to one slot (gopro_assets/shared/concurrency.py). A dagster.yaml
    written by hand is left alone; one written by an older CLI is upgraded."""
    from gopro_assets.shared.concurrency import DAGSTER_YAML, OLD_DAGSTER_YAMLS

    home = Path(os.environ.get("DAGSTER_HOME") or "./.dagster_home").resolve()
    home.mkdir(parents=True, exist_ok=True)
    os.environ["DAGSTER_HOME"] = str(home)
    os.environ.setdefault("DAGSTER_DISABLE_TELEMETRY", "1")
    config = home / "dagster.yaml"
    if not config.exists() or config.read_text() in OLD_DAGSTER_YAMLS:
        tmp = home / f".dagster.yaml.tmp-{os.getpid()}"  # atomic: a killed CLI never leaves half a file
        tmp.write_text(DAGSTER_YAML)
        os.replace(tmp, config)
    return home


def _progress(msg: str) -> None:
    stamp = time.strftime("%H:%M:%S")
    print(f"[{stamp}] {msg}", flush=True)


def plan_stages(defs):
    """Split the asset graph into runs: consecutive layers with one partitions definition.

    A run can only cover one partition range, so the plan alternates between
    unpartitioned, daily and monthly assets in dependency order.
    """
    graph = defs.resolve_asset_graph()
    keys = [k for k in graph.toposorted_asset_keys if graph.get(k).is_materializable]
    known = set(keys)

    def together(key):
        """Keys that execute in one step with ``key`` (a multi-asset that is not subsettable)."""
        return [k for k in graph.get(key).execution_set_asset_keys if k in known] or [key]

    # An unpartitioned asset computed in the same step as a partitioned one (footage_quarantine
    # with footage_inventory) runs in that asset's partition-range run, where it is recorded once.
    pdef_of = {}
    for key in keys:
        pdef = graph.get(key).partitions_def
        if pdef is None:
            pdef = next(
                (graph.get(k).partitions_def for k in together(key) if graph.get(k).partitions_def is not None), None
            )
        pdef_of[key] = pdef
    # a stage after its parents' (a new run when the partitions definition changes), the same
    # for every key of one step
    stage = dict.fromkeys(keys, 0)
    changed = True
    while changed:
        changed = False
        for key in keys:
            s = max(
                [stage[p] + (0 if pdef_of[p] == pdef_of[key] else 1) for p in graph.get(key).parent_keys if p in known]
                + [stage[k] for k in together(key)]
            )
            if s != stage[key]:
                stage[key], changed = s, True
    groups: dict[tuple, list] = {}
    for key in keys:
        groups.setdefault((stage[key], id(pdef_of[key])), []).append(key)
    return [(pdef_of[ks[0]], ks) for (_, _), ks in sorted(groups.items(), key=lambda kv: kv[0][0])]


def materialize(
    through: date, defs=None, resources: dict | None = None, instance=None, echo=None, run_tags: dict | None = None
) -> bool:
    """Materialize every asset and partition through ``through`` (contract §6), one
    Dagster run per stage of :func:`plan_stages`, each tagged with ``run_tags`` too.
    Returns False when a run failed."""
    import dagster as dg

    from gopro_assets.shared.partitions import THROUGH_TAG

    if defs is None:
        from gopro_assets.definitions import defs
    echo = echo or _progress
    instance = instance or dg.DagsterInstance.get()
    assets = list(defs.assets or []) + list(defs.asset_checks or [])
    resources = resources if resources is not None else defs.resources
    stages = plan_stages(defs)
    ok = True
    for i, (pdef, keys) in enumerate(stages, 1):
        names = ", ".join(k.to_user_string() for k in keys)
        tags = {**(run_tags or {}), THROUGH_TAG: through.isoformat()}
        label = "unpartitioned"
        if pdef is not None:
            keys_through = pdef.get_partition_keys(dynamic_partitions_store=instance, current_time=_end_of(through))
            if not keys_through:
                echo(f"[{i}/{len(stages)}] skip {names}: no partition complete by {through}")
                continue
            tags |= {RANGE_START_TAG: keys_through[0], RANGE_END_TAG: keys_through[-1]}
            label = f"partitions {keys_through[0]}..{keys_through[-1]}"
        echo(f"[{i}/{len(stages)}] {label}: {names}")
        started = time.monotonic()
        result = dg.materialize(
            assets,
            selection=keys,
            instance=instance,
            resources=resources,
            tags=tags,
            raise_on_error=False,
            # The terminal shows our progress lines; Dagster's full event stream is in the UI.
            run_config={"loggers": {"console": {"config": {"log_level": "WARNING"}}}},
        )
        took = time.monotonic() - started
        if not result.success:
            ok = False
            echo(f"[{i}/{len(stages)}] FAILED after {took:.1f}s (run {result.run_id}); see the Dagster UI")
            for ev in result.all_events:
                if ev.is_failure or (
                    ev.event_type_value == "ASSET_CHECK_EVALUATION" and not ev.event_specific_data.passed
                ):
                    echo(f"    {ev.message}")
            break
        echo(f"[{i}/{len(stages)}] done in {took:.1f}s (run {result.run_id[:8]})")
    return ok


def _open_instance():
    """The instance in DAGSTER_HOME, opened under an exclusive file lock.

    Dagster's SQLite storage creates and migrates its schema when first opened, and two
    processes doing that at once fail ("table alembic_version already exists") or leave a
    home that never opens again ("more than one head present"), as two CLIs started
    together on a fresh home did. The lock covers only the opening; the OS releases it if
    the process dies.
    """
    import fcntl

    import dagster as dg

    home = Path(os.environ["DAGSTER_HOME"])
    with open(home / ".gopro-instance.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        instance = dg.DagsterInstance.get()
        instance.get_runs(limit=1)  # every storage created and migrated before the lock is released
        instance.event_log_storage.get_pool_limits()
    return instance


def _end_of(day: date):
    return settings.end_of_day(day)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="gopro-lake", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p_demo = sub.add_parser("demo", help="write a demo landing zone with real MP4 files")
    p_demo.add_argument("--out", default=None, help="folder (default: $GOPRO_LANDING)")
    p_demo.add_argument("--subscribers", type=int, default=40)
    p_demo.add_argument("--clips", type=int, default=120)
    p_demo.add_argument("--seed", type=int, default=7)

    p_mat = sub.add_parser("materialize", help="materialize every asset and partition through a day")
    p_mat.add_argument(
        "--through", type=date.fromisoformat, default=None, help="inclusive day, YYYY-MM-DD (default: yesterday, UTC)"
    )

    p_exp = sub.add_parser(
        "export",
        help="finance exports of a statement month and/or a tax year "
        "(refused when a blocking check fails; docs/EXPORTS.md)",
    )
    p_exp.add_argument("--month", default=None, help="statement month, YYYY-MM: payout CSV, workbook, HTML report")
    p_exp.add_argument("--tax-year", type=int, default=None, help="calendar year, YYYY: year-end tax summary CSV")
    p_exp.add_argument("--out", default=None, help="folder or s3:// prefix (default: $GOPRO_EXPORTS)")

    p_explain = sub.add_parser("explain", help="explain one subscriber's monthly statement line by line, from the lake")
    p_explain.add_argument("--subscriber", required=True, help="subscriber_id")
    p_explain.add_argument("--month", required=True, help="statement month, YYYY-MM")
    p_explain.add_argument(
        "--as-of-version",
        type=int,
        default=None,
        help="Delta version of revenue_share_statements to explain (default: latest)",
    )

    args = parser.parse_args(argv)
    if args.command == "demo":
        from gopro_tools.demo_landing import generate_demo

        out = args.out or settings.env("GOPRO_LANDING")
        started = time.monotonic()
        counts = generate_demo(out, subscribers=args.subscribers, clips=args.clips, seed=args.seed)
        _progress(f"demo landing zone written to {out} in {time.monotonic() - started:.1f}s: {counts}")
        return 0
    if args.command == "materialize":
        ensure_dagster_home()
        # A catch-up is one run per stage over ~700 daily partitions. By default Dagster's
        # SQLite event log records one ASSET_MATERIALIZATION_PLANNED event per partition and
        # asset before the run starts (about 1,400 events, tens of seconds of SQLite commits);
        # this Dagster setting records one planned event per asset carrying the partition
        # range instead. The materializations themselves are still recorded per partition.
        # Trade-off (Dagster's own note): while such a run is going, or if it fails, its
        # partitions show as missing rather than in progress/failed; the run shows its
        # status. Scheduled one-day runs are not affected (docs/PERFORMANCE.md).
        os.environ.setdefault("DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS", "1")
        through = args.through or settings.yesterday_utc()
        _progress(
            f"materializing through {through} (landing={settings.env('GOPRO_LANDING')}, lake={settings.env('GOPRO_LAKE')})"
        )

        from gopro_assets.shared import concurrency

        with _open_instance() as instance:
            # docs/RELIABILITY.md: runs of killed CLIs are closed and their pool slots freed;
            # while another run is in progress this one refuses (exit code 3).
            concurrency.ensure_pool_limit(instance)
            for line in concurrency.recover_abandoned_runs(instance):
                _progress(line)
            busy = concurrency.busy_runs(instance)
            if busy:
                print(f"gopro-lake materialize: {busy[0].message()}", file=sys.stderr, flush=True)
                return 3
            return 0 if materialize(through, instance=instance, run_tags=concurrency.session_tags()) else 1
    if args.command == "export":
        from gopro_assets.defs.finance.export import cli_export

        return cli_export(args.month, args.tax_year, args.out, echo=_progress)
    if args.command == "explain":
        from gopro_assets.domain.finance.explain import ExplainError, explain, render_text
        from gopro_assets.lake.delta_store import DeltaStore
        from gopro_assets.lake.storage import is_s3

        lake = settings.env("GOPRO_LAKE")
        try:
            e = explain(
                DeltaStore(lake if is_s3(lake) else os.path.abspath(lake)),
                args.subscriber,
                args.month,
                args.as_of_version,
            )
        except ExplainError as exc:
            print(f"gopro-lake explain: {exc}", file=sys.stderr)
            return 1
        sys.stdout.write(render_text(e))
        return 0
    return 2


if __name__ == "__main__":
    sys.exit(main())
