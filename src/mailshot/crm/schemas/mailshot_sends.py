"""The mailshot's send as the CRM shows it (``GET /mailshots/{id}/send``, and ``send`` in a
mailshot): the ESP's last report, with its state in words and how far it is."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from mailshot.contracts.sends import RecipientState, SendCounts, SendErrorInfo, SendState
from mailshot.core.web.types import Count, Id
from mailshot.crm.models import MailshotSend

STATE_WORDS = {
    "scheduled": "Scheduled for later",
    "sending": "Sending now",
    "paused": "Paused",
    "sent": "Sent",
    "cancelled": "Cancelled",
    "failed": "Failed",
}


def done(row: MailshotSend) -> int:
    """Recipients in a final state (neither pending, sending nor deferred)."""
    return max(0, row.total - row.pending_count - row.sending_count - row.deferred_count)


def percent(row: MailshotSend) -> int:
    return min(100, (100 * done(row)) // row.total) if row.total else 0


class MailshotSendPublic(BaseModel):
    send_id: Id
    esp_campaign_id: Id = Field(description="The campaign's page in the ESP: /esp/campaigns/{id}.")
    state: SendState
    state_words: str
    total: Count
    counts: SendCounts
    done: Count = Field(description="Recipients in a final state (sent, failed, suppressed, ...).")
    percent: int = Field(ge=0, le=100)
    scheduled_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    paused_at: datetime | None
    rate_per_second: float | None
    eta_seconds: float | None
    last_error: SendErrorInfo | None
    version: Id = Field(description="The ESP's version of the send this report is of.")
    esp_changed_at: datetime = Field(description="When the ESP's send last changed.")
    received_at: datetime = Field(description="When the CRM received this report.")

    @classmethod
    def of(cls, row: MailshotSend) -> MailshotSendPublic:
        counts = SendCounts(**{s.value: getattr(row, f"{s.value}_count") for s in RecipientState})
        error = None
        if row.last_error_code:
            error = SendErrorInfo(
                code=row.last_error_code,
                message=row.last_error_message or "",
                fix=row.last_error_fix,
            )
        return cls(
            send_id=row.send_id,
            esp_campaign_id=row.esp_campaign_id,
            state=SendState(row.state),
            state_words=STATE_WORDS.get(row.state, row.state),
            total=row.total,
            counts=counts,
            done=done(row),
            percent=percent(row),
            scheduled_at=row.scheduled_at,
            started_at=row.started_at,
            finished_at=row.finished_at,
            paused_at=row.paused_at,
            rate_per_second=row.rate_per_second,
            eta_seconds=row.eta_seconds,
            last_error=error,
            version=row.version,
            esp_changed_at=row.esp_changed_at,
            received_at=row.received_at,
        )

    @classmethod
    def maybe(cls, value: Any) -> Any:
        """A stored row as its public form (anything else as it is)."""
        return cls.of(value) if isinstance(value, MailshotSend) else value
