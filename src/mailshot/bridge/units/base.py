"""What a unit kind's handler is: given the two clients, the leased unit and the lease
check, it does the unit's work and answers :class:`Done`, the completion to report."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from mailshot.bridge.clients import CrmClient, EspClient
from mailshot.contracts.campaign import FinalizeResult
from mailshot.contracts.units import UnitPublic

#: Raises :class:`~mailshot.bridge.errors.LeaseLostError` once the lease is known gone.
Check = Callable[[], None]


@dataclass(frozen=True)
class Done:
    """A unit's work is done: what its completion reports (sent once its lease keeper
    stops), and a line to log once the CRM has it."""

    recipients_written: int | None = None
    esp_campaign_id: str | None = None
    result: FinalizeResult | None = None
    note: str | None = None


class Work(Protocol):
    def __call__(self, crm: CrmClient, esp: EspClient, unit: UnitPublic, check: Check) -> Done: ...


@dataclass(frozen=True)
class Handler:
    """How the bridge works one kind of unit."""

    work: Work
    #: Run on a side thread, so the lease loop goes on leasing (the work mostly waits).
    on_side_lane: bool = False
