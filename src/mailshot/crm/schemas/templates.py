"""Schemas of the Templates resource."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from mailshot.core.web.types import refuse_null
from mailshot.crm.schemas.common import StrictModel


class TemplateCreate(StrictModel):
    name: str = Field(min_length=1, max_length=255)
    subject: str | None = Field(default=None, max_length=255)
    html: str | None = None
    text: str | None = None


class TemplateUpdate(StrictModel):
    name: str | None = Field(default=None, min_length=1, max_length=255)
    subject: str | None = Field(default=None, max_length=255)
    html: str | None = None
    text: str | None = None

    _not_null = refuse_null("name")


class TemplatePublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    subject: str | None
    html: str | None
    text: str | None
    created_at: datetime
    updated_at: datetime
