"""The counts a sync job completes with, the CRM's and the ESP's side by side.

At finalize the ESP answers ``audience_count`` (addresses in the campaign),
``suppressed_count`` (of those, the ones it will not send to) and ``duplicate_count`` (rows
whose address another row of the snapshot held). The CRM derives its own figures from
what it recorded, not from those numbers:

- ``suppressed``: its ``suppressed_at_esp`` exclusions of the job (relayed per person);
- ``duplicates``: recipients it sent that the ESP did not keep (``recipients_total -
  audience_count``; the ESP checked ``audience + duplicates = expected`` at finalize);
- ``included`` (sendable): ``recipients_total - duplicates - suppressed``;
- ``excluded``: its exclusions of the job by reason (``suppressed_at_esp`` included).

``counts_agree`` says whether each equals the ESP's figure (they can differ only if an
address was suppressed between the ESP's count and its listing).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from mailshot.crm.services.audience import SUPPRESSED_AT_ESP
from mailshot.crm.sync.tables import exclusions

ESP_KEYS = ("audience_count", "suppressed_count", "duplicate_count")


@dataclass(frozen=True)
class FinalCounts:
    included: int
    excluded_total: int
    result: dict[str, Any]


def _int(value: Any, default: int) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def final_counts(
    session: Session, job_id: int, recipients_total: int | None, esp: dict[str, Any] | None
) -> FinalCounts:
    """The job's completion figures (see the module docstring); ``esp`` is the ESP's
    finalize answer as the bridge reported it."""
    esp = dict(esp or {})
    total = recipients_total or 0
    by_reason = {
        str(reason): int(n)
        for reason, n in session.execute(
            select(exclusions.c.reason, func.count())
            .where(exclusions.c.job_id == job_id)
            .group_by(exclusions.c.reason)
        ).all()
    }
    suppressed = by_reason.get(SUPPRESSED_AT_ESP, 0)
    audience = _int(esp.get("audience_count"), total)
    duplicates = total - audience
    included = total - duplicates - suppressed
    agree = (
        suppressed == _int(esp.get("suppressed_count"), 0)
        and duplicates == _int(esp.get("duplicate_count"), 0)
        and included == audience - _int(esp.get("suppressed_count"), 0)
    )
    result = {
        **esp,
        "included": included,
        "suppressed": suppressed,
        "duplicates": duplicates,
        "excluded": by_reason,
        "esp": {k: esp.get(k) for k in ESP_KEYS},
        "counts_agree": agree,
    }
    return FinalCounts(included=included, excluded_total=sum(by_reason.values()), result=result)
