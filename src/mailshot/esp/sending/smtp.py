"""One SMTP connection to a relay, and the mail transactions over it, each with its exact
outcome (the rules: :mod:`mailshot.esp.sending.outcomes`).

aiosmtplib opens the connection: TCP, implicit TLS or STARTTLS, EHLO and AUTH. Then the
transport is handed to our own protocol for the transactions (:mod:`.wire`), because
aiosmtplib's ``data()`` (and its protocol's ``execute_data_command``) sends DATA, waits
for 354, writes the message and waits for the final reply under one call: a lost
connection or a timeout raises the same error whether it happened before the message went
out or after its terminating dot, and that difference is the one between ``deferred``
(never delivered, safe to retry) and ``in_doubt``. It also cannot pipeline. Here MAIL,
RCPT and DATA go in one write when the relay offers PIPELINING (RFC 2920), the message and
its dot in one write (with the next transaction's commands behind it), and the moment that
write happened is marked: a failure before it is ``deferred``, after it ``in_doubt``
(unless the transport still holds unsent bytes when the failure is judged: then the dot
never left this process and it is ``deferred``).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import cast

import aiosmtplib

from mailshot.esp.sending.outcomes import Envelope, Outcome, Reply, outcome_of
from mailshot.esp.sending.relays import RelaySettings, Security
from mailshot.esp.sending.wire import LostError, Wire, wire_data

_CONTROL = re.compile(r"[\x00-\x20\x7f<>]")


class ConnectError(Exception):
    """The connection could not be opened, secured, greeted or authenticated."""

    def __init__(self, text: str, code: int | None = None) -> None:
        super().__init__(text)
        self.text = text
        self.code = code


@dataclass(slots=True, eq=False)
class Flight:
    """One envelope's transaction in progress: how far it got. ``tag`` is the caller's;
    ``replies_due``: its commands went out (pipelined behind the message before it) and
    this many replies are still to be read."""

    envelope: Envelope
    tag: object = None
    started: datetime | None = None
    replies_due: int = 0
    dot_out: bool = False


@dataclass(slots=True)
class Done:
    """How a transaction ended. ``reply`` is the reply that decided it (None when the
    connection failed). ``usable``: the connection can carry the next message."""

    outcome: Outcome
    reply: Reply | None
    text: str
    usable: bool


class SmtpConnection:
    """An open, ready connection (greeted, secured, authenticated) to one relay.
    ``prefetched``: the flight whose commands went out behind the last message's data."""

    def __init__(self, relay: RelaySettings, wire: Wire, extensions: dict[str, str]) -> None:
        self.relay = relay
        self.wire = wire
        self.pipelining = "pipelining" in extensions
        self.smtputf8 = "smtputf8" in extensions
        self.eightbit = "8bitmime" in extensions
        self.size = "size" in extensions
        self.transactions = 0
        self.prefetched: Flight | None = None
        self._need_rset = False

    @property
    def usable(self) -> bool:
        return self.wire.closed is None and not self.wire.transport.is_closing()

    @classmethod
    async def open(cls, relay: RelaySettings, local_hostname: str) -> SmtpConnection:
        password = relay.password.get_secret_value() if relay.password else None
        client = aiosmtplib.SMTP(
            hostname=relay.host,
            port=relay.port,
            local_hostname=local_hostname,
            timeout=relay.timeouts.connect,
            use_tls=relay.security is Security.TLS,
            start_tls=relay.security is Security.STARTTLS,
            tls_context=relay.tls_context(),
            username=relay.username,
            password=password,
        )
        try:
            async with asyncio.timeout(relay.timeouts.connect):
                await client.connect()
                if client.is_ehlo_or_helo_needed:
                    await client.ehlo()
        except aiosmtplib.SMTPResponseException as exc:
            client.close()
            raise ConnectError(f"{exc.code} {exc.message}".strip(), exc.code) from exc
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            client.close()
            raise ConnectError(str(exc) or type(exc).__name__) from exc
        transport = cast(asyncio.WriteTransport | None, client.transport)  # uvloop's too
        if transport is None or transport.is_closing():
            client.close()
            raise ConnectError("connection closed during set-up")
        wire = Wire(transport)
        transport.set_protocol(wire)
        return cls(relay, wire, dict(client.esmtp_extensions))

    def _commands(self, env: Envelope) -> list[bytes]:
        params = b""
        if self.size:
            params += b" SIZE=%d" % len(env.data)
        if self.eightbit and not env.data.isascii():
            params += b" BODY=8BITMIME"
        if not (env.mail_from.isascii() and env.rcpt_to.isascii()):
            params += b" SMTPUTF8"
        return [
            b"MAIL FROM:<" + env.mail_from.encode() + b">" + params,
            b"RCPT TO:<" + env.rcpt_to.encode() + b">",
            b"DATA",
        ]

    async def send(
        self, flight: Flight, take_next: Callable[[], Flight | None] | None = None
    ) -> Done:
        """One transaction. Lost connections and timeouts come back as a Done with no
        reply: deferred, or in_doubt once ``flight.dot_out``. With PIPELINING,
        ``take_next`` may give the next flight, whose commands then go out in the same
        write as this message's data (``self.prefetched``)."""
        env = flight.envelope
        wire, timeouts = self.wire, self.relay.timeouts
        try:
            if flight.replies_due:
                replies = await wire.read(flight.replies_due, timeouts.command)
                rset = False
            else:
                refused = self._check(env)
                if refused is not None:
                    return Done(Outcome.FAILED, None, refused, usable=True)
                self.transactions += 1
                commands = self._commands(env)
                rset = self._need_rset
                if rset:
                    commands.insert(0, b"RSET")
                    self._need_rset = False
                replies = await self._exchange(commands)
            if rset:
                reply = replies.pop(0)
                if reply.code == 421:
                    return self._ended(reply)
            refusal = self._refusal(replies)
            if refusal is not None:
                self._need_rset = True
                if refusal.code == 421:
                    return self._ended(refusal)
                outcome = outcome_of(refusal.code)
                if len(replies) == 3 and replies[2].code == 354:
                    # DATA taken after a refusal (against RFC 2920): only cutting the
                    # connection ends it without a message going out
                    self.abort()
                    return Done(outcome, refusal, str(refusal), usable=False)
                return Done(outcome, refusal, str(refusal), usable=True)
            payload = env.data + b".\r\n" if env.wire_ready else wire_data(env.data)
            nxt = take_next() if take_next is not None and self.pipelining else None
            if nxt is not None:
                self.prefetched = nxt
                if self._check(nxt.envelope) is None:  # else refused when its turn comes
                    self.transactions += 1
                    payload += b"\r\n".join(self._commands(nxt.envelope)) + b"\r\n"
                    nxt.replies_due = 3
            wire.write(payload)
            flight.dot_out = True
            (final,) = await wire.read(1, timeouts.data)
        except LostError as exc:
            return self.lost(flight, str(exc))
        if final.code == 421:
            return self._ended(final)
        if final.code < 200 or 300 <= final.code < 400 or final.code >= 600:
            self.abort()
            return Done(Outcome.IN_DOUBT, final, f"unexpected reply to the message: {final}", False)
        return Done(outcome_of(final.code), final, str(final), usable=True)

    async def _exchange(self, commands: list[bytes]) -> list[Reply]:
        """Send MAIL, RCPT, DATA (and RSET before them): in one write with PIPELINING,
        else one at a time, stopping at a refused MAIL or RCPT."""
        wire, timeout = self.wire, self.relay.timeouts.command
        if self.pipelining:
            wire.write(b"\r\n".join(commands) + b"\r\n")
            return await wire.read(len(commands), timeout)
        replies = []
        for command in commands:
            wire.write(command + b"\r\n")
            (reply,) = await wire.read(1, timeout)
            replies.append(reply)
            if command not in (b"RSET", b"DATA") and not 200 <= reply.code < 300:
                break  # MAIL or RCPT refused: no DATA
        return replies

    def lost(self, flight: Flight, reason: str) -> Done:
        """The outcome of ``flight`` when its connection failed for ``reason``."""
        unsent = self.wire.unsent()
        self.abort()
        if flight.dot_out and not unsent:
            return Done(Outcome.IN_DOUBT, None, f"{reason} after the message was sent", False)
        return Done(Outcome.DEFERRED, None, f"{reason} before the message was sent", False)

    def _ended(self, reply: Reply) -> Done:
        """A 421 reply: the relay closes the connection; the message is deferred."""
        self.abort()
        return Done(Outcome.DEFERRED, reply, str(reply), usable=False)

    @staticmethod
    def _refusal(replies: list[Reply]) -> Reply | None:
        mail, *rest = replies
        if not 200 <= mail.code < 300:
            return mail
        if rest and rest[0].code not in (250, 251):
            return rest[0]
        if len(rest) == 2 and rest[1].code != 354:
            return rest[1]
        if len(rest) < 2:  # lock-step stopped early without a refusal: cannot happen
            return Reply(451, "4.3.0 transaction incomplete")
        return None

    def _check(self, env: Envelope) -> str | None:
        for address in (env.mail_from, env.rcpt_to):
            if _CONTROL.search(address) or (address and "@" not in address):
                return f"refused before sending: the address {address!r} cannot be sent"
            if not address.isascii() and not self.smtputf8:
                return f"refused before sending: {address!r} needs SMTPUTF8, not offered"
        if not env.rcpt_to:
            return "refused before sending: no recipient"
        return None

    async def quit(self) -> None:
        """Say QUIT and close; a relay that does not answer in 5 s is cut off."""
        if self.usable:
            try:
                self.wire.write(b"QUIT\r\n")
                await self.wire.read(1, min(5.0, self.relay.timeouts.command))
            except LostError:
                pass
        self.close()

    def close(self) -> None:
        if not self.wire.transport.is_closing():
            self.wire.transport.close()

    def abort(self) -> None:
        self.wire.transport.abort()
