"""Messages per second per relay, held across every send worker and process.

Virtual scheduling (GCRA): the ``send_rate_limits`` row of a relay holds the theoretical
arrival time (``tat``) of its next message. A process claims a batch of ``n`` slots in one
``UPDATE ... RETURNING``: the batch starts at ``max(tat, now)`` (the database's clock) and
``tat`` moves ``n / rate`` on; the process then hands the slots to its connections one by
one, each waiting for its own slot's time. Batches hold about 0.2 s of the rate (1 to 100
messages), so the database sees a few claims per second per process, not one per message.
Slots a process lets pass unused are dropped, not sent late in a burst; slots unused at
:meth:`DbRateLimiter.aclose` are given back when no one has claimed after them.
"""

from __future__ import annotations

import asyncio
import math
import time
from typing import Protocol

from sqlalchemy import Double, func, literal, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session, sessionmaker

from mailshot.core.db.engine import is_sqlite
from mailshot.esp.models.ratelimits import SendRateLimit

#: Seconds of a relay's rate claimed at once, and the bounds of a batch.
BATCH_SECONDS = 0.2
MAX_BATCH = 100


_PG_CLAIM = text(
    "UPDATE send_rate_limits SET tat = GREATEST(tat, clock.now) + :step,"
    " messages_per_second = :rate"
    " FROM (SELECT extract(epoch FROM clock_timestamp())::float8 AS now) AS clock"
    " WHERE relay = :relay RETURNING tat, clock.now"
)


class RateLimiter(Protocol):
    async def acquire(self, relay: str, rate: float) -> None:
        """Return when the next message through ``relay`` may go (``rate`` per second)."""

    def try_acquire(self, relay: str, rate: float) -> bool:
        """Take the next slot if it is due now, without waiting; else False."""

    async def aclose(self) -> None:
        """Give back what was claimed and not used."""


class _Slots:
    """A relay's claimed batch in this process: ``left`` slots, the next at ``next_at``
    (event-loop clock), one every ``interval`` seconds; ``end`` identifies the claim."""

    def __init__(self) -> None:
        self.lock = asyncio.Lock()
        self.left = 0
        self.next_at = 0.0
        self.interval = 0.0
        self.end = 0.0


class _Batched:
    """Hands out slots claimed in batches; subclasses say where a batch comes from."""

    def __init__(self, batch_seconds: float = BATCH_SECONDS, max_batch: int = MAX_BATCH) -> None:
        self._batch_seconds = batch_seconds
        self._max_batch = max_batch
        self._relays: dict[str, _Slots] = {}

    def batch_size(self, rate: float) -> int:
        return max(1, min(self._max_batch, math.floor(rate * self._batch_seconds)))

    async def acquire(self, relay: str, rate: float) -> None:
        slots = self._relays.get(relay)
        if slots is None:
            slots = self._relays[relay] = _Slots()
        loop = asyncio.get_running_loop()
        while True:
            if slots.left and slots.next_at < loop.time() - slots.interval:
                slots.left = 0  # unused slots gone by: dropped, never sent in a burst
            if slots.left:
                break
            async with slots.lock:
                if slots.left:
                    continue
                n = self.batch_size(rate)
                interval = 1.0 / rate
                delay, end = await self._claim(relay, n, interval, rate)
                slots.next_at = loop.time() + delay
                slots.left, slots.interval, slots.end = n, interval, end
            break
        at = slots.next_at
        slots.next_at += slots.interval
        slots.left -= 1
        wait = at - loop.time()
        if wait > 0:
            await asyncio.sleep(wait)

    def try_acquire(self, relay: str, rate: float) -> bool:
        """Take the next slot if it is due now (without waiting or claiming)."""
        slots = self._relays.get(relay)
        if slots is None or not slots.left:
            return False
        now = asyncio.get_running_loop().time()
        if slots.next_at > now or slots.next_at < now - slots.interval:
            return False
        slots.next_at += slots.interval
        slots.left -= 1
        return True

    async def aclose(self) -> None:
        for relay, slots in self._relays.items():
            if slots.left:
                left, slots.left = slots.left, 0
                await self._give_back(relay, left * slots.interval, slots.end)

    async def _claim(self, relay: str, n: int, interval: float, rate: float) -> tuple[float, float]:
        """Claim ``n`` slots: (seconds from now to the first, a token for give-back)."""
        raise NotImplementedError

    async def _give_back(self, relay: str, seconds: float, end: float) -> None:
        raise NotImplementedError


class LocalRateLimiter(_Batched):
    """The limit within this process only (a single sender with no database at hand)."""

    def __init__(self) -> None:
        super().__init__()
        self._tat: dict[str, float] = {}

    async def _claim(self, relay: str, n: int, interval: float, rate: float) -> tuple[float, float]:
        now = time.monotonic()
        start = max(self._tat.get(relay, 0.0), now)
        self._tat[relay] = start + n * interval
        return start - now, self._tat[relay]

    async def _give_back(self, relay: str, seconds: float, end: float) -> None:
        if self._tat.get(relay) == end:
            self._tat[relay] = end - seconds


class DbRateLimiter(_Batched):
    """The limit kept in the ESP database (``send_rate_limits``), shared by every
    process that sends. Claims run in a thread, each its own short write transaction."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        *,
        batch_seconds: float = BATCH_SECONDS,
        max_batch: int = MAX_BATCH,
    ) -> None:
        super().__init__(batch_seconds, max_batch)
        self._sessions = sessions
        self._known: set[str] = set()
        self.claims = 0  # claims made (for the benchmarks and the tests)

    async def _claim(self, relay: str, n: int, interval: float, rate: float) -> tuple[float, float]:
        start, now, end = await asyncio.to_thread(self._claim_now, relay, n, interval, rate)
        self.claims += 1
        # The database's "now" was read during the round trip: counting the delay from
        # the end of it makes the first slot come late by at most that trip, never early.
        return start - now, end

    def _claim_now(
        self, relay: str, n: int, interval: float, rate: float
    ) -> tuple[float, float, float]:
        table = SendRateLimit
        with self._sessions() as session, session.begin():
            sqlite = is_sqlite(session)
            if relay not in self._known:
                ins = (sqlite_insert if sqlite else pg_insert)(table)
                session.execute(
                    ins.values(
                        relay=relay, tat=0.0, messages_per_second=rate
                    ).on_conflict_do_nothing(index_elements=["relay"])
                )
                self._known.add(relay)
            if sqlite:  # a local file: the database's clock is this host's
                now = literal(time.time(), Double)
                row = session.execute(
                    update(table)
                    .where(table.relay == relay)
                    .values(tat=func.max(table.tat, now) + n * interval, messages_per_second=rate)
                    .returning(table.tat, now)
                ).one()
            else:  # the database's clock, read once for both SET and RETURNING
                row = session.execute(
                    _PG_CLAIM, {"relay": relay, "step": n * interval, "rate": rate}
                ).one()
        end, db_now = float(row[0]), float(row[1])
        return end - n * interval, db_now, end

    async def _give_back(self, relay: str, seconds: float, end: float) -> None:
        await asyncio.to_thread(self._give_back_now, relay, seconds, end)

    def _give_back_now(self, relay: str, seconds: float, end: float) -> None:
        table = SendRateLimit
        with self._sessions() as session, session.begin():
            session.execute(
                update(table)
                .where(table.relay == relay, table.tat == end)
                .values(tat=table.tat - seconds)
            )
