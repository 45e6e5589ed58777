"""Daily partitions in parallel: ``daily_partitions_job``.

The nightly job works one day in one process (docs/AUTOMATION.md). Re-processing many
days at once (re-probing footage after a probe fix, rebuilding consent snapshots) is
embarrassingly parallel per day: launch a *job* backfill of ``daily_partitions_job`` (one
run per day, unlike the assets' single-run backfill policy) and let the run queue cap
how many run at once (``deploy/dagster.yaml``: tag ``gopro/parallel: daily``). Inside a
run the footage step and the consent-snapshot step are independent and run in parallel
processes: Dagster's multiprocess executor, started with ``forkserver`` (see
START_METHOD; never plain ``fork``: deltalake's tokio runtime panics in a forked child). All these writers share the same Delta tables; each
replaces only its own day (``replace_where``) and conflicting commits are retried
(``DeltaStore._write``), tested in tests/test_concurrency.py.
"""

from __future__ import annotations

import dagster as dg

PARALLEL_TAG = "gopro/parallel"
DAILY_ASSETS = dg.AssetSelection.assets("footage_inventory", "footage_quarantine", "consent_daily")

# Each step (and each asset check) is its own process. ``forkserver`` forks them from a
# server process that has already imported the code location, so a step starts in well
# under a second instead of re-importing Dagster and the lakehouse (``spawn``: seconds
# per step, which dominated the run). It is not ``fork``: the forkserver has imported
# deltalake but never used it, so no tokio runtime exists in the process being forked
# (deltalake panics in a child forked after it has run; shared/FIELD_NOTES.md).
START_METHOD = {"forkserver": {"preload_modules": ["dagster", "gopro_assets.definitions"]}}

daily_partitions_job = dg.define_asset_job(
    "daily_partitions_job",
    selection=DAILY_ASSETS,
    description=(
        "The daily-partitioned assets for one day (footage probe and inventory, consent snapshot), steps in "
        "parallel processes. Backfill it from the job's Partitions tab to re-process many days in parallel runs."
    ),
    executor_def=dg.multiprocess_executor.configured({"max_concurrent": 2, "start_method": START_METHOD}),
    tags={PARALLEL_TAG: "daily"},
)
