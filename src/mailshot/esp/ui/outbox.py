"""The Outbox pages: the messages the capture server received (newest first, searched by
recipient or subject) and one message as received (its HTML in a sandboxed frame served
with a policy of its own, remote images blocked until asked for, the text, the headers,
the MIME structure, the attachments and the raw source). Everything in a message is
untrusted: the templates escape it, and the frame's document can run nothing."""

from __future__ import annotations

from fastapi import Request, Response

from mailshot.core.settings import Settings
from mailshot.core.webui.auth import UserDep, page_router
from mailshot.core.webui.pages import DbDep, render
from mailshot.core.webui.paging import pager
from mailshot.esp.outbox import outbox_needed
from mailshot.esp.outbox.view import parse
from mailshot.esp.services import outbox

router = page_router()
PAGE_SIZE = 50

#: The policy of the frame's document: nothing runs, nothing loads but inline styles and
#: ``data:`` images (and, when asked, images, styles and fonts from anywhere); ``sandbox``
#: applies the frame's restrictions even to the document opened on its own.
_FRAME_CSP = (
    "default-src 'none'; style-src 'unsafe-inline'{remote}; img-src data:{remote}; "
    "font-src data:{remote}; form-action 'none'; base-uri 'none'; "
    "frame-ancestors 'self'; sandbox"
)
_NOTHING = "<!doctype html><meta charset=utf-8><p>This message has no HTML part.</p>"


def frame_policy(images: bool) -> str:
    return _FRAME_CSP.format(remote=" https: http:" if images else "")


@router.get("/outbox", name="esp_outbox")
def outbox_page(
    request: Request, db: DbDep, _: UserDep, q: str = "", cursor: str | None = None
) -> Response:
    settings: Settings = request.app.state.settings
    rows, next_cursor = outbox.list_page(db, cursor=cursor, limit=PAGE_SIZE, q=q)
    return render(
        request,
        "esp/outbox.html",
        {
            "title": "Outbox",
            "active": "esp_outbox",
            "messages": rows,
            "q": q,
            "found": outbox.count(db, q),
            "totals": outbox.totals(db),
            "smtp": f"{settings.outbox_smtp_host}:{settings.outbox_smtp_port}",
            "capturing": outbox_needed(settings),
        }
        | pager(request, next_cursor),
    )


@router.get("/outbox/{message_id}", name="esp_outbox_message")
def message_page(
    request: Request, db: DbDep, _: UserDep, message_id: int, images: bool = False
) -> Response:
    m = outbox.get(db, message_id)
    view = parse(outbox.source(db, message_id))
    return render(
        request,
        "esp/outbox_message.html",
        {
            "title": m.subject or "(no subject)",
            "active": "esp_outbox",
            "m": m,
            "view": view,
            "images": images,
            "recipients": m.recipients.split("\n") if m.recipients else [],
        },
    )


@router.get("/outbox/{message_id}/html", name="esp_outbox_html")
def message_html(db: DbDep, _: UserDep, message_id: int, images: bool = False) -> Response:
    """The message's HTML part as the frame's document, under :func:`frame_policy`."""
    html = parse(outbox.source(db, message_id)).html
    response = Response(html if html is not None else _NOTHING, media_type="text/html")
    response.headers["Content-Security-Policy"] = frame_policy(images)
    response.headers["X-Frame-Options"] = "SAMEORIGIN"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"  # remote images learn nothing
    response.headers["Cache-Control"] = "no-store"
    return response


@router.get("/outbox/{message_id}/raw", name="esp_outbox_raw")
def message_raw(db: DbDep, _: UserDep, message_id: int) -> Response:
    """The message as received, as a download (``message-ID.eml``)."""
    response = Response(outbox.source(db, message_id), media_type="message/rfc822")
    response.headers["Content-Disposition"] = f'attachment; filename="message-{message_id}.eml"'
    response.headers["Content-Security-Policy"] = "default-src 'none'; sandbox"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Cache-Control"] = "no-store"
    return response
