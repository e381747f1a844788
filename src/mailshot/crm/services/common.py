"""Helpers every CRM service uses: fetch-or-404, apply a partial update, write the audit log,
check referenced rows, build search patterns and dialect-specific upserts."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, TypeVar

from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from mailshot.core.clock import utcnow
from mailshot.core.db.engine import is_sqlite
from mailshot.core.errors import NOT_FOUND, AppError
from mailshot.crm.errors import UNKNOWN_PEOPLE, field_error
from mailshot.crm.models import AuditEntry, Person

M = TypeVar("M")


def get_or_404(session: Session, model: type[M], ident: Any, what: str) -> M:
    obj = session.get(model, ident)
    if obj is None:
        raise AppError(NOT_FOUND, what=what, id=ident)
    return obj


def apply_update(obj: Any, patch: BaseModel) -> dict[str, Any]:
    """Set the fields the client sent (even to null); return what changed."""
    changed: dict[str, Any] = {}
    for name, value in patch.model_dump(exclude_unset=True).items():
        if getattr(obj, name) != value:
            setattr(obj, name, value)
            changed[name] = value
    return changed


def audit(
    session: Session,
    actor: str,
    action: str,
    entity: str,
    entity_id: Any,
    detail: dict[str, Any] | None = None,
) -> None:
    session.add(
        AuditEntry(
            at=utcnow(),
            actor=actor,
            action=action,
            entity=entity,
            entity_id=None if entity_id is None else str(entity_id),
            detail=detail,
        )
    )


def require_row(session: Session, model: type[Any], ident: int | None, field: str) -> None:
    """Refuse (422, naming ``field``) a reference to a row that does not exist."""
    if ident is not None and session.get(model, ident) is None:
        what = model.__tablename__.rstrip("s").replace("_", " ")
        raise field_error(field, "exists", f"there is no {what} with id {ident}", id=ident)


def require_people(session: Session, person_ids: Iterable[int]) -> list[int]:
    """Return the distinct ids, sorted; refuse the lot if any is not a person."""
    ids = sorted(set(person_ids))
    found = set(session.scalars(select(Person.id).where(Person.id.in_(ids))))
    missing = [i for i in ids if i not in found]
    if missing:
        sample = ", ".join(str(i) for i in missing[:5])
        raise AppError(UNKNOWN_PEOPLE, count=len(missing), sample=sample)
    return ids


def contains_pattern(text: str) -> str:
    """A LIKE pattern matching ``text`` anywhere, with LIKE's wildcards escaped (``\\``)."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def upsert(session: Session, model: type[Any]) -> sqlite.Insert | postgresql.Insert:
    """``INSERT`` into ``model``'s table in the session's dialect (which offers
    ``on_conflict_do_update``)."""
    if is_sqlite(session):
        return sqlite.insert(model)
    return postgresql.insert(model)
