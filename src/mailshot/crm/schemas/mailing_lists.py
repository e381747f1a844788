"""Schemas of the Mailing Lists resource and its members."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from mailshot.crm.schemas.common import PersonIds, StrictModel, refuse_null

ListKind = Literal["static", "dynamic"]


class MailingListCreate(StrictModel):
    name: str = Field(min_length=1, max_length=255)
    description: str | None = None
    kind: ListKind = Field(
        default="static", description="Only 'static' (explicit members) is supported today."
    )


class MailingListUpdate(StrictModel):
    name: str | None = Field(default=None, min_length=1, max_length=255)
    description: str | None = None
    kind: ListKind | None = None

    _not_null = refuse_null("name", "kind")


class MailingListPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    description: str | None
    kind: str
    created_at: datetime
    updated_at: datetime


class ListMembersAdd(StrictModel):
    person_ids: PersonIds
    subscribed: bool = True


class ListMemberUpdate(StrictModel):
    subscribed: bool


class ListMemberPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    list_id: int
    person_id: int
    subscribed: bool
    created_at: datetime
    updated_at: datetime
