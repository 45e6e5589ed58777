"""Finance: money rules R7-R11 (exact references), explain, exports and the finance report."""
