"""A send worker: one connection to one relay at a time, fed from the engine's
:class:`~mailshot.esp.sending.dispatch.Dispatch`. It pipelines the next envelope behind the
message going out when the relay allows it, takes its rate slots, closes the connection
after ``messages_per_connection`` or a while idle, and opens a new one after the relay's
back-off; whatever happens, every envelope it took ends in ``Dispatch.finish``."""

from __future__ import annotations

import asyncio
import logging

from mailshot.core.clock import utcnow
from mailshot.esp.sending.dispatch import Dispatch, Relay, item_of
from mailshot.esp.sending.outcomes import Outcome
from mailshot.esp.sending.ratelimit import RateLimiter
from mailshot.esp.sending.smtp import ConnectError, Done, Flight, SmtpConnection

log = logging.getLogger(__name__)


async def run_worker(
    d: Dispatch, relay: Relay, limiter: RateLimiter, default_hostname: str, idle_timeout: float
) -> None:
    """One connection's worth of work for ``relay``: take envelopes, keep a connection
    open (opening it after the relay's back-off), send, hand each end to ``d.finish``."""
    settings = relay.settings
    hostname = settings.local_hostname or default_hostname
    rate, per_connection = settings.messages_per_second, settings.messages_per_connection
    conn: SmtpConnection | None = None

    def take_next() -> Flight | None:
        """The next flight to pipeline behind the message going out, if one is ready
        now (and its rate slot is due): else None."""
        if d.stopping or conn is None:
            return None
        if per_connection and conn.transactions >= per_connection:
            return None
        item = d.pick(relay)
        if item is None:
            return None
        if rate and not limiter.try_acquire(relay.name, rate):
            d.put_back(relay, item)
            return None
        return Flight(item.envelope, item, utcnow())

    flight: Flight | None = None
    try:
        while not d.stopping:
            if flight is None:
                if conn is None and (wait := relay.backoff.remaining()) > 0:
                    await d.pause(wait)
                    continue
                item = await d.take(relay, idle_timeout if conn else None)
                if item is None:
                    if conn is None or d.stopping or d.closed:
                        break
                    await conn.quit()  # idle for a while: let the relay have it back
                    conn = d.drop(relay, conn)
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
                        d.retry_or_defer(relay, item_of(current), exc.code, exc.text, wait)
                        flight = None
                        continue
                if current.started is None:
                    if rate:
                        await limiter.acquire(relay.name, rate)
                    current.started = utcnow()
                done = await conn.send(current, take_next)
            except asyncio.CancelledError:
                for f in (current, conn.prefetched if conn else None):
                    if f is not None:
                        lost = conn.lost(f, "delivery stopped") if conn else None
                        d.finish(relay, f, lost, final=True)
                flight = None
                if conn is not None:
                    conn.prefetched = None
                raise
            except Exception as exc:  # a fault of ours: account for the message anyway
                log.exception("SMTP worker for relay %s", relay.name)
                why = f"internal error: {exc!r}"
                done = conn.lost(current, why) if conn else Done(Outcome.DEFERRED, None, why, False)
            d.finish(relay, current, done)
            flight = None
            if conn is None:
                continue
            flight, conn.prefetched = conn.prefetched, None
            if done is None or not done.usable or not conn.usable:
                if flight is not None:  # its commands went out on a connection now gone
                    d.finish(relay, flight, conn.lost(flight, done.text if done else ""))
                    flight = None
                conn = d.drop(relay, conn)
            elif flight is None and per_connection and conn.transactions >= per_connection:
                await conn.quit()
                conn = d.drop(relay, conn)
    finally:
        if flight is not None:  # stopped with a flight taken but not begun
            d.finish(relay, flight, None, final=True)
        if conn is not None:
            if d.stopping:
                conn.abort()
            else:
                await conn.quit()
            d.drop(relay, conn)
