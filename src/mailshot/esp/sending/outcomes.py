"""What goes into the SMTP engine and what comes out: an :class:`Envelope` in, exactly one
:class:`DeliveryResult` out, whose outcome is one of :class:`Outcome`. Also the reading of
replies: codes, RFC 3463 enhanced status codes, the relay's queue id.

The outcome rules (the engine applies them, see :mod:`mailshot.esp.sending.smtp`):

* ``sent``: a 2xx reply to the message data (after its terminating dot).
* ``deferred``: a 4xx reply at MAIL, RCPT, DATA or to the message data (421 included), or
  the connection could not be made, failed or was lost before the terminating dot was
  handed to the network: never delivered, safe to send again.
* ``failed``: a 5xx reply at MAIL, RCPT, DATA or to the message data; or an envelope the
  engine refuses to send (an address with control characters, or non-ASCII where the relay
  has no SMTPUTF8): then ``smtp_code`` is None.
* ``in_doubt``: the terminating dot went out and no reply came (connection lost or timed
  out): the relay may have accepted the message. Not to be retried by itself.
"""

from __future__ import annotations

import re
from datetime import datetime
from enum import StrEnum
from typing import NamedTuple


class Outcome(StrEnum):
    SENT = "sent"
    DEFERRED = "deferred"
    FAILED = "failed"
    IN_DOUBT = "in_doubt"


class Envelope(NamedTuple):
    """One message to one recipient. ``key`` is the caller's (the ledger row id);
    ``data`` is the whole RFC 5322 message; the engine makes its line ends CRLF and
    doubles leading dots, unless ``wire_ready`` says the producer did (it then only adds
    the terminating dot: for a 10 KB message that saves a few passes over it)."""

    key: int
    mail_from: str
    rcpt_to: str
    data: bytes
    wire_ready: bool = False


class DeliveryResult(NamedTuple):
    """The one result of an envelope.

    ``attempt_at`` is when its SMTP transaction began; None means nothing of it was sent to
    any relay (stopped, or its destination domain was backing off): the caller may put it
    back as it was. ``retry_after`` (seconds), when set, is the earliest sensible retry
    (a relay or destination domain backing off)."""

    key: int
    outcome: Outcome
    smtp_code: int | None
    enhanced_status: str | None
    text: str
    queue_id: str | None
    relay: str | None
    attempt_at: datetime | None
    retry_after: float | None = None

    @property
    def attempted(self) -> bool:
        return self.attempt_at is not None


class Reply(NamedTuple):
    """One SMTP reply; a multi-line reply's lines are joined with newlines."""

    code: int
    text: str

    @property
    def enhanced(self) -> str | None:
        """Its RFC 3463 status code (see :func:`enhanced_status`)."""
        return enhanced_status(self.code, self.text)

    @property
    def rate_limited(self) -> bool:
        """A 4.7.x reply: the receiver is limiting us (its destination domain backs off)."""
        status = self.enhanced
        return status is not None and status.startswith("4.7.")

    def __str__(self) -> str:
        return f"{self.code} {self.text}".rstrip()


_ENHANCED = re.compile(r"([245])\.(\d{1,3})\.(\d{1,3})(?![\d.])")
_QUEUE_ID = (
    re.compile(r"queued as\s+<?([\w.@+-]+?)>?(?:\s|$)", re.IGNORECASE),  # Postfix and many
    re.compile(r"\bid=([\w.-]+)"),  # Exim: "OK id=1tXyz-000abc-Q1"
)


def enhanced_status(code: int, text: str) -> str | None:
    """The RFC 3463 status at the start of a reply's text, when its class matches the
    reply code's (``250 2.0.0 Ok`` -> ``2.0.0``)."""
    if text[1:2] != "." or text[:1] != str(code)[:1]:
        return None  # the usual answer, without a regular expression
    m = _ENHANCED.match(text)
    return None if m is None else m.group(0)


def queue_id(text: str) -> str | None:
    """The relay's queue id in a reply to the message data, when it says one."""
    if "id=" in text or "queued as" in text.lower():
        for pattern in _QUEUE_ID:
            m = pattern.search(text)
            if m is not None:
                return m.group(1)
    return None


def outcome_of(code: int) -> Outcome:
    """The outcome a reply code stands for, when it ends a transaction."""
    if 200 <= code < 300:
        return Outcome.SENT
    if 400 <= code < 500:
        return Outcome.DEFERRED
    return Outcome.FAILED
