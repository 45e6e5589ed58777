"""The resources every domain shares, configured from the environment (``dg.EnvVar``)."""

import dagster as dg

from gopro_assets.shared.resources import lakehouse_from_env
from gopro_assets.shared.s3 import s3_resource_from_env


@dg.definitions
def resources() -> dg.Definitions:
    return dg.Definitions(resources={"lakehouse": lakehouse_from_env(), "s3": s3_resource_from_env()})
