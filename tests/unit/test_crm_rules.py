"""Pure CRM rules: how an address is stored and classified, search patterns, audience counts."""

from __future__ import annotations

import pytest

from mailshot.crm.services.audience import REASONS, AudienceCounts
from mailshot.crm.services.common import contains_pattern
from mailshot.crm.services.people import email_fields


@pytest.mark.parametrize(
    ("given", "email", "normalised", "status"),
    [
        ("  Ada@Example.COM ", "Ada@Example.COM", "ada@example.com", "ok"),
        ("not an address", "not an address", "not an address", "invalid"),
        ("ada@localhost", "ada@localhost", "ada@localhost", "invalid"),
        ("   ", None, None, "missing"),
        (None, None, None, "missing"),
    ],
)
def test_email_fields(
    given: str | None, email: str | None, normalised: str | None, status: str
) -> None:
    assert email_fields(given) == {
        "email": email,
        "email_normalised": normalised,
        "email_status": status,
    }


def test_contains_pattern_escapes_like_wildcards() -> None:
    assert contains_pattern("50%_off\\") == "%50\\%\\_off\\\\%"


def test_audience_counts_total() -> None:
    counts = AudienceCounts(included=5, excluded=dict.fromkeys(REASONS, 1))
    assert counts.total_source == 5 + len(REASONS)
