"""A bridge worker's heartbeats, to the CRM (relaying what it saw of the ESP) and to the
ESP (whose answer says whether it is paused), and the ESP's integration page it reads."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from mailshot.core.web.types import Count32

#: The longest ``esp_error`` a worker relays to the CRM.
ESP_ERROR_MAX = 4000


class WorkerHeartbeat(BaseModel):
    """To the CRM: the worker is alive, and what it last saw of the ESP."""

    model_config = ConfigDict(extra="forbid")

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
    esp_error: str | None = Field(default=None, max_length=ESP_ERROR_MAX)
    esp_paused: bool | None = None
    esp_paused_at: datetime | None = None


class HeartbeatIn(BaseModel):
    """To the ESP: the worker is alive."""

    model_config = ConfigDict(extra="forbid")

    worker_id: str = Field(min_length=1, max_length=255)
    host: str | None = Field(default=None, max_length=255)
    version: str | None = Field(default=None, max_length=32)
    last_error: str | None = Field(default=None, max_length=10_000)


class HeartbeatOut(BaseModel):
    """``paused``: the bridge must not write to the ESP until it is false again."""

    paused: bool


class WorkerPublic(BaseModel):
    """A worker the ESP has heard from."""

    worker_id: str
    last_heartbeat_at: datetime
    host: str | None
    version: str | None


class IntegrationPage(BaseModel):
    """``running``: not paused and some worker heartbeat within the last 60 seconds."""

    running: bool
    paused: bool
    paused_at: datetime | None
    last_seen_at: datetime | None
    last_error: str | None
    last_error_at: datetime | None
    workers: list[WorkerPublic]
