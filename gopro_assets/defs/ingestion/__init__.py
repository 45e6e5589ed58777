"""Ingestion: landing files into Delta tables, quarantine with reasons, the landing sensor."""
