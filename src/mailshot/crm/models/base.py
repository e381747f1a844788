"""The CRM's declarative base (its own metadata) and the shared mixins."""

from __future__ import annotations

from sqlalchemy.orm import DeclarativeBase

from mailshot.core.db.model import TYPE_ANNOTATION_MAP, IdMixin, TimestampMixin, new_metadata

__all__ = ["Base", "IdMixin", "TimestampMixin"]


class Base(DeclarativeBase):
    metadata = new_metadata()
    type_annotation_map = TYPE_ANNOTATION_MAP
