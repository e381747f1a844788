"""Organisations: create, read, update, delete, list."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from mailshot.core.db.sqlhelpers import apply_update, get_or_404
from mailshot.core.web.paging import keyset_page
from mailshot.crm.models import Organisation
from mailshot.crm.schemas.organisations import OrganisationCreate, OrganisationUpdate


def create(session: Session, data: OrganisationCreate) -> Organisation:
    org = Organisation(**data.model_dump())
    session.add(org)
    session.commit()
    return org


def get(session: Session, org_id: int) -> Organisation:
    return get_or_404(session, Organisation, org_id, "organisation")


def update(session: Session, org_id: int, patch: OrganisationUpdate) -> Organisation:
    org = get(session, org_id)
    apply_update(org, patch)
    session.commit()
    return org


def delete(session: Session, org_id: int) -> None:
    session.delete(get(session, org_id))
    session.commit()


def list_page(
    session: Session, *, cursor: str | None, limit: int, name: str | None = None
) -> tuple[list[Organisation], str | None]:
    query = select(Organisation)
    if name:
        query = query.where(Organisation.name.ilike(f"%{name}%"))
    return keyset_page(session, query, Organisation.id, cursor=cursor, limit=limit)
