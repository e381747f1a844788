"""A ``finalize`` unit: the ESP makes the snapshot the campaign's audience and counts it;
the people it suppresses are relayed to the CRM (:mod:`mailshot.bridge.suppressed`)."""

from __future__ import annotations

from mailshot.bridge.clients import CrmClient, EspClient
from mailshot.bridge.suppressed import relay_suppressed
from mailshot.bridge.units.base import Check, Done
from mailshot.contracts.units import UnitPublic


def finalize(crm: CrmClient, esp: EspClient, unit: UnitPublic, check: Check) -> Done:
    result = esp.finalize(unit.mailshot_id, unit.job_id, unit.recipients_total or 0)
    check()
    if result.suppressed_count > 0:
        relay_suppressed(crm, esp, unit, check)
    note = (
        f"sync job {unit.job_id} of mailshot {unit.mailshot_id} completed: "
        f"{result.audience_count} recipients"
    )
    return Done(result=result, note=note)
