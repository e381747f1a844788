"""Schemas of ESP users and API keys. Secrets and hashes are never part of an answer,
except the new key's token, once, when it is created."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

Role = Literal["admin", "marketer", "integration"]


class UserCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: str = Field(min_length=3, max_length=320)
    name: str = Field(min_length=1, max_length=255)
    role: Role = "marketer"
    password: str | None = Field(default=None, min_length=8, max_length=1024)


class UserPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    email: str
    name: str
    role: str
    enabled: bool
    created_at: datetime


class ApiKeyCreate(BaseModel):
    """A new key acting as ``user_id``; without ``scopes`` it gets its user's role's."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=255)
    user_id: int
    description: str | None = Field(default=None, max_length=2000)
    scopes: list[str] | None = None
    permitted_ips: list[str] = Field(default_factory=list, max_length=100)
    valid_from: AwareDatetime | None = None
    until: AwareDatetime | None = None


class ApiKeyPublic(BaseModel):
    id: int
    prefix: str
    name: str
    description: str | None
    user_id: int
    scopes: list[str]
    permitted_ips: list[str]
    enabled: bool
    valid_from: datetime | None
    until: datetime | None
    last_used_at: datetime | None
    last_used_ip: str | None
    created_at: datetime


class ApiKeyCreated(ApiKeyPublic):
    """The new key with its token: shown this once, never again."""

    token: str
