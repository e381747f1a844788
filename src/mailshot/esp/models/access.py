"""ESP users, API keys and refused key uses (columns shared with the CRM's, in
:mod:`mailshot.accessmodel`)."""

from __future__ import annotations

from mailshot.accessmodel import ApiKeyColumns, KeyRefusalColumns, UserColumns
from mailshot.esp.models.base import Base, IdMixin, TimestampMixin


class EspUser(IdMixin, TimestampMixin, UserColumns, Base):
    __tablename__ = "users"


class EspApiKey(IdMixin, TimestampMixin, ApiKeyColumns, Base):
    __tablename__ = "api_keys"


class EspKeyRefusal(IdMixin, KeyRefusalColumns, Base):
    __tablename__ = "key_refusals"
