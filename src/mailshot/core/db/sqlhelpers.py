"""SQL helpers every part's services use: fetch-or-404, a partial update from a PATCH
schema, and the dialect's ``INSERT ... ON CONFLICT`` construct."""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel
from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from mailshot.core.db.engine import is_sqlite
from mailshot.core.errors import NOT_FOUND, AppError

M = TypeVar("M")

Upsert = postgresql.Insert | sqlite.Insert


def get_or_404(session: Session, model: type[M], ident: Any, what: str) -> M:
    """The row of ``model`` with primary key ``ident``, or 404 ``NOT_FOUND`` naming ``what``."""
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


def upsert(session: Session, table: Table | Any) -> Upsert:
    """``INSERT`` into ``table`` (or a model's table) in the session's dialect, which offers
    ``on_conflict_do_update`` and ``on_conflict_do_nothing``."""
    if is_sqlite(session):
        return sqlite.insert(table)
    return postgresql.insert(table)
