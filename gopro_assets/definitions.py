"""The code location: everything under ``gopro_assets/defs/`` (one folder per domain),
found by ``dg.load_from_defs_folder``; nothing is listed by hand here."""

import warnings
from pathlib import Path

import dagster as dg


def _python_code_references(defs: dg.Definitions) -> dict[dg.AssetKey, dg.CodeReferencesMetadataValue]:
    """Each Python asset's source file and line (the SQL models already link to their .sql)."""
    refs = {}
    for assets_def in defs.assets or []:
        if isinstance(assets_def, dg.AssetsDefinition):
            (with_refs,) = dg.with_source_code_references([assets_def])
            for spec in with_refs.specs:
                if "dagster/code_references" in spec.metadata:
                    refs[spec.key] = spec.metadata["dagster/code_references"]
    return refs


def build_definitions() -> dg.Definitions:
    """The defs folder's definitions, with resources read from the environment now, and a
    link from every asset in the UI to the code that computes it."""
    defs = dg.load_from_defs_folder(path_within_project=Path(__file__).parent)
    refs = _python_code_references(defs)
    with warnings.catch_warnings():
        # map_asset_specs is marked preview in Dagster 1.13; it is the public way to add metadata here
        warnings.simplefilter("ignore", dg.PreviewWarning)
        return defs.map_asset_specs(
            func=lambda spec: (
                spec
                if spec.key not in refs or "dagster/code_references" in spec.metadata
                else spec.merge_attributes(metadata={"dagster/code_references": refs[spec.key]})
            )
        )


defs = build_definitions()


def resolved_daily_partitions_job() -> dg.JobDefinition:
    """``daily_partitions_job`` bound to the code location's resources, as a reconstructable
    entry point: ``dg.build_reconstructable_job("gopro_assets.definitions", ...)``."""
    return defs.resolve_job_def("daily_partitions_job")
