"""Schemas of a campaign's suppressed audience members (``GET .../suppressed``)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel


class SuppressedMember(BaseModel):
    """An audience member whose address is suppressed: 'unsubscribed', or 'bounced'
    (bounce-limited: one hard bounce or three soft ones)."""

    crm_person_id: int
    email: str
    reason: Literal["unsubscribed", "bounced"]


class SuppressedPage(BaseModel):
    """One page, in CRM person id order; ``snapshot`` is the snapshot it was read from."""

    items: list[SuppressedMember]
    next_cursor: str | None = None
    limit: int
    snapshot: int
