"""Schemas of campaign audiences: a chunk of recipients, its answer, a listed recipient."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, JsonValue

RECIPIENT_COLUMNS: list[JsonValue] = [
    "seq",
    "person_id",
    "email",
    "first_name",
    "last_name",
    "organisation_id",
]


class RecipientChunk(BaseModel):
    """Recipients of one snapshot, as the CRM serves them: named columns and rows.

    Columns may come in any order; ``person_id`` and ``email`` are required, unknown
    columns are ignored.
    """

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "snapshot": 12,
                    "columns": RECIPIENT_COLUMNS,
                    "rows": [[0, 501, "ann@example.com", "Ann", "Lee", 7]],
                }
            ]
        },
    )

    snapshot: int = Field(ge=0)
    columns: list[str]
    rows: list[list[Any]]


class RecipientsWritten(BaseModel):
    """``written``: rows now in the audience for this snapshot (a chunk sent again gives the
    same answer); ``duplicates``: rows whose address another row of the snapshot already
    holds (the first is kept)."""

    written: int
    duplicates: int


class RecipientPublic(BaseModel):
    contact_id: int
    email: str
    first_name: str
    last_name: str
    crm_person_id: int | None
    snapshot: int
    suppressed: bool
