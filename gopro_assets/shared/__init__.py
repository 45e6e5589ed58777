"""Dagster-facing pieces shared by every domain folder: resources (configured with dg.EnvVar), partitions, table metadata and the lake-writer pool."""
