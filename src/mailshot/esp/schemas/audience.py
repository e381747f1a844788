"""Schemas of campaign audiences: a listed recipient. The chunk a worker writes is
:class:`mailshot.contracts.chunks.RecipientChunk`."""

from __future__ import annotations

from pydantic import BaseModel


class RecipientPublic(BaseModel):
    contact_id: int
    email: str
    first_name: str
    last_name: str
    crm_person_id: int | None
    snapshot: int
    suppressed: bool
