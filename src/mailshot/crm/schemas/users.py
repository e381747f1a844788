"""Schemas of the Users resource. A password is accepted, hashed and never returned."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field, SecretStr

from mailshot.core.web.types import refuse_null
from mailshot.crm.schemas.common import CheckedEmail, StrictModel

Role = Literal["admin", "marketer", "integration"]


class UserCreate(StrictModel):
    email: CheckedEmail
    name: str = Field(min_length=1, max_length=255)
    role: Role = "marketer"
    password: SecretStr | None = Field(
        default=None, min_length=8, max_length=1024, description="Stored as an argon2 hash."
    )

    _not_null = refuse_null("email")


class UserUpdate(StrictModel):
    name: str | None = Field(default=None, min_length=1, max_length=255)
    role: Role | None = None
    enabled: bool | None = None

    _not_null = refuse_null("name", "role", "enabled")


class UserPublic(BaseModel):
    id: int
    email: str
    name: str
    role: str
    enabled: bool
    has_password: bool
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, user: Any) -> UserPublic:
        return cls(
            id=user.id,
            email=user.email,
            name=user.name,
            role=user.role,
            enabled=user.enabled,
            has_password=user.password_hash is not None,
            created_at=user.created_at,
            updated_at=user.updated_at,
        )
