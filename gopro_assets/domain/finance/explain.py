"""Explain one payout: a subscriber's monthly statement (R11) line by line, from the lake.

``gopro-lake explain --subscriber ID --month YYYY-MM [--as-of-version N]`` calls
:func:`explain` and prints :func:`render_text`. Pure logic, no Dagster import.

The statement row is read from ``revenue_share_statements`` at Delta version N (the
latest when N is not given). Each row records in ``input_versions`` the Delta versions of
the tables it was computed from, and the minimum payout it was judged against; the inputs
are read back at exactly those versions (Delta time travel), so a statement is explained
as it was computed even after later runs changed the lake. The explanation goes:

* the opening balance: the previous month's ``carried_forward_cents``, read from the
  statements table at the version recorded for it;
* each batch of the month with this subscriber's clips: billable seconds, tier and price
  (with the sensor bonus of a clip with GPS and IMU, R7),
  the subscriber's weight (R9), the exact share ``pool * weight / batch_weight`` before
  rounding, the floor, the cent added by the largest-remainder step (with the remainder's
  rank and the cents left over) and the difference from the exact share;
* earned, total, the threshold decision (R11), payable and carried forward.

Every figure is re-derived in exact arithmetic (``domain/finance/money.py``) and checked against the
stored rows: a line that does not add up raises :class:`ExplainMismatch`, never a wrong
explanation. Money is int cents or ``Fraction``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from fractions import Fraction

import pyarrow as pa
import pyarrow.compute as pc

from gopro_assets.domain.finance.money import (
    delivery_value,
    largest_remainder,
    per_minute_gross,
    price_per_minute,
    roll_forward,
    sensor_bonus,
)
from gopro_assets.lake.delta_store import DeltaStore

STATEMENTS = "revenue_share_statements"
ALLOCATIONS = "revenue_share_allocations"
DELIVERIES = "deal_deliveries"
DELIVERED_BATCHES = "delivered_batches"
BATCH_REVENUE = "batch_revenue"
INPUT_TABLES = (ALLOCATIONS, DELIVERIES, DELIVERED_BATCHES, BATCH_REVENUE)
CONSENT = "consent_snapshots"  # read at the version each batch was selected from
SUBSCRIBERS = "subscribers"


class ExplainError(Exception):
    """The statement cannot be explained (no such row, table or version)."""


class ExplainMismatch(ExplainError):
    """The stored figures do not add up: the explanation would not be the statement."""


# --------------------------------------------------------------------------- structure


@dataclass(frozen=True)
class ClipLine:
    clip_id: str
    tier: str
    billable_seconds: int
    price_cents_per_minute: int | None  # R7 price (tier + sensor bonus) for per_minute deals; None under flat_fee
    weight: int  # R9 weight: seconds x price (per_minute, 60 x the exact value) or seconds (flat_fee)
    value: Fraction | None  # R7 exact value in cents (per_minute); None under flat_fee
    sensor_bonus_cents: int | None = None  # v2, R7: the bonus inside the price (0: none); None under flat_fee
    deal_bonus_cents: int | None = None  # the deal's bonus frozen with the batch, for the line's wording
    has_gps: bool | None = None  # the clip's facts frozen with the delivery (R2b)
    has_imu: bool | None = None


@dataclass(frozen=True)
class BatchLine:
    deal_id: str
    batch_id: str
    pricing_model: str
    cutoff_at: datetime
    clips: tuple[ClipLine, ...]
    gross_cents: int
    pool_cents: int
    weight: int
    batch_weight: int
    contributors: int  # subscribers sharing the batch's pool
    exact_share: Fraction  # pool * weight / batch_weight, before rounding
    floor_cents: int
    remainder: Fraction  # exact_share - floor, in [0, 1)
    remainder_rank: int  # 1 = largest remainder of the batch (ties: smaller subscriber_id)
    leftover_cents: int  # pool - sum of the batch's floors: the cents the largest-remainder step hands out
    bonus_cents: int  # 0 or 1: the cent this subscriber got from that step
    allocated_cents: int
    break_reason: str | None = None
    consent: str | None = None  # the owner's consent state at the cutoff (R1/R1b), from consent_snapshots

    @property
    def rounding(self) -> Fraction:
        """Cents added (+) or removed (-) relative to the exact share by the rounding."""
        return self.allocated_cents - self.exact_share


@dataclass(frozen=True)
class Explanation:
    subscriber_id: str
    statement_month: str
    statements_version: int
    input_versions: dict[str, int | None]
    opening_balance_cents: int
    opening_from: tuple[str, int] | None  # (previous month, statements version) when carried in
    batches: tuple[BatchLine, ...]
    earned_cents: int
    total_cents: int
    min_payout_cents: int | None
    payable_cents: int
    carried_forward_cents: int
    clips_licensed: int
    billable_seconds: int
    notes: tuple[str, ...] = ()

    @property
    def decision(self) -> str:
        if self.min_payout_cents is None:
            return "paid" if self.payable_cents else "carried forward"
        return "paid" if self.total_cents >= self.min_payout_cents else "carried forward"

    def lines(self) -> list[ExplainLine]:
        return explanation_lines(self)


@dataclass(frozen=True)
class ExplainLine:
    """One printed line: what it is, its text, and the cents it contributes (if any)."""

    kind: str  # header | opening | batch | consent | clip | pool | share | rounding | allocated | earned | total | decision | payable | carried_forward | activity | note
    text: str
    cents: int | None = None
    exact: Fraction | None = None
    data: dict = field(default_factory=dict)


# --------------------------------------------------------------------------- reading


def _owner_consent(store: DeltaStore, batch: dict, subscriber_id: str, problems: list[str]) -> str:
    """R1/R1b (R5): the owner's consent interval holding the batch's cutoff, from
    consent_snapshots at the version the batch was selected from (its input_versions).
    A state that was not eligible for the batch's buyer is a problem: R5 would not have
    delivered the clip."""
    version = json.loads(batch.get("input_versions") or "{}").get(CONSENT)
    if version is None:
        return f"consent: the batch records no {CONSENT} version (selected before the consent intervals)"
    t = batch["cutoff_at"]
    try:
        # (deltalake may hand the column over as string_view: compare it as a string)
        rows = _read(store, CONSENT, version, pc.field("subscriber_id").cast(pa.string()) == subscriber_id)
    except Exception as err:  # noqa: BLE001 - a version VACUUM removed: say so, the money still adds up
        return f"consent: {CONSENT} version {version} cannot be read: {err}"
    held = [r for r in rows if r["valid_from"] <= t and (r["valid_to"] is None or r["valid_to"] > t)]
    name = f"{batch['deal_id']}/{batch['batch_id']}"
    if not held or not held[0]["is_eligible"] or batch.get("buyer_id") in (held[0]["excluded_buyers"] or []):
        reason = (held[0]["ineligible_reason"] or "buyer excluded") if held else "no consent state"
        problems.append(f"batch {name}: owner not eligible at the cutoff in {CONSENT} version {version}: {reason} (R5)")
        return f"consent: NOT eligible at the cutoff ({reason})"
    row = held[0]
    excluded = ", ".join(row["excluded_buyers"] or []) or "none"
    event = f"event {row['consent_event_id']}" if row["consent_event_id"] else "no consent event"
    return (
        f"consent: eligible at the cutoff (R1, R1b): state since {row['valid_from']:%Y-%m-%d %H:%M:%S} UTC ({event}), "
        f"enrolled {row['enrolled_at']:%Y-%m-%d %H:%M:%S} UTC, excluded buyers: {excluded} ({CONSENT} version {version})"
    )


def _previous_month(month: str) -> str:
    first = date.fromisoformat(f"{month}-01")
    return (first - timedelta(days=1)).strftime("%Y-%m")


def _read(store: DeltaStore, table: str, version: int | None, flt) -> list[dict]:
    try:
        dt = store.table(table, version)
        rows = None if dt is None else dt.to_pyarrow_dataset().to_table(filter=flt).to_pylist()
    except Exception as exc:  # noqa: BLE001 - e.g. a version whose files VACUUM removed, or that never existed
        raise ExplainError(
            f"cannot read {table} at Delta version {version} (time travel needs the version's files;"
            f" VACUUM removes them after its retention): {' '.join(str(exc).split())[:300]}"
        ) from None
    if rows is None:
        raise ExplainError(f"table {table} does not exist in the lake")
    return rows


def _int(text) -> int:
    return int(str(text))


def _fraction(text: str) -> Fraction:
    num, _, den = str(text).partition("/")
    return Fraction(int(num), int(den)) if int(den) else Fraction(0)


def _no_statement(store: DeltaStore, subscriber_id: str, month: str, version: int) -> str:
    """Why there is no statement row: an unknown subscriber, or a known one without a
    statement that month (naming the months that have one)."""
    months = sorted(
        {r["statement_month"] for r in _read(store, STATEMENTS, version, pc.field("subscriber_id") == subscriber_id)}
    )
    at = f" at {STATEMENTS} version {version}"
    if months:
        shown = ", ".join(months) if len(months) <= 12 else f"{', '.join(months[:6])}, ..., {', '.join(months[-3:])}"
        return f"subscriber {subscriber_id!r} has no statement for {month}{at}; it has statements for {shown}"
    if store.exists(SUBSCRIBERS):
        ids = set(store.read(SUBSCRIBERS, columns=["subscriber_id"]).column(0).to_pylist()) - {None}
        if subscriber_id not in ids:
            example = f" (ids look like {min(ids)!r})" if ids else ""
            return f"unknown subscriber {subscriber_id!r}: no such subscriber_id in the lake's {SUBSCRIBERS} table{example}"
    return (
        f"subscriber {subscriber_id!r} has no statement in any month{at}: it never earned revenue or carried a balance"
    )


def explain(store: DeltaStore, subscriber_id: str, month: str, as_of_version: int | None = None) -> Explanation:
    """The statement of ``subscriber_id`` for ``month`` (YYYY-MM), explained from the
    lake as of ``revenue_share_statements`` version ``as_of_version`` (latest when None)."""
    try:
        date.fromisoformat(f"{month}-01")
    except ValueError:
        raise ExplainError(f"month {month!r} is not YYYY-MM") from None
    latest = store.version(STATEMENTS)
    if latest is None:
        raise ExplainError(f"table {STATEMENTS} does not exist in the lake: materialize first")
    version = latest if as_of_version is None else as_of_version
    if not 0 <= version <= latest:
        raise ExplainError(
            f"{STATEMENTS} has versions 0..{latest}, not {version}: give --as-of-version between 0 and {latest}, "
            "or leave it out for the latest"
        )
    rows = _read(
        store,
        STATEMENTS,
        version,
        (pc.field("statement_month") == month) & (pc.field("subscriber_id") == subscriber_id),
    )
    if not rows:
        raise ExplainError(_no_statement(store, subscriber_id, month, version))
    if len(rows) > 1:
        raise ExplainMismatch(f"{len(rows)} statement rows for {subscriber_id!r} in {month} at version {version}")
    st = rows[0]
    problems: list[str] = []
    notes: list[str] = []

    recorded = st.get("input_versions")
    if recorded:
        versions = json.loads(recorded)
    else:  # a row written before input versions were recorded: explain from the current inputs
        versions = {t: store.version(t) for t in INPUT_TABLES}
        versions[STATEMENTS] = version
        notes.append("this statement row records no input versions; the inputs are read at their current versions")
    for t in INPUT_TABLES:
        if t not in versions:
            raise ExplainError(f"the statement row records no version for {t}")

    # -- opening balance (R11): the previous month's carried-forward amount
    previous = _previous_month(month)
    opening = int(st["opening_balance_cents"])
    opening_from = None
    prev_version = versions.get(STATEMENTS)
    prev_rows = []
    if prev_version is not None:
        prev_rows = _read(
            store,
            STATEMENTS,
            prev_version,
            (pc.field("statement_month") == previous) & (pc.field("subscriber_id") == subscriber_id),
        )
    carried_in = int(prev_rows[0]["carried_forward_cents"]) if prev_rows else 0
    if carried_in != opening:
        problems.append(
            f"opening balance {opening} != {previous} carried forward {carried_in}"
            f" ({STATEMENTS} version {prev_version})"
        )
    if prev_rows:
        opening_from = (previous, prev_version)

    # -- this month's batches, at the recorded versions
    month_flt = pc.field("revenue_month") == month
    allocations = _read(store, ALLOCATIONS, versions[ALLOCATIONS], month_flt)
    mine = sorted(
        (a for a in allocations if a["subscriber_id"] == subscriber_id), key=lambda a: (a["deal_id"], a["batch_id"])
    )
    delivered = {
        (b["deal_id"], b["batch_id"]): b
        for b in _read(store, DELIVERED_BATCHES, versions[DELIVERED_BATCHES], month_flt)
    }
    revenue = {
        (r["deal_id"], r["batch_id"]): r for r in _read(store, BATCH_REVENUE, versions[BATCH_REVENUE], month_flt)
    }
    deliveries = [
        d
        for d in _read(store, DELIVERIES, versions[DELIVERIES], month_flt)
        if (d["deal_id"], d["batch_id"]) in delivered
    ]

    batches: list[BatchLine] = []
    for a in mine:
        key = (a["deal_id"], a["batch_id"])
        name = f"{key[0]}/{key[1]}"
        if key not in delivered or key not in revenue:
            problems.append(f"batch {name}: missing from {DELIVERED_BATCHES} or {BATCH_REVENUE}")
            continue
        batch, rev = delivered[key], revenue[key]
        model = batch["pricing_model"]
        in_batch = [d for d in deliveries if (d["deal_id"], d["batch_id"]) == key]
        clips = []
        deal_bonus = batch.get("sensor_bonus_cents")  # v2 term frozen with the batch (None before v2)

        def price(d: dict) -> int:
            """R7: the delivery's price per minute, tier price + its frozen sensor bonus."""
            return price_per_minute(int(d["tier_price_cents"]), d.get("sensor_bonus_cents"))

        for d in sorted(
            (d for d in in_batch if d["subscriber_id"] == subscriber_id),
            key=lambda d: (d.get("selection_rank") or 0, d["clip_id"]),
        ):
            secs = int(d["billable_seconds"])
            bonus = d.get("sensor_bonus_cents") or 0
            if model == "per_minute" and bonus != sensor_bonus(deal_bonus, d.get("has_gps"), d.get("has_imu")):
                problems.append(
                    f"batch {name}: clip {d['clip_id']} sensor bonus {bonus} != "
                    f"{sensor_bonus(deal_bonus, d.get('has_gps'), d.get('has_imu'))} from the batch's bonus"
                    f" {deal_bonus} and its GPS/IMU (R7)"
                )
            clips.append(
                ClipLine(
                    d["clip_id"],
                    d["tier"],
                    secs,
                    price(d) if model == "per_minute" else None,
                    secs * price(d) if model == "per_minute" else secs,
                    delivery_value(secs, price(d)) if model == "per_minute" else None,
                    sensor_bonus_cents=bonus if model == "per_minute" else None,
                    deal_bonus_cents=deal_bonus if model == "per_minute" else None,
                    has_gps=d.get("has_gps"),
                    has_imu=d.get("has_imu"),
                )
            )
        weights: dict[str, int] = {}
        for d in in_batch:
            w = int(d["billable_seconds"]) * (price(d) if model == "per_minute" else 1)
            weights[d["subscriber_id"]] = weights.get(d["subscriber_id"], 0) + w
        pool, gross = int(rev["pool_cents"]), int(rev["gross_cents"])
        weight, batch_weight = sum(c.weight for c in clips), sum(weights.values())
        # R7: the batch's gross from its deliveries
        if model == "per_minute":
            expected_gross = per_minute_gross([delivery_value(int(d["billable_seconds"]), price(d)) for d in in_batch])
        else:
            expected_gross = int(batch["fee_cents"] or 0)
        if expected_gross != gross:
            problems.append(f"batch {name}: gross {gross} != {expected_gross} from its deliveries (R7)")
        if pool + int(rev["platform_cents"]) != gross:
            problems.append(f"batch {name}: pool + platform != gross (R8)")
        # R9: the split, re-derived from every contributor's weight
        split = largest_remainder(pool, weights)
        me = split.get(subscriber_id)
        exact = Fraction(pool * weight, batch_weight) if batch_weight and pool else Fraction(0)
        floor = exact.numerator // exact.denominator
        order = sorted(weights, key=lambda s: (-(split[s].remainder), s))
        leftover = pool - sum(x.floor_cents for x in split.values())
        if me is None or (me.floor_cents, me.bonus_cents, me.cents) != (
            floor,
            me.bonus_cents,
            int(a["allocated_cents"]),
        ):
            problems.append(
                f"batch {name}: allocated {a['allocated_cents']} != {me.cents if me else None} by largest remainder (R9)"
            )
        for label, stored, derived in [
            ("weight", _int(a["weight"]), weight),
            ("batch_weight", _int(a["batch_weight"]), batch_weight),
            ("floor_cents", int(a["floor_cents"]), floor),
            ("remainder_cents", int(a["remainder_cents"]), me.bonus_cents if me else None),
            ("remainder_fraction", _fraction(a["remainder_fraction"]), exact - floor),
        ]:
            if stored != derived:
                problems.append(f"batch {name}: stored {label} {stored} != {derived}")
        batches.append(
            BatchLine(
                deal_id=key[0],
                batch_id=key[1],
                pricing_model=model,
                cutoff_at=batch["cutoff_at"],
                clips=tuple(clips),
                gross_cents=gross,
                pool_cents=pool,
                weight=weight,
                batch_weight=batch_weight,
                contributors=len(weights),
                exact_share=exact,
                floor_cents=floor,
                remainder=exact - floor,
                remainder_rank=order.index(subscriber_id) + 1 if subscriber_id in order else 0,
                leftover_cents=leftover,
                bonus_cents=me.bonus_cents if me else 0,
                allocated_cents=int(a["allocated_cents"]),
                break_reason=rev.get("break_reason"),
                consent=_owner_consent(store, batch, subscriber_id, problems),
            )
        )
    batches.sort(key=lambda b: (b.cutoff_at, b.deal_id, b.batch_id))

    # -- the statement's own figures (R11)
    earned = sum(b.allocated_cents for b in batches)
    min_payout = st.get("min_payout_cents")
    figures = {
        k: int(st[k])
        for k in (
            "earned_cents",
            "total_cents",
            "payable_cents",
            "carried_forward_cents",
            "clips_licensed",
            "billable_seconds",
        )
    }
    if earned != figures["earned_cents"]:
        problems.append(f"earned {figures['earned_cents']} != {earned}, the sum of the batch lines")
    if opening + earned != figures["total_cents"]:
        problems.append(f"total {figures['total_cents']} != opening {opening} + earned {earned}")
    if min_payout is not None:
        line = roll_forward(opening, earned, int(min_payout))
        if (line.payable_cents, line.carried_forward_cents) != (
            figures["payable_cents"],
            figures["carried_forward_cents"],
        ):
            problems.append(
                f"payable/carried {figures['payable_cents']}/{figures['carried_forward_cents']} != "
                f"{line.payable_cents}/{line.carried_forward_cents} at minimum payout {min_payout} (R11)"
            )
    else:
        notes.append("this statement row does not record its minimum payout")
    if figures["payable_cents"] + figures["carried_forward_cents"] != figures["total_cents"]:
        problems.append("payable + carried forward != total")
    mine_deliveries = [d for d in deliveries if d["subscriber_id"] == subscriber_id]
    if (
        len(mine_deliveries) != figures["clips_licensed"]
        or sum(int(d["billable_seconds"]) for d in mine_deliveries) != figures["billable_seconds"]
    ):
        problems.append("clips_licensed / billable_seconds do not match the month's deliveries")
    if problems:
        raise ExplainMismatch(
            f"statement {subscriber_id} {month} (version {version}) does not add up: " + "; ".join(problems)
        )
    return Explanation(
        subscriber_id=subscriber_id,
        statement_month=month,
        statements_version=version,
        input_versions=versions,
        opening_balance_cents=opening,
        opening_from=opening_from,
        batches=tuple(batches),
        earned_cents=earned,
        total_cents=figures["total_cents"],
        min_payout_cents=None if min_payout is None else int(min_payout),
        payable_cents=figures["payable_cents"],
        carried_forward_cents=figures["carried_forward_cents"],
        clips_licensed=figures["clips_licensed"],
        billable_seconds=figures["billable_seconds"],
        notes=tuple(notes),
    )


# --------------------------------------------------------------------------- lines and text


def cents_text(value: Fraction | int) -> str:
    """Cents as a mixed number: 62, 62 1/2, -1/3."""
    value = Fraction(value)
    if value.denominator == 1:
        return str(value.numerator)
    sign = "-" if value < 0 else ""
    whole, rest = divmod(abs(value.numerator), value.denominator)
    frac = f"{rest}/{value.denominator}"
    return f"{sign}{whole} {frac}" if whole else f"{sign}{frac}"


def money_text(cents: int) -> str:
    sign = "-" if cents < 0 else ""
    return f"{sign}${abs(cents) // 100:,}.{abs(cents) % 100:02d}"


def signed(value: Fraction | int) -> str:
    return ("+" if value >= 0 else "") + cents_text(value)


def explanation_lines(e: Explanation) -> list[ExplainLine]:
    out = [
        ExplainLine("header", f"Statement {e.statement_month} for subscriber {e.subscriber_id}"),
        ExplainLine(
            "header",
            f"  from {STATEMENTS} Delta version {e.statements_version}; inputs at versions: "
            + ", ".join(f"{t} {v}" for t, v in sorted(e.input_versions.items())),
        ),
    ]
    for note in e.notes:
        out.append(ExplainLine("note", f"  note: {note}"))
    src = (
        f"carried forward from {e.opening_from[0]} ({STATEMENTS} version {e.opening_from[1]})"
        if e.opening_from
        else "no balance carried in"
    )
    out.append(
        ExplainLine(
            "opening",
            f"Opening balance: {e.opening_balance_cents} c ({money_text(e.opening_balance_cents)}), {src}",
            cents=e.opening_balance_cents,
        )
    )
    for b in e.batches:
        out.append(
            ExplainLine(
                "batch",
                f"Batch {b.deal_id}/{b.batch_id} ({b.pricing_model}, cutoff {b.cutoff_at:%Y-%m-%d %H:%M:%S} UTC)",
                data={"deal_id": b.deal_id, "batch_id": b.batch_id},
            )
        )
        if b.consent:
            out.append(ExplainLine("consent", f"  {b.consent}"))
        for c in b.clips:
            if c.price_cents_per_minute is not None:
                text = (
                    f"  clip {c.clip_id}: {c.tier}, {c.billable_seconds} s x {c.price_cents_per_minute} c/min"
                    f"{_bonus_text(c)} = {cents_text(c.value)} c"
                )
            else:
                text = f"  clip {c.clip_id}: {c.tier}, {c.billable_seconds} s (flat fee: weighted by seconds)"
            out.append(
                ExplainLine(
                    "clip", text, exact=c.value, data={"clip_id": c.clip_id, "sensor_bonus_cents": c.sensor_bonus_cents}
                )
            )
        unit = "s x c/min" if b.pricing_model == "per_minute" else "s"
        out.append(
            ExplainLine(
                "pool",
                f"  batch gross {b.gross_cents} c, contributors' pool {b.pool_cents} c, shared by "
                f"{b.contributors} contributor(s); weight {b.weight} of {b.batch_weight} ({unit})"
                + (f"; break: {b.break_reason}" if b.break_reason else ""),
                cents=b.pool_cents,
            )
        )
        out.append(
            ExplainLine(
                "share",
                f"  exact share: {b.pool_cents} x {b.weight} / {b.batch_weight} = {cents_text(b.exact_share)} c;"
                f" floor {b.floor_cents} c",
                exact=b.exact_share,
            )
        )
        step = (
            f"+{b.bonus_cents} c from the largest-remainder step: remainder {cents_text(b.remainder)} ranks "
            f"{b.remainder_rank} of {b.contributors}, {b.leftover_cents} cent(s) left over"
        )
        out.append(
            ExplainLine(
                "rounding",
                f"  {step}; {signed(b.rounding)} c against the exact share",
                cents=b.bonus_cents,
                exact=b.rounding,
            )
        )
        out.append(
            ExplainLine(
                "allocated",
                f"  allocated {b.allocated_cents} c ({money_text(b.allocated_cents)})",
                cents=b.allocated_cents,
            )
        )
    out.append(
        ExplainLine(
            "earned",
            f"Earned: {e.earned_cents} c ({money_text(e.earned_cents)}) from {len(e.batches)} batch(es)",
            cents=e.earned_cents,
        )
    )
    out.append(
        ExplainLine(
            "total",
            f"Total: {e.opening_balance_cents} + {e.earned_cents} = {e.total_cents} c ({money_text(e.total_cents)})",
            cents=e.total_cents,
        )
    )
    if e.min_payout_cents is None:
        out.append(ExplainLine("decision", f"Decision: {e.decision} (minimum payout not recorded)"))
    else:
        cmp = ">=" if e.total_cents >= e.min_payout_cents else "<"
        out.append(
            ExplainLine(
                "decision",
                f"Decision: total {e.total_cents} c {cmp} minimum payout {e.min_payout_cents} c -> {e.decision}",
                data={"min_payout_cents": e.min_payout_cents},
            )
        )
    out.append(
        ExplainLine("payable", f"Payable: {e.payable_cents} c ({money_text(e.payable_cents)})", cents=e.payable_cents)
    )
    out.append(
        ExplainLine(
            "carried_forward",
            f"Carried forward: {e.carried_forward_cents} c ({money_text(e.carried_forward_cents)})",
            cents=e.carried_forward_cents,
        )
    )
    out.append(ExplainLine("activity", f"Clips licensed: {e.clips_licensed}, billable seconds: {e.billable_seconds}"))
    check_lines(out)
    return out


def _bonus_text(c: ClipLine) -> str:
    """The sensor bonus inside a per-minute clip line (R7, v2): what it adds, or why a deal
    with a bonus did not pay it for this clip; nothing when the deal has no bonus."""
    if c.sensor_bonus_cents:
        tier_price = c.price_cents_per_minute - c.sensor_bonus_cents
        return f" ({tier_price} tier price + {c.sensor_bonus_cents} sensor bonus: GPS and IMU)"
    if c.deal_bonus_cents:
        missing = " and ".join(k for k, v in (("GPS", c.has_gps), ("IMU", c.has_imu)) if not v)
        return f" (no sensor bonus: no {missing})"
    return ""


def check_lines(lines: list[ExplainLine]) -> None:
    """The printed lines add up: allocations to earned, opening + earned to total, total to
    payable + carried forward (raises ExplainMismatch otherwise)."""
    by = lambda kind: [x for x in lines if x.kind == kind]  # noqa: E731
    one = lambda kind: by(kind)[0].cents  # noqa: E731
    allocated = sum(x.cents for x in by("allocated"))
    problems = []
    if allocated != one("earned"):
        problems.append(f"batch lines sum to {allocated}, earned says {one('earned')}")
    if one("opening") + one("earned") != one("total"):
        problems.append("opening + earned != total")
    if one("payable") + one("carried_forward") != one("total"):
        problems.append("payable + carried forward != total")
    shares = by("share")
    for share, rounding, alloc in zip(shares, by("rounding"), by("allocated")):
        if share.exact + rounding.exact != alloc.cents:
            problems.append(f"exact share {share.exact} + rounding {rounding.exact} != allocated {alloc.cents}")
    if problems:
        raise ExplainMismatch("the explanation does not add up: " + "; ".join(problems))


def render_text(e: Explanation) -> str:
    return "\n".join(line.text for line in e.lines()) + "\n"


__all__ = [
    "BatchLine",
    "ClipLine",
    "ExplainError",
    "ExplainLine",
    "ExplainMismatch",
    "Explanation",
    "cents_text",
    "check_lines",
    "explain",
    "explanation_lines",
    "render_text",
]
