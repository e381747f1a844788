"""A chunk of recipients: the CRM serves a range of a snapshot as named columns and rows,
the bridge forwards the bytes with the snapshot spliced in, the ESP parses and writes it.

The hot path of a sync: no Python object is built per recipient on the way (the CRM's
database renders the JSON, the bridge never parses it, the ESP checks its shape with
C-speed builtins before its service reads the rows).
"""

from __future__ import annotations

from typing import Any, Final

import orjson
from pydantic import BaseModel, ConfigDict

from mailshot.core.web.types import MAX_ID, Count

#: The columns of a chunk, in the order the CRM serves them.
RECIPIENT_COLUMNS: Final = (
    "seq",
    "person_id",
    "email",
    "first_name",
    "last_name",
    "organisation_id",
    "organisation",
)


class RecipientChunk(BaseModel):
    """Recipients of one snapshot, as the CRM serves them: named columns and rows.

    Columns may come in any order; ``person_id`` and ``email`` are required, the others of
    :data:`RECIPIENT_COLUMNS` optional; the ESP refuses a column it does not know
    (``RECIPIENT_COLUMNS_UNKNOWN``) rather than drop its values.
    """

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "snapshot": 12,
                    "columns": list(RECIPIENT_COLUMNS),
                    "rows": [[0, 501, "ann@example.com", "Ann", "Lee", 7, "Lee & Co"]],
                }
            ]
        },
    )

    snapshot: Count
    columns: list[str]
    rows: list[list[Any]]


def chunk_json(rows_json: bytes) -> bytes:
    """The CRM's chunk document ``{"columns": [...], "rows": ...}`` around the rows' JSON
    array (as the database rendered it)."""
    return _COLUMNS_PREFIX + rows_json + b"}"


_COLUMNS_PREFIX: Final = b'{"columns":' + orjson.dumps(RECIPIENT_COLUMNS) + b',"rows":'


def with_snapshot(chunk: bytes, snapshot: int) -> bytes:
    """A chunk document as the CRM served it (a JSON object), as the ESP's
    :class:`RecipientChunk` body: the ``snapshot`` member spliced in front, unparsed."""
    return b'{"snapshot":%d,' % snapshot + chunk[1:]


_ENVELOPE: Final = frozenset({"snapshot", "columns", "rows"})


def recipient_chunk_from_json(body: bytes) -> RecipientChunk:
    """Parse a :class:`RecipientChunk` body; raises pydantic's ``ValidationError``.

    A well-formed envelope (exactly ``snapshot``, a non-negative integer; ``columns``, a
    list of strings; ``rows``, a list of lists) is parsed with orjson and its shape checked
    with C-speed builtins, with no Python object built per value beyond the parse itself.
    The values in the rows are checked by the ESP's service. Any other body goes through
    pydantic's own parser, which names the problem (or accepts what its lax mode coerces,
    such as ``"snapshot": "12"``).
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
