"""Footage: the PyAV probe and fingerprint (R2), tiers (R3), duplicates (R4) and the inventory."""
