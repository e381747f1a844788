"""Building a send's ledger and units from the campaign's finalised audience, set-based:
one ``INSERT ... SELECT`` of every recipient (ids in contact order), one of the units
(consecutive runs of ``batch`` ledger ids, numbered with ``row_number()``), and the send's
tracked links. Nothing here loops over recipients in Python."""

from __future__ import annotations

from datetime import datetime
from typing import cast

from sqlalchemy import Table, func, insert, literal, select
from sqlalchemy.orm import Session

from mailshot.esp.models import SendLink
from mailshot.esp.services.audience import CONTACTS, RECIPIENTS
from mailshot.esp.services.send_states import RecipientState, UnitKind
from mailshot.esp.services.sends_queue import changed, ledger, units
from mailshot.queue import UnitState

LINKS = cast(Table, SendLink.__table__)


def build_ledger(
    session: Session,
    send_id: int,
    campaign_id: int,
    snapshot: int,
    *,
    batch: int,
    available_at: datetime | None,
    now: datetime,
) -> int:
    """Write the ledger and units of a send; answer how many recipients it has."""
    audience = (
        select(
            literal(send_id),
            RECIPIENTS.c.contact_id,
            RECIPIENTS.c.crm_person_id,
            CONTACTS.c.email,
            literal(RecipientState.PENDING.value),
            literal(0),
            literal(now, ledger.c.changed_at.type),
        )
        .select_from(RECIPIENTS.join(CONTACTS, CONTACTS.c.id == RECIPIENTS.c.contact_id))
        .where(RECIPIENTS.c.campaign_id == campaign_id, RECIPIENTS.c.snapshot == snapshot)
        .order_by(RECIPIENTS.c.contact_id)
    )
    written = changed(
        session,
        insert(ledger).from_select(
            ["send_id", "contact_id", "crm_person_id", "email", "state", "attempts", "changed_at"],
            audience,
        ),
    )
    numbered = (
        select(
            ledger.c.id,
            ((func.row_number().over(order_by=ledger.c.id) - 1) // batch).label("n"),
        )
        .where(ledger.c.send_id == send_id)
        .subquery()
    )
    runs = (
        select(
            literal(send_id),
            literal(UnitKind.BATCH.value),
            literal(UnitState.PENDING.value),
            literal(available_at, units.c.available_at.type),
            literal(0),
            literal(0),
            func.min(numbered.c.id),
            func.max(numbered.c.id),
        )
        .group_by(numbered.c.n)
        .order_by(numbered.c.n)
    )
    session.execute(
        insert(units).from_select(
            [
                "job_id",
                "kind",
                "state",
                "available_at",
                "attempts",
                "takeovers",
                "first_id",
                "last_id",
            ],
            runs,
        )
    )
    return int(written)


def write_links(session: Session, send_id: int, links: list[str]) -> None:
    if links:
        session.execute(
            insert(LINKS),
            [{"send_id": send_id, "link_index": i, "url": u} for i, u in enumerate(links)],
        )
