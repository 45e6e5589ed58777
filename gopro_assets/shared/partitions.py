"""Partitions and the "as of" instant every run works to (contract §6)."""

from datetime import date, datetime

import dagster as dg

from gopro_assets import settings

START = settings.start_date()

# Daily partitions: a nightly run touches one new day (footage by upload day, consent
# snapshots by snapshot day). Single-run backfills: a catch-up over hundreds of days is
# one run that processes the whole range, not hundreds of runs.
daily_partitions = dg.DailyPartitionsDefinition(start_date=START.isoformat(), timezone="UTC")
monthly_partitions = dg.MonthlyPartitionsDefinition(start_date=START.replace(day=1).isoformat(), timezone="UTC")
single_run = dg.BackfillPolicy.single_run()

# Run tag carrying "--through D": unpartitioned assets (deliveries, revenue) work as of
# the end of that day. Without it they work as of the end of yesterday, UTC.
THROUGH_TAG = "gopro/through"

# Run tag of the nightly: its footage step also probes again the already-materialized
# upload days whose uploads arrived late (domain/footage/late_uploads.py, docs/AUTOMATION.md).
LATE_UPLOADS_TAG, PROBE_LATE_UPLOADS = "gopro/late_uploads", "probe"


def through_date(context: dg.AssetExecutionContext) -> date:
    tag = context.run.tags.get(THROUGH_TAG)
    return date.fromisoformat(tag) if tag else settings.yesterday_utc()


def as_of(context: dg.AssetExecutionContext) -> datetime:
    return settings.end_of_day(through_date(context))


def partition_days(context: dg.AssetExecutionContext) -> list[date]:
    """The days of a daily-partitioned run (one key or a single-run backfill range)."""
    keys = context.partition_keys if context.has_partition_key_range or context.has_partition_key else []
    return sorted(date.fromisoformat(k) for k in keys)
