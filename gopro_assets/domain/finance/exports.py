"""Finance exports built from the lake, as bytes (no Dagster, no clock, no file system).

* the payout file (CSV, one row per payable subscriber of a statement month, with e-mail),
* the finance workbook (xlsx: summary, statements, reconciliation breaks, receivables;
  no e-mail),
* the year-end tax summary (CSV, 1099-MISC royalties flag),
* the HTML report lives in :mod:`gopro_assets.domain.finance.report`.

Every builder reads a DuckDB connection on which the lake's tables are registered by
name (:func:`connect_lake`). Money is int cents; a dollars string is formatted from cents
with integer arithmetic (:func:`dollars`). Outputs are byte-for-byte reproducible: rows
are sorted, nothing carries a timestamp, and the xlsx has fixed document properties and
fixed zip entry dates (:func:`workbook_bytes`). Choices are in ``docs/EXPORTS.md``.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
import zipfile
from dataclasses import dataclass
from datetime import datetime

import duckdb

from gopro_assets.domain.reporting import dollars
from gopro_assets.lake import duck
from gopro_assets.lake.delta_store import DeltaStore
from gopro_assets.lake.storage import FileRoot

CURRENCY = "USD"
# IRS Form 1099-MISC, box 2 (royalties): reported when the year's royalties are at least $10.
FORM_1099_MISC_ROYALTIES_THRESHOLD_CENTS = 1000
# Fixed document dates and zip entry dates: an export of the same month is byte-identical.
FIXED_DOC_TIME = datetime(2000, 1, 1, 0, 0, 0)
FIXED_ZIP_TIME = (1980, 1, 1, 0, 0, 0)  # the earliest date a zip entry can carry

EXPORT_TABLES = (
    "subscribers",
    "revenue_share_statements",
    "payout_reconciliation",
    "buyer_receivables",
    "batch_revenue",
    "revenue_share_allocations",
    "payouts",
)

PAYOUT_COLUMNS = [
    "payout_reference",
    "subscriber_id",
    "email",
    "amount_usd",
    "amount_cents",
    "currency",
    "statement_month",
]
TAX_COLUMNS = [
    "tax_year",
    "subscriber_id",
    "royalties_cents",
    "royalties_usd",
    "payable_statements",
    "paid_in_year_cents",
    "form_1099_misc",
]
# Columns whose text is a number (dollars formatted from cents): written as it is, so that a
# negative amount stays a number. Every other text cell is neutralised (csv_text).
PAYOUT_NUMBERS = frozenset({"amount_usd", "amount_cents"})
TAX_NUMBERS = frozenset({"tax_year", "royalties_cents", "royalties_usd", "payable_statements", "paid_in_year_cents"})

_MONTH = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")


class ExportDataError(ValueError):
    """The lake cannot produce a correct export (e.g. a payable subscriber without e-mail)."""


# -- money and references ----------------------------------------------------------
def check_month(month: str) -> str:
    if not isinstance(month, str) or not _MONTH.match(month):
        raise ValueError(f"statement month must be YYYY-MM, got {month!r}")
    return month


def payout_reference(month: str, subscriber_id: str) -> str:
    """A stable payout reference: ``PO-<YYYY-MM>-<16 hex of sha256(month:subscriber_id)>``.

    The same (month, subscriber) always gets the same reference, whatever else changes;
    64 bits of hash make a collision within a month negligible (and it is checked).
    27 characters: fits payment-rail reference fields (e.g. SEPA's 35)."""
    digest = hashlib.sha256(f"{check_month(month)}:{subscriber_id}".encode()).hexdigest()[:16].upper()
    return f"PO-{month}-{digest}"


# -- reading the lake ------------------------------------------------------------
def connect_lake(store: DeltaStore, tables=EXPORT_TABLES) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection with every table of ``tables`` that exists in the lake
    registered by name (Arrow datasets of the Delta tables); missing tables are left out."""
    con = duck.connect()
    for table in dict.fromkeys(tables):
        ds = store.dataset(table)
        if ds is not None:
            con.register(table, ds)
    return con


def has_table(con: duckdb.DuckDBPyConnection, name: str) -> bool:
    # fetchall, not fetchone: duckdb 2 keeps a half-read result open and then refuses
    # con.register() on the connection
    return (
        con.execute("SELECT count(*) FROM information_schema.tables WHERE table_name = ?", [name]).fetchall()[0][0] > 0
    )


def _rows(con: duckdb.DuckDBPyConnection, sql: str, params=None) -> list[dict]:
    rel = con.execute(sql, params or [])
    names = [d[0] for d in rel.description]
    return [dict(zip(names, r)) for r in rel.fetchall()]


def _require(con: duckdb.DuckDBPyConnection, *tables: str) -> None:
    missing = [t for t in tables if not has_table(con, t)]
    if missing:
        raise ExportDataError(f"table(s) {', '.join(missing)} not in the lake: materialize first")


# -- payout file -----------------------------------------------------------------
# local@domain.tld: no whitespace or control characters, one "@", a dot in the domain.
_PLAIN_ADDRESS = re.compile(r"[^@\s\x00-\x1f\x7f]+@[^@\s\x00-\x1f\x7f]+\.[^@\s\x00-\x1f\x7f]+")
# A cell starting with one of these is a formula in a spreadsheet (CSV injection).
_FORMULA_START = ("=", "+", "-", "@")


def is_payable_address(email: str | None) -> bool:
    """Whether ``email`` may go into the payout file: a plain address that a spreadsheet
    opening the file would not run as a formula."""
    return bool(email) and _PLAIN_ADDRESS.fullmatch(email) is not None and not email.startswith(_FORMULA_START)


def payout_rows(con: duckdb.DuckDBPyConnection, month: str) -> list[dict]:
    """One row per subscriber with ``payable_cents > 0`` in ``month``, e-mail joined from
    ``subscribers``, ordered by subscriber_id."""
    _require(con, "revenue_share_statements", "subscribers")
    rows = _rows(
        con,
        """
        SELECT s.subscriber_id, u.email, CAST(s.payable_cents AS BIGINT) AS amount_cents
        FROM revenue_share_statements AS s
        LEFT JOIN (SELECT DISTINCT subscriber_id, email FROM subscribers) AS u USING (subscriber_id)
        WHERE s.statement_month = ? AND s.payable_cents > 0
        ORDER BY s.subscriber_id
    """,
        [check_month(month)],
    )
    no_email = [r["subscriber_id"] for r in rows if not (r["email"] or "").strip()]
    if no_email:
        raise ExportDataError(f"payable subscriber(s) without an e-mail in subscribers: {', '.join(no_email[:20])}")
    not_an_address = [r["subscriber_id"] for r in rows if not is_payable_address(r["email"])]
    if not_an_address:  # the message names subscribers, never the e-mail itself (it reaches logs)
        raise ExportDataError(
            "payable subscriber(s) whose e-mail in subscribers is not a plain address "
            f"(docs/EXPORTS.md): {', '.join(not_an_address[:20])}"
        )
    seen_subs = [r["subscriber_id"] for r in rows]
    if len(set(seen_subs)) != len(seen_subs):
        raise ExportDataError(f"{month}: a subscriber has more than one statement or e-mail")
    out = [
        {
            "payout_reference": payout_reference(month, r["subscriber_id"]),
            "subscriber_id": r["subscriber_id"],
            "email": r["email"],
            "amount_usd": dollars(int(r["amount_cents"])),
            "amount_cents": int(r["amount_cents"]),
            "currency": CURRENCY,
            "statement_month": month,
        }
        for r in rows
    ]
    if len({r["payout_reference"] for r in out}) != len(out):  # 2^-64 per pair; never silently
        raise ExportDataError(f"{month}: payout reference collision")
    return out


# A text cell that starts with one of these is run by a spreadsheet that opens the CSV (a
# formula; a leading tab or carriage return hides one): CSV injection (docs/EXPORTS.md).
CSV_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_NUMBER = re.compile(r"-?[0-9]+(\.[0-9]+)?")


def csv_text(value: str) -> str:
    """Text as a CSV cell that no spreadsheet runs: a leading ``=``, ``+``, ``-``, ``@``, tab
    or carriage return gets a ``'`` in front (the spreadsheet then shows it as text)."""
    return "'" + value if value.startswith(CSV_FORMULA_START) else value


def _csv_cell(column: str, value, numbers: frozenset[str]):
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return value  # a number: a spreadsheet reads -5 as minus five, never as a formula
    text = str(value)
    if column in numbers:
        if not _PLAIN_NUMBER.fullmatch(text):
            raise ValueError(f"CSV column {column!r} holds numbers, got {text!r}")
        return text
    return csv_text(text)


def csv_bytes(columns: list[str], rows: list[dict], numbers: frozenset[str] = frozenset()) -> bytes:
    """RFC 4180 CSV (CRLF line ends, UTF-8, no BOM), columns in the given order.

    Whatever the column, a text cell that a spreadsheet would run is neutralised
    (:func:`csv_text`); numbers (ints, and the decimal text of the ``numbers`` columns,
    e.g. ``-0.05``) are written as they are, so a negative amount stays a number."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\r\n", extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: _csv_cell(k, v, numbers) for k, v in row.items() if k in columns})
    return buf.getvalue().encode("utf-8")


def payout_csv(con: duckdb.DuckDBPyConnection, month: str) -> bytes:
    return csv_bytes(PAYOUT_COLUMNS, payout_rows(con, month), PAYOUT_NUMBERS)


# -- month figures (summary sheet and report) --------------------------------------
def month_summary(con: duckdb.DuckDBPyConnection, month: str) -> dict:
    """Totals of a statement month, all int cents or counts."""
    check_month(month)
    _require(con, "revenue_share_statements")
    s = _rows(
        con,
        """
        SELECT count(*) AS statements,
               count(*) FILTER (WHERE payable_cents > 0) AS payable_subscribers,
               count(*) FILTER (WHERE carried_forward_cents > 0) AS carrying_subscribers,
               CAST(coalesce(sum(opening_balance_cents), 0) AS BIGINT) AS opening_balance_cents,
               CAST(coalesce(sum(earned_cents), 0) AS BIGINT) AS earned_cents,
               CAST(coalesce(sum(payable_cents), 0) AS BIGINT) AS payable_cents,
               CAST(coalesce(sum(carried_forward_cents), 0) AS BIGINT) AS carried_forward_cents
        FROM revenue_share_statements WHERE statement_month = ?""",
        [month],
    )[0]
    out = {"statement_month": month, **{k: int(v) for k, v in s.items()}}
    if has_table(con, "batch_revenue"):
        b = _rows(
            con,
            """
            SELECT count(*) AS batches,
                   CAST(coalesce(sum(gross_cents), 0) AS BIGINT) AS gross_cents,
                   CAST(coalesce(sum(pool_cents), 0) AS BIGINT) AS pool_cents,
                   CAST(coalesce(sum(platform_cents), 0) AS BIGINT) AS platform_cents
            FROM batch_revenue WHERE revenue_month = ?""",
            [month],
        )[0]
        out |= {k: int(v) for k, v in b.items()}
    if has_table(con, "payout_reconciliation"):
        p = _rows(
            con,
            """
            SELECT CAST(coalesce(sum(paid_cents), 0) AS BIGINT) AS paid_cents,
                   count(*) FILTER (WHERE status <> 'matched') AS contributor_breaks
            FROM payout_reconciliation WHERE statement_month = ?""",
            [month],
        )[0]
        out |= {k: int(v) for k, v in p.items()}
    if has_table(con, "buyer_receivables"):
        r = _rows(con, f"SELECT count(*) AS buyer_breaks FROM ({_RECEIVABLES_SQL}) WHERE status <> 'paid'", [month])[0]
        out |= {k: int(v) for k, v in r.items()}
    return out


SUMMARY_LABELS = [
    ("statements", "statement rows", False),
    ("payable_subscribers", "subscribers paid this month", False),
    ("payable_cents", "payable (payout file total)", True),
    ("carrying_subscribers", "subscribers carrying a balance", False),
    ("carried_forward_cents", "carried forward", True),
    ("opening_balance_cents", "opening balances", True),
    ("earned_cents", "earned this month", True),
    ("batches", "batches with revenue this month", False),
    ("gross_cents", "gross revenue (R7)", True),
    ("pool_cents", "contributors' pool (R8)", True),
    ("platform_cents", "platform share (R8)", True),
    ("paid_cents", "payouts recorded for this month", True),
    ("contributor_breaks", "payout reconciliation breaks", False),
    ("buyer_breaks", "open buyer receivables", False),
]

# Buyer side as of a statement month: receivables of batches whose revenue month is the
# month or earlier, and payments for unknown batches (no month).
_RECEIVABLES_SQL = """
    SELECT deal_id, batch_id, revenue_month, CAST(gross_cents AS BIGINT) AS gross_cents,
           CAST(received_cents AS BIGINT) AS received_cents, CAST(difference_cents AS BIGINT) AS difference_cents,
           CAST(payments AS BIGINT) AS payments, status
    FROM buyer_receivables
    WHERE revenue_month IS NULL OR revenue_month <= ?
"""


def statement_rows(con: duckdb.DuckDBPyConnection, month: str) -> list[dict]:
    return _rows(
        con,
        """
        SELECT statement_month, subscriber_id,
               CAST(opening_balance_cents AS BIGINT) AS opening_balance_cents, CAST(earned_cents AS BIGINT) AS earned_cents,
               CAST(total_cents AS BIGINT) AS total_cents, CAST(payable_cents AS BIGINT) AS payable_cents,
               CAST(carried_forward_cents AS BIGINT) AS carried_forward_cents,
               CAST(clips_licensed AS BIGINT) AS clips_licensed, CAST(billable_seconds AS BIGINT) AS billable_seconds
        FROM revenue_share_statements WHERE statement_month = ? ORDER BY subscriber_id""",
        [check_month(month)],
    )


def receivable_rows(con: duckdb.DuckDBPyConnection, month: str) -> list[dict]:
    if not has_table(con, "buyer_receivables"):
        return []
    return _rows(con, f"{_RECEIVABLES_SQL} ORDER BY revenue_month NULLS LAST, deal_id, batch_id", [check_month(month)])


def break_rows(con: duckdb.DuckDBPyConnection, month: str) -> list[dict]:
    """Reconciliation breaks of the month: contributor lines not ``matched`` and buyer
    receivables (as of the month) not ``paid``, in one shape."""
    out = []
    if has_table(con, "payout_reconciliation"):
        for r in _rows(
            con,
            """
                SELECT statement_month, subscriber_id, CAST(payable_cents AS BIGINT) AS payable_cents,
                       CAST(paid_cents AS BIGINT) AS paid_cents, CAST(difference_cents AS BIGINT) AS difference_cents, status
                FROM payout_reconciliation WHERE statement_month = ? AND status <> 'matched'
                ORDER BY subscriber_id""",
            [check_month(month)],
        ):
            out.append(
                {
                    "side": "contributor",
                    "month": r["statement_month"],
                    "subscriber_id": r["subscriber_id"],
                    "deal_id": None,
                    "batch_id": None,
                    "expected_cents": r["payable_cents"],
                    "actual_cents": r["paid_cents"],
                    "difference_cents": r["difference_cents"],
                    "status": r["status"],
                }
            )
    for r in receivable_rows(con, month):
        if r["status"] != "paid":
            out.append(
                {
                    "side": "buyer",
                    "month": r["revenue_month"],
                    "subscriber_id": None,
                    "deal_id": r["deal_id"],
                    "batch_id": r["batch_id"],
                    "expected_cents": r["gross_cents"],
                    "actual_cents": r["received_cents"],
                    "difference_cents": r["difference_cents"],
                    "status": r["status"],
                }
            )
    return out


# -- workbook --------------------------------------------------------------------
def _cell_value(ws, row: int, col: int, value):
    cell = ws.cell(row=row, column=col, value=value)
    if isinstance(value, str) and value.startswith("="):
        cell.data_type = "s"  # text, never a formula (ids come from landing files)
    return cell


def _sheet(wb, title: str, columns: list[str], rows: list[dict], money: set[str]):
    from openpyxl.styles import Font
    from openpyxl.utils import get_column_letter

    ws = wb.create_sheet(title)
    bold = Font(bold=True)
    for c, name in enumerate(columns, 1):
        _cell_value(ws, 1, c, name).font = bold
    for r, row in enumerate(rows, 2):
        for c, name in enumerate(columns, 1):
            cell = _cell_value(ws, r, c, row.get(name))
            if name in money:
                cell.number_format = "#,##0"
    for c, name in enumerate(columns, 1):
        width = max([len(name), *(len(str(row.get(name))) for row in rows[:500] if row.get(name) is not None)])
        ws.column_dimensions[get_column_letter(c)].width = min(60, width + 2)
    ws.freeze_panes = "A2"
    if rows:
        ws.auto_filter.ref = f"A1:{get_column_letter(len(columns))}{len(rows) + 1}"
    return ws


def workbook_bytes(con: duckdb.DuckDBPyConnection, month: str, checks: list[str] | tuple = ()) -> bytes:
    """The month's finance workbook. Sheets: ``summary``, ``statements``,
    ``reconciliation_breaks``, ``receivables``. Money is int cents in ``*_cents`` cells
    (authoritative) with a ``*_usd`` text column beside it; no e-mail anywhere."""
    from openpyxl import Workbook

    summary = month_summary(con, month)
    wb = Workbook()
    wb.remove(wb.active)
    summary_rows = [{"item": "statement month", "value": month, "usd": None}]
    for key, label, is_money in SUMMARY_LABELS:
        if key in summary:
            summary_rows.append(
                {"item": label, "value": summary[key], "usd": dollars(summary[key]) if is_money else None}
            )
    summary_rows.append({"item": "blocking checks passed", "value": len(checks), "usd": None})
    summary_rows.extend({"item": "check", "value": name, "usd": None} for name in sorted(checks))
    _sheet(wb, "summary", ["item", "value", "usd"], summary_rows, money=set())

    statements = statement_rows(con, month)
    for s in statements:
        s["payable_usd"] = dollars(s["payable_cents"])
        s["payout_reference"] = payout_reference(month, s["subscriber_id"]) if s["payable_cents"] > 0 else None
    cols = [
        "statement_month",
        "subscriber_id",
        "opening_balance_cents",
        "earned_cents",
        "total_cents",
        "payable_cents",
        "carried_forward_cents",
        "payable_usd",
        "payout_reference",
        "clips_licensed",
        "billable_seconds",
    ]
    _sheet(wb, "statements", cols, statements, money={c for c in cols if c.endswith("_cents")})

    breaks = break_rows(con, month)
    cols = [
        "side",
        "month",
        "subscriber_id",
        "deal_id",
        "batch_id",
        "expected_cents",
        "actual_cents",
        "difference_cents",
        "status",
    ]
    _sheet(wb, "reconciliation_breaks", cols, breaks, money={c for c in cols if c.endswith("_cents")})

    receivables = receivable_rows(con, month)
    for r in receivables:
        r["gross_usd"], r["received_usd"] = dollars(r["gross_cents"]), dollars(r["received_cents"])
    cols = [
        "deal_id",
        "batch_id",
        "revenue_month",
        "gross_cents",
        "received_cents",
        "difference_cents",
        "payments",
        "status",
        "gross_usd",
        "received_usd",
    ]
    _sheet(wb, "receivables", cols, receivables, money={c for c in cols if c.endswith("_cents")})

    wb.properties.creator = "gopro-lake"
    wb.properties.title = f"Finance export {month}"
    buf = io.BytesIO()
    wb.save(buf)
    return reproducible_xlsx(buf.getvalue(), wb)


def reproducible_xlsx(data: bytes, wb=None) -> bytes:
    """Rewrite an xlsx so that it carries no clock: fixed created/modified dates in
    ``docProps/core.xml`` (openpyxl stamps ``modified`` with the time of saving) and a
    fixed date on every zip entry, entries kept in their order."""
    from openpyxl.xml.functions import tostring

    core = None
    if wb is not None:
        wb.properties.created = FIXED_DOC_TIME
        wb.properties.modified = FIXED_DOC_TIME
        wb.properties.lastModifiedBy = None
        core = tostring(wb.properties.to_tree())
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as zin, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zout:
        for info in zin.infolist():
            body = zin.read(info.filename)
            if info.filename == "docProps/core.xml":
                body = (
                    core
                    if core is not None
                    else re.sub(
                        rb"(<dcterms:(created|modified)[^>]*>)[^<]*(</dcterms:\2>)",
                        rb"\g<1>2000-01-01T00:00:00Z\3",
                        body,
                    )
                )
            fixed = zipfile.ZipInfo(info.filename, date_time=FIXED_ZIP_TIME)
            fixed.compress_type = zipfile.ZIP_DEFLATED
            fixed.external_attr = 0o600 << 16
            fixed.create_system = 0
            zout.writestr(fixed, body)
    return out.getvalue()


# -- tax summary -----------------------------------------------------------------
def tax_rows(con: duckdb.DuckDBPyConnection, year: int) -> list[dict]:
    """Per subscriber, the royalties of calendar year ``year``: the sum of
    ``payable_cents`` of their statements whose statement month is in the year (the
    amount that became payable; docs/EXPORTS.md), flagged ``form_1099_misc`` when it is at
    least $10. ``paid_in_year_cents`` is the cash view for comparison: payouts with
    ``paid_at`` in the year, each payout_id counted once."""
    _require(con, "revenue_share_statements")
    year = int(year)
    first, last = f"{year:04d}-01", f"{year:04d}-12"
    paid_sql = "SELECT NULL::VARCHAR AS subscriber_id, 0::BIGINT AS paid WHERE false"
    if has_table(con, "payouts"):
        paid_sql = """
            SELECT subscriber_id, sum(amount_cents) AS paid FROM (
                SELECT * FROM payouts
                QUALIFY row_number() OVER (PARTITION BY payout_id ORDER BY _source_path, _source_line) = 1)
            WHERE paid_at >= make_timestamptz(?, 1, 1, 0, 0, 0, 'UTC')
              AND paid_at < make_timestamptz(?, 1, 1, 0, 0, 0, 'UTC')
            GROUP BY subscriber_id"""
    params = [first, last] + ([year, year + 1] if has_table(con, "payouts") else [])
    rows = _rows(
        con,
        f"""
        WITH royalties AS (
            SELECT subscriber_id, sum(payable_cents) AS royalties, count(*) FILTER (WHERE payable_cents > 0) AS n
            FROM revenue_share_statements
            WHERE statement_month >= ? AND statement_month <= ?
            GROUP BY subscriber_id
        ), paid AS ({paid_sql})
        SELECT coalesce(r.subscriber_id, p.subscriber_id) AS subscriber_id,
               CAST(coalesce(r.royalties, 0) AS BIGINT) AS royalties_cents,
               CAST(coalesce(r.n, 0) AS BIGINT) AS payable_statements,
               CAST(coalesce(p.paid, 0) AS BIGINT) AS paid_in_year_cents
        FROM royalties AS r FULL OUTER JOIN paid AS p USING (subscriber_id)
        WHERE coalesce(r.royalties, 0) <> 0 OR coalesce(p.paid, 0) <> 0
        ORDER BY subscriber_id""",
        params,
    )
    return [
        {
            "tax_year": year,
            "subscriber_id": r["subscriber_id"],
            "royalties_cents": int(r["royalties_cents"]),
            "royalties_usd": dollars(int(r["royalties_cents"])),
            "payable_statements": int(r["payable_statements"]),
            "paid_in_year_cents": int(r["paid_in_year_cents"]),
            "form_1099_misc": int(r["royalties_cents"]) >= FORM_1099_MISC_ROYALTIES_THRESHOLD_CENTS,
        }
        for r in rows
    ]


def tax_csv(con: duckdb.DuckDBPyConnection, year: int) -> bytes:
    return csv_bytes(TAX_COLUMNS, tax_rows(con, year), TAX_NUMBERS)


# -- files -----------------------------------------------------------------------
@dataclass
class ExportFile:
    rel_path: str
    data: bytes
    private: bool = False  # holds e-mail -> owner-only permissions


def month_paths(month: str) -> dict[str, str]:
    return {
        "payouts": f"{month}/payouts_{month}.csv",
        "workbook": f"{month}/finance_{month}.xlsx",
        "report": f"{month}/report_{month}.html",
    }


def tax_path(year: int) -> str:
    return f"tax/tax_summary_{int(year):04d}.csv"


def write_files(root: FileRoot, files: list[ExportFile]) -> dict[str, str]:
    """Write each file (atomically; e-mail files owner-only) and return rel path -> URI."""
    return {f.rel_path: root.write_bytes(f.rel_path, f.data, private=f.private) for f in files}
