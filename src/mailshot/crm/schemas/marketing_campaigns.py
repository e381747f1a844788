"""Schemas of the Marketing Campaigns resource and its members."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from pydantic_core import PydanticCustomError

from mailshot.core.web.types import refuse_null
from mailshot.crm.schemas.common import PersonIds, StrictModel

MemberStatus = Annotated[str, Field(min_length=1, max_length=100)]


def _distinct(values: list[str]) -> list[str]:
    if len(set(values)) != len(values):
        raise PydanticCustomError("unique", "lists a status more than once")
    return values


MemberStatuses = Annotated[list[MemberStatus], Field(max_length=50), AfterValidator(_distinct)]
Money = Annotated[Decimal, Field(ge=0, max_digits=14, decimal_places=2)]


class CampaignCreate(StrictModel):
    name: str = Field(min_length=1, max_length=255)
    status: str = Field(default="Planned", min_length=1, max_length=50)
    category: str | None = Field(default=None, max_length=100)
    start_date: date | None = None
    end_date: date | None = None
    budget: Money | None = None
    goals: str | None = None
    member_statuses: MemberStatuses = Field(
        default_factory=list,
        description="The membership statuses members may have, in order; empty = any.",
    )


class CampaignUpdate(StrictModel):
    name: str | None = Field(default=None, min_length=1, max_length=255)
    status: str | None = Field(default=None, min_length=1, max_length=50)
    category: str | None = Field(default=None, max_length=100)
    start_date: date | None = None
    end_date: date | None = None
    budget: Money | None = None
    goals: str | None = None
    member_statuses: MemberStatuses | None = None

    _not_null = refuse_null("name", "status", "member_statuses")


class CampaignPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    status: str
    category: str | None
    start_date: date | None
    end_date: date | None
    budget: Decimal | None
    goals: str | None
    member_statuses: list[str]
    created_at: datetime
    updated_at: datetime


class CampaignMembersAdd(StrictModel):
    person_ids: PersonIds
    status: MemberStatus


class CampaignMemberUpdate(StrictModel):
    status: MemberStatus


class CampaignMemberPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    campaign_id: int
    person_id: int
    status: str
    created_at: datetime
    updated_at: datetime
