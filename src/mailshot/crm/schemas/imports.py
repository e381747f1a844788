"""Schemas of imports of People from CSV files: a run's report and its rejected lines."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class ImportRunPublic(BaseModel):
    """Where an import stands: its checkpoint, what it did, and what it rejected."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    kind: str
    file_name: str
    file_hash: str = Field(description="SHA-256 of the file: a resume must read the same file.")
    file_size: int
    mapping: dict[str, Any] = Field(description="CSV column -> person field, as used.")
    list_id: int | None
    actor: str
    state: str = Field(description="'running' (or interrupted: resumable) or 'completed'.")
    started_at: datetime
    updated_at: datetime
    finished_at: datetime | None
    last_line: int = Field(description="The last line of the file whose outcome is committed.")
    rows_read: int = Field(description="Data rows read (blank lines aside), rejected included.")
    inserted: int = Field(description="New people.")
    updated: int = Field(description="Existing people (matched by email) with changed fields.")
    unchanged: int = Field(description="Existing people the row changed nothing of.")
    rejected: int
    added_to_list: int = Field(description="People who became members of the list.")
    rejected_by_reason: dict[str, int] = Field(default_factory=dict)


class ImportRejectionPublic(BaseModel):
    """One line of the file that was not applied, and why."""

    model_config = ConfigDict(from_attributes=True)

    line: int
    reason: str = Field(
        description="no_email, invalid_email, duplicate_in_file, encoding, malformed_csv, "
        "unclosed_quote, column_count, invalid_value or unknown_organisation."
    )
    message: str
    email: str | None
