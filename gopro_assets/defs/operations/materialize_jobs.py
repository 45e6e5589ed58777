"""The runs of ``gopro-lake materialize``: four named jobs, one per stage of a catch-up.

A run covers one partitions definition, so ``gopro-lake materialize --through D`` builds
the lake in four runs, one after the other (``gopro_assets.cli.plan_stages``): the
unpartitioned landing tables, the daily partitions through D (one run over the whole day
range), the unpartitioned models as of the end of D, and the monthly partitions complete
by D (one run over the month range). Each stage is a named job here, so the Runs, Jobs
and Overview pages tell what each CLI run was; the CLI prints each run's link.

The selections follow the asset graph: everything not downstream of the daily assets,
the daily assets, what lies between them and the monthly close, and the monthly close
with everything downstream of it. ``tests/test_cli.py`` checks that they are exactly the
stages the CLI plans. Launched from the UI, a job works like the CLI's run: give it a
partition range (``dagster/asset_partition_range_start``/``_end``) and the run tag
``gopro/through`` for the unpartitioned models' "as of" day.
"""

import dagster as dg

from gopro_assets.defs.operations.reprocess import DAILY_ASSETS
from gopro_assets.shared.automation import MATERIALIZE_JOBS, MONTHLY_CLOSE
from gopro_assets.shared.partitions import THROUGH_TAG

_INGEST, _DAILY, _MODELS, _MONTHLY = MATERIALIZE_JOBS
_STAGES = (
    (
        _INGEST,
        dg.AssetSelection.all() - DAILY_ASSETS.downstream() - MONTHLY_CLOSE,
        "Stage 1 of 4 of `gopro-lake materialize`: ingest the landing zone (subscribers, consent, uploads, "
        "deals, payments, payouts, quarantine) and the consent and clip-exclusion timelines. Unpartitioned.",
    ),
    (
        _DAILY,
        DAILY_ASSETS,
        "Stage 2 of 4 of `gopro-lake materialize`: probe the footage and snapshot consent for every day "
        "through --through, in one run over the day range (tags dagster/asset_partition_range_start/_end).",
    ),
    (
        _MODELS,
        DAILY_ASSETS.downstream() - DAILY_ASSETS - MONTHLY_CLOSE,
        "Stage 3 of 4 of `gopro-lake materialize`: deliveries, revenue, allocations, receivables, late "
        f"revocations and the valuation, as of the end of the day in run tag {THROUGH_TAG}. Unpartitioned.",
    ),
    (
        _MONTHLY,
        MONTHLY_CLOSE,
        "Stage 4 of 4 of `gopro-lake materialize`: statements, payout reconciliation and the finance exports "
        "of every month complete by --through, in one run over the month range.",
    ),
)

# In-process, like the CLI's own execution: steps one after another, never two writers on
# one Delta table inside a run.
materialize_1_ingest_job, materialize_2_daily_job, materialize_3_models_job, materialize_4_monthly_job = (
    dg.define_asset_job(name, selection=selection, description=description, executor_def=dg.in_process_executor)
    for name, selection, description in _STAGES
)
MATERIALIZE_JOB_DEFS = (
    materialize_1_ingest_job,
    materialize_2_daily_job,
    materialize_3_models_job,
    materialize_4_monthly_job,
)
