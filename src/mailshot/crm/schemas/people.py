"""Schemas of the People resource."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from mailshot.core.web.types import Id, refuse_null
from mailshot.crm.schemas.common import StrictModel

EmailStatus = Literal["ok", "missing", "invalid"]


class PersonCreate(StrictModel):
    first_name: str = Field(default="", max_length=255)
    last_name: str = Field(default="", max_length=255)
    email: str | None = Field(
        default=None,
        max_length=320,
        description="Stored as given (trimmed); an invalid address is kept but marked invalid.",
    )
    organisation_id: Id | None = None
    country: str | None = Field(default=None, max_length=100)
    job_title: str | None = Field(default=None, max_length=255)
    no_email: bool = Field(default=False, description="The opt-out: no marketing email at all.")


class PersonUpdate(StrictModel):
    first_name: str | None = Field(default=None, max_length=255)
    last_name: str | None = Field(default=None, max_length=255)
    email: str | None = Field(default=None, max_length=320)
    organisation_id: Id | None = None
    country: str | None = Field(default=None, max_length=100)
    job_title: str | None = Field(default=None, max_length=255)
    no_email: bool | None = None

    _not_null = refuse_null("first_name", "last_name", "no_email")


class PersonPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    first_name: str
    last_name: str
    email: str | None
    email_normalised: str | None
    email_status: EmailStatus
    organisation_id: int | None
    country: str | None
    job_title: str | None
    no_email: bool
    created_at: datetime
    updated_at: datetime
