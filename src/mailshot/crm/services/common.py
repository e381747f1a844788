"""Helpers the CRM's services share: write the audit log, check referenced rows, build
search patterns. The SQL helpers of every part are :mod:`mailshot.core.db.sqlhelpers`."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from mailshot.core.clock import utcnow
from mailshot.core.errors import AppError
from mailshot.crm.errors import UNKNOWN_PEOPLE, field_error
from mailshot.crm.models import AuditEntry, Person


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
