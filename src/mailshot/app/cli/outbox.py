"""``mailshot outbox``: the Outbox from the terminal. ``serve`` runs its SMTP capture
server alone (for a deployment whose ESP runs elsewhere); ``list`` and ``show`` read the
messages it kept, from the ESP's database directly. :func:`start_embedded` is how
``mailshot serve`` starts it when no SMTP relay is configured."""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from mailshot.app.cli.common import console, database_error, fail, json_text, load_settings, shown
from mailshot.app.cli.errors import OUTBOX_CANNOT_LISTEN
from mailshot.core.db.engine import begin_read, make_sessionmaker, make_unpooled_engine
from mailshot.core.errors import AppError
from mailshot.core.logs import configure as configure_logging
from mailshot.core.safetext import plain
from mailshot.core.settings import Settings

if TYPE_CHECKING:
    from mailshot.esp.outbox.server import OutboxServer

log = logging.getLogger(__name__)

app = typer.Typer(
    help="The Outbox: where sent mail is kept when no SMTP relay is configured.",
    no_args_is_help=True,
)


def start_server(settings: Settings) -> OutboxServer:
    """The Outbox's SMTP server, listening; a busy address ends the command with its reason."""
    from mailshot.esp.outbox.server import OutboxServer

    server = OutboxServer(settings)
    try:
        server.start()
    except OSError as exc:
        fail(AppError(OUTBOX_CANNOT_LISTEN, address=server.address, reason=exc.strerror or exc))
    return server


def start_embedded(settings: Settings) -> OutboxServer | None:
    """For ``mailshot serve``: the Outbox's SMTP server when no relay is configured."""
    from mailshot.esp.outbox import outbox_needed

    if not outbox_needed(settings):
        return None
    server = start_server(settings)
    log.info(
        "Outbox: SMTP on %s; with no SMTP relay configured, sent mail goes there and is kept "
        "in the Outbox (%s/outbox)",
        server.address,
        settings.esp_base_url(),
    )
    return server


@app.command("serve")
def serve() -> None:
    """Run the Outbox's SMTP capture server alone until stopped (Ctrl-C or SIGTERM),
    keeping every message it receives in the ESP's database."""
    settings = load_settings()
    configure_logging(settings)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    server = start_server(settings)
    console.print(
        f"Outbox SMTP server on {shown(server.address)}: every message is kept in the ESP's"
        " database (see the ESP's Outbox page). Press Ctrl-C to stop."
    )
    stop.wait()
    server.stop()
    console.print("Outbox stopped.")


@contextmanager
def _reading(settings: Settings) -> Iterator[Session]:
    url = settings.esp_db_url()
    engine = make_unpooled_engine(url)
    try:
        with make_sessionmaker(engine)() as session:
            begin_read(session)
            yield session
    except OperationalError as exc:
        fail(database_error("esp", url, exc))
    finally:
        engine.dispose()


@app.command("list")
def list_messages(
    search: Annotated[
        str,
        typer.Option("--search", "-s", help="Only messages whose recipient or subject has this."),
    ] = "",
    limit: Annotated[
        int, typer.Option(help="How many messages, newest first.", min=1, max=1000)
    ] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """List the newest messages kept in the Outbox."""
    from mailshot.esp.services import outbox

    with _reading(load_settings()) as session:
        rows, _ = outbox.list_page(session, cursor=None, limit=limit, q=search)
        found = outbox.count(session, search)
    if as_json:
        items = [
            {
                "id": m.id,
                "received_at": m.received_at.isoformat(),
                "recipients": m.recipients.split("\n") if m.recipients else [],
                "subject": m.subject,
                "from": m.from_header,
                "size": m.size,
            }
            for m in rows
        ]
        console.print(json_text({"count": found, "items": items}), soft_wrap=True)
        return
    table = Table("ID", "Received", "To", "Subject", "Size")
    for m in rows:
        to = m.recipients.split("\n")[0] + (
            f" +{m.recipient_count - 1}" if m.recipient_count > 1 else ""
        )
        table.add_row(
            str(m.id),
            f"{m.received_at:%Y-%m-%d %H:%M:%S}",
            shown(to),
            shown(m.subject),
            str(m.size),
        )
    console.print(table)
    console.print(f"{found} message(s){' found' if search else ' kept'}; {len(rows)} shown.")


@app.command("show")
def show(
    message_id: Annotated[
        int, typer.Argument(help="The message's id (from `mailshot outbox list`).")
    ],
    raw: Annotated[bool, typer.Option("--raw", help="Print the raw source as received.")] = False,
) -> None:
    """Show one Outbox message: its headers and text part (or, with --raw, its source)."""
    from mailshot.esp.outbox.view import parse
    from mailshot.esp.services import outbox

    with _reading(load_settings()) as session:
        try:
            source = outbox.source(session, message_id)
        except AppError as exc:
            fail(exc)
    if raw:
        text = source.decode("utf-8", errors="replace").replace("\r\n", "\n")
        console.print(plain(text, keep_newlines=True), markup=False, highlight=False)
        return
    view = parse(source)
    for name, value in view.headers:
        console.print(f"[bold]{shown(name)}:[/] {shown(value)}", soft_wrap=True)
    glance = [
        f"List-Unsubscribe: {'yes' if view.unsubscribe else 'no'}",
        f"one-click: {'yes' if view.one_click else 'no'}",
        f"DKIM: {', '.join(f'd={d.domain} s={d.selector}' for d in view.dkim) or 'no'}",
        f"attachments: {len(view.attachments)}",
    ]
    console.print(f"\n[dim]{shown(' · '.join(glance))}[/]")
    console.print()
    if view.text is not None:
        console.print(plain(view.text, keep_newlines=True), markup=False, highlight=False)
    elif view.html is not None:
        console.print("(HTML only: open it in the ESP's Outbox page, or use --raw)")
