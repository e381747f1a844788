"""Schemas of the integration page ("Tools > Integration > General")."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field


class WorkerPublic(BaseModel):
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


class HeartbeatIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    worker_id: str = Field(min_length=1, max_length=255)
    host: str | None = Field(default=None, max_length=255)
    version: str | None = Field(default=None, max_length=32)
    last_error: str | None = Field(default=None, max_length=10_000)


class HeartbeatOut(BaseModel):
    """``paused``: the bridge must not write to the ESP until it is false again."""

    paused: bool
