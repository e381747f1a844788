"""Schemas of the ESP's limits as the CRM keeps them (the bridge's PUT is
:class:`mailshot.contracts.limits.EspLimitsPut`), and of a mailshot's preflight."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from mailshot.core.errors import FieldProblem


class EspLimitsPublic(BaseModel):
    """What the CRM knows of the ESP's limits (``known`` false: never received)."""

    known: bool
    limits: dict[str, Any] | None = None
    read_at: datetime | None = None
    received_at: datetime | None = None
    reported_by: str | None = None
    name_max_length: int | None = Field(
        default=None, description="The longest mailshot name the ESP accepts."
    )


class ProblemPublic(BaseModel):
    field: str
    rule: str
    message: str
    params: dict[str, Any] = Field(default_factory=dict)

    @classmethod
    def of(cls, problem: FieldProblem) -> ProblemPublic:
        return cls(
            field=problem.field, rule=problem.rule, message=problem.message, params=problem.params
        )


class PreflightPublic(BaseModel):
    """Whether Synchronise would accept the mailshot now; nothing is queued by asking."""

    mailshot_id: int
    ok: bool
    problems: list[ProblemPublic]
    warnings: list[str]
    limits_read_at: datetime | None
