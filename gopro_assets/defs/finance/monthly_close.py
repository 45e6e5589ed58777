"""The monthly close: ``monthly_close_job`` and ``monthly_close_schedule`` (04:00 Los Angeles
on the 1st, retried hourly that day): the previous month's statements, reconciliation and
everything downstream (exports), once the nightly through the month's last day has
succeeded. docs/AUTOMATION.md.
"""

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import dagster as dg

from gopro_assets.shared.automation import (
    AUTOMATION_TAG,
    MONTHLY_CLOSE,
    MONTHLY_CLOSE_JOB,
    NIGHTLY_JOB,
    PARTITION_TAG,
    TIMEZONE,
    latest_run,
)
from gopro_assets.shared.partitions import START, THROUGH_TAG

monthly_close_job = dg.define_asset_job(
    MONTHLY_CLOSE_JOB,
    selection=MONTHLY_CLOSE,
    description=(
        "Close one month: revenue-share statements, payout reconciliation and everything downstream "
        f"(partition key = the month; run tag {THROUGH_TAG} = its last day)."
    ),
    executor_def=dg.in_process_executor,
    run_tags={AUTOMATION_TAG: "monthly_close"},
)


# -- the monthly close --------------------------------------------------------------
def month_closed_at(scheduled: datetime) -> date:
    """The last day of the month a close tick works on: the month before the tick's
    Los Angeles date (04:00 on March 1st closes February)."""
    local = scheduled.astimezone(ZoneInfo(TIMEZONE)).date()
    return local.replace(day=1) - timedelta(days=1)


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
    closed = latest_run(context.instance, monthly_close_job.name, {PARTITION_TAG: month_key})
    if closed is not None:
        return dg.SkipReason(
            f"{month} already has a close run ({closed.run_id}, {closed.status.value}); "
            "re-execute that run from the UI to close it again"
        )
    nightly = latest_run(context.instance, NIGHTLY_JOB, {THROUGH_TAG: month_end.isoformat()})
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
