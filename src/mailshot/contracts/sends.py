"""A send as the ESP reports it to the CRM: its states, its counts per recipient state, the
feed of sends changed since a cursor (``GET /esp/api/v1/sends?changed_after=``) and the
batch the bridge relays to the CRM (``PUT /crm/api/v1/integration/send-status``)."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Final

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from mailshot.core.web.types import Count, Id


class SendState(StrEnum):
    SCHEDULED = "scheduled"
    SENDING = "sending"
    PAUSED = "paused"
    SENT = "sent"
    CANCELLED = "cancelled"
    FAILED = "failed"


class RecipientState(StrEnum):
    PENDING = "pending"
    #: Marked before its data goes out; a worker that dies leaves it to become in_doubt.
    SENDING = "sending"
    SENT = "sent"
    #: A 4xx reply: retried at ``next_attempt_at``, failed after the give-up time.
    DEFERRED = "deferred"
    FAILED = "failed"
    SUPPRESSED = "suppressed"
    #: The data went out and no reply came: never resent unless an operator asks.
    IN_DOUBT = "in_doubt"
    #: Never sent: the send was cancelled first.
    CANCELLED = "cancelled"


#: Sends a feed page holds at most, and by default.
FEED_MAX_LIMIT: Final = 500
FEED_DEFAULT_LIMIT: Final = 100
#: The longest a cursor may be (they are much shorter).
CURSOR_MAX: Final = 64
SEND_ERROR_MAX: Final = 2000


class SendCounts(BaseModel):
    """Recipients of the send in each state; they add up to the send's total."""

    pending: Count = 0
    sending: Count = 0
    sent: Count = 0
    deferred: Count = 0
    failed: Count = 0
    suppressed: Count = 0
    in_doubt: Count = 0
    cancelled: Count = 0


class SendErrorInfo(BaseModel):
    code: str = Field(max_length=64)
    message: str = Field(max_length=SEND_ERROR_MAX)
    fix: str | None = Field(default=None, max_length=SEND_ERROR_MAX)


class SendSummary(BaseModel):
    """One send as the ESP has it now. ``version`` grows with every change of the send's
    row, so of two reports of one send the one with the higher version is the newer."""

    model_config = ConfigDict(extra="ignore")

    send_id: Id
    version: Id
    changed_at: AwareDatetime
    crm_mailshot_id: Id
    crm_mailshot_uid: str | None = Field(default=None, max_length=36)
    esp_campaign_id: Id
    state: SendState
    total: Count
    counts: SendCounts
    scheduled_at: AwareDatetime | None = None
    started_at: AwareDatetime | None = None
    finished_at: AwareDatetime | None = None
    paused_at: AwareDatetime | None = None
    rate_per_second: float | None = Field(default=None, ge=0)
    eta_seconds: float | None = Field(default=None, ge=0)
    last_error: SendErrorInfo | None = None


class SendFeedPage(BaseModel):
    """Sends changed after the cursor asked for, oldest change first. ``next_cursor`` is the
    cursor to ask with next (the one asked with, when nothing changed); ``more`` says a
    full page came and more may follow at once."""

    items: list[SendSummary]
    next_cursor: str | None = Field(default=None, max_length=CURSOR_MAX)
    more: bool = False


class SendStatusBatch(BaseModel):
    """What the bridge relays to the CRM: a feed page's sends and the cursor after them,
    stored in the same transaction (so a bridge that restarts resumes from there)."""

    model_config = ConfigDict(extra="forbid")

    items: list[SendSummary] = Field(max_length=FEED_MAX_LIMIT)
    cursor: str | None = Field(default=None, max_length=CURSOR_MAX)


class SendStatusAnswer(BaseModel):
    """What the CRM did with a batch: how many reports it stored, how many were no newer
    than what it had, and the mailshots it does not know (deleted, or another CRM's)."""

    applied: Count = 0
    unchanged: Count = 0
    unknown_mailshots: list[Id] = Field(default_factory=list)
    cursor: str | None = None


class SendFeedCursor(BaseModel):
    """The CRM's stored feed cursor (``GET /crm/api/v1/integration/send-status``)."""

    cursor: str | None = None


# ---- cursors: fixed-width text, so they order as strings as the feed does -------------
_TIME = "%Y%m%dT%H%M%S.%fZ"


def feed_cursor(changed_at: datetime, send_id: int) -> str:
    """The cursor just after the send ``send_id`` changed at ``changed_at``."""
    return f"{changed_at.astimezone(UTC).strftime(_TIME)}-{send_id:019d}"


def parse_feed_cursor(cursor: str) -> tuple[datetime, int]:
    """The change time and send id of a cursor; ValueError when it is not one."""
    when, sep, send_id = cursor.partition("-")
    if not sep or len(send_id) != 19 or not send_id.isdigit():
        raise ValueError("not a send feed cursor")
    return datetime.strptime(when, _TIME).replace(tzinfo=UTC), int(send_id)
