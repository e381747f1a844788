"""A received message taken apart for people to read, as Mailpit shows one: every header
decoded, the HTML and text parts, the MIME structure, the attachments, and at a glance
its List-Unsubscribe (RFC 2369 / RFC 8058) and DKIM-Signature headers. Never raises on a
malformed message: what cannot be decoded is shown as received."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage, Message
from email.parser import BytesParser

from mailshot.esp.outbox.headers import decoded

#: A reference to something the browser would fetch from elsewhere (an image, a style).
_REMOTE = re.compile(
    r"""(?:\bsrc|\bbackground|\bposter)\s*=\s*["']?\s*(?:https?:)?//|url\(\s*["']?\s*(?:https?:)?//""",
    re.IGNORECASE,
)
_ANGLED = re.compile(r"<([^<>]*)>")
_TAG = re.compile(r"(?:^|;)\s*([a-z]+)\s*=\s*([^;]*)", re.IGNORECASE)


@dataclass(frozen=True)
class Part:
    """One node of the MIME tree."""

    depth: int
    content_type: str
    charset: str
    disposition: str
    filename: str
    size: int  # bytes of the decoded body (0 for a multipart)


@dataclass(frozen=True)
class Dkim:
    domain: str
    selector: str
    signed_headers: str


@dataclass
class MessageView:
    headers: list[tuple[str, str]] = field(default_factory=list)
    html: str | None = None
    text: str | None = None
    parts: list[Part] = field(default_factory=list)
    attachments: list[Part] = field(default_factory=list)
    unsubscribe: list[str] = field(default_factory=list)
    one_click: bool = False
    dkim: list[Dkim] = field(default_factory=list)
    remote_content: bool = False
    defects: int = 0


def _content(part: Message) -> str | None:
    try:
        body = part.get_content() if isinstance(part, EmailMessage) else None
    except Exception:
        body = None
    if isinstance(body, str):
        return body
    payload = part.get_payload(decode=True)
    if isinstance(payload, bytes):
        return payload.decode(part.get_content_charset() or "utf-8", errors="replace")
    return None


def _size(part: Message) -> int:
    if part.is_multipart():
        return 0
    try:
        payload = part.get_payload(decode=True)
    except Exception:
        return 0
    return len(payload) if isinstance(payload, bytes) else 0


def _header(msg: Message, name: str) -> list[str]:
    try:
        return [decoded(v) for v in msg.get_all(name, [])]
    except Exception:
        return []


def _walk(msg: Message, depth: int, view: MessageView) -> None:
    try:
        disposition = msg.get_content_disposition() or ""
        filename = decoded(msg.get_filename() or "")
    except Exception:
        disposition, filename = "", ""
    ctype = msg.get_content_type()
    node = Part(depth, ctype, msg.get_content_charset() or "", disposition, filename, _size(msg))
    view.parts.append(node)
    if msg.is_multipart():
        for child in msg.get_payload():
            if isinstance(child, Message):
                _walk(child, depth + 1, view)
        return
    if disposition == "attachment" or (filename and disposition != "inline"):
        view.attachments.append(node)
    elif ctype == "text/html" and view.html is None:
        view.html = _content(msg)
    elif ctype == "text/plain" and view.text is None:
        view.text = _content(msg)
    elif disposition == "inline" and filename:
        view.attachments.append(node)


def parse(raw: bytes) -> MessageView:
    """``raw`` taken apart (see the module's docstring)."""
    view = MessageView()
    try:
        msg = BytesParser(policy=policy.default).parsebytes(raw)
    except Exception:
        view.text = raw.decode("utf-8", errors="replace")
        return view
    for name in dict.fromkeys(k for k, _ in msg.raw_items()):
        for value in _header(msg, name):
            view.headers.append((name, value))
    _walk(msg, 0, view)
    view.defects = sum(len(getattr(p, "defects", [])) for p in msg.walk())
    for value in _header(msg, "List-Unsubscribe"):
        view.unsubscribe += [u.strip() for u in _ANGLED.findall(value) if u.strip()]
    view.one_click = any(
        v.replace(" ", "").lower() == "list-unsubscribe=one-click"
        for v in _header(msg, "List-Unsubscribe-Post")
    )
    for value in _header(msg, "DKIM-Signature"):
        tags = {k.lower(): " ".join(v.split()) for k, v in _TAG.findall(value)}
        view.dkim.append(Dkim(tags.get("d", ""), tags.get("s", ""), tags.get("h", "")))
    view.remote_content = bool(view.html and _REMOTE.search(view.html))
    return view
