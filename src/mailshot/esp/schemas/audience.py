"""Schemas of campaign audiences: a chunk of recipients, its answer, a listed recipient."""

from __future__ import annotations

from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict, JsonValue

from mailshot.core.web.types import MAX_ID, Count

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

    snapshot: Count
    columns: list[str]
    rows: list[list[Any]]


_ENVELOPE = frozenset({"snapshot", "columns", "rows"})


def recipient_chunk_from_json(body: bytes) -> RecipientChunk:
    """Parse a ``RecipientChunk`` request body; raises pydantic's ``ValidationError``.

    The hot path of a sync: a well-formed envelope (exactly ``snapshot``, a non-negative
    integer; ``columns``, a list of strings; ``rows``, a list of lists) is parsed with
    orjson and its shape checked with C-speed builtins, with no Python object built per
    value beyond the parse itself. The values in the rows are checked by the service. Any
    other body goes through pydantic's own parser, which names the problem (or accepts
    what its lax mode coerces, such as ``"snapshot": "12"``).
    """
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        doc = None
    if (
        type(doc) is dict
        and doc.keys() == _ENVELOPE
        and type(doc["snapshot"]) is int
        and 0 <= doc["snapshot"] <= MAX_ID
        and type(doc["columns"]) is list
        and set(map(type, doc["columns"])) <= {str}
        and type(doc["rows"]) is list
        and set(map(type, doc["rows"])) <= {list}
    ):
        return RecipientChunk.model_construct(**doc)
    return RecipientChunk.model_validate_json(body)


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
