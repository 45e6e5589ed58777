"""Dagster components: the SQL-model component that turns dbt_like_sql/ into assets."""
