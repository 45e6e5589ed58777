"""The SQL models (dbt conventions), shipped inside the wheel as package data; read through importlib.resources by gopro_assets.sql_engine."""
