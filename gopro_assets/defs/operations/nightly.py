"""The nightly: ``nightly_job`` and ``nightly_schedule`` (02:00 America/Los_Angeles).

Ingestion, the previous day's daily partitions and every unpartitioned model downstream,
in ONE run ordered by the asset graph, so deliveries are frozen (R12) only after that
day's footage and consent are in, and after the late uploads of earlier days are probed
(run tag ``gopro/late_uploads``). Why, and how to switch it on: docs/AUTOMATION.md.
"""

from datetime import UTC, date, datetime, timedelta

import dagster as dg

from gopro_assets.shared.automation import AUTOMATION_TAG, NIGHTLY, NIGHTLY_JOB, RETRY, TIMEZONE
from gopro_assets.shared.partitions import LATE_UPLOADS_TAG, PROBE_LATE_UPLOADS, START, THROUGH_TAG

# Steps run one after another inside the run's process: no per-step process start-up
# (seconds each), and never two writers on one Delta table inside a run.
nightly_job = dg.define_asset_job(
    NIGHTLY_JOB,
    selection=NIGHTLY,
    description=(
        "One day's run, in dependency order: ingest the landing zone, probe the day's footage, snapshot "
        "the day's consent, then deliveries, revenue, allocations, receivables and late revocations as of "
        f"the end of that day (partition key = the day; run tag {THROUGH_TAG} = the same day). The footage step "
        "also probes again the upload days already materialized whose uploads arrived since (late uploads)."
    ),
    executor_def=dg.in_process_executor,
    op_retry_policy=RETRY,
    run_tags={AUTOMATION_TAG: "nightly", LATE_UPLOADS_TAG: PROBE_LATE_UPLOADS},
)


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
