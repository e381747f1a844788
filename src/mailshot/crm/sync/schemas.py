"""Schemas of the sync queue's API for people: status, queue, jobs, exclusions, the
integration. The bridge's calls are :mod:`mailshot.contracts`'."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


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
