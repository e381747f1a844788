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
import socket
from collections.abc import AsyncIterable, AsyncIterator, Sequence
from types import TracebackType

from mailshot.esp.sending.dispatch import Dispatch, Item
from mailshot.esp.sending.domains import DomainPolicy
from mailshot.esp.sending.outcomes import DeliveryResult, Envelope
from mailshot.esp.sending.ratelimit import RateLimiter
from mailshot.esp.sending.relays import RelaySettings
from mailshot.esp.sending.worker import run_worker


class SmtpSender(Dispatch):
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
        super().__init__(
            relays,
            limiter=limiter,
            domain_policy=domain_policy,
            max_pending=max_pending,
            idle_timeout=idle_timeout,
        )

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
                self._workers.append(
                    asyncio.create_task(
                        run_worker(self, relay, self._limiter, self._hostname, self._idle_timeout)
                    )
                )

    # -- the caller's side ------------------------------------------------------------

    async def submit(self, envelope: Envelope) -> None:
        """Hand in an envelope (waits while ``max_pending`` results are not yet taken).
        After :meth:`stop` it comes back at once, not attempted."""
        while self._unconsumed >= self._max_pending and not self.stopping:
            self._room.clear()
            await self._room.wait()
        if self.closed and not self.stopping:
            raise RuntimeError("the sender is closed: no more envelopes")
        self._unconsumed += 1
        item = Item(envelope)
        if self.stopping:
            self.not_attempted(item, "delivery stopped before this message")
            return
        held = self.domains.backing_off(item.domain)
        if held is not None:
            self.not_attempted(item, f"destination domain backing off after: {held[1]}", held[0])
            return
        self._ready.append(item)
        self.notify()

    def close(self) -> None:
        """No more envelopes; the workers end once every one submitted has its result."""
        self.closed = True
        self.notify()

    async def stop(self, grace: float = 10.0) -> None:
        """End early (see the module docstring)."""
        self.closed = self.stopping = True
        self._stop.set()
        self._room.set()
        while self._ready:
            self.not_attempted(self._ready.popleft(), "delivery stopped before this message")
        self.notify()
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
            elif self.closed and self._unconsumed == 0:
                return
            else:
                await self.wait()

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
            if self.closed and self._unconsumed == 0:
                return []
            await self.wait()
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
