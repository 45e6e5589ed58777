"""The export gate: a statement month is exported only when the lake passes the blocking
checks that its money depends on, re-run against the lake right now.

We re-run the checks instead of reading the latest check evaluations from the Dagster
instance, so ``gopro-lake export`` works without an instance (a lake on S3 read from a
laptop) and judges the tables as they are now, not as they were at their last run
(docs/EXPORTS.md). The checks are the very ones Dagster runs:

* the error-severity data tests of the SQL models in :data:`GATED_MODELS`, re-run with
  ``sql_engine.runner.run_tests`` (the model's table registered as the scope says, the
  lakehouse's share rate, minimum payout and review window as the run variables);
* every blocking ``@dg.asset_check`` on :data:`GATED_CHECK_ASSETS` (all defined in the
  licensing domain's checks), invoked directly with the lakehouse resource;
* three finance checks of our own: the month is over; the lake was built through it
  (statements of the month or later exist, or consent_daily reaches its last day);
  opening balances continue the previous month's carried-forward amounts, for every
  month up to it (which also catches a month in the middle that was never built).
"""

import calendar
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

import dagster as dg
import pyarrow.compute as pc

from gopro_assets.defs.licensing import checks as licensing_checks
from gopro_assets.domain.finance.exports import check_month
from gopro_assets.lake import duck
from gopro_assets.lake.privacy import redact_emails
from gopro_assets.shared.resources import LakehouseResource
from gopro_assets.sql_engine.runner import SQL_ROOT, connect, load_model, run_tests

# model -> scope of its data tests for an export of month M:
#   "all"     the whole table (unpartitioned assets: what Dagster's check evaluates),
#   "through" each statement month <= M, one at a time (M's opening balance is M-1's
#             carried-forward amount, so every earlier month is part of M's money),
#   "month"   month M only.
GATED_MODELS = {
    "batch_revenue": "all",
    "revenue_share_allocations": "all",
    "revenue_share_statements": "through",
    "payout_reconciliation": "month",
}
GATED_CHECK_ASSETS = ("deal_deliveries",)
MONTH_COLUMN = {"revenue_share_statements": "statement_month", "payout_reconciliation": "statement_month"}


class ExportRefused(Exception):
    """An export was refused because the lake fails a blocking check. ``summary`` is the
    reason on one line (what ``gopro-lake export`` prints); ``str()`` may span lines."""

    def __init__(self, message: str, summary: str | None = None):
        super().__init__(message)
        self.summary = summary or " ".join(message.split())


@dataclass
class Breach:
    check: str  # "<asset>.<check>"
    scope: str  # "all", a month, ...
    offending: int
    sample: list = field(default_factory=list)

    def line(self) -> str:
        sample = f"; e.g. {redact_emails(str(self.sample[0]))}" if self.sample else ""  # messages reach logs
        return f"{self.check} [{self.scope}]: {self.offending} offending row(s){sample}"


@dataclass
class GateResult:
    month: str
    checks: list[str]  # names of the checks run ("asset.check")
    breaches: list[Breach]

    @property
    def passed(self) -> bool:
        return not self.breaches

    def message(self) -> str:
        if self.passed:
            return f"{self.month}: {len(self.checks)} blocking check(s) passed"
        lines = "\n".join(f"  - {b.line()}" for b in self.breaches)
        return (
            f"export of {self.month} REFUSED: {len(self.breaches)} blocking check(s) fail on the lake.\n{lines}\n"
            f"Materialize the missing months, or fix the data and re-materialize the affected assets, then export again."
        )

    def summary(self) -> str:
        """:meth:`message` on one line."""
        if self.passed:
            return self.message()
        return (
            f"export of {self.month} REFUSED: {len(self.breaches)} blocking check(s) fail on the lake: "
            + "; ".join(b.line() for b in self.breaches)
            + ". Materialize the missing months, or fix the data and re-materialize the affected assets, "
            "then export again."
        )


def _month_start(month: str) -> date:
    return date.fromisoformat(f"{month}-01")


def _previous(month: str) -> str:
    return (_month_start(month) - timedelta(days=1)).strftime("%Y-%m")


def month_is_over(month: str, now: datetime | None = None) -> bool:
    y, m = map(int, month.split("-"))
    end = datetime(y, m, calendar.monthrange(y, m)[1], tzinfo=UTC) + timedelta(days=1)
    return (now or datetime.now(UTC)) >= end


def _month_range(first: str, last: str) -> list[str]:
    out, m = [], _month_start(first)
    while m.strftime("%Y-%m") <= last:
        out.append(m.strftime("%Y-%m"))
        m = (m.replace(day=28) + timedelta(days=4)).replace(day=1)
    return out


def _history(store, months: list[str]) -> list[str]:
    """Every calendar month from the first one with statements or revenue (or the first
    requested) through the last requested: each is part of the last month's money."""
    known = set(months)
    for table, col in (("revenue_share_statements", "statement_month"), ("batch_revenue", "revenue_month")):
        if store.exists(table):
            known |= {m for m in store.read(table, columns=[col]).column(col).to_pylist() if m}
    return _month_range(min(known), max(months))


def _sql_model_breaches(
    store, months: list[str], history: list[str], checks: set[str], settings: dict
) -> dict[str, list[Breach]]:
    """Data tests of GATED_MODELS, computed once per scope; returns scope -> breaches
    (scope "all", or a month). ``settings``: the run variables the tests recompute money
    with (share rate, minimum payout, review window), as the assets set them."""
    by_scope: dict[str, list[Breach]] = {}
    for name, scope in GATED_MODELS.items():
        model = load_model(SQL_ROOT / "marts" / f"{name}.sql")
        blocking = [t for t in model.tests if t.severity == "error"]
        checks.update(f"{name}.{t.name}" for t in blocking)
        if not store.exists(name):
            by_scope.setdefault("all", []).append(
                Breach(f"{name}.exists", "all", 1, [f"table {name} is not in the lake"])
            )
            continue
        missing = [d for d in model.deps if not store.exists(d)]
        if missing:
            by_scope.setdefault("all", []).append(Breach(f"{name}.inputs_exist", "all", len(missing), missing))
            continue
        table = store.read(name)
        if scope == "all":
            scopes = [("all", table, {})]
        else:
            col = MONTH_COLUMN[name]
            wanted = history if scope == "through" else sorted(set(months))
            scopes = [
                (m, table.filter(pc.equal(table[col], m)), {"month": m, "month_start": _month_start(m)}) for m in wanted
            ]
        con = connect(store, model.deps, settings)
        if model.tests_read_stored:  # e.g. the previous month a statement month opens from (R11)
            con.register(model.stored_name, table)
        try:
            for label, rows, variables in scopes:
                for key, value in variables.items():
                    con.execute(f"SET VARIABLE {key} = ?", [value])
                for test, n, sample in run_tests(con, model, rows):
                    if test.severity == "error" and n:
                        by_scope.setdefault(label, []).append(Breach(f"{name}.{test.name}", label, n, sample[:3]))
        finally:
            con.close()
    return by_scope


def _continuity_breaches(store, history: list[str], checks: set[str]) -> dict[str, list[Breach]]:
    """Finance check: every statement month <= M opens with the previous month's
    carried-forward balances (R11), no more and no less."""
    checks.add("revenue_share_statements.opening_balances_continue")
    if not store.exists("revenue_share_statements"):
        return {}
    con = duck.connect()
    con.register("s", store.dataset("revenue_share_statements"))
    out: dict[str, list[Breach]] = {}
    for month in history:
        bad = con.execute(
            """
            WITH prev AS (SELECT subscriber_id, carried_forward_cents AS c FROM s WHERE statement_month = ? AND carried_forward_cents <> 0),
                 cur AS (SELECT subscriber_id, opening_balance_cents AS o FROM s WHERE statement_month = ?)
            SELECT coalesce(p.subscriber_id, c.subscriber_id) AS subscriber_id, coalesce(p.c, 0) AS carried_in, coalesce(c.o, 0) AS opening
            FROM prev p FULL OUTER JOIN cur c USING (subscriber_id)
            WHERE coalesce(p.c, 0) <> coalesce(c.o, 0)
            ORDER BY 1""",
            [_previous(month), month],
        ).fetchall()
        if bad:
            sample = [{"subscriber_id": s, "carried_in_cents": c, "opening_balance_cents": o} for s, c, o in bad[:3]]
            out.setdefault(month, []).append(
                Breach("revenue_share_statements.opening_balances_continue", month, len(bad), sample)
            )
    con.close()
    return out


def _python_check_breaches(lakehouse: LakehouseResource, checks: set[str]) -> list[Breach]:
    """Blocking ``@dg.asset_check`` definitions on GATED_CHECK_ASSETS, invoked directly."""
    out = []
    for checks_def in dg.load_asset_checks_from_modules([licensing_checks]):
        specs = [s for s in checks_def.check_specs if s.asset_key.to_user_string() in GATED_CHECK_ASSETS and s.blocking]
        if not specs:
            continue
        names = [f"{s.asset_key.to_user_string()}.{s.name}" for s in specs]
        checks.update(names)
        try:
            results = checks_def(lakehouse=lakehouse)
            results = [results] if isinstance(results, dg.AssetCheckResult) else list(results)
        except Exception as exc:  # noqa: BLE001 - a check that cannot run is a failed check
            out.append(Breach(names[0], "all", 1, [f"check could not run: {type(exc).__name__}: {exc}"]))
            continue
        for result in results:
            if result.passed:
                continue
            meta = result.metadata or {}
            n, sample = meta.get("offending_rows"), meta.get("sample")
            name = names[0] if len(names) == 1 else f"{specs[0].asset_key.to_user_string()}.{result.check_name}"
            out.append(
                Breach(name, "all", int(getattr(n, "value", n) or 1), list(getattr(sample, "value", sample) or [])[:3])
            )
    return out


def _built_through(store) -> tuple[str | None, date | None]:
    """Evidence of how far the lake was materialized: its last statement month, and the
    last day of consent_daily (daily partitions run through ``--through``)."""
    last_month = last_day = None
    if store.exists("revenue_share_statements"):
        months = [
            m for m in store.read("revenue_share_statements", columns=["statement_month"]).column(0).to_pylist() if m
        ]
        last_month = max(months, default=None)
    if store.exists("consent_daily"):
        con = duck.connect()
        con.register("c", store.dataset("consent_daily"))
        value = con.execute("SELECT max(snapshot_date) FROM c").fetchone()[0]
        con.close()
        last_day = value if isinstance(value, date) or value is None else date.fromisoformat(str(value)[:10])
        last_day = last_day.date() if isinstance(last_day, datetime) else last_day
    return last_month, last_day


def run_gate(lakehouse: LakehouseResource, months: list[str], now: datetime | None = None) -> dict[str, GateResult]:
    """Judge every month of ``months`` (YYYY-MM); the whole-table checks run once."""
    months = sorted({check_month(m) for m in months})
    names: set[str] = {"finance.month_is_over", "finance.lake_built_through_month"}
    results = {
        m: GateResult(m, sorted(names), [Breach("finance.month_is_over", m, 1, [f"{m} is not over yet (UTC)"])])
        for m in months
        if not month_is_over(m, now)
    }
    due = [m for m in months if m not in results]  # only these are judged on the lake
    if not due:
        return results
    store = lakehouse.store()
    history = _history(store, due)
    rate = lakehouse.share_rate_fraction
    settings = {
        "share_rate_num": rate.numerator,
        "share_rate_den": rate.denominator,
        "min_payout_cents": lakehouse.min_payout,
        "review_days": lakehouse.review_window_days,
    }
    by_scope = _sql_model_breaches(store, due, history, names, settings)
    for scope, breaches in _continuity_breaches(store, history, names).items():
        by_scope.setdefault(scope, []).extend(breaches)
    whole = by_scope.get("all", []) + _python_check_breaches(lakehouse, names)
    last_month, last_day = _built_through(store)
    for month in due:
        breaches = list(whole)
        y, m = map(int, month.split("-"))
        month_end = date(y, m, calendar.monthrange(y, m)[1])
        if not ((last_month is not None and last_month >= month) or (last_day is not None and last_day >= month_end)):
            breaches.append(
                Breach(
                    "finance.lake_built_through_month",
                    month,
                    1,
                    [
                        f"the lake has no statements for {month} or later (last: {last_month}) and consent_daily ends "
                        f"{last_day}: materialize through {month_end} first"
                    ],
                )
            )
        for scope in sorted(by_scope):
            if scope == "all":
                continue
            # statement checks of earlier months taint this month (opening balances);
            # payout_reconciliation is scoped to the month itself already
            if scope <= month:
                breaches.extend(
                    b for b in by_scope[scope] if b.check.split(".")[0] != "payout_reconciliation" or scope == month
                )
        results[month] = GateResult(month, sorted(names), breaches)
    return dict(sorted(results.items()))


def gate_month(lakehouse: LakehouseResource, month: str, now: datetime | None = None) -> GateResult:
    return run_gate(lakehouse, [month], now)[month]
