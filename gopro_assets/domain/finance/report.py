"""The month's finance report: one self-contained HTML page with plotly charts.

The page embeds plotly.js inline (it opens offline and from an e-mail attachment) and
is byte-for-byte reproducible: every chart has a fixed div id, values are int cents (axis
labels and hover texts in dollars are formatted from cents with integer arithmetic) and
nothing carries a timestamp.

Extension point: a report is the list :data:`SECTIONS`. A section is a title, a function
``build(con, month)`` returning a plotly figure, an HTML fragment (str), or None (section
left out), and the tables it reads. A section whose tables are not in the lake is skipped
and named at the end of the page. Adding one is one line, e.g. for clip valuations::

    SECTIONS.append(Section("Clip valuations", clip_valuation_section, requires=("clip_valuations",)))

or the decorator ``@report_section("Clip valuations", requires=("clip_valuations",))`` on
the function. The caller registers the tables of :func:`required_tables` on the
connection (``exports.connect_lake(store, required_tables())``).
"""

from __future__ import annotations

import html
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction

import duckdb

from gopro_assets.domain.finance.exports import SUMMARY_LABELS, check_month, has_table, month_summary
from gopro_assets.domain.finance.money import largest_remainder, round_half_up
from gopro_assets.domain.reporting import dollar_ticks, html_table, report_figure, usd
from gopro_assets.domain.valuation.report import valuation_report_section

SectionBuild = Callable[[duckdb.DuckDBPyConnection, str], object]


@dataclass(frozen=True)
class Section:
    title: str
    build: SectionBuild
    requires: tuple[str, ...] = ()


SECTIONS: list[Section] = []


def report_section(title: str, requires: tuple[str, ...] | list[str] = ()):
    """Decorator: append ``build`` to :data:`SECTIONS` (in definition order)."""

    def register(build: SectionBuild) -> SectionBuild:
        SECTIONS.append(Section(title, build, tuple(requires)))
        return build

    return register


def required_tables(sections: list[Section] | None = None) -> tuple[str, ...]:
    return tuple(dict.fromkeys(t for s in (SECTIONS if sections is None else sections) for t in s.requires))


# -- helpers ---------------------------------------------------------------------
def _rows(con, sql: str, params=None) -> list[tuple]:
    return con.execute(sql, params or []).fetchall()


def _money_axis(fig, max_cents: int, axis: str = "yaxis", title: str = "US dollars") -> None:
    vals, text = dollar_ticks(max_cents)
    fig.update_layout(
        {
            axis: {
                "tickmode": "array",
                "tickvals": vals,
                "ticktext": text,
                "title": {"text": title},
                "range": [0, vals[-1] * 1.05 if vals[-1] else 1],
            }
        }
    )


# -- built-in sections -------------------------------------------------------------
@report_section("Month at a glance", requires=("revenue_share_statements",))
def summary_section(con, month):
    s = month_summary(con, month)
    rows = [[label, usd(s[key]) if is_money else f"{s[key]:,}"] for key, label, is_money in SUMMARY_LABELS if key in s]
    return html_table(["item", "value"], rows, numeric={1})


@report_section("Revenue by deal and month", requires=("batch_revenue",))
def revenue_by_deal_section(con, month):
    import plotly.graph_objects as go

    data = _rows(
        con,
        """SELECT deal_id, revenue_month, CAST(sum(gross_cents) AS BIGINT)
                         FROM batch_revenue WHERE revenue_month <= ? GROUP BY 1, 2 ORDER BY 1, 2""",
        [month],
    )
    if not data:
        return "<p>No delivered batches up to this month.</p>"
    months = sorted({m for _, m, _ in data})
    fig = report_figure(
        barmode="stack",
        xaxis={
            "type": "category",
            "categoryorder": "array",
            "categoryarray": months,
            "title": {"text": "revenue month (R10)"},
        },
    )
    for deal in sorted({d for d, _, _ in data}):
        pts = [(m, int(c)) for d, m, c in data if d == deal]
        fig.add_trace(
            go.Bar(
                name=deal,
                x=[m for m, _ in pts],
                y=[c for _, c in pts],
                customdata=[usd(c) for _, c in pts],
                hovertemplate=f"{deal} %{{x}}: %{{customdata}}<extra></extra>",
            )
        )
    totals = {}
    for _, m, c in data:
        totals[m] = totals.get(m, 0) + int(c)
    _money_axis(fig, max(totals.values()), title="gross revenue")
    return fig


@report_section("Contributors' pool vs platform share", requires=("batch_revenue",))
def pool_vs_platform_section(con, month):
    import plotly.graph_objects as go

    data = _rows(
        con,
        """SELECT revenue_month, CAST(sum(pool_cents) AS BIGINT), CAST(sum(platform_cents) AS BIGINT)
                         FROM batch_revenue WHERE revenue_month <= ? GROUP BY 1 ORDER BY 1""",
        [month],
    )
    if not data:
        return "<p>No delivered batches up to this month.</p>"
    months = [m for m, _, _ in data]
    fig = report_figure(barmode="stack", xaxis={"type": "category", "title": {"text": "revenue month (R10)"}})
    for i, name in ((1, "contributors' pool"), (2, "platform share")):
        vals = [int(r[i]) for r in data]
        fig.add_trace(
            go.Bar(
                name=name,
                x=months,
                y=vals,
                customdata=[usd(v) for v in vals],
                hovertemplate=f"{name} %{{x}}: %{{customdata}}<extra></extra>",
            )
        )
    _money_axis(fig, max(int(p) + int(q) for _, p, q in data), title="gross = pool + platform (R8)")
    return fig


@report_section("Payout distribution", requires=("revenue_share_statements",))
def payout_distribution_section(con, month):
    import plotly.graph_objects as go

    amounts = [
        int(r[0])
        for r in _rows(
            con,
            """SELECT payable_cents FROM revenue_share_statements
                                               WHERE statement_month = ? AND payable_cents > 0 ORDER BY 1""",
            [month],
        )
    ]
    if not amounts:
        return "<p>Nobody is payable this month (every balance is below the minimum payout or zero).</p>"
    ticks, _ = dollar_ticks(max(amounts), target=8)
    step = ticks[1] - ticks[0] if len(ticks) > 1 else max(amounts) + 1
    buckets: dict[int, int] = {}
    for a in amounts:
        buckets[a // step] = buckets.get(a // step, 0) + 1
    keys = range(min(buckets), max(buckets) + 1)
    labels = [f"{usd(k * step)}–{usd((k + 1) * step - 1)}" for k in keys]
    fig = report_figure(
        xaxis={"type": "category", "title": {"text": "payout amount"}},
        yaxis={"title": {"text": "subscribers"}, "dtick": 1 if max(buckets.values()) <= 10 else None},
    )
    fig.add_trace(
        go.Bar(
            name="subscribers",
            x=labels,
            y=[buckets.get(k, 0) for k in keys],
            hovertemplate="%{x}: %{y} subscriber(s)<extra></extra>",
        )
    )
    stats = [
        ["subscribers paid", f"{len(amounts):,}"],
        ["total", usd(sum(amounts))],
        ["smallest", usd(amounts[0])],
        ["median", usd(amounts[(len(amounts) - 1) // 2])],
        ["largest", usd(amounts[-1])],
    ]
    return [fig, html_table(["", ""], stats, numeric={1})]


@report_section("Carried-forward balances", requires=("revenue_share_statements",))
def carried_forward_section(con, month):
    import plotly.graph_objects as go

    data = _rows(
        con,
        """SELECT statement_month, CAST(sum(carried_forward_cents) AS BIGINT),
                                count(*) FILTER (WHERE carried_forward_cents > 0)
                         FROM revenue_share_statements WHERE statement_month <= ? GROUP BY 1 ORDER BY 1""",
        [month],
    )
    if not data:
        return "<p>No statements up to this month.</p>"
    months = [m for m, _, _ in data]
    fig = report_figure(
        xaxis={"type": "category", "title": {"text": "statement month"}},
        yaxis2={
            "title": {"text": "subscribers carrying a balance"},
            "overlaying": "y",
            "side": "right",
            "rangemode": "tozero",
            "tickformat": ",d",
            "showgrid": False,
        },
    )
    vals = [int(c) for _, c, _ in data]
    fig.add_trace(
        go.Bar(
            name="carried forward",
            x=months,
            y=vals,
            customdata=[usd(v) for v in vals],
            hovertemplate="%{x}: %{customdata} carried forward<extra></extra>",
        )
    )
    fig.add_trace(
        go.Scatter(
            name="subscribers carrying",
            x=months,
            y=[int(n) for _, _, n in data],
            yaxis="y2",
            mode="lines+markers",
            hovertemplate="%{x}: %{y} subscriber(s)<extra></extra>",
        )
    )
    _money_axis(fig, max(vals), title="carried forward (below the minimum payout)")
    return fig


@report_section("Reconciliation breaks", requires=("payout_reconciliation", "buyer_receivables"))
def breaks_section(con, month):
    from gopro_assets.domain.finance.exports import break_rows

    rows = break_rows(con, month)
    if not rows:
        return "<p>No breaks: every payout matched and every receivable is paid.</p>"
    counts: dict[tuple, list[int]] = {}
    for r in rows:
        c = counts.setdefault((r["side"], r["status"]), [0, 0])
        c[0] += 1
        c[1] += int(r["difference_cents"])
    table = [[side, status, n, usd(diff)] for (side, status), (n, diff) in sorted(counts.items())]
    return "<p>Details are in the workbook's <code>reconciliation_breaks</code> sheet.</p>" + html_table(
        ["side", "status", "lines", "difference (actual − expected)"], table, numeric={2, 3}
    )


# R7 (v2): what the camera knows and what it sold for. Gross is money per batch; this is a
# view of it by the deliveries' facts frozen at delivery (camera_model, has_gps, has_imu).
SENSOR_GROUPS = (
    ((True, True), "GPS and IMU"),
    ((True, False), "GPS only"),
    ((False, True), "IMU only"),
    ((False, False), "neither"),
    ((None, None), "not recorded (delivered before telemetry)"),
)
NO_CAMERA = "unknown (no telemetry)"


def _sensor_group(has_gps, has_imu) -> str:
    key = (None, None) if has_gps is None or has_imu is None else (bool(has_gps), bool(has_imu))
    return dict(SENSOR_GROUPS)[key]


def attributed_gross(con, month: str) -> tuple[list[dict], int]:
    """The gross of the month's batches (R10) attributed to (camera model, GPS/IMU group)
    cells, and the gross left unattributed (flat-fee breaks: no billable seconds).

    Each batch's ``gross_cents`` is split over its deliveries in proportion to their R9
    weights (seconds x price per minute, sensor bonus included, under per_minute; seconds
    under flat_fee), in exact fractions; the cells' sums are then rounded to cents by the
    largest-remainder method (R9's, ``money.largest_remainder``), so the cells add up to the
    attributed gross exactly. ``bonus_cents`` is the part of a cell's share that the sensor
    bonus earned (rounded half up, per cell)."""
    rows = _rows(
        con,
        """WITH d AS (
               SELECT d.deal_id, d.batch_id, d.camera_model, d.has_gps, d.has_imu, d.billable_seconds,
                      CASE WHEN r.pricing_model = 'per_minute'
                           THEN CAST(d.billable_seconds AS HUGEINT) * (d.tier_price_cents + coalesce(d.sensor_bonus_cents, 0))
                           ELSE CAST(d.billable_seconds AS HUGEINT) END AS w,
                      CASE WHEN r.pricing_model = 'per_minute'
                           THEN CAST(d.billable_seconds AS HUGEINT) * coalesce(d.sensor_bonus_cents, 0)
                           ELSE 0 END AS bonus_w
               FROM deal_deliveries AS d
               JOIN batch_revenue AS r USING (deal_id, batch_id)
               WHERE r.revenue_month = ?
           )
           SELECT deal_id, batch_id, camera_model, has_gps, has_imu, count(*), CAST(sum(billable_seconds) AS BIGINT),
                  CAST(sum(w) AS VARCHAR), CAST(sum(bonus_w) AS VARCHAR)
           FROM d GROUP BY ALL ORDER BY ALL""",
        [month],
    )
    gross = {
        (d, b): int(g)
        for d, b, g in _rows(
            con, "SELECT deal_id, batch_id, gross_cents FROM batch_revenue WHERE revenue_month = ?", [month]
        )
    }
    batch_weight: dict[tuple, int] = {}
    for deal, batch, *_, w, _bw in rows:
        batch_weight[(deal, batch)] = batch_weight.get((deal, batch), 0) + int(w)
    cells: dict[tuple, dict] = {}
    for deal, batch, camera, gps, imu, clips, seconds, w, bonus_w in rows:
        total = batch_weight[(deal, batch)]
        key = (camera or NO_CAMERA, _sensor_group(gps, imu))
        cell = cells.setdefault(key, {"clips": 0, "seconds": 0, "share": Fraction(0), "bonus": Fraction(0)})
        cell["clips"] += int(clips)
        cell["seconds"] += int(seconds)
        if total:
            cell["share"] += Fraction(gross[(deal, batch)] * int(w), total)
            cell["bonus"] += Fraction(gross[(deal, batch)] * int(bonus_w), total)
    attributed = sum(g for k, g in gross.items() if batch_weight.get(k))
    split = largest_remainder(attributed, {key: cell["share"] for key, cell in cells.items()})
    out = [
        {
            "camera_model": c,
            "sensors": s,
            "clips": cell["clips"],
            "billable_seconds": cell["seconds"],
            "gross_cents": split[(c, s)].cents,
            "bonus_cents": round_half_up(cell["bonus"]),
        }
        for (c, s), cell in sorted(cells.items())
    ]
    return out, sum(gross.values()) - attributed


@report_section("Revenue by camera model and by GPS/IMU availability", requires=("deal_deliveries", "batch_revenue"))
def camera_and_sensor_section(con, month):
    import plotly.graph_objects as go

    cells, unattributed = attributed_gross(con, month)
    if not cells:
        return "<p>No deliveries in this month's batches.</p>"
    note = (
        '<p class="muted">Batches of this month (R10). Each batch\'s gross is shared among its deliveries by '
        "their R9 weights (value under per_minute, the sensor bonus included; seconds under flat_fee), then "
        "rounded to cents by largest remainder, so the rows add up to the month's gross"
        + (f" less {usd(unattributed)} of flat-fee breaks (no billable seconds to share it by)" if unattributed else "")
        + ". The sensor bonus (R7) is paid on clips with both GPS and IMU; camera model and sensors are as "
        "recorded at delivery.</p>"
    )

    def table(label: str, key: str, order: list[str]) -> str:
        rows = []
        for name in order:
            mine = [c for c in cells if c[key] == name]
            rows.append(
                [
                    name,
                    f"{sum(c['clips'] for c in mine):,}",
                    f"{sum(c['billable_seconds'] for c in mine):,}",
                    usd(sum(c["gross_cents"] for c in mine)),
                    usd(sum(c["bonus_cents"] for c in mine)),
                ]
            )
        return html_table(
            [label, "clips", "billable seconds", "gross (attributed)", "of which sensor bonus"],
            rows,
            numeric={1, 2, 3, 4},
        )

    gross_of = lambda key, name: sum(c["gross_cents"] for c in cells if c[key] == name)  # noqa: E731
    cameras = sorted({c["camera_model"] for c in cells}, key=lambda m: (-gross_of("camera_model", m), m))
    sensors = [label for _, label in SENSOR_GROUPS if any(c["sensors"] == label for c in cells)]
    fig = report_figure(
        barmode="stack",
        xaxis={
            "type": "category",
            "categoryorder": "array",
            "categoryarray": cameras,
            "title": {"text": "camera model (at delivery)"},
        },
    )
    for label in sensors:
        vals = [
            sum(c["gross_cents"] for c in cells if c["camera_model"] == m and c["sensors"] == label) for m in cameras
        ]
        fig.add_trace(
            go.Bar(
                name=label,
                x=cameras,
                y=vals,
                customdata=[usd(v) for v in vals],
                hovertemplate=f"{label} %{{x}}: %{{customdata}}<extra></extra>",
            )
        )
    _money_axis(fig, max(gross_of("camera_model", m) for m in cameras), title="gross revenue (attributed)")
    return [fig, note, table("camera model", "camera_model", cameras), table("GPS / IMU", "sensors", sensors)]


SECTIONS.append(Section("Library valuation (estimates)", valuation_report_section, requires=("library_valuation",)))


# -- page ------------------------------------------------------------------------
_CSS = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 2rem auto; max-width: 1100px;
       color: #1f2933; padding: 0 1rem; }
h1 { font-size: 1.6rem; } h2 { font-size: 1.2rem; border-bottom: 1px solid #d9e2ec; padding-bottom: .3rem; margin-top: 2.2rem; }
table { border-collapse: collapse; margin: .5rem 0; } th, td { padding: .25rem .8rem; border-bottom: 1px solid #e4e7eb; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; } .muted { color: #7b8794; font-size: .9rem; }
.note { background: #fff8e1; border-left: 4px solid #f0b429; padding: .6rem .9rem; }
"""


def _render(content, section_no: int) -> str:
    parts = content if isinstance(content, list) else [content]
    out = []
    for j, part in enumerate(parts):
        if isinstance(part, str):
            out.append(part)
        else:  # a plotly figure: fixed div id, no library (embedded once in <head>)
            out.append(
                part.to_html(
                    full_html=False,
                    include_plotlyjs=False,
                    div_id=f"section-{section_no}-chart-{j + 1}",
                    default_height="440px",
                    config={"displaylogo": False, "responsive": True},
                )
            )
    return "\n".join(out)


def _statements_in(con: duckdb.DuckDBPyConnection, month: str) -> int | None:
    """Statement rows of ``month`` (None when the table is not in the lake)."""
    if not has_table(con, "revenue_share_statements"):
        return None
    [(count,)] = con.execute(
        "SELECT count(*) FROM revenue_share_statements WHERE statement_month = ?", [month]
    ).fetchall()
    return count


def build_report(
    con: duckdb.DuckDBPyConnection, month: str, checks: list[str] | tuple = (), sections: list[Section] | None = None
) -> bytes:
    """The report page for statement month ``month`` as UTF-8 bytes."""
    from plotly.offline import get_plotlyjs

    check_month(month)
    body, skipped = [], []
    for section in SECTIONS if sections is None else sections:
        missing = [t for t in section.requires if not has_table(con, t)]
        if missing:
            skipped.append(f"{section.title} (needs {', '.join(missing)})")
            continue
        content = section.build(con, month)
        if content is None:
            continue
        n = len(body) + 1
        body.append(f'<section id="s{n}"><h2>{html.escape(section.title)}</h2>\n{_render(content, n)}\n</section>')
    checks_html = (
        f'<details class="muted"><summary>Exported after {len(checks)} blocking check(s) passed on the lake'
        f"</summary><p>{html.escape(', '.join(sorted(checks)))}</p></details>"
        if checks
        else '<p class="muted">Built without the blocking-check gate.</p>'
    )
    empty_html = (
        f'<p class="note" id="no-statements"><strong>No statements for {html.escape(month)}.</strong> Nobody earned '
        "revenue or carried a balance into this month, so the payout file and the workbook's statements are empty "
        "on purpose.</p>"
        if _statements_in(con, month) == 0
        else ""
    )
    skipped_html = (
        f'<p class="muted">Sections skipped (tables not in the lake): {html.escape("; ".join(skipped))}.</p>'
        if skipped
        else ""
    )
    page = f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Footage licensing finance report {html.escape(month)}</title>
<style>{_CSS}</style>
<script type="text/javascript">{get_plotlyjs()}</script>
</head>
<body>
<h1>Footage licensing: finance report for {html.escape(month)}</h1>
<p class="muted">Statement month {html.escape(month)}. Amounts are computed in integer US cents (contract R7–R13).</p>
{checks_html}
{empty_html}
{chr(10).join(body)}
{skipped_html}
</body>
</html>
"""
    return page.encode("utf-8")
