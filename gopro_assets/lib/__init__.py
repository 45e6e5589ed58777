"""Pure logic with no Dagster imports: parsing, probing, storage and money rules.

Everything here is unit-tested without Dagster; the assets in the domain folders are
thin wrappers that read inputs, call these functions and write Delta tables.
"""
