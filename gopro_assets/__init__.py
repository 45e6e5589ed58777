"""The footage-licensing lakehouse: a Dagster code location (see definitions.py)."""

import warnings

# Single-run backfills and code references are marked beta in Dagster 1.13; we rely on
# them on purpose (FIELD_NOTES: hundreds of daily partitions must be one run), so their
# beta notices are silenced here instead of filling every log.
warnings.filterwarnings("ignore", message=r".*(backfill_policy|CodeReference|code_references).*is currently in beta")
