"""The code location: every domain's assets, checks, schedules and sensors in one Definitions."""

import dagster as dg

from gopro_assets import automation, maintenance
from gopro_assets.finance import assets as finance_assets
from gopro_assets.footage import assets as footage_assets
from gopro_assets.footage import checks as footage_checks
from gopro_assets.ingestion import assets as ingestion_assets
from gopro_assets.ingestion import checks as ingestion_checks
from gopro_assets.licensing import assets as licensing_assets
from gopro_assets.licensing import checks as licensing_checks
from gopro_assets.resources import lakehouse_from_env
from gopro_assets.s3 import s3_resource_from_env
from gopro_assets.sql_models.component import build_sql_assets
from gopro_assets.valuation import assets as valuation_assets
from gopro_assets.valuation import checks as valuation_checks

ASSET_MODULES = [ingestion_assets, footage_assets, licensing_assets, finance_assets, valuation_assets]
CHECK_MODULES = [ingestion_checks, footage_checks, licensing_checks, valuation_checks]


def build_definitions() -> dg.Definitions:
    return dg.Definitions(
        # Python assets link to their source file in the UI; the SQL assets link to their .sql file.
        assets=[*dg.with_source_code_references(dg.load_assets_from_modules(ASSET_MODULES)), *build_sql_assets()],
        asset_checks=dg.load_asset_checks_from_modules(CHECK_MODULES),
        resources={"lakehouse": lakehouse_from_env(), "s3": s3_resource_from_env()},
        jobs=[*automation.JOBS, *maintenance.JOBS],
        schedules=[*automation.SCHEDULES, *maintenance.SCHEDULES],
        sensors=automation.SENSORS,
    )


defs = build_definitions()
