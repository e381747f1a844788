"""Templates (name, subject, HTML and text content): create, read, update, delete, list."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from mailshot.core.db.sqlhelpers import apply_update, get_or_404
from mailshot.core.web.paging import keyset_page
from mailshot.crm.models import Template
from mailshot.crm.schemas.templates import TemplateCreate, TemplateUpdate
from mailshot.crm.services.common import contains_pattern


def create(session: Session, data: TemplateCreate) -> Template:
    template = Template(**data.model_dump())
    session.add(template)
    session.commit()
    return template


def get(session: Session, template_id: int) -> Template:
    return get_or_404(session, Template, template_id, "template")


def update(session: Session, template_id: int, patch: TemplateUpdate) -> Template:
    template = get(session, template_id)
    apply_update(template, patch)
    session.commit()
    return template


def delete(session: Session, template_id: int) -> None:
    session.delete(get(session, template_id))
    session.commit()


def list_page(
    session: Session, *, cursor: str | None, limit: int, q: str | None = None
) -> tuple[list[Template], str | None]:
    query = select(Template)
    if q:
        query = query.where(Template.name.ilike(contains_pattern(q), escape="\\"))
    return keyset_page(session, query, Template.id, cursor=cursor, limit=limit)
