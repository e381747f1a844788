"""Schemas of ESP users; a password hash is never part of an answer. The API-key schemas
are the same on both parts: :mod:`mailshot.core.access.service`."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from mailshot.core.web.types import refuse_null

__all__ = ["Role", "UserCreate", "UserPublic", "UserUpdate"]

Role = Literal["admin", "marketer", "integration"]


class UserCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: str = Field(min_length=3, max_length=320)
    name: str = Field(min_length=1, max_length=255)
    role: Role = "marketer"
    password: str | None = Field(default=None, min_length=8, max_length=1024)


class UserUpdate(BaseModel):
    """Change a user; a disabled user's keys are refused (AUTH_USER_DISABLED)."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=255)
    role: Role | None = None
    enabled: bool | None = None

    _not_null = refuse_null("name", "role", "enabled")


class UserPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    email: str
    name: str
    role: str
    enabled: bool
    created_at: datetime
