"""Shared resources: where the landing zone, lake and exports live, and the money settings.

Configured from the contract's environment variables with ``dg.EnvVar`` so the values
(and any S3 credentials picked up by the storage layer) never appear in run config.
"""

import os
from fractions import Fraction

import dagster as dg

from gopro_assets import settings
from gopro_assets.lake.delta_store import DeltaStore
from gopro_assets.lake.storage import FileRoot, is_s3


def _abs(root: str) -> str:
    return root if is_s3(root) else os.path.abspath(root)


class LakehouseResource(dg.ConfigurableResource):
    """Landing zone (files), lake (Delta tables), exports (files) and money settings.

    Local folders and ``s3://bucket/prefix`` roots are both accepted; nothing else in the
    code base knows which one is in use.
    """

    landing: str = settings.DEFAULTS["GOPRO_LANDING"]
    lake: str = settings.DEFAULTS["GOPRO_LAKE"]
    exports: str = settings.DEFAULTS["GOPRO_EXPORTS"]
    share_rate: str = settings.DEFAULTS["GOPRO_SHARE_RATE"]
    min_payout_cents: str = settings.DEFAULTS["GOPRO_MIN_PAYOUT_CENTS"]
    review_days: str = settings.DEFAULTS["GOPRO_REVIEW_DAYS"]

    def store(self) -> DeltaStore:
        return DeltaStore(_abs(self.lake))

    def landing_root(self) -> FileRoot:
        return FileRoot(_abs(self.landing))

    def exports_root(self) -> FileRoot:
        return FileRoot(_abs(self.exports))

    @property
    def landing_uri(self) -> str:
        return _abs(self.landing)

    @property
    def share_rate_fraction(self) -> Fraction:
        return settings.parse_share_rate(self.share_rate)

    @property
    def min_payout(self) -> int:
        return settings.parse_non_negative_int("GOPRO_MIN_PAYOUT_CENTS", self.min_payout_cents)

    @property
    def review_window_days(self) -> int:
        return settings.parse_non_negative_int("GOPRO_REVIEW_DAYS", self.review_days)


def _env_or_default(name: str):
    # dg.EnvVar keeps the value out of the run config shown in the UI; the contract's
    # default applies only when the variable is not set at all.
    return dg.EnvVar(name) if os.environ.get(name) else settings.DEFAULTS[name]


def lakehouse_from_env() -> LakehouseResource:
    return LakehouseResource(
        landing=_env_or_default("GOPRO_LANDING"),
        lake=_env_or_default("GOPRO_LAKE"),
        exports=_env_or_default("GOPRO_EXPORTS"),
        share_rate=_env_or_default("GOPRO_SHARE_RATE"),
        min_payout_cents=_env_or_default("GOPRO_MIN_PAYOUT_CENTS"),
        review_days=_env_or_default("GOPRO_REVIEW_DAYS"),
    )
