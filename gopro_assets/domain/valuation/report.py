"""The finance report's valuation section (registered in :mod:`gopro_assets.domain.finance.report`).

Two plotly charts from ``library_valuation`` - the library's estimated value by consent
state and tier, and the opt-in upside by activity and tier - and a summary table. The
figures are model estimates (docs/VALUATION.md), shown in whole cents like the rest of
the page so the page stays byte-for-byte reproducible; they are never money owed.
No scikit-learn here: building the report does not load the model.
"""

from __future__ import annotations

from gopro_assets.domain.reporting import dollar_ticks, html_table, report_figure, usd

STATES = [
    ("licensable_now", "licensable now"),
    ("opted_in_in_review_or_excluded", "opted in: in review or excluded"),
    ("not_opted_in", "eligible, not opted in (upside)"),
    ("ineligible", "ineligible"),
    ("duplicate", "duplicate (R4)"),
]
TIERS = ["aerial", "uhd", "hd", "sd"]


def _cells(con) -> list[dict]:
    rel = con.execute("""
        SELECT tier, activity, consent_state, CAST(clips AS BIGINT) AS clips,
               CAST(billable_seconds AS BIGINT) AS billable_seconds,
               predicted_value_cents AS value, opt_in_upside_cents AS upside,
               CAST(gps_imu_clips AS BIGINT) AS gps_imu_clips, gps_imu_value_cents AS gps_imu_value,
               opt_in_upside_gps_imu_cents AS gps_imu_upside,
               CAST(snapshot_date AS VARCHAR) AS snapshot_date, model_version
        FROM library_valuation ORDER BY tier, activity, consent_state""")
    names = [d[0] for d in rel.description]
    return [dict(zip(names, r)) for r in rel.fetchall()]


def _cents(values) -> int:
    """Whole cents of a sum of estimates, rounded once (the page shows int cents)."""
    return int(round(sum(values)))


def _hours(seconds: int) -> str:
    return f"{seconds // 3600:,}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


def valuation_report_section(con, month: str | None = None):
    """Report section: [value by consent state chart, opt-in upside chart, summary table].
    ``month`` is unused: the valuation is as of the latest consent snapshot of the lake."""
    import plotly.graph_objects as go

    cells = _cells(con)
    if not cells:
        return "<p>No clip valuations yet: no delivery has a realised price to learn from.</p>"
    snapshot = cells[0]["snapshot_date"]
    versions = sorted({c["model_version"] for c in cells if c["model_version"]})
    tiers = [t for t in TIERS if any(c["tier"] == t for c in cells)]
    states = [(k, label) for k, label in STATES if any(c["consent_state"] == k for c in cells)]

    by_state = report_figure(
        barmode="stack", xaxis={"type": "category", "title": {"text": f"consent state on {snapshot}"}}
    )
    for tier in tiers:
        vals = [_cents(c["value"] for c in cells if c["tier"] == tier and c["consent_state"] == k) for k, _ in states]
        by_state.add_trace(
            go.Bar(
                name=tier,
                x=[label for _, label in states],
                y=vals,
                customdata=[usd(v) for v in vals],
                hovertemplate=f"{tier} %{{x}}: %{{customdata}}<extra></extra>",
            )
        )
    totals = [_cents(c["value"] for c in cells if c["consent_state"] == k) for k, _ in states]
    ticks, text = dollar_ticks(max(totals))
    by_state.update_layout(
        yaxis={
            "tickmode": "array",
            "tickvals": ticks,
            "ticktext": text,
            "title": {"text": "estimated value, one sale of each clip"},
        }
    )

    upside_cells = [c for c in cells if c["consent_state"] == "not_opted_in"]
    activities = sorted({c["activity"] for c in upside_cells})
    upside = report_figure(barmode="stack", xaxis={"type": "category", "title": {"text": "activity"}})
    for tier in tiers:
        vals = [
            _cents(c["upside"] for c in upside_cells if c["tier"] == tier and c["activity"] == a) for a in activities
        ]
        if any(vals):
            upside.add_trace(
                go.Bar(
                    name=tier,
                    x=activities,
                    y=vals,
                    customdata=[usd(v) for v in vals],
                    hovertemplate=f"{tier} %{{x}}: %{{customdata}}<extra></extra>",
                )
            )
    up_totals = [_cents(c["upside"] for c in upside_cells if c["activity"] == a) for a in activities]
    ticks, text = dollar_ticks(max(up_totals, default=0))
    upside.update_layout(
        yaxis={"tickmode": "array", "tickvals": ticks, "ticktext": text, "title": {"text": "opt-in upside (estimate)"}}
    )

    rows = []
    for (k, label), total in zip(states, totals):
        clips = sum(c["clips"] for c in cells if c["consent_state"] == k)
        seconds = sum(c["billable_seconds"] or 0 for c in cells if c["consent_state"] == k)
        rows.append([label, f"{clips:,}", _hours(seconds), usd(total)])
    rows.append(
        [
            "whole library",
            f"{sum(c['clips'] for c in cells):,}",
            _hours(sum(c["billable_seconds"] or 0 for c in cells)),
            usd(_cents(c["value"] for c in cells)),
        ]
    )
    note = (
        f'<p class="muted">Model estimates (clip_value_model {", ".join(versions) or "none"}), consent as of '
        f"{snapshot}: what one sale of each clip would realise at the predicted price per minute. Not money "
        f"owed, not revenue. The opt-in upside is the estimated value of footage whose owners are US, invited, "
        f"subscribed and not cancelled but have not opted in: {usd(_cents(c['upside'] for c in upside_cells))}. "
        f"See docs/VALUATION.md.</p>"
    )
    table = html_table(["consent state", "clips", "hours (h:mm:ss)", "estimated value"], rows, numeric={1, 2, 3})
    charts = [by_state] + ([upside] if upside_cells else [])
    return [note, *charts, table, _telemetry_table(cells, states)]


def _telemetry_table(cells: list[dict], states: list[tuple[str, str]]):
    """What telemetry adds: per consent state, the clips and value with GPS and IMU (R2b,
    they earn R7's sensor bonus) against those without; the not_opted_in row is the
    opt-in upside split by telemetry."""
    rows = []
    for k, label in states:
        mine = [c for c in cells if c["consent_state"] == k]
        clips, gps = sum(c["clips"] for c in mine), sum(c["gps_imu_clips"] or 0 for c in mine)
        value, gps_value = _cents(c["value"] for c in mine), _cents(c["gps_imu_value"] or 0 for c in mine)
        per = lambda v, n: usd(int(round(v / n))) if n else "-"  # noqa: E731
        rows.append(
            [
                label,
                f"{gps:,}",
                usd(gps_value),
                per(gps_value, gps),
                f"{clips - gps:,}",
                usd(value - gps_value),
                per(value - gps_value, clips - gps),
            ]
        )
    upside_gps = _cents(c["gps_imu_upside"] or 0 for c in cells)
    note = (
        '<p class="muted">What telemetry adds (estimates): clips whose telemetry has GPS and IMU earn the '
        f"sensor bonus and the model values them accordingly. Of the opt-in upside, {usd(upside_gps)} is footage "
        "with GPS and IMU.</p>"
    )
    headers = [
        "consent state",
        "clips with GPS+IMU",
        "their value",
        "per clip",
        "clips without",
        "their value",
        "per clip",
    ]
    return note + html_table(headers, rows, numeric={1, 2, 3, 4, 5, 6})
