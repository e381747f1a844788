"""The API-key schemas both parts' APIs, pages and CLI answer in: create, change and
rotate requests, and a key as shown (its prefix, never its secret; the token only in the
answer to a create or a rotate)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator
from pydantic_core import PydanticCustomError

from mailshot.core.web.types import Id

KeyState = Literal["active", "disabled", "not_yet_valid", "expired", "user_disabled"]

SHOWN_ONCE = "Copy this key now: it is shown once and cannot be shown again."


def _not_null(_cls: Any, value: Any) -> Any:
    if value is None:
        raise PydanticCustomError(
            "not_null", "may not be null; leave the field out to keep its value"
        )
    return value


class ApiKeyCreate(BaseModel):
    """A new key acting as ``user_id``; without ``scopes`` it gets its user's role's."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=255)
    user_id: Id = Field(description="The access-as user: the key acts with their rights.")
    description: str | None = Field(default=None, max_length=2000)
    scopes: list[str] | None = Field(default=None, description="Capabilities of the key.")
    permitted_ips: list[str] = Field(
        default_factory=list, max_length=100, description="Addresses or networks (CIDR)."
    )
    valid_from: AwareDatetime | None = None
    until: AwareDatetime | None = None
    enabled: bool = True


class ApiKeyUpdate(BaseModel):
    """Change a key; fields left out keep their values (``valid_from``/``until`` may be
    set to null to remove them)."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=255)
    description: str | None = Field(default=None, max_length=2000)
    scopes: list[str] | None = None
    permitted_ips: list[str] | None = Field(default=None, max_length=100)
    valid_from: AwareDatetime | None = None
    until: AwareDatetime | None = None

    _refuse_null = field_validator("name", "scopes", "permitted_ips")(classmethod(_not_null))


class ApiKeyRotate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    overlap_hours: float | None = Field(
        default=None,
        ge=0,
        le=24 * 366,
        description="The old key expires this many hours from now (left out: it stays "
        "valid until it is disabled or reaches its own Until).",
    )
    until: AwareDatetime | None = Field(default=None, description="Until of the new key.")


class ApiKeyPublic(BaseModel):
    """A key as the API shows it: its prefix, never its secret or the secret's digest."""

    id: int
    prefix: str
    name: str
    description: str | None
    user_id: int
    user_email: str | None = None
    scopes: list[str]
    effective_scopes: list[str] = Field(
        default_factory=list,
        description="The scopes the key may use now: those its user's current role allows.",
    )
    permitted_ips: list[str]
    valid_from: datetime | None
    until: datetime | None
    enabled: bool
    state: KeyState = "active"
    created_at: datetime
    last_used_at: datetime | None
    last_used_ip: str | None
    rotated_from_id: int | None = None


class ApiKeyCreated(ApiKeyPublic):
    """The new key with its token: shown this once, never again."""

    token: str
    warning: str = SHOWN_ONCE


class ApiKeyRotated(ApiKeyCreated):
    """The new key (with its token, shown once) and the old key as it now stands."""

    old_key: ApiKeyPublic
