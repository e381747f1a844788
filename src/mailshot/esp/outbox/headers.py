"""The headers a list shows of a received message (Subject, From, To, Message-ID), decoded
from the message's header block only (the plain ``compat32`` parse plus encoded words:
the structured parse of ``policy.default`` costs several times more per message), and any
header value decoded without ever raising: the message is untrusted and may be malformed."""

from __future__ import annotations

from contextlib import suppress
from dataclasses import dataclass
from email.header import decode_header, make_header
from email.parser import BytesHeaderParser
from typing import Any

from mailshot.esp.models.outbox import HEADER_MAX

_PARSER = BytesHeaderParser()


@dataclass(frozen=True)
class Summary:
    subject: str
    message_id: str
    from_header: str
    to_header: str


def header_block(raw: bytes) -> bytes:
    """The message's header lines (up to the first empty line)."""
    for sep in (b"\r\n\r\n", b"\n\n"):
        end = raw.find(sep)
        if end >= 0:
            return raw[: end + len(sep)]
    return raw


def decoded(value: Any) -> str:
    """A header value as people read it: encoded words decoded, folding undone. A value
    the ``email`` package cannot make sense of is decoded word by word, or kept as is."""
    try:
        text = str(value)
    except Exception:  # a malformed header object: fall back to its source
        text = getattr(value, "_parse_tree", "") or ""
    if "=?" in text:  # encoded words the parser left alone
        with suppress(Exception):  # else left as received
            text = str(make_header(decode_header(text)))
    return " ".join(text.split())


def clip(text: str, limit: int = HEADER_MAX) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def summary(raw: bytes) -> Summary:
    """Subject, Message-ID, From and To of ``raw`` (empty when absent), clipped for a list."""
    try:
        msg = _PARSER.parsebytes(header_block(raw))
    except Exception:
        return Summary("", "", "", "")

    def get(name: str) -> str:
        try:
            value = msg.get(name)
        except Exception:
            return ""
        return "" if value is None else clip(decoded(value))

    return Summary(get("Subject"), get("Message-ID"), get("From"), get("To"))
