"""ESP users, API keys, refused key uses, page sessions and failed sign-ins (columns shared
with the CRM's, in :mod:`mailshot.core.access.models`)."""

from __future__ import annotations

from mailshot.core.access.models import (
    ApiKeyColumns,
    KeyRefusalColumns,
    LoginFailureColumns,
    UserColumns,
    WebSessionColumns,
)
from mailshot.esp.models.base import Base, IdMixin, TimestampMixin


class EspUser(IdMixin, TimestampMixin, UserColumns, Base):
    __tablename__ = "users"


class EspApiKey(IdMixin, TimestampMixin, ApiKeyColumns, Base):
    __tablename__ = "api_keys"


class EspKeyRefusal(IdMixin, KeyRefusalColumns, Base):
    __tablename__ = "key_refusals"


class EspWebSession(IdMixin, WebSessionColumns, Base):
    __tablename__ = "web_sessions"


class EspLoginFailure(IdMixin, LoginFailureColumns, Base):
    __tablename__ = "login_failures"
