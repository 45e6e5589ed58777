"""The money rules in exact arithmetic (contract R6–R9, R11).

The SQL models in ``dbt_like_sql/marts`` compute R7–R9 and R11 at scale with the same
formulas (HUGEINT products, integer division); these functions are the readable
reference used by the delivery selection (R6), by ``gopro-lake explain`` and by the
property tests that hold the SQL to them. Money is int cents or ``Fraction``, never float.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from fractions import Fraction


def revenue_month(cutoff_at: datetime) -> str:
    """R10: the UTC calendar month of the batch's cutoff (an aware cutoff in another offset is
    converted to UTC first; a naive one is a lake timestamp, which is UTC)."""
    if cutoff_at.tzinfo is None:
        cutoff_at = cutoff_at.replace(tzinfo=UTC)
    return cutoff_at.astimezone(UTC).strftime("%Y-%m")


def round_half_up(value: Fraction | int) -> int:
    """Nearest integer, halves away from zero for the non-negative amounts used here (R7, R8)."""
    value = Fraction(value)
    if value < 0:
        raise ValueError("money amounts here are never negative")
    return (2 * value.numerator + value.denominator) // (2 * value.denominator)


def sensor_bonus(deal_bonus_cents: int | None, has_gps: bool | None, has_imu: bool | None) -> int:
    """R7 (v2): the bonus per minute a clip earns: the deal's ``sensor_bonus_cents`` when the
    clip has both GPS and IMU, else 0 (a deal without the key adds nothing)."""
    return (deal_bonus_cents or 0) if has_gps and has_imu else 0


def price_per_minute(tier_price_cents: int, sensor_bonus_cents: int | None = 0) -> int:
    """R7: ``price_cents`` of a per-minute delivery = the tier's price + the clip's sensor bonus."""
    return tier_price_cents + (sensor_bonus_cents or 0)


def delivery_value(billable_seconds: int, price_cents: int) -> Fraction:
    """R7: exact value of one per-minute delivery, in cents (``price_cents`` from
    :func:`price_per_minute`: the tier price plus any sensor bonus)."""
    return Fraction(billable_seconds * price_cents, 60)


def per_minute_gross(values: Sequence[Fraction]) -> int:
    """R7: gross_cents of a per_minute batch = round_half_up(sum of exact values)."""
    return round_half_up(sum(values, Fraction(0)))


def split_pool(gross_cents: int, share_rate: Fraction) -> tuple[int, int]:
    """R8: (pool_cents, platform_cents)."""
    pool = round_half_up(gross_cents * Fraction(share_rate))
    return pool, gross_cents - pool


@dataclass(frozen=True)
class Allocation:
    floor_cents: int
    remainder: Fraction  # fractional part of pool * w / W, in [0, 1)
    bonus_cents: int  # 0 or 1 from the largest-remainder step

    @property
    def cents(self) -> int:
        return self.floor_cents + self.bonus_cents


def largest_remainder(pool_cents: int, weights: Mapping[Hashable, Fraction | int]) -> dict[Hashable, Allocation]:
    """R9: split ``pool_cents`` by weight; floors first, then one cent each to the largest
    fractional remainders, ties to the smaller subscriber id. Sums to the pool exactly."""
    total = sum((Fraction(w) for w in weights.values()), Fraction(0))
    if pool_cents == 0 or total == 0:
        return {k: Allocation(0, Fraction(0), 0) for k in weights}
    exact = {k: pool_cents * Fraction(w) / total for k, w in weights.items()}
    floors = {k: v.numerator // v.denominator for k, v in exact.items()}
    leftover = pool_cents - sum(floors.values())
    order = sorted(weights, key=lambda k: (-(exact[k] - floors[k]), k))
    bonus = set(order[:leftover])
    return {k: Allocation(floors[k], exact[k] - floors[k], 1 if k in bonus else 0) for k in weights}


@dataclass(frozen=True)
class StatementLine:
    opening_balance_cents: int
    earned_cents: int
    total_cents: int
    payable_cents: int
    carried_forward_cents: int


def roll_forward(opening_balance_cents: int, earned_cents: int, min_payout_cents: int) -> StatementLine:
    """R11: pay the whole balance once it reaches the minimum, else carry it forward."""
    total = opening_balance_cents + earned_cents
    if total >= min_payout_cents:
        return StatementLine(opening_balance_cents, earned_cents, total, total, 0)
    return StatementLine(opening_balance_cents, earned_cents, total, 0, total)
