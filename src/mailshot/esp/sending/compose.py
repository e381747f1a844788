"""The per-recipient message of a send: compiled once (templates checked and compiled,
links numbered, the pixel and unsubscribe footer added, fixed header fields and MIME
structure written, static body pieces encoded), then rendered per recipient by splicing
its values, tokens and signature into what was prepared.

Headers: Date, From, Reply-To, To, Subject, Message-ID ``<send.recipient.sig@domain>``
(the same for the same send and recipient), MIME-Version, ``List-Unsubscribe`` (HTTPS,
and a mailto when asked) with ``List-Unsubscribe-Post: List-Unsubscribe=One-Click``,
``Feedback-ID: <send>:mailshot`` (per send, as feedback loops aggregate), and
``X-Mailshot-Recipient: f+<send>-<recipient>-<sig>`` (a signed tag; ARF reports carry
the original headers, so a complaint finds its recipient with ``tokens.parse_tag``).
"""

from __future__ import annotations

import hmac
import re
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any
from urllib.parse import urlsplit

from jinja2 import Template, meta

from mailshot.esp.sending import merge, mime
from mailshot.esp.sending.dkim import DkimSigner, relaxed_header
from mailshot.esp.sending.htmltext import html_to_text
from mailshot.esp.sending.links import insert_before_body_end, rewrite_html, rewrite_text
from mailshot.esp.sending.merge import LINKS_NAME, OPEN_NAME, TemplateProblem
from mailshot.esp.sending.model import MessageContent, Recipient, RenderedMessage, SendContext
from mailshot.esp.sending.tokens import Signer, TokenKind, varint

HTML_FOOTER = (
    '<p style="margin:24px 0 0;font-size:12px;line-height:1.5;color:#666666;">'
    "{% if list_name %}You are receiving this email as a member of {{ list_name }}. "
    '{% endif %}<a href="{{ unsubscribe_url }}" style="color:#666666;">Unsubscribe</a></p>'
)
TEXT_FOOTER = (
    "\n-- \n{% if list_name %}You are receiving this email as a member of {{ list_name }}."
    "\n{% endif %}Unsubscribe: {{ unsubscribe_url }}\n"
)
PIXEL = (
    f'<img src="{{{{ {OPEN_NAME} }}}}" width="1" height="1" alt=""'
    ' style="display:block;width:1px;height:1px;border:0;">'
)
#: A line starting with a dot (a regular expression finds it faster than ``in`` does).
_DOT_LINE = re.compile(rb"\n\.")
_QP = b"; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n"


def _normalise(source: str | None) -> str | None:
    return None if source is None else source.replace("\r\n", "\n").replace("\r", "\n")


def check_template(
    content: MessageContent, custom_fields: frozenset[str] | None = None
) -> list[TemplateProblem]:
    """Every template problem of a campaign (subject, HTML, text): the preflight."""
    problems: list[TemplateProblem] = []
    if not content.html and not content.text:
        problems.append(TemplateProblem("html", None, "the campaign has no HTML or text body"))
    for field, source in (
        ("subject", content.subject),
        ("html", _normalise(content.html)),
        ("text", _normalise(content.text)),
    ):
        if not source:
            continue
        found = merge.check_source(field, source, custom_fields)
        if not found:
            failed = merge.trial(field, source)
            found = [failed] if failed else []
        problems.extend(found)
    return problems


def compile_message(content: MessageContent, context: SendContext) -> CompiledMessage:
    """The message of a send, ready to render; raises :class:`TemplateProblem` (the first
    one found), :class:`mime.AddressError` (sender, reply-to or a domain),
    :class:`dkim.DkimKeyError`, or ValueError for a tracking base that is not a URL.
    A compiled message is not picklable: compile it in each process that renders."""
    problems = check_template(content, context.custom_fields)
    if problems:
        raise problems[0]
    return CompiledMessage(content, context)


def _uses(source: str, name: str) -> bool:
    return name in meta.find_undeclared_variables(merge.environment("text").parse(source))


class _Part:
    """One body: its template and the static pieces it yields, encoded."""

    __slots__ = ("body", "field", "template")

    def __init__(self, field: str, source: str) -> None:
        problems = merge.check_source(field, source, allowed=merge.INJECTED_NAMES)
        if problems:  # only a text part derived from the HTML can get here
            raise problems[0]
        self.field = field
        self.template: Template = merge.compile_template(field, source)
        self.body = mime.QPBody(merge.static_strings(self.template))

    def render(self, values: dict[str, Any], known: dict[str, mime.Piece]) -> bytes:
        try:
            return self.body.join(merge.chunks(self.template, values), known)
        except Exception as exc:  # a user's template failing for this recipient
            raise merge.problem_from(self.field, self.template, exc) from exc


class CompiledMessage:
    """A send's message, compiled; :meth:`render` makes one recipient's message."""

    def __init__(self, content: MessageContent, context: SendContext) -> None:
        self.content = content
        self.context = context
        self._signer = Signer(context.secret)
        self._base = context.tracking_base_url.rstrip("/")
        parts = urlsplit(self._base)
        if parts.scheme not in ("http", "https") or not parts.netloc or parts.query:
            raise ValueError(f"the tracking base URL is not an http(s) URL: {self._base!r}")
        html = _normalise(content.html) or None
        text = _normalise(content.text) or None
        if html is not None and text is None:
            text = html_to_text(html)
        if text is not None and not text.endswith("\n"):
            text += "\n"
        self.links: list[str] = []
        if context.track_clicks:
            if html is not None:
                html = rewrite_html(html, self.links, self._base)
            if text is not None:
                text = rewrite_text(text, self.links, self._base)
        if html is not None:
            if not _uses(html, "unsubscribe_url"):
                html = insert_before_body_end(html, HTML_FOOTER)
            if context.track_opens:
                html = insert_before_body_end(html, PIXEL)
        if text is not None and not _uses(text, "unsubscribe_url"):
            text += TEXT_FOOTER
        self._html = _Part("html", html) if html is not None else None
        self._text = _Part("text", text) if text is not None else None
        self._link_suffixes = [varint(i) for i in range(len(self.links))]
        self._subject: Template | None = None
        self._subject_field = b""
        subject = _normalise(content.subject) or ""
        if "{" in subject:
            self._subject = merge.compile_template("subject", subject)
        else:
            self._subject_field = mime.unstructured("Subject", subject)
        self._dkim = DkimSigner(context.dkim) if context.dkim is not None else None
        longest = f"{self._base}/t/c/{'A' * 43}"  # a token of the largest ids and index
        self._plain_urls = mime.is_plain(longest)
        self._prepare_fixed()
        self._date: tuple[int, bytes] = (-1, b"")

    def _prepare_fixed(self) -> None:
        content, context = self.content, self.context
        self._from = mime.address_field("From", content.from_name, content.from_address)
        self._reply_to = (
            mime.address_field("Reply-To", "", content.reply_to) if content.reply_to else b""
        )
        self._bounce_domain = mime.addr_spec("x@" + context.bounce_domain)[2:]
        self._msgid_domain = mime.addr_spec("x@" + context.message_id_domain)[2:]
        send = context.send_id
        sig = hmac.digest(context.secret, b"mailshot.boundary:%d" % send, "sha256").hex()[:20]
        boundary = f"=_mailshot_{sig}".encode("ascii")
        fixed = [
            b"MIME-Version: 1.0\r\n",
            b"List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n",
            b"Feedback-ID: %d:mailshot\r\n" % send,
        ]
        if self._html is not None:
            fixed.append(b'Content-Type: multipart/alternative;\r\n boundary="%s"\r\n' % boundary)
            self._parts = (
                b"--" + boundary + b"\r\nContent-Type: text/plain" + _QP + b"\r\n",
                b"\r\n--" + boundary + b"\r\nContent-Type: text/html" + _QP + b"\r\n",
                b"\r\n--" + boundary + b"--\r\n",
            )
        else:
            fixed.append(b"Content-Type: text/plain; charset=utf-8\r\n")
            fixed.append(b"Content-Transfer-Encoding: quoted-printable\r\n")
            self._parts = (b"", b"", b"")  # a single part: its body alone
        self._fixed = fixed
        self._fixed_fields = [(raw.split(b":", 1)[0].lower().decode("ascii"), raw) for raw in fixed]
        self._canonical = {raw: relaxed_header(raw) for raw in [self._from, self._reply_to, *fixed]}
        if self._subject_field:
            self._canonical[self._subject_field] = relaxed_header(self._subject_field)

    def _date_field(self, now: datetime | None) -> tuple[int, bytes]:
        second = int((now or datetime.now(UTC)).timestamp())
        cached = self._date
        if cached[0] != second:
            when = datetime.fromtimestamp(second, UTC)
            cached = (second, b"Date: " + format_datetime(when).encode("ascii") + b"\r\n")
            self._date = cached
        return cached

    def render(self, recipient: Recipient, *, now: datetime | None = None) -> RenderedMessage:
        """One recipient's message. Raises :class:`mime.AddressError` for an address
        that cannot be sent to, :class:`TemplateProblem` if a template fails on its values."""
        signer, base, send, rid = (
            self._signer,
            self._base,
            self.context.send_id,
            recipient.recipient_id,
        )
        spec = mime.addr_spec(recipient.email)
        click = signer.token_prefix(TokenKind.CLICK, send, rid)
        unsubscribe_url = f"{base}/u/{signer.token(TokenKind.UNSUBSCRIBE, send, rid)}"
        values: dict[str, Any] = {
            "first_name": recipient.first_name,
            "last_name": recipient.last_name,
            "email": recipient.email,
            "organisation": recipient.organisation,
            "custom": merge.CustomFields(recipient.custom),
            "list_name": self.content.list_name,
            "unsubscribe_url": unsubscribe_url,
            LINKS_NAME: [f"{base}/t/c/{signer.seal(click + s)}" for s in self._link_suffixes],
        }
        open_url = ""
        if self.context.track_opens and self._html is not None:
            open_url = f"{base}/t/o/{signer.token(TokenKind.OPEN, send, rid)}.gif"
            values[OPEN_NAME] = open_url
        known: dict[str, mime.Piece] = {}
        if self._plain_urls:  # every URL made here is its own QP form
            plain = mime.plain
            known = {url: plain(url) for url in values[LINKS_NAME]}
            known[unsubscribe_url] = plain(unsubscribe_url)
            if open_url:
                known[open_url] = plain(open_url)
        text = self._text.render(values, known) if self._text is not None else b""
        html = self._html.render(values, known) if self._html is not None else b""
        if self._subject is not None:
            try:
                subject_text = "".join(merge.chunks(self._subject, values))
            except Exception as exc:  # a user's template failing for this recipient
                raise merge.problem_from("subject", self._subject, exc) from exc
            subject = mime.unstructured("Subject", subject_text)
        else:
            subject = self._subject_field
        display = f"{recipient.first_name or ''} {recipient.last_name or ''}".strip()
        tags = signer.tags(send, rid)
        message_id = f"<{send}.{rid}.{tags['id']}@{self._msgid_domain}>"
        unsubscribe = [f"<{unsubscribe_url}>"]
        if self.context.unsubscribe_mailto:
            unsubscribe[0] += ","
            unsubscribe.append(f"<mailto:{tags['u']}@{self._bounce_domain}?subject=unsubscribe>")
        second, date = self._date_field(now)
        fields: list[tuple[str, bytes]] = [
            ("date", date),
            ("from", self._from),
            ("to", mime.mailbox_field("To", display, spec)),
            ("subject", subject),
            ("message-id", b"Message-ID: " + message_id.encode("ascii") + b"\r\n"),
        ]
        if self._reply_to:
            fields.append(("reply-to", self._reply_to))
        fields.append(("list-unsubscribe", mime.words_field("List-Unsubscribe", unsubscribe)))
        fields.append(
            ("x-mailshot-recipient", f"X-Mailshot-Recipient: {tags['f']}\r\n".encode("ascii"))
        )
        fields.extend(self._fixed_fields)
        head, middle, tail = self._parts
        body = b"".join((head, text, middle, html, tail)) if self._html is not None else text
        out = b"".join([raw for _name, raw in fields])
        if self._dkim is not None:
            # the body's whitespace is already relaxed (see mime): only its end is checked
            out = self._dkim.sign(fields, body, second, self._canonical, True) + out
        data = out + b"\r\n" + body
        return RenderedMessage(
            envelope_from=f"{tags['b']}@{self._bounce_domain}",
            rcpt_to=spec,
            message_id=message_id,
            data=data,
            wire_ready=_DOT_LINE.search(data) is None,  # no header line starts with a dot
        )
