"""The Outbox's SMTP server: aiosmtpd on an event loop of its own thread, accepting every
message from any sender to any recipient, within three bounds (message size: 552;
recipients per message: 452; connections at once: 421), and handing each message to the
:class:`~mailshot.esp.outbox.writer.BatchWriter`. ``250`` means the message is stored."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from contextlib import suppress
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session

from mailshot.core.clock import utcnow
from mailshot.core.db.engine import make_engine, make_sessionmaker
from mailshot.core.settings import Settings
from mailshot.esp.outbox.writer import BatchWriter
from mailshot.esp.services.outbox import Incoming, Retention

log = logging.getLogger(__name__)
logging.getLogger("mail.log").setLevel(logging.WARNING)  # aiosmtpd: a line per connection

IDENT = "mailshot Outbox"
#: An idle connection is closed after this many seconds.
IDLE_SECONDS = 120
STORE_FAILED = "451 4.3.0 The Outbox could not store the message; try again later"
TOO_MANY_CONNECTIONS = b"421 4.7.0 Too many connections to the Outbox; try again later\r\n"


class _Handler:
    def __init__(self, outbox: OutboxServer) -> None:
        self.outbox = outbox

    async def handle_EHLO(  # noqa: N802 (aiosmtpd's hook name)
        self, smtp: SMTP, session: Session, envelope: Envelope, hostname: str, responses: list[str]
    ) -> list[str]:
        session.host_name = hostname
        # Commands are read one line at a time, so a pipelining client is served in order.
        return [*responses[:-1], "250-PIPELINING", responses[-1]]

    async def handle_RCPT(  # noqa: N802 (aiosmtpd's hook name)
        self, smtp: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if len(envelope.rcpt_tos) >= self.outbox.max_recipients:
            return f"452 4.5.3 Too many recipients (the Outbox takes {self.outbox.max_recipients})"
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(options)
        return "250 2.1.5 OK"

    async def handle_DATA(  # noqa: N802 (aiosmtpd's hook name)
        self, smtp: SMTP, session: Session, envelope: Envelope
    ) -> str:
        loop = asyncio.get_running_loop()
        kept: asyncio.Future[int] = loop.create_future()

        def done(ident: int | None, error: BaseException | None) -> None:
            with suppress(RuntimeError):  # a closed loop: the client has gone already
                loop.call_soon_threadsafe(_settle, kept, ident, error)

        message = Incoming(
            received_at=utcnow(),
            mail_from=str(envelope.mail_from or ""),
            recipients=tuple(envelope.rcpt_tos),
            raw=envelope.original_content or b"",
        )
        self.outbox.writer.submit(message, done)
        try:
            ident = await kept
        except Exception:
            return STORE_FAILED
        return f"250 2.0.0 Ok: kept in the Outbox as message {ident}"


def _settle(future: asyncio.Future[int], ident: int | None, error: BaseException | None) -> None:
    if future.done():
        return
    if error is not None or ident is None:
        future.set_exception(error or RuntimeError("not stored"))
    else:
        future.set_result(ident)


class _OutboxSMTP(SMTP):
    """aiosmtpd's protocol, counted: past the connection bound a new one gets 421."""

    def __init__(self, outbox: OutboxServer, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._outbox = outbox
        self._refused = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if self.transport is None:  # the first call (STARTTLS is not offered)
            if len(self._outbox.connections) >= self._outbox.max_connections:
                self._refused = True
                assert isinstance(transport, asyncio.WriteTransport)
                transport.write(TOO_MANY_CONNECTIONS)
                transport.close()
                return
            self._outbox.connections.add(self)
        super().connection_made(transport)

    def connection_lost(self, error: Exception | None) -> None:
        if self._refused:
            return
        self._outbox.connections.discard(self)
        super().connection_lost(error)

    def eof_received(self) -> bool | None:
        if self._refused:
            return False
        return super().eof_received()


class OutboxServer:
    """The capture server of ``settings`` (``outbox_*``): :meth:`start` listens (port 0 picks
    a free port: see :attr:`port`), :meth:`stop` closes every connection and stores what
    had arrived."""

    def __init__(self, settings: Settings) -> None:
        self.host = settings.outbox_smtp_host
        self.port = settings.outbox_smtp_port
        self.max_connections = settings.outbox_max_connections
        self.max_recipients = settings.outbox_max_recipients
        self.max_message_bytes = settings.outbox_max_message_bytes
        self.connections: set[_OutboxSMTP] = set()
        self._engine = make_engine(settings.esp_db_url(), pool_size=2)
        keep = Retention(settings.outbox_keep_messages, settings.outbox_keep_bytes)
        self.writer = BatchWriter(make_sessionmaker(self._engine), keep)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def start(self) -> None:
        """Listen (on the server's own thread and loop); raise ``OSError`` when the
        address cannot be bound."""
        ready = threading.Event()
        failed: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            asyncio.set_event_loop(loop)
            try:
                server = loop.run_until_complete(
                    loop.create_server(self._factory(loop), self.host, self.port)
                )
            except BaseException as exc:
                failed.append(exc)
                loop.close()
                ready.set()
                return
            self.port = int(server.sockets[0].getsockname()[1])
            self._loop, self._server = loop, server
            ready.set()
            loop.run_forever()

        self.writer.start()  # before the first message can arrive
        self._thread = threading.Thread(target=run, name="mailshot-outbox-smtp", daemon=True)
        self._thread.start()
        ready.wait()
        if failed:
            self._thread = None
            self.writer.stop()
            self._engine.dispose()
            raise failed[0]

    def _factory(self, loop: asyncio.AbstractEventLoop) -> Callable[[], _OutboxSMTP]:
        handler = _Handler(self)

        def factory() -> _OutboxSMTP:
            return _OutboxSMTP(
                self,
                handler,
                data_size_limit=self.max_message_bytes,
                enable_SMTPUTF8=True,
                hostname="mailshot-outbox",
                ident=IDENT,
                timeout=IDLE_SECONDS,
                loop=loop,
            )

        return factory

    def stop(self, timeout: float = 10.0) -> None:
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        self._loop = self._thread = None
        future = asyncio.run_coroutine_threadsafe(self._shutdown(), loop)
        try:
            future.result(timeout)
        except Exception:
            log.exception("the Outbox's SMTP server did not stop cleanly")
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout)
        loop.close()
        self.writer.stop(timeout)
        self._engine.dispose()

    async def _shutdown(self) -> None:
        assert self._server is not None
        self._server.close()
        for smtp in list(self.connections):
            if smtp.transport is not None:
                smtp.transport.close()
        current = asyncio.current_task()
        tasks = [t for t in asyncio.all_tasks() if t is not current]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await asyncio.wait_for(self._server.wait_closed(), 2)
