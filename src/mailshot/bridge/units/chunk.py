"""A ``chunk`` unit: one range of the snapshot read from the CRM and written into the ESP
as bytes, never parsed here (the hot path of a sync)."""

from __future__ import annotations

from mailshot.bridge.clients import CrmClient, EspClient
from mailshot.bridge.units.base import Check, Done
from mailshot.contracts.units import UnitPublic


def write_chunk(crm: CrmClient, esp: EspClient, unit: UnitPublic, check: Check) -> Done:
    assert unit.first_seq is not None and unit.last_seq is not None
    chunk = crm.recipients_raw(unit.job_id, unit.first_seq, unit.last_seq)
    check()
    written = esp.post_recipients_raw(unit.mailshot_id, unit.job_id, chunk)
    check()
    return Done(recipients_written=written.written)
