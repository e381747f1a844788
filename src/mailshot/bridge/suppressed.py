"""Relaying the ESP's suppressed audience members to the CRM, after a finalize.

The ESP lists the snapshot's members whose address it will not send to (keyset-paged by
CRM person id, :data:`PAGE` at a time); each page goes to the CRM as one call on the
finalize unit, which records them as ``suppressed_at_esp`` exclusions. Both sides are
idempotent, so a finalize retried or taken over simply relays again.
"""

from __future__ import annotations

from collections.abc import Callable

from mailshot.bridge.clients import CrmClient, EspClient
from mailshot.contracts.suppressed import MAX_SUPPRESSED_PAGE
from mailshot.contracts.units import UnitPublic

#: People per page read from the ESP and per call to the CRM (both sides' maximum).
PAGE = MAX_SUPPRESSED_PAGE


def relay_suppressed(
    crm: CrmClient,
    esp: EspClient,
    unit: UnitPublic,
    check: Callable[[], None] = lambda: None,
    page_size: int = PAGE,
) -> int:
    """Page through the ESP's suppressed members of the unit's snapshot and record them
    at the CRM; ``check`` runs between calls (the lease keeper's). Answer how many."""
    cursor: str | None = None
    relayed = 0
    while True:
        page = esp.suppressed_page(unit.mailshot_id, unit.job_id, cursor, page_size)
        check()
        people = [(item.crm_person_id, item.reason) for item in page.items]
        if people:
            crm.suppressed(unit, people)
            relayed += len(people)
            check()
        cursor = page.next_cursor
        if not cursor:
            return relayed
