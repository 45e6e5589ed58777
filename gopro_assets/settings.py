"""Contract §1 settings: env var names, defaults and their parsing, in one place."""

from __future__ import annotations

import os
from datetime import UTC, date, datetime, timedelta
from fractions import Fraction

DEFAULTS = {
    "GOPRO_LANDING": "./data/landing",
    "GOPRO_LAKE": "./data/lake",
    "GOPRO_EXPORTS": "./data/exports",
    "GOPRO_SHARE_RATE": "0.5",
    "GOPRO_MIN_PAYOUT_CENTS": "1000",
    "GOPRO_REVIEW_DAYS": "7",
    "GOPRO_START_DATE": "2025-01-01",
}


def env(name: str) -> str:
    return os.environ.get(name) or DEFAULTS[name]


def parse_share_rate(text: str) -> Fraction:
    """An exact decimal in [0, 1]: '0.5' -> Fraction(1, 2). Floats never touch money."""
    rate = Fraction(text.strip())
    if not 0 <= rate <= 1:
        raise ValueError(f"GOPRO_SHARE_RATE={text!r} is outside [0, 1]")
    return rate


def parse_non_negative_int(name: str, text: str) -> int:
    value = int(str(text).strip())
    if value < 0:
        raise ValueError(f"{name}={text!r} must be an integer >= 0")
    return value


def start_date() -> date:
    return date.fromisoformat(env("GOPRO_START_DATE"))


def yesterday_utc() -> date:
    return datetime.now(UTC).date() - timedelta(days=1)


def end_of_day(day: date) -> datetime:
    """'As of the end of day D, UTC' (contract §6): the instant just after D's last microsecond."""
    return datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(days=1)
