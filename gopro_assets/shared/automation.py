"""Automation settings every domain's schedules and sensors share (docs/AUTOMATION.md)."""

import dagster as dg

TIMEZONE = "America/Los_Angeles"
PARTITION_TAG = "dagster/partition"  # Dagster's public run tag for a run's partition key
# On every run of the automation jobs, however started (schedule, sensor, UI): the run queue
# of a production instance limits each value to one run at a time (deploy/dagster.yaml).
AUTOMATION_TAG = "gopro/automation"

# Job names, so one domain's schedule can look up another domain's runs without importing it.
INGESTION_JOB = "ingestion_job"
NIGHTLY_JOB = "nightly_job"
MONTHLY_CLOSE_JOB = "monthly_close_job"
# The four runs of `gopro-lake materialize`, in order (defs/operations/materialize_jobs.py).
MATERIALIZE_JOBS = (
    "materialize_1_ingest_job",
    "materialize_2_daily_job",
    "materialize_3_models_job",
    "materialize_4_monthly_job",
)

# The monthly models and everything downstream of them (the finance exports join here by
# depending on them); the nightly is the rest of the graph. A run covers one partitions
# definition plus any unpartitioned assets, and these two selections respect that.
MONTHLY_CLOSE = dg.AssetSelection.assets("revenue_share_statements", "payout_reconciliation").downstream()
NIGHTLY = dg.AssetSelection.all() - MONTHLY_CLOSE

# Every step is idempotent or crash-safe (ingestion by file hash, deliveries replace a
# crashed batch before freezing it, SQL models overwrite), so a failed step is retried:
# this absorbs a Delta commit conflict with a landing-sensor ingestion still finishing.
RETRY = dg.RetryPolicy(max_retries=1, delay=30)

IN_PROGRESS = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
    dg.DagsterRunStatus.CANCELING,
]


def latest_run(instance: dg.DagsterInstance, job_name: str, tags: dict) -> dg.DagsterRun | None:
    runs = instance.get_runs(filters=dg.RunsFilter(job_name=job_name, tags=tags), limit=1)
    return runs[0] if runs else None
