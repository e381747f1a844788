"""What a message is made from and what it becomes: the campaign's content, the send's
context, one recipient, and the rendered message handed to SMTP. Frozen dataclasses."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from mailshot.esp.sending.dkim import DkimConfig


@dataclass(frozen=True, slots=True)
class MessageContent:
    """A campaign's message. HTML only: a text part is derived from it; text only: the
    message is text/plain alone. Subject and bodies may hold merge fields."""

    subject: str
    from_name: str
    from_address: str
    reply_to: str | None = None
    html: str | None = None
    text: str | None = None
    #: The list or campaign name, ``{{ list_name }}``, said in the unsubscribe footer.
    list_name: str = ""


@dataclass(frozen=True, slots=True)
class SendContext:
    send_id: int
    #: The ESP's public base URL, e.g. ``https://esp.example.com/esp``: tracking links
    #: are ``<base>/t/c/<token>``, the pixel ``<base>/t/o/<token>.gif``, unsubscribe
    #: ``<base>/u/<token>``.
    tracking_base_url: str
    #: Domain of the VERP Return-Path ``b+<send>-<recipient>-<sig>@<bounce_domain>``.
    bounce_domain: str
    message_id_domain: str
    #: Signs tokens, VERP addresses and Message-IDs; the tracking endpoints need the same.
    secret: bytes
    dkim: DkimConfig | None = None
    track_opens: bool = True
    track_clicks: bool = True
    #: Also offer ``<mailto:u+<send>-<recipient>-<sig>@<bounce_domain>>`` in
    #: List-Unsubscribe (the bounce receiver then takes unsubscribe mail too).
    unsubscribe_mailto: bool = False
    #: The custom field names recipients may carry; None accepts any ``custom.NAME``.
    custom_fields: frozenset[str] | None = None


@dataclass(frozen=True, slots=True)
class Recipient:
    #: The send ledger's row id: tokens, VERP and Message-ID carry it.
    recipient_id: int
    contact_id: int
    crm_person_id: int | None
    email: str
    first_name: str = ""
    last_name: str = ""
    organisation: str = ""
    custom: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class RenderedMessage:
    #: MAIL FROM: the VERP address of this recipient and send.
    envelope_from: str
    #: RCPT TO (the recipient's address in ASCII form).
    rcpt_to: str
    #: With its angle brackets, as in the header.
    message_id: str
    #: The whole message: CRLF line ends, 7-bit, no line over 998 octets.
    data: bytes
    #: No line of ``data`` starts with a dot, so it goes out after DATA as it is (the
    #: engine's ``Envelope.wire_ready``): true of nearly every message, checked per message.
    wire_ready: bool = False
