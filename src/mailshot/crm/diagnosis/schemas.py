"""Schemas of the diagnosis API: one result per check, and the whole answer."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

Status = Literal["pass", "warn", "fail"]
#: Worst first: the verdict is the worst status of any check.
SEVERITY: dict[str, int] = {"pass": 0, "warn": 1, "fail": 2}


class CheckResult(BaseModel):
    check: str = Field(description="Stable name of the check, e.g. 'integration_key'.")
    status: Status
    message: str = Field(description="One sentence for people.")
    fix: str = Field(default="", description="What to do; empty when nothing needs doing.")
    code: str | None = Field(default=None, description="The catalogued code, if any.")
    details: dict[str, Any] | None = None


class Diagnosis(BaseModel):
    mailshot_id: int | None = Field(description="Null for the whole integration's diagnosis.")
    mailshot_name: str | None = None
    verdict: Status = Field(description="The worst status of any check.")
    summary: str = Field(description="The main reason the mailshot has not arrived, if any.")
    checked_at: datetime
    checks: list[CheckResult]


def verdict(checks: list[CheckResult]) -> Status:
    worst: Status = "pass"
    for c in checks:
        if SEVERITY[c.status] > SEVERITY[worst]:
            worst = c.status
    return worst
