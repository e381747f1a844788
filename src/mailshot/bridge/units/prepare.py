"""A ``prepare`` unit: the campaign's fields from the CRM upserted into the ESP first (a
name the ESP refuses fails before any snapshot), then the CRM's snapshot of the audience,
whose chunks other workers write while it is taken."""

from __future__ import annotations

from mailshot.bridge.clients import CrmClient, EspClient
from mailshot.bridge.units.base import Check, Done
from mailshot.contracts.campaign import IntegratedCampaignPut
from mailshot.contracts.units import UnitPublic


def prepare(crm: CrmClient, esp: EspClient, unit: UnitPublic, check: Check) -> Done:
    fields = crm.campaign_fields(unit)
    check()
    campaign = esp.put_campaign(unit.mailshot_id, IntegratedCampaignPut.of(fields))
    check()
    crm.prepare(unit)
    check()
    return Done(esp_campaign_id=str(campaign.id))
