"""The bridge's calls about units of sync work (CRM, scope ``sync:work``): lease one, keep
it, complete or fail it; the leased unit itself; the refresh tick's answer."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from mailshot.contracts.states import UnitKind
from mailshot.core.web.types import Count32, JsonObject

#: The longest a lease request may wait for work (``LeaseRequest.wait_seconds``).
MAX_LEASE_WAIT_SECONDS = 10.0


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LeaseRequest(_Body):
    worker_id: str = Field(min_length=1, max_length=255)
    small_only: bool = Field(
        default=False,
        description="Lease only the chunk and finalize units of one-chunk syncs (an "
        "audience of at most one chunk): a worker's express lane, so a small mailshot never "
        "waits for a large one's chunk to finish.",
    )
    wait_seconds: float = Field(
        default=0,
        ge=0,
        le=MAX_LEASE_WAIT_SECONDS,
        description="When no unit is due, hold the request open up to this long and lease "
        "the first unit queued meanwhile (a long poll); 204 only when none came. Units "
        "that become due with time alone (an expired lease, a retry's back-off) are seen "
        "when the wait ends.",
    )


class UnitPublic(BaseModel):
    """The leased unit: what the CRM hands a worker, and what the worker works from."""

    model_config = ConfigDict(frozen=True)

    unit_id: int
    job_id: int
    mailshot_id: int
    kind: str
    chunk_no: int | None
    first_seq: int | None
    last_seq: int | None
    lease_token: str
    lease_expires_at: datetime
    lease_seconds: float = Field(description="How long the lease lasts without a heartbeat.")
    attempt: int = Field(description="1 for the first try of this unit.")
    takeover: bool = Field(description="Whether the lease was taken over from a lost worker.")
    esp_campaign_id: str | None
    recipients_total: int | None
    chunks_total: int | None

    def describe(self) -> str:
        """The unit in a few words, for logs."""
        if self.kind == UnitKind.CHUNK:
            return f"job {self.job_id} chunk {self.chunk_no} ({self.first_seq}..{self.last_seq})"
        return f"job {self.job_id} {self.kind}"


class LeaseAnswer(BaseModel):
    unit: UnitPublic


class TokenBody(_Body):
    lease_token: str = Field(min_length=1, max_length=64)


class HeartbeatAnswer(BaseModel):
    unit_id: int
    lease_expires_at: datetime


class CompleteBody(_Body):
    lease_token: str = Field(min_length=1, max_length=64)
    recipients_written: Count32 | None = None
    esp_campaign_id: str | None = Field(default=None, max_length=64)
    result: JsonObject | None = None


#: The longest error code, message and fix a failure report may carry.
FAULT_CODE_MAX, FAULT_TEXT_MAX = 64, 4000
#: The longest wait a failure report may ask for before the unit is tried again.
RETRY_AFTER_MAX_SECONDS = 86_400


class FailBody(_Body):
    lease_token: str = Field(min_length=1, max_length=64)
    permanent: bool
    code: str = Field(min_length=1, max_length=FAULT_CODE_MAX)
    message: str = Field(min_length=1, max_length=FAULT_TEXT_MAX)
    fix: str | None = Field(default=None, max_length=FAULT_TEXT_MAX)
    retry_after_seconds: float | None = Field(default=None, ge=0, le=RETRY_AFTER_MAX_SECONDS)
    counts_as_attempt: bool = Field(
        default=True,
        description="False when the fault says nothing about this unit (the ESP's "
        "integration is paused): the retry does not use up an attempt.",
    )


class UnitOutcomePublic(BaseModel):
    unit_id: int
    job_id: int
    kind: str
    job_state: str
    repeated: bool = Field(description="True when this repeated an earlier completion.")


class RefreshedPublic(BaseModel):
    mailshot_id: int
    job_id: int


class RefreshAnswer(BaseModel):
    queued: list[RefreshedPublic]
