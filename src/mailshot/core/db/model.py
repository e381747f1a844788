"""What every part's tables share: the constraint naming convention, the type map for
timestamps, and the id and created/updated mixins. Each part declares its own ``Base``
(its own metadata, its own database) in its ``models/base.py``."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import MetaData
from sqlalchemy.orm import Mapped, mapped_column

from mailshot.core.clock import utcnow
from mailshot.core.db.engine import IdType, UTCDateTime

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

#: The declarative type map: every ``Mapped[datetime]`` is an aware UTC timestamp.
TYPE_ANNOTATION_MAP: dict[Any, Any] = {datetime: UTCDateTime()}


def new_metadata() -> MetaData:
    return MetaData(naming_convention=NAMING)


class IdMixin:
    """A surrogate ``id`` that is never given to another row, not even after its own row
    is deleted: other systems (the ESP keys campaigns by CRM mailshot id and contacts by
    CRM person id), URLs, sessions and logs refer to rows by it, and a reused id would
    inherit what they say about the old row. PostgreSQL's sequences never go back; on
    SQLite the table is declared ``AUTOINCREMENT`` (without it SQLite gives the next row
    the largest id in use plus one, that is a deleted last row's id)."""

    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)  # the declarative base makes the table here
        table = getattr(cls, "__table__", None)
        if table is not None:
            table.dialect_options["sqlite"]["autoincrement"] = True


class TimestampMixin:
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
