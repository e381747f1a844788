"""Suppressed audience members: the ESP lists them in pages (``GET .../suppressed``), the
bridge records each page at the CRM on the finalize unit (``POST .../suppressed``)."""

from __future__ import annotations

from typing import Final, Literal

from pydantic import BaseModel, ConfigDict, Field

from mailshot.core.web.types import Id

#: The most people one page (ESP) or one call (CRM) carries.
MAX_SUPPRESSED_PAGE: Final = 10_000

SuppressedReason = Literal["unsubscribed", "bounced"]


class SuppressedMember(BaseModel):
    """An audience member whose address is suppressed: 'unsubscribed', or 'bounced'
    (bounce-limited: one hard bounce or three soft ones)."""

    crm_person_id: int
    email: str
    reason: SuppressedReason


class SuppressedPage(BaseModel):
    """One page, in CRM person id order; ``snapshot`` is the snapshot it was read from."""

    items: list[SuppressedMember]
    next_cursor: str | None = None
    limit: int
    snapshot: int


class SuppressedBody(BaseModel):
    """People of the job's snapshot the ESP will not send to, as ``[crm_person_id, reason]``
    pairs (reason: the ESP's, 'unsubscribed' or 'bounced')."""

    model_config = ConfigDict(extra="forbid")

    lease_token: str = Field(min_length=1, max_length=64)
    people: list[tuple[Id, SuppressedReason]] = Field(max_length=MAX_SUPPRESSED_PAGE)


class SuppressedAnswer(BaseModel):
    unit_id: int
    job_id: int
    people: int = Field(description="Distinct people in the call, recorded once each.")
