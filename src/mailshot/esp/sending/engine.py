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
        self._waiting = 0  # tasks waiting for it
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
        """Hand in an envelope (waits while ``max_pending`` results are not yet taken).
        After :meth:`stop` it comes back at once, not attempted."""
        while self._unconsumed >= self._max_pending and not self._stopping:
            self._room.clear()
            await self._room.wait()
        if self._closed and not self._stopping:
            raise RuntimeError("the sender is closed: no more envelopes")
        self._unconsumed += 1
        item = _Item(envelope)
        if self._stopping:
            self._not_attempted(item, "delivery stopped before this message")
            return
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
        self._room.set()
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
                await self._wait()

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
            await self._wait()
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

    async def _wait(self) -> None:
        """Until the next change (an envelope in, a result out, a worker done)."""
        self._waiting += 1
        try:
            await self._changed.wait()
        finally:
            self._waiting -= 1

    def _notify(self) -> None:
        if self._waiting:
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

    def _pick(self, relay: _Relay) -> _Item | None:
        """The first envelope waiting that ``relay`` may send now (its destination domain
        not at the relay's limit); envelopes whose domain backs off are answered."""
        ready, domains = self._ready, self.domains
        limit = relay.settings.max_per_domain
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
        return None

    async def _take(self, relay: _Relay, idle: float | None) -> _Item | None:
        """The next envelope this relay may send; None when there are none left, or when
        ``idle`` seconds passed without one."""
        while True:
            item = self._pick(relay) if not self._stopping else None
            if item is not None:
                return item
            if self._stopping or (self._closed and not self._ready and not self._in_flight):
                return None
            try:
                async with asyncio.timeout(idle):
                    await self._wait()
            except TimeoutError:
                return None

    async def _pause(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._stop.wait()

    async def _work(self, relay: _Relay) -> None:
        settings = relay.settings
        hostname = settings.local_hostname or self._hostname
        rate, per_connection = settings.messages_per_second, settings.messages_per_connection
        conn: SmtpConnection | None = None

        def take_next() -> Flight | None:
            """The next flight to pipeline behind the message going out, if one is ready
            now (and its rate slot is due): else None."""
            if self._stopping or conn is None:
                return None
            if per_connection and conn.transactions >= per_connection:
                return None
            item = self._pick(relay)
            if item is None:
                return None
            if rate and not self._limiter.try_acquire(relay.name, rate):
                self._put_back(relay, item)
                return None
            return Flight(item.envelope, item, utcnow())

        flight: Flight | None = None
        try:
            while not self._stopping:
                if flight is None:
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
                    flight = Flight(item.envelope, item)
                done: Done | None
                current = flight
                try:
                    if conn is None:
                        try:
                            conn = await SmtpConnection.open(settings, hostname)
                            relay.open_connections += 1
                        except ConnectError as exc:
                            wait = relay.backoff.failed(exc.text)
                            self._retry_or_defer(relay, _item(current), exc.code, exc.text, wait)
                            flight = None
                            continue
                    if current.started is None:
                        if rate:
                            await self._limiter.acquire(relay.name, rate)
                        current.started = utcnow()
                    done = await conn.send(current, take_next)
                except asyncio.CancelledError:
                    for f in (current, conn.prefetched if conn else None):
                        if f is not None:
                            lost = conn.lost(f, "delivery stopped") if conn else None
                            self._finish(relay, f, lost, final=True)
                    flight = None
                    if conn is not None:
                        conn.prefetched = None
                    raise
                except Exception as exc:  # a fault of ours: account for the message anyway
                    log.exception("SMTP worker for relay %s", relay.name)
                    done = conn.lost(current, f"internal error: {exc!r}") if conn else None
                self._finish(relay, current, done)
                flight = None
                if conn is None:
                    continue
                flight, conn.prefetched = conn.prefetched, None
                if done is None or not done.usable or not conn.usable:
                    if flight is not None:  # its commands went out on a connection now gone
                        self._finish(relay, flight, conn.lost(flight, done.text if done else ""))
                        flight = None
                    conn = self._drop(relay, conn)
                elif flight is None and per_connection and conn.transactions >= per_connection:
                    await conn.quit()
                    conn = self._drop(relay, conn)
        finally:
            if flight is not None:  # stopped with a flight taken but not begun
                self._finish(relay, flight, None, final=True)
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

    def _put_back(self, relay: _Relay, item: _Item) -> None:
        """An envelope taken and not begun after all: first in line again."""
        self.domains.release(relay.name, item.domain)
        self._in_flight -= 1
        self._ready.appendleft(item)

    def _retry_or_defer(
        self, relay: _Relay, item: _Item, code: int | None, text: str, retry_after: float | None
    ) -> None:
        """A message that never went out: once more on another connection, else deferred."""
        if item.tries == 0 and not self._stopping:
            item.tries = 1
            self._put_back(relay, item)
            self._notify()
            return
        self.domains.release(relay.name, item.domain)
        self._in_flight -= 1
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
        self, relay: _Relay, flight: Flight, done: Done | None, *, final: bool = False
    ) -> None:
        """Turn how ``flight`` ended into its envelope's result (and back-offs);
        ``final``: no second try (the worker is being cancelled)."""
        item = _item(flight)
        attempt_at = flight.started
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
                backoff = self.domains.rate_limited(item.domain, str(reply))
                retry_after = max(retry_after or 0.0, backoff)
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


def _item(flight: Flight) -> _Item:
    assert isinstance(flight.tag, _Item)
    return flight.tag


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
                await sender.submit(envelope)  # after a stop: answered at once
                if stop is not None and stop.is_set():
                    break
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
