"""A test send: the campaign rendered and delivered to a few named addresses, through the
same relays and rate limit as a send, outside any send: no ledger row, no count changes.
Merge fields come from the contact with that address when there is one."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from mailshot.core.errors import AppError
from mailshot.core.settings import Settings
from mailshot.esp import errors
from mailshot.esp.models import Contact
from mailshot.esp.sending.config import effective_relays
from mailshot.esp.sending.engine import deliver
from mailshot.esp.sending.mime import AddressError
from mailshot.esp.sending.model import Recipient
from mailshot.esp.sending.outcomes import DeliveryResult, Envelope
from mailshot.esp.sending.ratelimit import DbRateLimiter
from mailshot.esp.services.campaigns import get_integrated
from mailshot.esp.services.common import normalise_email, require_address
from mailshot.esp.services.sends_preflight import check_message, content_of

MAX_ADDRESSES = 10
#: Seconds a test send may take before what is left is reported deferred.
TIMEOUT = 60.0


@dataclass(frozen=True)
class TestOutcome:
    address: str
    outcome: str
    smtp_code: int | None
    text: str
    message_id: str | None


def test_send(
    sessions: sessionmaker[Session], settings: Settings, crm_mailshot_id: int, addresses: list[str]
) -> list[TestOutcome]:
    """Render the campaign for each address and deliver it; answer each outcome."""
    if not 1 <= len(addresses) <= MAX_ADDRESSES:
        raise AppError(errors.SEND_TEST_ADDRESSES, max=MAX_ADDRESSES, count=len(addresses))
    clean = [require_address(a) for a in addresses]
    with sessions() as session:
        campaign = get_integrated(session, crm_mailshot_id)
        compiled = check_message(content_of(campaign), settings)
        known = {
            row.email_normalised: row
            for row in session.execute(
                select(
                    Contact.email_normalised,
                    Contact.id,
                    Contact.crm_person_id,
                    Contact.first_name,
                    Contact.last_name,
                    Contact.organisation,
                ).where(Contact.email_normalised.in_([normalise_email(a) for a in clean]))
            )
        }
        session.rollback()
    envelopes: list[Envelope] = []
    ids: dict[int, str] = {}
    out: dict[int, TestOutcome] = {}
    for i, address in enumerate(clean):
        contact = known.get(normalise_email(address))
        recipient = Recipient(
            recipient_id=0,
            contact_id=contact.id if contact else 0,
            crm_person_id=contact.crm_person_id if contact else None,
            email=address,
            first_name=contact.first_name if contact else "",
            last_name=contact.last_name if contact else "",
            organisation=contact.organisation if contact else "",
        )
        try:
            message = compiled.render(recipient)
        except (AddressError, ValueError) as exc:
            out[i] = TestOutcome(address, "failed", None, str(exc), None)
            continue
        ids[i] = message.message_id
        envelopes.append(Envelope(i, message.envelope_from, message.rcpt_to, message.data))
    for result in asyncio.run(_deliver(sessions, settings, envelopes)):
        out[result.key] = TestOutcome(
            clean[result.key], result.outcome.value, result.smtp_code, result.text, ids[result.key]
        )
    return [out[i] for i in range(len(clean))]


async def _deliver(
    sessions: sessionmaker[Session], settings: Settings, envelopes: list[Envelope]
) -> list[DeliveryResult]:
    async def source() -> AsyncIterator[Envelope]:
        for envelope in envelopes:
            yield envelope

    limiter = DbRateLimiter(sessions)
    stop = asyncio.Event()
    timer = asyncio.get_running_loop().call_later(TIMEOUT, stop.set)
    try:
        return [r async for r in deliver(source(), effective_relays(settings), limiter, stop=stop)]
    finally:
        timer.cancel()
        await limiter.aclose()
