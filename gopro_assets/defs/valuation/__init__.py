"""Valuation: clip features, the value model, clip and library valuations."""
