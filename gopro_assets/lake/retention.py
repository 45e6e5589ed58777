"""Delta retention: how long old versions of a table stay readable (time travel).

Some Delta versions are promises to auditors (docs/RELIABILITY.md, "Retention"):
``delivered_batches`` records the versions each batch was selected from, and the R12
blocking check reads ``subscribers``, ``consent_events`` and ``clip_exclusions`` back
at those versions on every run; every statement row records the versions of the money
tables it was computed from, and ``gopro-lake explain --as-of-version`` reads them back;
the incremental models diff their inputs against the versions of their last run.

A version stays readable while two things exist: its log entries (``_delta_log``) and
its data files. Delta removes them by two table properties:

* ``delta.logRetentionDuration`` (default 30 days): when a checkpoint is written, log
  files older than this and older than the checkpoint are deleted, unless
  ``delta.enableExpiredLogCleanup`` is false (measured with deltalake 1.6: a table with
  the default lost its versions before the checkpoint once its log files were older
  than 30 days);
* ``delta.deletedFileRetentionDuration`` (default 1 week): VACUUM deletes a data file
  once it has been removed from the table for longer than this.

The tables whose versions are pinned (:data:`AUDITED_TABLES`) carry
:data:`AUDIT_PROPERTIES`: 8 years for both durations (US record keeping of 7 years,
counted from the end of the fiscal year a record belongs to, so up to 8 years from a
January commit), and expired-log cleanup off, so a pinned version's log is never
deleted (the log is small: one JSON file a commit). ``DeltaStore`` sets them when it
creates such a table; the weekly maintenance job sets them on existing tables and
never vacuums with a shorter window than the table's own.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping

LOG_RETENTION = "delta.logRetentionDuration"
DELETED_FILE_RETENTION = "delta.deletedFileRetentionDuration"
EXPIRED_LOG_CLEANUP = "delta.enableExpiredLogCleanup"

# 8 years, leap days included: 7 years of statutory record keeping from the end of the
# fiscal year, plus the year itself (a January statement is kept until 7 years after
# that December).
AUDIT_RETENTION_DAYS = 8 * 365 + 2
AUDIT_RETENTION_HOURS = AUDIT_RETENTION_DAYS * 24
AUDIT_PROPERTIES: dict[str, str] = {
    LOG_RETENTION: f"interval {AUDIT_RETENTION_DAYS} days",
    DELETED_FILE_RETENTION: f"interval {AUDIT_RETENTION_DAYS} days",
    EXPIRED_LOG_CLEANUP: "false",
}
# Delta's own default for VACUUM (deletedFileRetentionDuration unset).
DEFAULT_DELETED_FILE_RETENTION_HOURS = 168

# Tables whose versions something records and reads back later. A test holds this list to
# the code that pins them (deliveries.INPUTS, explain, the incremental models'
# changed_keys); the maintenance job also treats as audited every table named in the
# recorded versions it finds in the lake.
AUDITED_TABLES = frozenset(
    {
        # explain reads them at the versions a statement row records (and the statements
        # table itself at --as-of-version N; each row pins its previous month)
        "revenue_share_statements",
        "revenue_share_allocations",
        "batch_revenue",
        "deal_deliveries",
        "delivered_batches",
        # delivered_batches.input_versions: what each batch was selected from; the R12
        # check reads the raw event logs and subscribers back at those versions
        "subscribers",
        "consent_events",
        "clip_exclusions",
        "footage_inventory",
        "consent_snapshots",
        "int_clip_exclusion_timeline",
        "license_batches",
        "license_deals",
    }
)

_UNIT_HOURS = {
    "nanosecond": 1 / 3.6e12,
    "microsecond": 1 / 3.6e9,
    "millisecond": 1 / 3.6e6,
    "second": 1 / 3600,
    "minute": 1 / 60,
    "hour": 1,
    "day": 24,
    "week": 168,
}
_INTERVAL = re.compile(r"^\s*interval\s+(\d+)\s+([a-z]+?)s?\s*$", re.IGNORECASE)


def interval_hours(text: str | None) -> float | None:
    """Hours of a Delta interval (``"interval 2922 days"``); None when unset or unreadable."""
    match = _INTERVAL.match(text or "")
    if not match or match.group(2).lower() not in _UNIT_HOURS:
        return None
    return int(match.group(1)) * _UNIT_HOURS[match.group(2).lower()]


def is_audited(table: str) -> bool:
    return table in AUDITED_TABLES


def creation_properties(table: str) -> dict[str, str] | None:
    """The table properties ``table`` gets when it is created (None: Delta's defaults)."""
    return dict(AUDIT_PROPERTIES) if is_audited(table) else None


def vacuum_floor_hours(configuration: Mapping[str, str | None]) -> int | None:
    """The table's ``delta.deletedFileRetentionDuration`` in whole hours (rounded up), the
    shortest window VACUUM may use on it; None when the table does not set one."""
    hours = interval_hours(configuration.get(DELETED_FILE_RETENTION))
    return None if hours is None else math.ceil(hours)


def missing_audit_properties(configuration: Mapping[str, str | None]) -> dict[str, str]:
    """The properties to set on an audited table so that it meets :data:`AUDIT_PROPERTIES`:
    a duration that is unset, unreadable or shorter is raised, a longer one is kept, and
    expired-log cleanup is turned off. Empty when the table already complies."""
    missing: dict[str, str] = {}
    for key in (LOG_RETENTION, DELETED_FILE_RETENTION):
        hours = interval_hours(configuration.get(key))
        if hours is None or hours < AUDIT_RETENTION_HOURS:
            missing[key] = AUDIT_PROPERTIES[key]
    if str(configuration.get(EXPIRED_LOG_CLEANUP)).lower() != "false":
        missing[EXPIRED_LOG_CLEANUP] = AUDIT_PROPERTIES[EXPIRED_LOG_CLEANUP]
    return missing


def expired_log_cleanup(configuration: Mapping[str, str | None]) -> bool:
    """Whether Delta may delete expired log files of this table (default true)."""
    return str(configuration.get(EXPIRED_LOG_CLEANUP, "true")).lower() != "false"
