"""The one SQL model engine: discovers dbt_like_sql/ models, parses their dependencies with sqlglot, runs them on DuckDB and writes their tables. Imports no Dagster."""
