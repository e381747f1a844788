"""The saved filter of a dynamic mailing list: which People it selects.

Every condition given must hold (AND); a condition that takes several values holds when
any of them matches (IN). A filter needs at least one condition, so a list of "everybody"
is never made by mistake. Text compares ignore case.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator, AwareDatetime, Field, model_validator
from pydantic_core import PydanticCustomError

from mailshot.core.web.types import Id
from mailshot.crm.schemas.common import StrictModel

#: Most values one IN condition may carry.
MAX_VALUES = 1000

Country = Annotated[str, Field(min_length=1, max_length=100)]
Domain = Annotated[str, Field(min_length=1, max_length=255)]


def _as_list(value: Any) -> Any:
    return [value] if isinstance(value, str | int) and not isinstance(value, bool) else value


def _domains(values: list[str] | None) -> list[str] | None:
    if values is None:
        return None
    out = []
    for value in values:
        domain = value.strip().lower().removeprefix("@")
        if not domain or "@" in domain or " " in domain:
            raise PydanticCustomError(
                "email_domain",
                "'{value}' is not a domain name such as example.com",
                {"value": value},
            )
        out.append(domain)
    return out


class ListFilter(StrictModel):
    """Which People a dynamic list selects."""

    country: Annotated[list[Country], Field(min_length=1, max_length=MAX_VALUES)] | None = Field(
        default=None, description="The person's country is this one (or one of these)."
    )
    organisation_id: Annotated[list[Id], Field(min_length=1, max_length=MAX_VALUES)] | None = Field(
        default=None, description="In this organisation (or one of these)."
    )
    created_after: AwareDatetime | None = Field(
        default=None, description="The person was created at or after this time."
    )
    created_before: AwareDatetime | None = Field(
        default=None, description="The person was created before this time."
    )
    job_title_contains: str | None = Field(
        default=None, min_length=1, max_length=255, description="Part of the job title."
    )
    email_domain: (
        Annotated[
            list[Domain], Field(min_length=1, max_length=MAX_VALUES), AfterValidator(_domains)
        ]
        | None
    ) = Field(default=None, description="The address is at this domain (or one of these).")

    @model_validator(mode="before")
    @classmethod
    def _single_values(cls, data: Any) -> Any:
        """A single value is accepted where a list is (``"GB"`` means ``["GB"]``)."""
        if isinstance(data, dict):
            data = dict(data)
            for name in ("country", "organisation_id", "email_domain"):
                if name in data:
                    data[name] = _as_list(data[name])
        return data

    @model_validator(mode="after")
    def _coherent(self) -> ListFilter:
        if not self.model_dump(exclude_none=True):
            raise PydanticCustomError(
                "filter_empty",
                "a dynamic list's filter needs at least one condition (country, "
                "organisation_id, created_after, created_before, job_title_contains or "
                "email_domain)",
            )
        if (
            self.created_after is not None
            and self.created_before is not None
            and self.created_after >= self.created_before
        ):
            raise PydanticCustomError(
                "date_range", "created_after must be earlier than created_before"
            )
        return self

    def stored(self) -> dict[str, Any]:
        """The form kept in ``mailing_lists.filter`` (JSON; conditions not given left out)."""
        return self.model_dump(mode="json", exclude_none=True)
