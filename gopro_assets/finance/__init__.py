"""Finance exports: the month's payout file, workbook and report, gated on the blocking
checks (docs/EXPORTS.md); the tax summary is a function and ``gopro-lake export --tax-year``."""
