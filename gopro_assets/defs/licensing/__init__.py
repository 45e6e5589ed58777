"""Licensing: deals, batches and frozen deliveries (R5, R6, R12)."""
