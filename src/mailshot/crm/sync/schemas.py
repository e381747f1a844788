"""Schemas of the sync queue's API: the user's view (status, queue, jobs, exclusions, the
integration) and the bridge's calls (lease, heartbeat, prepare, complete, fail)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from mailshot.core.web.types import Count32, Id, JsonObject


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


# ---- the user's view ----------------------------------------------------------------------
class LastError(BaseModel):
    code: str
    message: str
    fix: str | None = None


class SyncStatus(BaseModel):
    """Where a mailshot's synchronisation stands, in numbers and in words."""

    mailshot_id: int
    job_id: int | None
    state: str = Field(description="The mailshot's sync_state.")
    job_state: str | None
    chunks_done: int
    chunks_total: int | None
    recipients_total: int | None
    recipients_written: int
    excluded_total: int | None
    rate_per_second: float | None
    eta_seconds: float | None
    attempts: int
    takeovers: int
    last_error: LastError | None
    next_retry_at: datetime | None
    esp_campaign_id: str | None
    queue_position: int | None = Field(
        description="1 = served next; null when the sync is not in the queue."
    )
    requested_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    synced_at: datetime | None = None
    recipients_synced: int | None = None
    recipients_excluded: int | None = None
    included: int | None = Field(
        default=None,
        description="Once completed: recipients the ESP will send to (its audience less "
        "the addresses it suppresses).",
    )
    excluded: dict[str, int] | None = Field(
        default=None,
        description="Once completed: people left out, by reason (suppressed_at_esp too).",
    )
    esp_counts: dict[str, int | None] | None = Field(
        default=None,
        description="The ESP campaign's own counts at finalize (audience_count, "
        "suppressed_count, duplicate_count), beside the CRM's.",
    )
    counts_agree: bool | None = Field(
        default=None, description="Whether the CRM's counts equal the ESP's."
    )
    summary: str = Field(description="One sentence for people.")
    integration: IntegrationSummary | None = Field(
        default=None, description="The integration's health, as the CRM last heard it."
    )
    warnings: list[str] = Field(
        default_factory=list,
        description="Checks Synchronise could not make (e.g. the ESP's limits not yet known).",
    )


class QueueEntry(BaseModel):
    position: int
    job_id: int
    mailshot_id: int
    mailshot_name: str
    job_state: str
    chunks_done: int
    chunks_total: int | None
    recipients_total: int | None
    recipients_written: int
    attempts: int
    takeovers: int
    last_error: LastError | None
    next_retry_at: datetime | None
    requested_at: datetime
    started_at: datetime | None


class QueuePublic(BaseModel):
    items: list[QueueEntry]
    total: int


class SyncJobPublic(BaseModel):
    id: int
    mailshot_id: int
    state: str
    requested_at: datetime
    requested_by: str | None
    started_at: datetime | None
    running_at: datetime | None
    finished_at: datetime | None
    chunk_size: int
    recipients_total: int | None
    excluded_total: int | None
    chunks_total: int | None
    chunks_done: int
    recipients_written: int
    units_leased: int
    attempts: int
    takeovers: int
    esp_campaign_id: str | None
    last_error: LastError | None
    next_retry_at: datetime | None
    superseded_by: int | None
    result: dict[str, Any] | None
    units: dict[str, int] = Field(description="How many of the job's units are in each state.")


class ExclusionPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    person_id: int
    email: str | None
    reason: str


class WorkerHeartbeat(_Body):
    worker_id: str = Field(min_length=1, max_length=255)
    host: str | None = Field(default=None, max_length=255)
    version: str | None = Field(default=None, max_length=32)
    last_error: str | None = None
    active_units: Count32 = 0
    stopping: bool = Field(default=False, description="The worker is stopping cleanly.")
    # What the worker last saw of the ESP, relayed (the CRM never calls the ESP itself).
    esp_reachable: bool | None = Field(
        default=None, description="Whether the worker's last heartbeat to the ESP was answered."
    )
    esp_error: str | None = Field(default=None, max_length=4000)
    esp_paused: bool | None = None
    esp_paused_at: datetime | None = None


class WorkerPublic(BaseModel):
    worker_id: str
    started_at: datetime
    last_heartbeat_at: datetime
    host: str | None
    version: str | None
    last_error: str | None
    active_units: int
    alive: bool
    stopped_at: datetime | None = None
    esp_reachable: bool | None = None
    esp_error: str | None = None
    esp_ok_at: datetime | None = None
    esp_paused: bool | None = None
    esp_paused_at: datetime | None = None


class IntegrationPublic(BaseModel):
    running: bool = Field(description="Some worker has sent a heartbeat recently.")
    last_heartbeat_at: datetime | None
    workers: list[WorkerPublic]
    paused: bool | None = Field(
        default=None,
        description="The ESP's integration is paused, as the latest worker heard it "
        "(null: no worker has said).",
    )
    paused_at: datetime | None = None
    esp_reachable: bool | None = Field(
        default=None, description="Whether the latest worker could reach the ESP."
    )
    esp_error: str | None = None
    esp_ok_at: datetime | None = None
    last_error: str | None = Field(
        default=None, description="The last error the latest worker reported."
    )


class IntegrationSummary(BaseModel):
    """What every mailshot's status says about the integration."""

    running: bool
    last_heartbeat_at: datetime | None
    paused: bool | None
    paused_at: datetime | None
    esp_reachable: bool | None
    last_error: str | None


# ---- the bridge's calls -------------------------------------------------------------------
#: The longest a lease request may wait for work (``LeaseRequest.wait_seconds``).
MAX_LEASE_WAIT_SECONDS = 10.0


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


class LeaseAnswer(BaseModel):
    unit: UnitPublic


class TokenBody(_Body):
    lease_token: str = Field(min_length=1, max_length=64)


class HeartbeatAnswer(BaseModel):
    unit_id: int
    lease_expires_at: datetime


class CampaignFieldsAnswer(BaseModel):
    crm_mailshot_id: int
    crm_mailshot_uid: str = Field(
        description="The mailshot's uid: the ESP binds its campaign to it (send it with the "
        "campaign's upsert)."
    )
    snapshot: int = Field(description="The snapshot id (the sync job's id) for the ESP.")
    name: str
    subject: str | None
    from_name: str | None
    from_address: str | None
    reply_to: str | None
    html: str | None
    text: str | None
    mailshot_type: str


class PrepareAnswer(CampaignFieldsAnswer):
    recipients_total: int
    excluded_total: int
    chunks_total: int


class CompleteBody(_Body):
    lease_token: str = Field(min_length=1, max_length=64)
    recipients_written: Count32 | None = None
    esp_campaign_id: str | None = Field(default=None, max_length=64)
    result: JsonObject | None = None


class SuppressedBody(_Body):
    """People of the job's snapshot the ESP will not send to, as ``[crm_person_id, reason]``
    pairs (reason: the ESP's, 'unsubscribed' or 'bounced')."""

    lease_token: str = Field(min_length=1, max_length=64)
    people: list[tuple[Id, Literal["unsubscribed", "bounced"]]] = Field(max_length=10_000)


class SuppressedAnswer(BaseModel):
    unit_id: int
    job_id: int
    people: int = Field(description="Distinct people in the call, recorded once each.")


class FailBody(_Body):
    lease_token: str = Field(min_length=1, max_length=64)
    permanent: bool
    code: str = Field(min_length=1, max_length=64)
    message: str = Field(min_length=1, max_length=4000)
    fix: str | None = Field(default=None, max_length=4000)
    retry_after_seconds: float | None = Field(default=None, ge=0, le=86_400)
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
