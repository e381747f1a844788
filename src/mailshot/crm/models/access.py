"""CRM users, API keys, refused key uses, page sessions and failed sign-ins (columns shared
with the ESP's, in :mod:`mailshot.core.access.models`) and the audit log."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from mailshot.core.access.models import (
    ApiKeyColumns,
    KeyRefusalColumns,
    LoginFailureColumns,
    UserColumns,
    WebSessionColumns,
)
from mailshot.core.clock import utcnow
from mailshot.crm.models.base import Base, IdMixin, TimestampMixin


class User(IdMixin, TimestampMixin, UserColumns, Base):
    __tablename__ = "users"


class ApiKey(IdMixin, TimestampMixin, ApiKeyColumns, Base):
    __tablename__ = "api_keys"


class KeyRefusalRecord(IdMixin, KeyRefusalColumns, Base):
    __tablename__ = "key_refusals"


class WebSession(IdMixin, WebSessionColumns, Base):
    __tablename__ = "web_sessions"


class LoginFailure(IdMixin, LoginFailureColumns, Base):
    __tablename__ = "login_failures"


class AuditEntry(IdMixin, Base):
    __tablename__ = "audit_log"

    at: Mapped[datetime] = mapped_column(default=utcnow)
    actor: Mapped[str] = mapped_column(String(255))
    action: Mapped[str] = mapped_column(String(100))
    entity: Mapped[str] = mapped_column(String(100))
    entity_id: Mapped[str | None] = mapped_column(String(64))
    detail: Mapped[dict[str, Any] | None] = mapped_column(JSON)

    __table_args__ = (Index("ix_audit_log_entity", "entity", "entity_id"),)
