"""Schemas of the Mailing Lists resource and its members."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from mailshot.core.web.types import refuse_null
from mailshot.crm.schemas.common import PersonIds, StrictModel
from mailshot.crm.schemas.list_filters import ListFilter

ListKind = Literal["static", "dynamic"]

_KIND = (
    "'static': members chosen one by one (POST .../members); 'dynamic': the people its "
    "filter selects, evaluated when a sync starts."
)


class MailingListCreate(StrictModel):
    name: str = Field(min_length=1, max_length=255)
    description: str | None = None
    kind: ListKind = Field(default="static", description=_KIND)
    filter: ListFilter | None = Field(default=None, description="Required for a dynamic list.")


class MailingListUpdate(StrictModel):
    name: str | None = Field(default=None, min_length=1, max_length=255)
    description: str | None = None
    kind: ListKind | None = None
    filter: ListFilter | None = None

    _not_null = refuse_null("name", "kind")


class MailingListPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    description: str | None
    kind: str
    filter: dict[str, Any] | None = None
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
