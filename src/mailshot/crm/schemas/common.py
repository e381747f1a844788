"""Pieces the CRM's schemas share: checked email addresses, refusing null in a PATCH for
fields that cannot be empty, bulk member requests and their answers."""

from __future__ import annotations

from typing import Annotated

from email_validator import EmailNotValidError, validate_email
from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from pydantic_core import PydanticCustomError

from mailshot.core.web.types import Id

#: Most person ids one bulk member request may carry.
MAX_BULK_IDS = 10_000


def _checked_email(value: str | None) -> str | None:
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    try:
        validate_email(value, check_deliverability=False)
    except EmailNotValidError as exc:
        raise PydanticCustomError(
            "email", "is not a valid email address: {reason}", {"reason": str(exc)}
        ) from exc
    return value


#: An email address checked for syntax (no DNS lookup); blank becomes None.
CheckedEmail = Annotated[str | None, Field(max_length=320), AfterValidator(_checked_email)]


class StrictModel(BaseModel):
    """A request body: unknown fields are refused, so typos do not pass silently."""

    model_config = ConfigDict(extra="forbid")


PersonIds = Annotated[list[Id], Field(min_length=1, max_length=MAX_BULK_IDS)]


class MembersWritten(BaseModel):
    """The answer to a bulk member write."""

    written: int = Field(description="Distinct people now members with the values sent.")
    changed: int = Field(description="Of those, how many were added or changed.")
