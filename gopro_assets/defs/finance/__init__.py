"""Finance: revenue, pool, allocations, statements, reconciliation, exports, monthly close."""
