"""Schema of the answer to "is this person in this mailshot's audience, and if not, why?"."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field


class MembershipPublic(BaseModel):
    person_id: int
    mailshot_id: int
    in_audience: bool
    reason: str | None = Field(
        description="Why not: unsubscribed, opted_out, no_email_address, invalid_email, "
        "no_consent, duplicate_email, suppressed_at_esp or not_in_source; null when in."
    )
    explanation: str = Field(description="The answer in one sentence.")
    sync_job_id: int | None = Field(
        description="The sync whose audience snapshot answered; null when answered from the "
        "live rules (no sync has snapshotted the audience yet)."
    )
    evaluated: Literal["snapshot", "live"]
