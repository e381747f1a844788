"""The send runner: one worker that leases units of sends from the ESP database and
delivers them (:class:`SendRunner`).

Per unit: mark a window of due recipients ``sending`` (commit), render them with the send's
message (compiled once per send and process), hand them to the SMTP engine, and once the
window's results are in, write them in one transaction; at most two windows are in flight,
so a worker killed at any moment leaves at most two windows ``sending`` (in doubt after the
takeover) and sends no one twice. A paused send's unit is handed back at the next window;
a cancelled one's is dropped; a unit with only deferred recipients left is handed back
until the first is due. Database calls run in threads; the event loop only does SMTP.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import threading
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from mailshot.core.errors import AppError
from mailshot.core.settings import Settings
from mailshot.esp.models import Send
from mailshot.esp.sending import compose
from mailshot.esp.sending.config import effective_relays, send_context, sending_secret
from mailshot.esp.sending.engine import SmtpSender
from mailshot.esp.sending.merge import TemplateProblem
from mailshot.esp.sending.mime import AddressError
from mailshot.esp.sending.model import MessageContent, Recipient
from mailshot.esp.sending.outcomes import DeliveryResult, Envelope, Outcome
from mailshot.esp.sending.ratelimit import DbRateLimiter, RateLimiter
from mailshot.esp.sending.relays import RelaySettings
from mailshot.esp.sending.window import (
    Marked,
    RetryRule,
    Window,
    finish,
    mark,
    release,
    write_outcomes,
)
from mailshot.esp.services.sends_queue import LEASABLE_LANE, SEND_QUEUE
from mailshot.queue import Lease, claim, heartbeat, is_due

log = logging.getLogger(__name__)

#: Windows of one unit in flight at once.
IN_FLIGHT = 2


@dataclass
class _Flight:
    keys: set[int]
    send_id: int
    unit_id: int
    results: list[DeliveryResult] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return len(self.results) >= len(self.keys)


@dataclass
class _Tail:
    """A unit whose last window is still in flight while the worker starts its next unit
    (so the connections do not wait at each unit's end); it is finished, still under its
    lease and heartbeat, once that window is written."""

    lease: Lease
    flight: _Flight
    beat: asyncio.Task[None]


class SendRunner:
    """One send worker; :meth:`run` until ``stop`` is set."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        settings: Settings,
        *,
        worker_id: str | None = None,
        relays: Sequence[RelaySettings] | None = None,
        limiter: RateLimiter | None = None,
        poll_seconds: float = 0.5,
    ) -> None:
        self.sessions = sessions
        self.settings = settings
        self.worker_id = worker_id or f"send-{socket.gethostname()}-{os.getpid()}-{id(self):x}"
        self.relays = list(relays) if relays is not None else effective_relays(settings)
        self.limiter = limiter if limiter is not None else DbRateLimiter(sessions)
        self.poll_seconds = poll_seconds
        self.rule = RetryRule(
            settings.send_retry_initial_seconds,
            settings.send_retry_max_seconds,
            settings.send_give_up_seconds,
        )
        self._secret = sending_secret(settings)
        self._compiled: dict[int, compose.CompiledMessage] = {}
        self._by_key: dict[int, _Flight] = {}  # the flight of each envelope in the engine
        self.units_done = 0

    # ---- the loop -------------------------------------------------------------------
    async def run(self, stop: threading.Event, *, until_idle: bool = False) -> None:
        """Lease and deliver units until ``stop`` is set (or, ``until_idle``, until no
        unit is due)."""
        sender = SmtpSender(self.relays, limiter=self.limiter, max_pending=8 * self._window)
        await sender.start()
        tail: _Tail | None = None
        try:
            while not stop.is_set():
                lease = await asyncio.to_thread(self._claim)
                if lease is None:
                    if tail is not None:
                        await self._settle(tail, sender)
                        tail = None
                        continue
                    if until_idle:
                        return
                    await asyncio.sleep(self.poll_seconds)
                    continue
                try:
                    tail, carried = None, tail
                    tail = await self._work(lease, sender, stop, carried)
                except Exception:
                    log.exception("send unit %s failed; its lease will lapse", lease.unit_id)
                    await asyncio.sleep(self.poll_seconds)
            if tail is not None:
                await self._settle(tail, sender)
                tail = None
        finally:
            if tail is not None:
                tail.beat.cancel()
            await sender.stop(5.0)
            await self.limiter.aclose()

    @property
    def _window(self) -> int:
        return self.settings.send_window

    def _claim(self) -> Lease | None:
        with self.sessions() as session:
            if not is_due(SEND_QUEUE, session, lane=LEASABLE_LANE):
                session.rollback()
                return None
            return claim(
                SEND_QUEUE,
                session,
                worker_id=self.worker_id,
                lease_seconds=self.settings.lease_seconds,
                max_takeovers=self.settings.max_takeovers,
                lane=LEASABLE_LANE,
            )

    # ---- one unit -------------------------------------------------------------------
    async def _work(
        self, lease: Lease, sender: SmtpSender, stop: threading.Event, tail: _Tail | None
    ) -> _Tail | None:
        """Deliver the unit; ``tail``: the previous unit's last window, still in flight
        (it counts against :data:`IN_FLIGHT`). Answers this unit as a tail when its last
        window is in flight and nothing else is (the caller then claims the next one)."""
        compiled = await asyncio.to_thread(self._message, lease.job_id)
        beat = asyncio.create_task(self._heartbeat(lease))
        flights: deque[_Flight] = deque([tail.flight] if tail is not None else [])
        status = Marked.OK
        handed: _Tail | None = None
        try:
            while True:
                while status == Marked.OK and len(flights) < IN_FLIGHT and not stop.is_set():
                    own = any(f.unit_id == lease.unit_id for f in flights)
                    window = await asyncio.to_thread(self._mark, lease, own)
                    status = window.status
                    if status == Marked.EMPTY:
                        break
                    if status == Marked.OK:
                        flight = await self._submit(window, compiled, sender, lease)
                        flights.append(flight)
                        self._by_key.update(dict.fromkeys(flight.keys, flight))
                if status == Marked.EMPTY and len(flights) == 1 and not stop.is_set():
                    handed = _Tail(lease, flights[0], beat)  # (a tail's flight goes first)
                    return handed
                if not flights:
                    break
                drained = flights[0]
                await self._drain_oldest(flights, sender)
                if tail is not None and drained is tail.flight:
                    await self._end_tail(tail)
                    tail = None
                if status == Marked.EMPTY:
                    status = Marked.OK  # look again once the windows in flight are written
        finally:
            if handed is None:
                beat.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await beat
            if tail is not None:  # an error: the previous unit's lease will lapse too
                tail.beat.cancel()
        if status in (Marked.PAUSED,) or (status == Marked.OK and stop.is_set()):
            await asyncio.to_thread(self._release, lease)
        if status == Marked.DONE:
            self.units_done += 1
        return None

    async def _settle(self, tail: _Tail, sender: SmtpSender) -> None:
        """Write the tail's last window and finish its unit."""
        await self._drain_oldest(deque([tail.flight]), sender)
        await self._end_tail(tail)

    async def _end_tail(self, tail: _Tail) -> None:
        try:
            status = await asyncio.to_thread(self._finish, tail.lease)
        finally:
            tail.beat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await tail.beat
        if status == Marked.DONE:
            self.units_done += 1

    async def _submit(
        self, window: Window, compiled: compose.CompiledMessage, sender: SmtpSender, lease: Lease
    ) -> _Flight:
        flight = _Flight({row.id for row in window.rows}, lease.job_id, lease.unit_id)
        now = datetime.now(UTC)
        for row in window.rows:
            recipient = Recipient(
                recipient_id=row.id,
                contact_id=row.contact_id,
                crm_person_id=row.crm_person_id,
                email=row.email,
                first_name=row.first_name or "",
                last_name=row.last_name or "",
                organisation=row.organisation or "",
            )
            try:
                message = compiled.render(recipient, now=now)
            except (AddressError, TemplateProblem, ValueError) as exc:
                flight.results.append(_refused(row.id, str(exc)))
                continue
            await sender.submit(
                Envelope(
                    row.id,
                    message.envelope_from,
                    message.rcpt_to,
                    message.data,
                    message.wire_ready,
                )
            )
        return flight

    async def _drain_oldest(self, flights: deque[_Flight], sender: SmtpSender) -> None:
        oldest = flights[0]
        while not oldest.complete:
            results = await sender.wait_results()
            if not results:  # the sender was stopped: nothing more will come
                break
            for result in results:
                flight = self._by_key.pop(result.key, None)
                if flight is not None:
                    flight.results.append(result)
        flights.popleft()
        await asyncio.to_thread(self._write, oldest.send_id, oldest.results)

    async def _heartbeat(self, lease: Lease) -> None:
        every = self.settings.heartbeat_seconds
        while True:
            await asyncio.sleep(every)
            try:
                await asyncio.to_thread(self._beat, lease)
            except AppError:
                return  # lost or ended: the next window finds out

    # ---- database calls (in threads) ------------------------------------------------
    def _message(self, send_id: int) -> compose.CompiledMessage:
        cached = self._compiled.get(send_id)
        if cached is not None:
            return cached
        with self.sessions() as session:
            send = session.scalars(select(Send).where(Send.id == send_id)).one()
            content = MessageContent(
                subject=send.subject,
                from_name=send.from_name,
                from_address=send.from_address,
                reply_to=send.reply_to,
                html=send.html,
                text=send.text,
                list_name=send.list_name,
            )
            session.rollback()
        compiled = compose.compile_message(
            content, send_context(self.settings, send_id, self._secret)
        )
        self._compiled[send_id] = compiled
        return compiled

    def _mark(self, lease: Lease, in_flight: bool) -> Window:
        with self.sessions() as session:
            return mark(
                session,
                lease.unit_id,
                lease.token,
                window=self._window,
                lease_seconds=self.settings.lease_seconds,
                in_flight=in_flight,
            )

    def _write(self, send_id: int, results: list[DeliveryResult]) -> None:
        with self.sessions() as session:
            write_outcomes(session, send_id, results, self.rule)

    def _finish(self, lease: Lease) -> Marked:
        with self.sessions() as session:
            return finish(session, lease.unit_id, lease.token)

    def _release(self, lease: Lease) -> None:
        with self.sessions() as session:
            release(session, lease.unit_id, lease.token, None)

    def _beat(self, lease: Lease) -> None:
        with self.sessions() as session:
            heartbeat(
                SEND_QUEUE,
                session,
                lease.unit_id,
                lease.token,
                lease_seconds=self.settings.lease_seconds,
            )


def _refused(key: int, why: str) -> DeliveryResult:
    """The result of a recipient whose message cannot be built (never sent)."""
    return DeliveryResult(key, Outcome.FAILED, None, None, why, None, None, None)


def run_until_idle(sessions: sessionmaker[Session], settings: Settings, **options: Any) -> None:
    """Deliver every unit due now, then return (for tests and one-shot runs)."""
    runner = SendRunner(sessions, settings, **options)
    asyncio.run(runner.run(threading.Event(), until_idle=True))
