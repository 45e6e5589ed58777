"""Licensing: licensable clips (R5), batch selection (R6) and frozen deliveries (R12)."""
