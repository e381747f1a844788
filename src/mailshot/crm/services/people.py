"""People: create, read, update, delete, list and search.

Every write computes ``email_normalised`` (trimmed, lower-cased) and ``email_status``
('ok', 'missing' or 'invalid', by syntax only) so the audience rules stay plain SQL. An
invalid address is accepted and stored as given: the CRM holds what it is told, and the
audience leaves the person out with the reason ``invalid_email``. Changes of the "No
Email" opt-out are written to the audit log.
"""

from __future__ import annotations

from typing import Any

from email_validator import EmailNotValidError, validate_email
from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from mailshot.core.db.sqlhelpers import apply_update, get_or_404
from mailshot.core.web.paging import keyset_page
from mailshot.crm.models import Organisation, Person
from mailshot.crm.schemas.people import PersonCreate, PersonUpdate
from mailshot.crm.services.common import audit, contains_pattern, require_row


def email_fields(email: str | None) -> dict[str, Any]:
    """The stored form of an address: ``email`` (trimmed, or None when blank),
    ``email_normalised`` (lower-cased) and ``email_status``."""
    stripped = (email or "").strip()
    if not stripped:
        return {"email": None, "email_normalised": None, "email_status": "missing"}
    try:
        validate_email(stripped, check_deliverability=False)
        status = "ok"
    except EmailNotValidError:
        status = "invalid"
    return {"email": stripped, "email_normalised": stripped.lower(), "email_status": status}


def _audit_opt_out(session: Session, actor: str, person: Person) -> None:
    action = "person.opt_out" if person.no_email else "person.opt_in"
    audit(session, actor, action, "person", person.id, {"no_email": person.no_email})


def create(session: Session, data: PersonCreate, *, actor: str) -> Person:
    require_row(session, Organisation, data.organisation_id, "organisation_id")
    values = data.model_dump()
    values.update(email_fields(data.email))
    person = Person(**values)
    session.add(person)
    session.flush()
    if person.no_email:
        _audit_opt_out(session, actor, person)
    session.commit()
    return person


def get(session: Session, person_id: int) -> Person:
    return get_or_404(session, Person, person_id, "person")


def update(session: Session, person_id: int, patch: PersonUpdate, *, actor: str) -> Person:
    person = get(session, person_id)
    if "organisation_id" in patch.model_fields_set:
        require_row(session, Organisation, patch.organisation_id, "organisation_id")
    changed = apply_update(person, patch)
    if "email" in patch.model_fields_set:
        for name, value in email_fields(patch.email).items():
            setattr(person, name, value)
    if "no_email" in changed:
        _audit_opt_out(session, actor, person)
    session.commit()
    return person


def delete(session: Session, person_id: int) -> None:
    session.delete(get(session, person_id))
    session.commit()


def list_page(
    session: Session,
    *,
    cursor: str | None,
    limit: int,
    email: str | None = None,
    q: str | None = None,
    organisation_id: int | None = None,
) -> tuple[list[Person], str | None]:
    query = select(Person)
    if email is not None:
        query = query.where(Person.email_normalised == email.strip().lower())
    if q:
        pattern = contains_pattern(q.strip())
        query = query.where(
            or_(
                Person.first_name.ilike(pattern, escape="\\"),
                Person.last_name.ilike(pattern, escape="\\"),
                (Person.first_name + " " + Person.last_name).ilike(pattern, escape="\\"),
                Person.email_normalised.ilike(pattern, escape="\\"),
            )
        )
    if organisation_id is not None:
        query = query.where(Person.organisation_id == organisation_id)
    return keyset_page(session, query, Person.id, cursor=cursor, limit=limit)
