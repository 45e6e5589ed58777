"""Tooling that is not the lakehouse: the demo landing-zone generator, synthetic scale data and the Dagster-free pipeline runner for benchmarks. The code location never imports this package."""
