"""Schemas of sends: the start request, a send with its counts per recipient state, a
ledger row, the test send's request and answer, a resend's answer, a send's diagnosis."""

from __future__ import annotations

from datetime import datetime

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from mailshot.esp.services.sends_test import MAX_ADDRESSES


class SendRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    at: AwareDatetime | None = Field(
        default=None, description="When to send (with its timezone); none or past: now."
    )


class SendError(BaseModel):
    code: str
    message: str
    fix: str | None = None


class SendPublic(BaseModel):
    """A send, its counts per recipient state (they add up to ``total``), its rate."""

    id: int
    campaign_id: int
    crm_mailshot_id: int | None
    state: str
    snapshot: int
    scheduled_at: datetime | None
    requested_at: datetime
    requested_by: str | None
    started_at: datetime | None
    finished_at: datetime | None
    paused_at: datetime | None
    total: int
    counts: dict[str, int] = Field(
        description="pending, sending, sent, deferred, failed, suppressed, in_doubt, cancelled"
    )
    done: int = Field(description="Recipients in a final state (not pending/sending/deferred).")
    rate_per_second: float | None
    eta_seconds: float | None
    last_error: SendError | None = None


class SendRecipientPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    contact_id: int
    crm_person_id: int | None
    email: str
    state: str
    attempts: int
    reply_code: int | None
    enhanced_status: str | None
    reply_text: str | None
    queue_id: str | None
    relay: str | None
    next_attempt_at: datetime | None
    changed_at: datetime | None


class TestSendRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    addresses: list[str] = Field(min_length=1, max_length=MAX_ADDRESSES)


class TestSendItem(BaseModel):
    address: str
    outcome: str = Field(description="sent, deferred, failed or in_doubt")
    smtp_code: int | None
    text: str
    message_id: str | None


class TestSendResult(BaseModel):
    items: list[TestSendItem]


class SendFinding(BaseModel):
    """One reason a send is (or is not) moving: a check, its status, a sentence, the fix,
    the catalogued code and the ESP page that shows it (a path under the ESP's base URL)."""

    check: str
    status: str = Field(description="pass, warn or fail")
    message: str
    fix: str = ""
    code: str | None = None
    page: str = ""


class SendDiagnosis(BaseModel):
    send_id: int
    state: str
    findings: list[SendFinding]


class ResendResult(BaseModel):
    resent: int
    send: SendPublic
