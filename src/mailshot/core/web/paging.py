"""Keyset paging shared by every list endpoint: ``?limit=&cursor=``, answered with
``{"items": [...], "next_cursor": "..."}``. A cursor is an opaque token that names the
last id of the page before, so pages stay stable while rows are added."""

from __future__ import annotations

import base64
import binascii
from typing import Any, Generic, TypeVar

import orjson
from pydantic import BaseModel
from sqlalchemy import Select
from sqlalchemy.orm import InstrumentedAttribute, Session

from mailshot.core.errors import INVALID_CURSOR, AppError
from mailshot.core.web.types import MAX_ID

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000

T = TypeVar("T", bound=BaseModel)


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = None
    limit: int


def encode_cursor(last_id: int) -> str:
    return base64.urlsafe_b64encode(orjson.dumps({"after": last_id})).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> int | None:
    if not cursor:
        return None
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        data = orjson.loads(base64.urlsafe_b64decode(padded.encode()))
        after = data["after"]
    except (binascii.Error, ValueError, KeyError, TypeError, orjson.JSONDecodeError) as exc:
        raise AppError(INVALID_CURSOR) from exc
    if not isinstance(after, int) or not -MAX_ID <= after <= MAX_ID:
        raise AppError(INVALID_CURSOR)
    return after


def keyset_page(
    session: Session,
    query: Select[Any],
    id_column: InstrumentedAttribute[int],
    *,
    cursor: str | None,
    limit: int,
) -> tuple[list[Any], str | None]:
    """Run ``query`` for one page ordered by ``id_column``; return rows and the next cursor."""
    after = decode_cursor(cursor)
    if after is not None:
        query = query.where(id_column > after)
    rows = list(session.scalars(query.order_by(id_column).limit(limit + 1)))
    if len(rows) > limit:
        rows = rows[:limit]
        return rows, encode_cursor(getattr(rows[-1], id_column.key))
    return rows, None
