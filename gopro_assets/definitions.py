"""The code location: everything under ``gopro_assets/defs/`` (one folder per domain),
found by ``dg.load_from_defs_folder``; nothing is listed by hand here."""

from pathlib import Path

import dagster as dg


def build_definitions() -> dg.Definitions:
    """The defs folder's definitions, with resources read from the environment now."""
    return dg.load_from_defs_folder(path_within_project=Path(__file__).parent)


defs = build_definitions()


def resolved_daily_partitions_job() -> dg.JobDefinition:
    """``daily_partitions_job`` bound to the code location's resources, as a reconstructable
    entry point: ``dg.build_reconstructable_job("gopro_assets.definitions", ...)``."""
    return defs.resolve_job_def("daily_partitions_job")
