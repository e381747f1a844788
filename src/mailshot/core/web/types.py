"""Types every part's API parses with: ids and counts bounded to the databases' 64-bit
integers, free-form JSON objects that can be stored as they came, and the refusal of null
for the fields of a PATCH that cannot be empty.

An id past 2**63-1 would reach the database driver and fail there (``OverflowError``, a
500); with these types it is a 422 ``VALIDATION_FAILED`` naming the field, and the API's
OpenAPI document states the range.
"""

from __future__ import annotations

from typing import Annotated, Any

from annotated_types import Interval
from pydantic import AfterValidator, field_validator
from pydantic_core import PydanticCustomError

#: The largest value of a 64-bit signed integer: BIGINT on PostgreSQL, INTEGER on SQLite.
MAX_ID = 2**63 - 1

# Bounds as annotated_types.Interval, not pydantic's Field: FastAPI adds its own Field to
# a path or query parameter, and a Field inside ``Id | None`` would be ignored with a warning.
#: A row id (path, query or body): 1 .. 2**63-1.
Id = Annotated[int, Interval(ge=1, le=MAX_ID)]
#: A count, a position or a snapshot number: 0 .. 2**63-1.
Count = Annotated[int, Interval(ge=0, le=MAX_ID)]
#: A count kept in a 32-bit INTEGER column: 0 .. 2**31-1.
Count32 = Annotated[int, Interval(ge=0, le=2**31 - 1)]


#: How deep a free-form JSON value may nest (the JSON writer gives up at 255 levels).
MAX_JSON_DEPTH = 32


def _storable(value: dict[str, Any]) -> dict[str, Any]:
    """``value``, if every integer in it fits 64 bits and it nests at most
    :data:`MAX_JSON_DEPTH` levels: what the JSON columns can be given."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > MAX_JSON_DEPTH:
            raise PydanticCustomError(
                "json_depth", "nests deeper than {max} levels", {"max": MAX_JSON_DEPTH}
            )
        if isinstance(item, int) and not isinstance(item, bool):
            if not -MAX_ID - 1 <= item <= MAX_ID:
                raise PydanticCustomError(
                    "int_range",
                    "holds a number past the 64-bit range: {value}",
                    {"value": str(item)},
                )
        elif isinstance(item, dict):
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item)
    return value


#: A JSON object kept as it came (64-bit integers, at most 32 levels deep).
JsonObject = Annotated[dict[str, Any], AfterValidator(_storable)]


def refuse_null(*fields: str) -> Any:
    """A validator for a PATCH schema: ``fields`` may be left out, but not sent as null."""

    def check(_cls: Any, value: Any) -> Any:
        if value is None:
            raise PydanticCustomError(
                "not_null", "may not be null; leave the field out to keep its value"
            )
        return value

    return field_validator(*fields)(classmethod(check))
