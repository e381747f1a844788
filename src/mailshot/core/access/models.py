"""The columns of users, API keys and refused key uses, shared by the CRM and the ESP.

Each part keeps these tables in its own database; the part's ``models/access.py`` declares
its classes from these mixins and its own ``Base``. :mod:`mailshot.core.access.auth` and
:mod:`mailshot.core.access.service` rely on exactly these columns.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, declared_attr, mapped_column

from mailshot.core.clock import utcnow
from mailshot.core.db.engine import IdType


class UserColumns:
    email: Mapped[str] = mapped_column(String(320), unique=True)
    name: Mapped[str] = mapped_column(String(255))
    #: argon2 hash; None for users that only act through API keys (the integration).
    password_hash: Mapped[str | None] = mapped_column(String(255))
    #: 'admin', 'marketer' or 'integration'.
    role: Mapped[str] = mapped_column(String(20), default="marketer")
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)


class ApiKeyColumns:
    public_id: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(255))
    description: Mapped[str | None] = mapped_column(Text)
    user_id: Mapped[int] = mapped_column(IdType, ForeignKey("users.id", ondelete="CASCADE"))
    secret_hash: Mapped[str] = mapped_column(String(64))
    scopes: Mapped[list[str]] = mapped_column(JSON, default=list)
    permitted_ips: Mapped[list[str]] = mapped_column(JSON, default=list)
    valid_from: Mapped[datetime | None] = mapped_column()
    until: Mapped[datetime | None] = mapped_column()
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    last_used_at: Mapped[datetime | None] = mapped_column()
    last_used_ip: Mapped[str | None] = mapped_column(String(64))
    rotated_from_id: Mapped[int | None] = mapped_column(IdType)


class KeyRefusalColumns:
    """Requests refused because of their key, counted by group: which key (by prefix), why,
    from where, for which path, within one minute (``bucket``); see
    :mod:`mailshot.core.access.refusals`, the only writer."""

    #: The latest refusal the row counts.
    at: Mapped[datetime] = mapped_column(default=utcnow)
    #: The first refusal the row counts.
    first_at: Mapped[datetime] = mapped_column(default=utcnow)
    #: How many refusals the row counts.
    count: Mapped[int] = mapped_column(Integer, default=1)
    #: The start of the row's minute.
    bucket: Mapped[datetime] = mapped_column()
    #: A digest of the group (reason, key prefix and id, address, path): with ``bucket``,
    #: what the row is counted under.
    fingerprint: Mapped[str] = mapped_column(String(64))
    key_prefix: Mapped[str | None] = mapped_column(String(64))
    api_key_id: Mapped[int | None] = mapped_column(IdType)
    reason: Mapped[str] = mapped_column(String(64))
    client_ip: Mapped[str | None] = mapped_column(String(64))
    path: Mapped[str | None] = mapped_column(String(500))

    @declared_attr.directive
    @classmethod
    def __table_args__(cls) -> tuple[Index, UniqueConstraint]:
        return (
            Index("ix_key_refusals_at", "at"),
            UniqueConstraint("bucket", "fingerprint", name="uq_key_refusals_bucket_fingerprint"),
        )


class WebSessionColumns:
    """A signed-in page session (:mod:`mailshot.core.webui.sessions`). The browser's cookie holds
    only a random token; the row keeps its SHA-256, so a copy of the table signs nobody in.
    It dies with its user (ON DELETE CASCADE), at sign-out, and when the user is disabled."""

    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(IdType, ForeignKey("users.id", ondelete="CASCADE"))
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    #: When the session was last used (kept to a minute): it ends after the idle limit.
    last_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    #: When it ends however busy it is (the absolute limit).
    expires_at: Mapped[datetime] = mapped_column()
    client_ip: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(String(255))

    @declared_attr.directive
    @classmethod
    def __table_args__(cls) -> tuple[Index, ...]:
        return (
            Index(f"ix_{cls.__tablename__}_user_id", "user_id"),  # type: ignore[attr-defined]
            Index(f"ix_{cls.__tablename__}_expires_at", "expires_at"),  # type: ignore[attr-defined]
        )


class LoginFailureColumns:
    """A failed sign-in (wrong password or unknown address): the address typed, the client's
    address and when. Sign-in throttling counts these (:mod:`mailshot.core.webui.throttle`), so
    every process of an installation agrees; rows older than the counting window go."""

    at: Mapped[datetime] = mapped_column(default=utcnow)
    email: Mapped[str] = mapped_column(String(320))
    client_ip: Mapped[str | None] = mapped_column(String(64))

    @declared_attr.directive
    @classmethod
    def __table_args__(cls) -> tuple[Index, ...]:
        name = cls.__tablename__  # type: ignore[attr-defined]
        return (
            Index(f"ix_{name}_email_at", "email", "at"),
            Index(f"ix_{name}_client_ip_at", "client_ip", "at"),
            Index(f"ix_{name}_at", "at"),
        )
