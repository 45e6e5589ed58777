"""Personal data: where e-mail addresses may live, and how they are kept out of the rest.

Contract §5: e-mail is stored only in the ``subscribers`` table and in the payout export.
Everything else the pipeline writes (other tables, ``quarantine_rows``, logs) must not
hold an address. The landing parsers keep a bad row's raw text for review
(docs/LANDING_RULES.md), so a malformed ``subscribers`` line would carry its e-mail into
``quarantine_rows``; :func:`redact_emails` is applied to every quarantine row before it
is stored (``lib/ingest.write_quarantine``). Pure logic, no Dagster import.
"""

from __future__ import annotations

import re

EMAIL_PLACEHOLDER = "<email redacted>"

# Detection (tests, audits): an address as people write it, local@domain.tld, any script;
# the top-level domain is letters (so `maki@8.2.0`, a package version, is not an address).
EMAIL_RE = re.compile(r"[\w.!#$%&'*+/=?^`{|}~-]+@[\w-]+(?:\.[\w-]+)*\.[^\W\d_]{2,}")

# Redaction is deliberately wider than detection: every run of characters that contains
# an at sign, also when written as a JSON escape (\u0040), URL-encoded (%40) or full-width
# (U+FF20), is replaced, up to the nearest separator (space, comma, quote, bracket, ...).
# After redaction no at sign is left, so no detector can find an address in the text.
_AT = r"(?:@|\\u0040|%40|\uff20)"
_PART = r"[^\s,;:\"'<>()\[\]{}\\]*"
_REDACT_RE = re.compile(rf"{_PART}{_AT}{_PART}", re.IGNORECASE)


def redact_emails(text: str | None) -> str | None:
    """``text`` with every e-mail-like token replaced by ``<email redacted>``; the rest kept."""
    if not text:
        return text
    return _REDACT_RE.sub(EMAIL_PLACEHOLDER, text)


def find_emails(text: str | None) -> list[str]:
    """E-mail addresses found in ``text`` (for scans and tests)."""
    return EMAIL_RE.findall(text or "")


def redact_quarantine_row(row: dict) -> dict:
    """A ``quarantine_rows`` row with e-mail addresses removed from ``raw`` and ``reason``
    (``source`` and ``position`` still lead a reviewer to the original line)."""
    return {**row, "raw": redact_emails(row.get("raw")), "reason": redact_emails(row.get("reason"))}


__all__ = ["EMAIL_PLACEHOLDER", "EMAIL_RE", "find_emails", "redact_emails", "redact_quarantine_row"]
