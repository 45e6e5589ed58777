"""Gate, build and write the finance exports; shared by the ``payout_export`` asset and
``gopro-lake export`` so both produce the very same bytes."""

from datetime import UTC, datetime

from gopro_assets import settings
from gopro_assets.defs.finance.gate import ExportRefused, GateResult, run_gate
from gopro_assets.domain.finance import bundle
from gopro_assets.domain.finance import exports as lib
from gopro_assets.domain.finance.report import required_tables
from gopro_assets.lake.storage import FileRoot
from gopro_assets.shared.resources import LakehouseResource


def lakehouse_from_settings(exports: str | None = None) -> LakehouseResource:
    """The lakehouse resource from the contract's env vars (plain values, for use
    outside a Dagster run)."""
    return LakehouseResource(
        landing=settings.env("GOPRO_LANDING"),
        lake=settings.env("GOPRO_LAKE"),
        exports=exports or settings.env("GOPRO_EXPORTS"),
        share_rate=settings.env("GOPRO_SHARE_RATE"),
        min_payout_cents=settings.env("GOPRO_MIN_PAYOUT_CENTS"),
        review_days=settings.env("GOPRO_REVIEW_DAYS"),
    )


def _connect(lakehouse: LakehouseResource):
    return lib.connect_lake(lakehouse.store(), (*lib.EXPORT_TABLES, *required_tables()))


def build_months(
    lakehouse: LakehouseResource, months: list[str], now: datetime | None = None
) -> tuple[dict[str, GateResult], dict[str, bundle.MonthExport]]:
    """Gate every month first; build all of them only when every month passes (raises
    :class:`ExportRefused` with the failing checks otherwise: nothing is written)."""
    gates = run_gate(lakehouse, months, now)
    refused = [g for g in gates.values() if not g.passed]
    if refused:
        raise ExportRefused("\n".join(g.message() for g in refused), " ".join(g.summary() for g in refused))
    con = _connect(lakehouse)
    try:
        built = {m: bundle.build_month_export(con, m, gates[m].checks) for m in sorted(gates)}
    except lib.ExportDataError as exc:
        raise ExportRefused(f"export REFUSED: {exc}") from exc
    finally:
        con.close()
    return gates, built


def export_month(
    lakehouse: LakehouseResource, month: str, root: FileRoot | None = None, now: datetime | None = None
) -> dict[str, str]:
    """Gate, build and write one statement month's files under ``<root>/<month>/``;
    returns rel path -> URI. Raises :class:`ExportRefused` (nothing written) when refused."""
    _, built = build_months(lakehouse, [month], now)
    return lib.write_files(root or lakehouse.exports_root(), built[month].files)


def export_tax_year(
    lakehouse: LakehouseResource, year: int, root: FileRoot | None = None, now: datetime | None = None
) -> dict[str, str]:
    """The year-end tax summary (``tax/tax_summary_<year>.csv``). Refused while the year
    is not over, or when December's gate fails (it covers every statement month of the
    year, since each month's opening balance comes from the month before)."""
    year = int(year)
    now = now or datetime.now(UTC)
    if now < datetime(year + 1, 1, 1, tzinfo=UTC):
        raise ExportRefused(f"tax summary of {year} REFUSED: the year is not over yet (UTC)")
    gate = run_gate(lakehouse, [f"{year:04d}-12"], now)[f"{year:04d}-12"]
    if not gate.passed:
        label = (f"export of {year:04d}-12", f"tax summary of {year} (gated on {year:04d}-12)")
        raise ExportRefused(gate.message().replace(*label), gate.summary().replace(*label))
    con = _connect(lakehouse)
    try:
        data = lib.tax_csv(con, year)
    finally:
        con.close()
    return lib.write_files(root or lakehouse.exports_root(), [lib.ExportFile(lib.tax_path(year), data)])


def cli_export(month: str | None, tax_year: int | None, out: str | None, echo=print, err=None) -> int:
    """``gopro-lake export``: exit 0 when every requested export was written, 1 when one
    was refused or could not be written (the reason is printed on one line), 2 on bad
    arguments (docs/CLI.md)."""
    import sys

    err = err or (lambda msg: print(msg, file=sys.stderr, flush=True))
    if month is None and tax_year is None:
        err("gopro-lake export: give --month YYYY-MM and/or --tax-year YYYY")
        return 2
    if month is not None:
        try:
            lib.check_month(month)
        except ValueError as exc:
            err(f"gopro-lake export: {exc}")
            return 2
    lakehouse = lakehouse_from_settings(out)
    root = lakehouse.exports_root()
    status = 0
    if month is not None:
        try:
            written = export_month(lakehouse, month, root)
        except ExportRefused as exc:
            err(f"gopro-lake export: {exc.summary}")
            status = 1
        except OSError as exc:
            err(f"gopro-lake export: could not write the export of {month} under {root.root}: {_os_error(exc)}")
            status = 1
        else:
            echo(f"exported {month} to {root.root}/{month}/ (lake {lakehouse.lake}):")
            for rel, uri in written.items():
                echo(
                    f"  {uri}" + ("  (owner-only: contains e-mail)" if rel == lib.month_paths(month)["payouts"] else "")
                )
    if tax_year is not None:
        try:
            written = export_tax_year(lakehouse, tax_year, root)
        except ExportRefused as exc:
            err(f"gopro-lake export: {exc.summary}")
            status = 1
        except OSError as exc:
            err(f"gopro-lake export: could not write the tax summary of {tax_year} under {root.root}: {_os_error(exc)}")
            status = 1
        else:
            for uri in written.values():
                echo(f"tax summary {tax_year}: {uri}")
    return status


def _os_error(exc: OSError) -> str:
    """An OSError on one line, e.g. "Permission denied: /x/2025-06"."""
    where = f": {exc.filename}" if exc.filename else ""
    return f"{exc.strerror or ' '.join(str(exc).split())}{where}"
