"""Valuation: clip value model and the library-valuation report (estimates, never money owed)."""
