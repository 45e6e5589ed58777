"""A statement month's export bundle: payout CSV, workbook and HTML report together."""

from __future__ import annotations

from dataclasses import dataclass, field

import duckdb

from gopro_assets.domain.finance import exports
from gopro_assets.domain.finance.report import build_report


@dataclass
class MonthExport:
    month: str
    files: list[exports.ExportFile]
    summary: dict = field(default_factory=dict)


def build_month_export(con: duckdb.DuckDBPyConnection, month: str, checks: list[str] | tuple = ()) -> MonthExport:
    """The three files of a statement month. ``checks`` are the names of the blocking
    checks that passed (listed in the workbook and the report)."""
    paths = exports.month_paths(exports.check_month(month))
    return MonthExport(
        month=month,
        summary=exports.month_summary(con, month),
        files=[
            exports.ExportFile(paths["payouts"], exports.payout_csv(con, month), private=True),
            exports.ExportFile(paths["workbook"], exports.workbook_bytes(con, month, checks)),
            exports.ExportFile(paths["report"], build_report(con, month, checks)),
        ],
    )
