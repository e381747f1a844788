"""Helpers every CRM service uses: fetch-or-404, apply a partial update, write the audit log."""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel
from sqlalchemy.orm import Session

from mailshot.clock import utcnow
from mailshot.crm.models import AuditEntry
from mailshot.errors import NOT_FOUND, AppError

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
