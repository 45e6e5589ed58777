"""The code location: every domain's assets, checks, schedules and sensors in one Definitions."""

from __future__ import annotations

import dagster as dg

from gopro_assets.footage import assets as footage_assets
from gopro_assets.footage import checks as footage_checks
from gopro_assets.ingestion import assets as ingestion_assets
from gopro_assets.ingestion import checks as ingestion_checks
from gopro_assets.licensing import assets as licensing_assets
from gopro_assets.licensing import checks as licensing_checks
from gopro_assets.resources import lakehouse_from_env
from gopro_assets.sql_models.component import build_sql_assets

ASSET_MODULES = [ingestion_assets, footage_assets, licensing_assets]
CHECK_MODULES = [ingestion_checks, footage_checks, licensing_checks]


def build_definitions() -> dg.Definitions:
    return dg.Definitions(
        assets=[*dg.load_assets_from_modules(ASSET_MODULES), *build_sql_assets()],
        asset_checks=dg.load_asset_checks_from_modules(CHECK_MODULES),
        resources={"lakehouse": lakehouse_from_env()},
    )


defs = build_definitions()
