"""Schemas of the Organisations resource."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from mailshot.core.web.types import refuse_null


class OrganisationCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=255)
    website: str | None = Field(default=None, max_length=255)
    country: str | None = Field(default=None, max_length=100)


class OrganisationUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=255)
    website: str | None = Field(default=None, max_length=255)
    country: str | None = Field(default=None, max_length=100)

    _not_null = refuse_null("name")


class OrganisationPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    website: str | None
    country: str | None
    created_at: datetime
    updated_at: datetime
