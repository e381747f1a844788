"""The delivery engine: envelopes in, one :class:`DeliveryResult` per envelope out, over
pools of persistent connections to one or more relays.

    async with SmtpSender(relays, limiter=DbRateLimiter(sessions)) as sender:
        await sender.submit(envelope)          # waits while max_pending are unreported
        ...
        sender.close()                         # no more envelopes
        async for result in sender.results():  # ends once every envelope has its result
            ...

or ``async for result in deliver(envelopes, relays, limiter)``. Every envelope submitted
gets exactly one result. ``await sender.stop(grace)`` ends early: envelopes not started
come back ``deferred`` with ``attempt_at=None`` (the caller may put them back as they
were); transactions under way get ``grace`` seconds, then are cut (``deferred``, or
``in_doubt`` once their data went out). A message whose connection failed before its data
went out is tried once more on another connection before it is reported ``deferred``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections import deque
from collections.abc import AsyncIterable, AsyncIterator, Sequence
from datetime import datetime
from types import TracebackType

from mailshot.clock import utcnow
from mailshot.esp.sending.domains import DomainPolicy, Domains, domain_of
from mailshot.esp.sending.outcomes import DeliveryResult, Envelope, Outcome, queue_id
from mailshot.esp.sending.ratelimit import LocalRateLimiter, RateLimiter
from mailshot.esp.sending.relays import RelayBackoff, RelaySettings
from mailshot.esp.sending.smtp import ConnectError, Done, Flight, SmtpConnection

log = logging.getLogger(__name__)


class _Item:
    __slots__ = ("domain", "envelope", "tries")

    def __init__(self, envelope: Envelope) -> None:
        self.envelope = envelope
        self.domain = domain_of(envelope.rcpt_to)
        self.tries = 0


class _Relay:
    def __init__(self, settings: RelaySettings) -> None:
        self.settings = settings
        self.name = settings.name
        self.backoff = RelayBackoff(settings.backoff_initial, settings.backoff_max)
        self.open_connections = 0


class SmtpSender:
    """Delivers envelopes through ``relays``; see the module docstring."""

    def __init__(
        self,
        relays: Sequence[RelaySettings],
        *,
        limiter: RateLimiter | None = None,
        domain_policy: DomainPolicy | None = None,
        max_pending: int = 1000,
        idle_timeout: float = 30.0,
    ) -> None:
        if not relays:
            raise ValueError("at least one relay is needed")
        if len({r.name for r in relays}) != len(relays):
            raise ValueError("relay names must be unique")
        self._relays = [_Relay(r) for r in relays]
        self._limiter = limiter or LocalRateLimiter()
        self.domains = Domains(domain_policy)
        self._max_pending = max_pending
        self._idle_timeout = idle_timeout
        self._ready: deque[_Item] = deque()
        self._results: deque[DeliveryResult] = deque()
        self._unconsumed = 0  # submitted, result not yet taken by the consumer
        self._in_flight = 0
        self._closed = False
        self._stopping = False
        self._changed = asyncio.Event()  # replaced at each notification (a broadcast)
        self._room = asyncio.Event()
        self._stop = asyncio.Event()
        self._workers: list[asyncio.Task[None]] = []
        self._hostname = ""

    async def __aenter__(self) -> SmtpSender:
        await self.start()
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        if et is None:
            self.close()
            await asyncio.gather(*self._workers)
        else:
            await self.stop(0)

    async def start(self) -> None:
        needs_fqdn = any(r.settings.local_hostname is None for r in self._relays)
        self._hostname = await asyncio.to_thread(socket.getfqdn) if needs_fqdn else ""
        for relay in self._relays:
            for _ in range(relay.settings.connections):
                self._workers.append(asyncio.create_task(self._work(relay)))

    # -- the caller's side ------------------------------------------------------------

    async def submit(self, envelope: Envelope) -> None:
        while self._unconsumed >= self._max_pending:
            self._room.clear()
            await self._room.wait()
        if self._closed or self._stopping:
            raise RuntimeError("the sender is closed")
        self._unconsumed += 1
        item = _Item(envelope)
        held = self.domains.backing_off(item.domain)
        if held is not None:
            self._not_attempted(item, f"destination domain backing off after: {held[1]}", held[0])
            return
        self._ready.append(item)
        self._notify()

    def close(self) -> None:
        """No more envelopes; the workers end once every one submitted has its result."""
        self._closed = True
        self._notify()

    async def stop(self, grace: float = 10.0) -> None:
        """End early (see the module docstring)."""
        self._closed = self._stopping = True
        self._stop.set()
        while self._ready:
            self._not_attempted(self._ready.popleft(), "delivery stopped before this message")
        self._notify()
        if self._workers:
            _, pending = await asyncio.wait(self._workers, timeout=grace)
            for task in pending:
                task.cancel()
            await asyncio.gather(*self._workers, return_exceptions=True)

    async def results(self) -> AsyncIterator[DeliveryResult]:
        """Results as they come; ends when the sender is closed and all are out."""
        while True:
            if self._results:
                self._unconsumed -= 1
                self._room.set()
                yield self._results.popleft()
            elif self._closed and self._unconsumed == 0:
                return
            else:
                await self._changed.wait()

    def take_results(self) -> list[DeliveryResult]:
        """Every result ready now (none waiting for)."""
        out = list(self._results)
        self._results.clear()
        self._unconsumed -= len(out)
        self._room.set()
        return out

    async def wait_results(self) -> list[DeliveryResult]:
        """At least one result, or [] once closed and all are out."""
        while not self._results:
            if self._closed and self._unconsumed == 0:
                return []
            await self._changed.wait()
        return self.take_results()

    def status(self) -> list[dict[str, object]]:
        """Each relay's state, for diagnosis."""
        return [
            {
                "relay": r.name,
                "open_connections": r.open_connections,
                "backoff_seconds": round(r.backoff.remaining(), 3),
                "failures_in_a_row": r.backoff.failures,
                "last_error": r.backoff.last_error,
            }
            for r in self._relays
        ]

    # -- the workers ------------------------------------------------------------------

    def _notify(self) -> None:
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    def _emit(self, result: DeliveryResult) -> None:
        self._results.append(result)
        self._notify()

    def _not_attempted(self, item: _Item, why: str, retry_after: float | None = None) -> None:
        self._emit(
            DeliveryResult(
                item.envelope.key,
                Outcome.DEFERRED,
                None,
                None,
                f"not attempted: {why}",
                None,
                None,
                None,
                retry_after,
            )
        )

    async def _take(self, relay: _Relay, idle: float | None) -> _Item | None:
        """The next envelope this relay may send; None when there are none left, or when
        ``idle`` seconds passed without one."""
        limit = relay.settings.max_per_domain
        domains = self.domains
        while True:
            ready = self._ready
            i = 0
            while i < len(ready):
                item = ready[i]
                held = domains.backing_off(item.domain)
                if held is not None:
                    del ready[i]
                    self._not_attempted(
                        item, f"destination domain backing off after: {held[1]}", held[0]
                    )
                    continue
                if domains.may_take(relay.name, item.domain, limit):
                    if i:
                        del ready[i]
                    else:
                        ready.popleft()
                    domains.take(relay.name, item.domain)
                    self._in_flight += 1
                    return item
                i += 1
            if self._stopping or (self._closed and not ready and not self._in_flight):
                return None
            try:
                async with asyncio.timeout(idle):
                    await self._changed.wait()
            except TimeoutError:
                return None

    async def _pause(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._stop.wait()

    async def _work(self, relay: _Relay) -> None:
        settings = relay.settings
        hostname = settings.local_hostname or self._hostname
        rate = settings.messages_per_second
        conn: SmtpConnection | None = None
        try:
            while not self._stopping:
                if conn is None and (wait := relay.backoff.remaining()) > 0:
                    await self._pause(wait)
                    continue
                item = await self._take(relay, self._idle_timeout if conn else None)
                if item is None:
                    if conn is None or self._stopping or self._closed:
                        break
                    await conn.quit()  # idle for a while: let the relay have it back
                    conn = self._drop(relay, conn)
                    continue
                flight = Flight(item.envelope)
                attempt_at = None
                done: Done | None
                try:
                    if conn is None:
                        try:
                            conn = await SmtpConnection.open(settings, hostname)
                            relay.open_connections += 1
                        except ConnectError as exc:
                            wait = relay.backoff.failed(exc.text)
                            self._retry_or_defer(relay, item, exc.code, exc.text, wait)
                            continue
                    if rate:
                        await self._limiter.acquire(relay.name, rate)
                    attempt_at = utcnow()
                    done = await conn.send(flight)
                except asyncio.CancelledError:
                    done = conn.lost(flight, "delivery stopped") if conn else None
                    self._finish(relay, item, done, attempt_at, final=True)
                    raise
                except Exception as exc:  # a fault of ours: account for the message anyway
                    log.exception("SMTP worker for relay %s", relay.name)
                    done = conn.lost(flight, f"internal error: {exc!r}") if conn else None
                self._finish(relay, item, done, attempt_at)
                if conn is not None and done is not None and done.usable:
                    limit = settings.messages_per_connection
                    if limit and conn.transactions >= limit:
                        await conn.quit()
                        conn = self._drop(relay, conn)
                elif conn is not None:
                    conn = self._drop(relay, conn)
        finally:
            if conn is not None:
                if self._stopping:
                    conn.abort()
                else:
                    await conn.quit()
                self._drop(relay, conn)

    @staticmethod
    def _drop(relay: _Relay, conn: SmtpConnection) -> None:
        """Forget a connection (cut if still open); None, to assign to the worker's."""
        conn.abort()
        relay.open_connections -= 1
        return None

    def _retry_or_defer(
        self, relay: _Relay, item: _Item, code: int | None, text: str, retry_after: float | None
    ) -> None:
        """A message that never went out: once more on another connection, else deferred."""
        self.domains.release(relay.name, item.domain)
        self._in_flight -= 1
        if item.tries == 0 and not self._stopping:
            item.tries = 1
            self._ready.appendleft(item)
            self._notify()
            return
        self._emit(
            DeliveryResult(
                item.envelope.key,
                Outcome.DEFERRED,
                code,
                None,
                text,
                None,
                relay.name,
                utcnow(),
                retry_after,
            )
        )

    def _finish(
        self,
        relay: _Relay,
        item: _Item,
        done: Done | None,
        attempt_at: datetime | None,
        *,
        final: bool = False,
    ) -> None:
        """Turn how the transaction ended into the envelope's result (and back-offs);
        ``final``: no second try (the worker is being cancelled)."""
        if done is None:  # stopped before any connection was there
            self.domains.release(relay.name, item.domain)
            self._in_flight -= 1
            self._not_attempted(item, "delivery stopped before this message")
            return
        reply = done.reply
        retry_after = None
        if reply is not None:
            if reply.code == 421:
                retry_after = relay.backoff.failed(str(reply))
            elif 200 <= reply.code < 300:
                relay.backoff.succeeded()
            if reply.rate_limited:
                retry_after = max(
                    retry_after or 0, self.domains.rate_limited(item.domain, str(reply))
                )
            elif done.outcome is Outcome.SENT:
                self.domains.accepted(item.domain)
        elif attempt_at is not None and not (final or self._stopping):
            # the connection failed during the transaction: the relay backs off
            wait = relay.backoff.failed(done.text)
            if done.outcome is Outcome.DEFERRED:
                self._retry_or_defer(relay, item, None, done.text, wait)
                return
        self.domains.release(relay.name, item.domain)
        self._in_flight -= 1
        self._emit(
            DeliveryResult(
                item.envelope.key,
                done.outcome,
                reply.code if reply else None,
                reply.enhanced if reply else None,
                done.text,
                queue_id(reply.text) if reply and done.outcome is Outcome.SENT else None,
                relay.name,
                attempt_at,
                retry_after,
            )
        )


async def deliver(
    envelopes: AsyncIterable[Envelope],
    relays: Sequence[RelaySettings],
    limiter: RateLimiter | None = None,
    *,
    stop: asyncio.Event | None = None,
    domain_policy: DomainPolicy | None = None,
    max_pending: int = 1000,
) -> AsyncIterator[DeliveryResult]:
    """Deliver every envelope of ``envelopes``, yielding one result each. Setting
    ``stop`` ends early as :meth:`SmtpSender.stop` does (envelopes not yet read from
    ``envelopes`` stay there); every envelope read gets its result before this ends.
    Leaving the loop early (``break``) stops the sender too, and the results not yet
    yielded are lost to the caller: set ``stop`` instead."""
    sender = SmtpSender(
        relays, limiter=limiter, domain_policy=domain_policy, max_pending=max_pending
    )
    await sender.start()

    async def feed() -> None:
        try:
            async for envelope in envelopes:
                if stop is not None and stop.is_set():
                    break
                await sender.submit(envelope)
        finally:
            sender.close()

    async def watch() -> None:
        assert stop is not None
        await stop.wait()
        await sender.stop()

    feeder = asyncio.create_task(feed())
    watcher = asyncio.create_task(watch()) if stop is not None else None
    try:
        async for result in sender.results():
            yield result
        await feeder
    finally:
        for task in (feeder, watcher):
            if task is not None and not task.done():
                task.cancel()
        await sender.stop(0)
