"""Contacts: upsert by normalised address, read, list, delete."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from mailshot.core.clock import utcnow
from mailshot.core.db.sqlhelpers import get_or_404, upsert
from mailshot.core.web.paging import keyset_page
from mailshot.esp.models import Contact
from mailshot.esp.schemas.contacts import ContactCreate
from mailshot.esp.services.common import normalise_email, require_address


def upsert_contact(session: Session, data: ContactCreate) -> tuple[Contact, bool]:
    """Create the contact, or update the one with the same normalised address.
    Returns the contact and whether it was created."""
    email = require_address(data.email)
    norm = normalise_email(email)
    existed = session.scalar(select(Contact.id).where(Contact.email_normalised == norm))
    now = utcnow()
    values = {
        "email": email,
        "first_name": data.first_name,
        "last_name": data.last_name,
        "organisation": data.organisation,
        "crm_person_id": data.crm_person_id,
        "crm_organisation_id": data.crm_organisation_id,
        "opt_in": data.opt_in,
        "updated_at": now,
    }
    stmt = upsert(session, Contact).values(email_normalised=norm, created_at=now, **values)
    returning = stmt.on_conflict_do_update(
        index_elements=["email_normalised"],
        set_={k: stmt.excluded[k] for k in values},
    ).returning(Contact)
    contact = session.scalars(returning, execution_options={"populate_existing": True}).one()
    session.commit()
    return contact, existed is None


def get(session: Session, contact_id: int) -> Contact:
    return get_or_404(session, Contact, contact_id, "contact")


def delete(session: Session, contact_id: int) -> None:
    """Delete a contact; it leaves every campaign audience it was in."""
    session.delete(get(session, contact_id))
    session.commit()


def list_page(
    session: Session, *, cursor: str | None, limit: int, email: str | None = None
) -> tuple[list[Contact], str | None]:
    query = select(Contact)
    if email:
        query = query.where(Contact.email_normalised == normalise_email(email))
    return keyset_page(session, query, Contact.id, cursor=cursor, limit=limit)
