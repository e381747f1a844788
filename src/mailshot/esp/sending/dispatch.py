"""The shared state of one delivery engine: envelopes waiting, results out, what is in
flight per relay and destination domain, and how a transaction's end becomes the
envelope's one result (with the back-offs it starts, and the one more try of a message
whose connection failed before its data went out). The workers (:mod:`.worker`) and the
caller's side (:mod:`.engine`) both act on it."""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Sequence

from mailshot.core.clock import utcnow
from mailshot.esp.sending.domains import DomainPolicy, Domains, domain_of
from mailshot.esp.sending.outcomes import DeliveryResult, Envelope, Outcome, queue_id
from mailshot.esp.sending.ratelimit import LocalRateLimiter, RateLimiter
from mailshot.esp.sending.relays import RelayBackoff, RelaySettings
from mailshot.esp.sending.smtp import Done, Flight, SmtpConnection

#: How far down the waiting envelopes a worker looks for one whose destination domain is
#: not at its limit (the rest wait for the head of the line to move).
PICK_SCAN = 256


class Item:
    __slots__ = ("domain", "envelope", "tries")

    def __init__(self, envelope: Envelope) -> None:
        self.envelope = envelope
        self.domain = domain_of(envelope.rcpt_to)
        self.tries = 0


class Relay:
    def __init__(self, settings: RelaySettings) -> None:
        self.settings = settings
        self.name = settings.name
        self.backoff = RelayBackoff(settings.backoff_initial, settings.backoff_max)
        self.open_connections = 0


class Dispatch:
    """See the module docstring; :class:`.engine.SmtpSender` is the one to use."""

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
        self._relays = [Relay(r) for r in relays]
        self._limiter = limiter or LocalRateLimiter()
        self.domains = Domains(domain_policy)
        self._max_pending = max_pending
        self._idle_timeout = idle_timeout
        self._ready: deque[Item] = deque()
        self._results: deque[DeliveryResult] = deque()
        self._unconsumed = 0  # submitted, result not yet taken by the consumer
        self._in_flight = 0
        self.closed = False
        self.stopping = False
        self._changed = asyncio.Event()  # replaced at each notification (a broadcast)
        self._waiting = 0  # tasks waiting for it
        self._room = asyncio.Event()
        self._stop = asyncio.Event()
        self._workers: list[asyncio.Task[None]] = []
        self._hostname = ""

    async def wait(self) -> None:
        """Until the next change (an envelope in, a result out, a worker done)."""
        self._waiting += 1
        try:
            await self._changed.wait()
        finally:
            self._waiting -= 1

    def notify(self) -> None:
        if self._waiting:
            changed, self._changed = self._changed, asyncio.Event()
            changed.set()

    def emit(self, result: DeliveryResult) -> None:
        self._results.append(result)
        self.notify()

    def not_attempted(self, item: Item, why: str, retry_after: float | None = None) -> None:
        self.emit(
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

    def pick(self, relay: Relay) -> Item | None:
        """The first envelope waiting that ``relay`` may send now (its destination domain
        not at the relay's limit), among the first ``PICK_SCAN`` waiting; envelopes whose
        domain backs off are answered."""
        ready, domains = self._ready, self.domains
        limit = relay.settings.max_per_domain
        i = 0
        while i < len(ready) and i < PICK_SCAN:
            item = ready[i]
            held = domains.backing_off(item.domain)
            if held is not None:
                del ready[i]
                self.not_attempted(
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

    async def take(self, relay: Relay, idle: float | None) -> Item | None:
        """The next envelope this relay may send; None when there are none left, or when
        ``idle`` seconds passed without one."""
        while True:
            item = self.pick(relay) if not self.stopping else None
            if item is not None:
                return item
            if self.stopping or (self.closed and not self._ready and not self._in_flight):
                return None
            try:
                async with asyncio.timeout(idle):
                    await self.wait()
            except TimeoutError:
                return None

    async def pause(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._stop.wait()

    @staticmethod
    def drop(relay: Relay, conn: SmtpConnection) -> None:
        """Forget a connection (cut if still open); None, to assign to the worker's."""
        conn.abort()
        relay.open_connections -= 1
        return None

    def put_back(self, relay: Relay, item: Item) -> None:
        """An envelope taken and not begun after all: first in line again."""
        self.domains.release(relay.name, item.domain)
        self._in_flight -= 1
        self._ready.appendleft(item)

    def retry_or_defer(
        self, relay: Relay, item: Item, code: int | None, text: str, retry_after: float | None
    ) -> None:
        """A message that never went out: once more on another connection, else deferred."""
        if item.tries == 0 and not self.stopping:
            item.tries = 1
            self.put_back(relay, item)
            self.notify()
            return
        self.domains.release(relay.name, item.domain)
        self._in_flight -= 1
        self.emit(
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

    def finish(
        self, relay: Relay, flight: Flight, done: Done | None, *, final: bool = False
    ) -> None:
        """Turn how ``flight`` ended into its envelope's result (and back-offs);
        ``final``: no second try (the worker is being cancelled)."""
        item = item_of(flight)
        attempt_at = flight.started
        if done is None:  # stopped before any connection was there
            self.domains.release(relay.name, item.domain)
            self._in_flight -= 1
            self.not_attempted(item, "delivery stopped before this message")
            return
        reply = done.reply
        retry_after = None
        enhanced = None
        if reply is not None:
            enhanced = reply.enhanced
            if reply.code == 421:
                retry_after = relay.backoff.failed(str(reply))
            elif 200 <= reply.code < 300:
                relay.backoff.succeeded()
            if enhanced is not None and enhanced.startswith("4.7."):  # reply.rate_limited
                backoff = self.domains.rate_limited(item.domain, str(reply))
                retry_after = max(retry_after or 0.0, backoff)
            elif done.outcome is Outcome.SENT:
                self.domains.accepted(item.domain)
        elif attempt_at is not None and not (final or self.stopping):
            # the connection failed during the transaction: the relay backs off
            wait = relay.backoff.failed(done.text)
            if done.outcome is Outcome.DEFERRED:
                self.retry_or_defer(relay, item, None, done.text, wait)
                return
        self.domains.release(relay.name, item.domain)
        self._in_flight -= 1
        self.emit(
            DeliveryResult(
                item.envelope.key,
                done.outcome,
                reply.code if reply else None,
                enhanced,
                done.text,
                queue_id(reply.text) if reply and done.outcome is Outcome.SENT else None,
                relay.name,
                attempt_at,
                retry_after,
            )
        )


def item_of(flight: Flight) -> Item:
    assert isinstance(flight.tag, Item)
    return flight.tag
