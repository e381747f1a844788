"""Schemas of contacts."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from mailshot.core.web.types import Id


class ContactCreate(BaseModel):
    """Create a contact, or update the one with the same (normalised) address."""

    model_config = ConfigDict(extra="forbid")

    email: str = Field(min_length=3, max_length=320)
    first_name: str = Field(default="", max_length=255)
    last_name: str = Field(default="", max_length=255)
    organisation: str = Field(default="", max_length=255)
    crm_person_id: Id | None = None
    crm_organisation_id: Id | None = None
    opt_in: bool = True


class ContactPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    email: str
    email_normalised: str
    first_name: str
    last_name: str
    organisation: str
    crm_person_id: int | None
    crm_organisation_id: int | None
    opt_in: bool
    created_at: datetime
    updated_at: datetime
