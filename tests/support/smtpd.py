"""A real SMTP server for tests: aiosmtpd's Controller (its own thread and event loop) on a
free 127.0.0.1 port, with a handler that records every message with its envelope and the
time it arrived, counts connections, and whose replies a test can change per command
(:class:`Script`): a reply string, ``DROP`` (close the connection without replying) or
``CLOSE_AFTER`` + reply (reply, then close, as a server saying 421 does).
"""

from __future__ import annotations

import itertools
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

DROP = "DROP"
CLOSE_AFTER = "CLOSE_AFTER "


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class Received:
    mail_from: str
    rcpt_tos: tuple[str, ...]
    data: bytes
    at: float  # time.time() when the message data had arrived
    connection: int  # which connection (1, 2, ...) it came over


@dataclass
class Script:
    """What the server answers. Each hook gets the connection number, the count of MAIL
    commands seen on that connection (1 for the first) and the address; it returns None
    for the usual reply."""

    mail: Callable[[int, int, str], str | None] | None = None
    rcpt: Callable[[int, int, str], str | None] | None = None
    data: Callable[[int, int, tuple[str, ...]], str | None] | None = None
    ehlo_extra: list[str] = field(default_factory=list)  # e.g. ["PIPELINING"]
    data_delay: float = 0.0  # seconds to wait before answering the message data


class _Handler:
    def __init__(self, server: SmtpServer) -> None:
        self.server = server

    async def handle_EHLO(
        self, smtp: SMTP, session: Session, envelope: Envelope, hostname: str, responses: list[str]
    ) -> list[str]:
        session.host_name = hostname
        extra = [f"250-{x}" for x in self.server.script.ehlo_extra]
        return responses[:-1] + extra + responses[-1:]

    def _apply(self, smtp: SMTP, reply: str | None, default: str) -> str:
        if reply is None:
            return default
        if reply == DROP:
            smtp.transport.abort()
            return default  # never goes out: the connection is gone
        if reply.startswith(CLOSE_AFTER):
            smtp.loop.call_soon(smtp.transport.close)
            return reply[len(CLOSE_AFTER) :]
        return reply

    async def handle_MAIL(
        self, smtp: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        conn = self.server.connection_of(smtp)
        n = self.server.mail_count(smtp)
        hook = self.server.script.mail
        reply = hook(conn, n, address) if hook else None
        if reply is None:
            envelope.mail_from = address
            envelope.mail_options.extend(options)
        self.server.mail_options.append(list(options))
        return self._apply(smtp, reply, "250 2.1.0 OK")

    async def handle_RCPT(
        self, smtp: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        conn = self.server.connection_of(smtp)
        hook = self.server.script.rcpt
        reply = hook(conn, self.server.mails.get(conn, 0), address) if hook else None
        self.server.rcpt_seen.append(address)
        if reply is None:
            envelope.rcpt_tos.append(address)
            self.server.begin(address)
        return self._apply(smtp, reply, "250 2.1.5 OK")

    async def handle_DATA(self, smtp: SMTP, session: Session, envelope: Envelope) -> str:
        import asyncio

        conn = self.server.connection_of(smtp)
        rcpts = tuple(envelope.rcpt_tos)
        hook = self.server.script.data
        reply = hook(conn, self.server.mails.get(conn, 0), rcpts) if hook else None
        content = envelope.original_content or b""
        if reply is None or reply == DROP:  # the server has the message either way
            self.server.record(Received(str(envelope.mail_from), rcpts, content, time.time(), conn))
        if self.server.script.data_delay:
            await asyncio.sleep(self.server.script.data_delay)
        for address in rcpts:
            self.server.end(address)
        queue_id = f"Q{next(self.server.queue_ids)}"
        return self._apply(smtp, reply, f"250 2.0.0 Ok: queued as {queue_id}")


class SmtpServer:
    """The running server: ``port``, ``received``, ``connections`` (opened so far) and
    ``max_concurrent`` (connections open at once, at most)."""

    def __init__(self, script: Script | None = None) -> None:
        self.script = script or Script()
        self.port = 0
        self.received: list[Received] = []
        self.mail_options: list[list[str]] = []
        self.connections = 0
        self.open_now = 0
        self.max_concurrent = 0
        self.auth_mechanisms: list[str] = []
        self.rcpt_seen: list[str] = []  # every RCPT address, accepted or not
        self.opened_at: list[float] = []  # time.time() of each connection
        self.active: dict[str, int] = {}  # transactions under way per recipient domain
        self.max_active: dict[str, int] = {}
        self.mails: dict[int, int] = {}
        self.queue_ids = itertools.count(1)
        self._conn_no: dict[int, int] = {}
        self._lock = threading.Lock()

    def connection_of(self, smtp: SMTP) -> int:
        return self._conn_no[id(smtp)]

    def mail_count(self, smtp: SMTP) -> int:
        conn = self.connection_of(smtp)
        self.mails[conn] = self.mails.get(conn, 0) + 1
        return self.mails[conn]

    def record(self, message: Received) -> None:
        with self._lock:
            self.received.append(message)

    def begin(self, address: str) -> None:
        domain = address.rpartition("@")[2]
        with self._lock:
            self.active[domain] = self.active.get(domain, 0) + 1
            self.max_active[domain] = max(self.max_active.get(domain, 0), self.active[domain])

    def end(self, address: str) -> None:
        domain = address.rpartition("@")[2]
        with self._lock:
            self.active[domain] -= 1

    def opened(self, smtp: SMTP) -> None:
        with self._lock:
            self.opened_at.append(time.time())
            self.connections += 1
            self._conn_no[id(smtp)] = self.connections
            self.open_now += 1
            self.max_concurrent = max(self.max_concurrent, self.open_now)

    def closed(self) -> None:
        with self._lock:
            self.open_now -= 1

    def forget_probe(self) -> None:
        deadline = time.monotonic() + 5
        while self.open_now and time.monotonic() < deadline:
            time.sleep(0.01)
        with self._lock:
            self.connections = self.max_concurrent = 0
            self.opened_at.clear()
            self._conn_no.clear()
            self.mails.clear()

    def recipients(self) -> list[str]:
        return [r for m in self.received for r in m.rcpt_tos]


class _CountingSMTP(SMTP):
    def __init__(self, server: SmtpServer, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._server = server
        self._counted = False

    def connection_made(self, transport: Any) -> None:
        if not self._counted:  # not again for the TLS transport after STARTTLS
            self._counted = True
            self._server.opened(self)
        super().connection_made(transport)

    def connection_lost(self, error: Exception | None) -> None:
        self._server.closed()
        super().connection_lost(error)


class _Controller(Controller):
    def __init__(self, server: SmtpServer, handler: _Handler, **kwargs: Any) -> None:
        super().__init__(handler, **kwargs)
        self._server = server

    def factory(self) -> SMTP:
        return _CountingSMTP(self._server, self.handler, **self.SMTP_kwargs)


@contextmanager
def smtp_server(
    script: Script | None = None,
    *,
    tls: ssl.SSLContext | None = None,
    starttls: ssl.SSLContext | None = None,
    credentials: tuple[str, str] | None = None,
    auth_mechanisms: tuple[str, ...] = ("PLAIN", "LOGIN"),
) -> Iterator[SmtpServer]:
    """Run a server until the block ends. ``tls``: implicit TLS with that context;
    ``starttls``: STARTTLS offered and required; ``credentials``: AUTH required."""
    server = SmtpServer(script)
    server.port = free_port()
    kwargs: dict[str, Any] = {"hostname": "127.0.0.1", "port": server.port}
    kwargs["server_hostname"] = "mx.test"
    if tls is not None:
        kwargs["ssl_context"] = tls
    if starttls is not None:
        kwargs["tls_context"] = starttls
        kwargs["require_starttls"] = True
    if credentials is not None:

        def authenticator(
            smtp: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
        ) -> AuthResult:
            ok = (
                isinstance(data, LoginPassword)
                and (
                    data.login.decode(),
                    data.password.decode(),
                )
                == credentials
            )
            if ok:
                server.auth_mechanisms.append(mechanism)
            return AuthResult(success=ok, handled=False)  # aiosmtpd answers 235 or 535

        kwargs["authenticator"] = authenticator
        kwargs["auth_required"] = True
        # aiosmtpd knows of STARTTLS only; an implicit TLS connection is TLS already
        kwargs["auth_require_tls"] = starttls is not None
        all_mechanisms = {"PLAIN", "LOGIN"}
        kwargs["auth_exclude_mechanism"] = sorted(all_mechanisms - set(auth_mechanisms))
    controller = _Controller(server, _Handler(server), **kwargs)
    controller.start()  # it opens one probe connection: not counted
    server.forget_probe()
    try:
        yield server
    finally:
        controller.stop()
