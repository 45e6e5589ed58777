"""When the lakehouse runs by itself: three jobs, two schedules and the landing sensor.

* ``nightly_job`` (02:00 America/Los_Angeles): ingestion, the previous day's daily
  partitions and every unpartitioned model downstream, in ONE run ordered by the asset
  graph, so deliveries are frozen (R12) only after that day's footage and consent are in.
* ``monthly_close_job`` (04:00 on the 1st, Los Angeles): the previous month's statements,
  reconciliation and whatever is downstream of them (exports), once the nightly run
  through the month's last day has succeeded.
* ``ingestion_job``: started by ``landing_sensor`` when landing files appear or change.

Why it is built this way, and how to switch it on: docs/AUTOMATION.md.
"""

import hashlib
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import dagster as dg

from gopro_assets.defs.ingestion.assets import ingest_landing
from gopro_assets.domain.ingestion import landing
from gopro_assets.lake.storage import FileInfo, FileRoot
from gopro_assets.shared.partitions import START, THROUGH_TAG
from gopro_assets.shared.resources import LakehouseResource

TIMEZONE = "America/Los_Angeles"
PARTITION_TAG = "dagster/partition"  # Dagster's public run tag for a run's partition key
# On every run of the three jobs, however started (schedule, sensor, UI): the run queue of
# a production instance limits each value to one run at a time (deploy/dagster.yaml).
AUTOMATION_TAG = "gopro/automation"

# -- selections ---------------------------------------------------------------------
# The monthly models and everything downstream of them (the finance exports join here by
# depending on them); the nightly is the rest of the graph. A run covers one partitions
# definition plus any unpartitioned assets, and these two selections respect that.
MONTHLY_CLOSE = dg.AssetSelection.assets("revenue_share_statements", "payout_reconciliation").downstream()
NIGHTLY = dg.AssetSelection.all() - MONTHLY_CLOSE
INGESTION = dg.AssetSelection.assets(ingest_landing)

# Every step is idempotent or crash-safe (ingestion by file hash, deliveries replace a
# crashed batch before freezing it, SQL models overwrite), so a failed step is retried:
# this absorbs a Delta commit conflict with a landing-sensor ingestion still finishing.
RETRY = dg.RetryPolicy(max_retries=1, delay=30)

# Steps run one after another inside the run's process: no per-step process start-up
# (seconds each), and never two writers on one Delta table inside a run.
ingestion_job = dg.define_asset_job(
    "ingestion_job",
    selection=INGESTION,
    description="Ingest new or changed landing files into the lake (started by landing_sensor).",
    executor_def=dg.in_process_executor,
    op_retry_policy=RETRY,
    run_tags={AUTOMATION_TAG: "ingestion"},
)
nightly_job = dg.define_asset_job(
    "nightly_job",
    selection=NIGHTLY,
    description=(
        "One day's run, in dependency order: ingest the landing zone, probe the day's footage, snapshot "
        "the day's consent, then deliveries, revenue, allocations, receivables and late revocations as of "
        f"the end of that day (partition key = the day; run tag {THROUGH_TAG} = the same day)."
    ),
    executor_def=dg.in_process_executor,
    op_retry_policy=RETRY,
    run_tags={AUTOMATION_TAG: "nightly"},
)
monthly_close_job = dg.define_asset_job(
    "monthly_close_job",
    selection=MONTHLY_CLOSE,
    description=(
        "Close one month: revenue-share statements, payout reconciliation and everything downstream "
        f"(partition key = the month; run tag {THROUGH_TAG} = its last day)."
    ),
    executor_def=dg.in_process_executor,
    run_tags={AUTOMATION_TAG: "monthly_close"},
)

IN_PROGRESS = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
    dg.DagsterRunStatus.CANCELING,
]


# -- the nightly --------------------------------------------------------------------
def previous_day(scheduled: datetime) -> date:
    """The day a nightly tick works on: the last complete UTC day.

    02:00 in Los Angeles is 10:00 UTC in winter and 09:00 UTC in summer of the same
    calendar day, so this is also the previous Los Angeles day. Partitions are UTC days.
    """
    return scheduled.astimezone(UTC).date() - timedelta(days=1)


@dg.schedule(
    name="nightly_schedule",
    cron_schedule="0 2 * * *",
    execution_timezone=TIMEZONE,
    job=nightly_job,
    description="Every night at 02:00 Los Angeles time: nightly_job for the previous (UTC) day.",
    tags={AUTOMATION_TAG: "nightly"},
)
def nightly_schedule(context: dg.ScheduleEvaluationContext):
    day = previous_day(context.scheduled_execution_time)
    if day < START:
        return dg.SkipReason(f"{day} is before the first partition ({START})")
    return dg.RunRequest(
        run_key=f"nightly-{day}",
        partition_key=day.isoformat(),
        tags={THROUGH_TAG: day.isoformat()},
    )


# -- the monthly close --------------------------------------------------------------
def month_closed_at(scheduled: datetime) -> date:
    """The last day of the month a close tick works on: the month before the tick's
    Los Angeles date (04:00 on March 1st closes February)."""
    local = scheduled.astimezone(ZoneInfo(TIMEZONE)).date()
    return local.replace(day=1) - timedelta(days=1)


def _latest_run(instance: dg.DagsterInstance, job_name: str, tags: dict) -> dg.DagsterRun | None:
    runs = instance.get_runs(filters=dg.RunsFilter(job_name=job_name, tags=tags), limit=1)
    return runs[0] if runs else None


@dg.schedule(
    name="monthly_close_schedule",
    # 04:00 on the 1st, after the 02:00 nightly. Later ticks that day retry while that
    # nightly has not succeeded yet; once a close run exists they skip.
    cron_schedule="0 4-23 1 * *",
    execution_timezone=TIMEZONE,
    job=monthly_close_job,
    description=(
        "On the 1st of each month from 04:00 Los Angeles time: monthly_close_job for the previous month, "
        "as soon as the nightly run through that month's last day has succeeded (checked hourly that day)."
    ),
    tags={AUTOMATION_TAG: "monthly_close"},
)
def monthly_close_schedule(context: dg.ScheduleEvaluationContext):
    month_end = month_closed_at(context.scheduled_execution_time)
    month_key = month_end.replace(day=1).isoformat()
    month = month_end.strftime("%Y-%m")
    if month_end < START:
        return dg.SkipReason(f"{month} is before the first partition ({START})")
    closed = _latest_run(context.instance, monthly_close_job.name, {PARTITION_TAG: month_key})
    if closed is not None:
        return dg.SkipReason(
            f"{month} already has a close run ({closed.run_id}, {closed.status.value}); "
            "re-execute that run from the UI to close it again"
        )
    nightly = _latest_run(context.instance, nightly_job.name, {THROUGH_TAG: month_end.isoformat()})
    if nightly is None or nightly.status != dg.DagsterRunStatus.SUCCESS:
        state = "has not run" if nightly is None else f"is {nightly.status.value} (run {nightly.run_id})"
        return dg.SkipReason(
            f"not closing {month} yet: the nightly run through {month_end} {state}; the next tick today checks again"
        )
    return dg.RunRequest(
        run_key=f"close-{month}",
        partition_key=month_key,
        tags={THROUGH_TAG: month_end.isoformat()},
    )


# -- the landing sensor ------------------------------------------------------------
WATCHED_KINDS = [*landing.LANDING_KINDS.values(), landing.DEAL_KIND]


def landing_listing(root: FileRoot) -> list[FileInfo]:
    """The tabular and deal files ingestion reads (local or S3), sorted by path. Videos
    under footage/ are not listed: they are read when their upload row names them."""
    files = [f for kind in WATCHED_KINDS for f in root.list(kind.prefix, kind.suffixes)]
    return sorted(files, key=lambda f: f.rel_path)


def listing_digest(files: list[FileInfo]) -> str:
    """SHA-256 of the (path, size) listing: changes when a file appears, grows or shrinks."""
    text = "\n".join(f"{f.rel_path}\t{f.size}" for f in sorted(files, key=lambda f: f.rel_path))
    return hashlib.sha256(text.encode()).hexdigest()


def lake_writer_in_progress(instance: dg.DagsterInstance) -> dg.DagsterRun | None:
    """A queued or running run that ingests the landing zone (ours or a CLI run)."""
    ingest_keys = set(ingest_landing.keys)
    for run in instance.get_runs(filters=dg.RunsFilter(statuses=IN_PROGRESS), limit=50):
        if run.job_name in (ingestion_job.name, nightly_job.name) or ingest_keys & set(run.asset_selection or ()):
            return run
    return None


@dg.sensor(
    name="landing_sensor",
    job=ingestion_job,
    minimum_interval_seconds=120,
    description=(
        "Watches the landing zone (local folder or s3://) and starts ingestion_job when a tabular or deal "
        "file appears or changes size. Cursor: SHA-256 of the (path, size) listing."
    ),
)
def landing_sensor(context: dg.SensorEvaluationContext, lakehouse: LakehouseResource):
    root = lakehouse.landing_root()
    files = landing_listing(root)
    if not files:
        return dg.SkipReason(f"no landing files in {root.root}")
    digest = listing_digest(files)
    if digest == context.cursor:
        return dg.SkipReason(f"no new or changed files among {len(files)} landing file(s)")
    busy = lake_writer_in_progress(context.instance)
    if busy is not None:
        # The cursor stays put: the next tick sees the same change and tries again.
        return dg.SkipReason(f"run {busy.run_id} ({busy.job_name}) is ingesting; waiting for it to finish")
    return dg.SensorResult(
        run_requests=[
            dg.RunRequest(
                run_key=f"landing-{digest[:16]}",
                tags={"gopro/landing_files": str(len(files)), "gopro/landing_digest": digest[:16]},
            )
        ],
        cursor=digest,
    )


JOBS = [ingestion_job, nightly_job, monthly_close_job]
SCHEDULES = [nightly_schedule, monthly_close_schedule]
SENSORS = [landing_sensor]
