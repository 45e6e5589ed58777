"""Footage: probe and inventory (daily partitions), duplicates, the fingerprint index."""
