"""The audience rules restated in plain Python, as the expectation of the audience tests:
which exclusion applies first to a member of the source, in the rules' order."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def first_reason(
    stored: Mapping[str, Any],
    seen: set[str],
    *,
    unsubscribed: bool = False,
    opted_out: bool,
    no_consent: bool = False,
) -> str | None:
    """The first reason that leaves out a source member whose address is stored as
    ``stored`` (``email_fields``), or None when the member is included: its address then
    joins ``seen``, the addresses of the members included before it."""
    if unsubscribed:
        return "unsubscribed"
    if opted_out:
        return "opted_out"
    if stored["email_status"] == "missing":
        return "no_email_address"
    if stored["email_status"] == "invalid":
        return "invalid_email"
    if no_consent:
        return "no_consent"
    if stored["email_normalised"] in seen:
        return "duplicate_email"
    seen.add(stored["email_normalised"])
    return None
