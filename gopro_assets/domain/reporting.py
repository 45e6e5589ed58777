"""Money and table formatting shared by every report (finance exports, the HTML report,
the valuation section): integer cents in, text out, no floats."""

from __future__ import annotations

import html


def dollars(cents: int, grouping: bool = False) -> str:
    """Integer cents -> a dollars string with two decimals, by integer arithmetic:
    1234 -> '12.34', -5 -> '-0.05'; ``grouping`` adds thousands separators."""
    if not isinstance(cents, int) or isinstance(cents, bool):
        raise TypeError(f"cents must be an int, got {type(cents).__name__}")
    whole, frac = divmod(abs(cents), 100)
    sign = "-" if cents < 0 else ""
    return f"{sign}{whole:,}.{frac:02d}" if grouping else f"{sign}{whole}.{frac:02d}"


def usd(cents: int) -> str:
    """'$1,234.56', '-$8.00' (from int cents, integer arithmetic)."""
    text = dollars(int(cents), grouping=True)
    return f"-${text[1:]}" if text.startswith("-") else f"${text}"


def dollar_ticks(max_cents: int, target: int = 5) -> tuple[list[int], list[str]]:
    """Axis ticks in cents at a 1/2/5 x 10^k step (integers only) with dollar labels."""
    max_cents = max(0, int(max_cents))
    if max_cents == 0:
        return [0], ["$0"]
    raw = max(1, -(-max_cents // target))
    mag = 10 ** (len(str(raw)) - 1)
    step = next(m * mag for m in (1, 2, 5, 10) if m * mag >= raw)
    ticks = list(range(0, max_cents + step, step))
    whole = step % 100 == 0
    return ticks, [("$" + f"{t // 100:,}") if whole else usd(t) for t in ticks]


def html_table(columns: list[str], rows: list[list], numeric: set[int] = frozenset()) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join(
        "<tr>"
        + "".join(
            f'<td class="num">{html.escape(str(v))}</td>'
            if i in numeric
            else f"<td>{html.escape('' if v is None else str(v))}</td>"
            for i, v in enumerate(r)
        )
        + "</tr>"
        for r in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def report_figure(**layout):
    """A plotly figure in the reports' common layout (size, margins, template, legend)."""
    import plotly.graph_objects as go

    fig = go.Figure()
    fig.update_layout(
        height=420,
        margin={"l": 70, "r": 20, "t": 30, "b": 50},
        template="plotly_white",
        legend={"orientation": "h", "y": -0.15},
        **layout,
    )
    return fig
