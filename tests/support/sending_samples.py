"""Campaigns, send contexts and recipients the sending tests share, and the parse-back."""

from __future__ import annotations

import email
from email.message import EmailMessage
from email.policy import default
from typing import Any, cast

from mailshot.esp.sending.model import MessageContent, Recipient, SendContext

SECRET = b"test-secret-for-tokens-0123456789"
BASE = "https://esp.example.com/esp"

HTML = """<!DOCTYPE html>
<html><head><title>News</title><style>p { color: #333; }</style></head>
<body>
<h1>Hello {{ first_name | default("there") }},</h1>
<p>News for {{ organisation }} &amp; friends.</p>
<p><a href="https://shop.example.com/a?x=1&amp;y=2">Shop</a>
<a href='https://shop.example.com/b'>Second</a>
<a href="mailto:help@shop.example.com">Mail us</a> <a href="tel:+441234">Call</a>
<a href="#top">Top</a> <a href="/relative">Relative</a>
<a href="https://shop.example.com/p/{{ custom.code }}">Personal</a>
<a data-mailshot-notrack href="https://shop.example.com/private">Private</a>
<a href="https://shop.example.com/a?x=1&amp;y=2">Shop again</a></p>
<p>{{ custom.size | default("no size") }}</p>
</body></html>
"""

TEXT = """Hello {{ first_name | default("there") }},

Visit https://shop.example.com/b. Or https://shop.example.com/c (new).
Yours, {{ last_name }}
"""


def content(**changes: Any) -> MessageContent:
    values: dict[str, Any] = {
        "subject": "News for {{ first_name | default('you') }}",
        "from_name": "Hill & Dale",
        "from_address": "news@shop.example.com",
        "reply_to": "help@shop.example.com",
        "html": HTML,
        "text": TEXT,
        "list_name": "Newsletter",
    }
    values.update(changes)
    return MessageContent(**values)


def context(**changes: Any) -> SendContext:
    values: dict[str, Any] = {
        "send_id": 42,
        "tracking_base_url": BASE,
        "bounce_domain": "bounce.example.com",
        "message_id_domain": "esp.example.com",
        "secret": SECRET,
    }
    values.update(changes)
    return SendContext(**values)


def recipient(**changes: Any) -> Recipient:
    values: dict[str, Any] = {
        "recipient_id": 1001,
        "contact_id": 77,
        "crm_person_id": 5005,
        "email": "ann@example.org",
        "first_name": "Ann",
        "last_name": "Smith",
        "organisation": "Acme",
        "custom": {"size": "M", "code": "X1"},
    }
    values.update(changes)
    return Recipient(**values)


def parse(data: bytes) -> EmailMessage:
    return cast(EmailMessage, email.message_from_bytes(data, policy=default))


def part(message: EmailMessage, content_type: str) -> str:
    for item in message.walk():
        if item.get_content_type() == content_type and not item.is_multipart():
            # a decoded part keeps the CRLF line ends of the wire: read them as lines
            return cast(str, item.get_content()).replace("\r\n", "\n")
    raise AssertionError(f"no {content_type} part")


def check_wire_form(data: bytes) -> None:
    """CRLF line ends only, 7-bit, no line over 998 octets (RFC 5322), 76 in bodies."""
    assert data.isascii()
    assert b"\n" not in data.replace(b"\r\n", b"")
    assert b"\r" not in data.replace(b"\r\n", b"")
    _head, _, body = data.partition(b"\r\n\r\n")
    for line in data.split(b"\r\n"):
        assert len(line) <= 998
    for line in body.split(b"\r\n"):
        assert len(line) <= 76, line
