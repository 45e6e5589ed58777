"""Consent: timelines and point-in-time snapshots (R1, R1b), SQL models."""
