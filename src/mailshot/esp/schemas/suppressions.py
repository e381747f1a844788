"""Schemas of suppressions and bounces."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from mailshot.core.web.types import Count32


class SuppressionCreate(BaseModel):
    """Suppress an address. ``reason='bounced'`` without counts records one hard bounce
    (bounce-limited at once); with counts, the record is suppressed only at the limit."""

    model_config = ConfigDict(extra="forbid")

    email: str = Field(min_length=3, max_length=320)
    reason: Literal["unsubscribed", "bounced"]
    hard_bounces: Count32 | None = None
    soft_bounces: Count32 | None = None


class BounceCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: str = Field(min_length=3, max_length=320)
    kind: Literal["hard", "soft"]


class SuppressionPublic(BaseModel):
    id: int
    email: str
    reason: str
    hard_bounces: int
    soft_bounces: int
    #: True when the ESP will not send to the address (unsubscribed or bounce-limited).
    suppressed: bool
    created_at: datetime
    updated_at: datetime
