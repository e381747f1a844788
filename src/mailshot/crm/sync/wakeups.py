"""Wake-ups for workers waiting on the sync queue: the long-polling lease.

A worker that finds no unit to lease may ask the CRM to hold its ``POST /sync/lease`` open
for a while (``wait_seconds``). The CRM then waits on a :class:`QueueSignal`, which is
raised after every committed transaction of this process that wrote ``sync_units`` (a job
queued, chunks cut, a unit completed or failed), so the waiting lease looks again at once
instead of the worker polling on a timer. Units that become due with time alone (a lease
that expires, a retry's back-off) or are written by another process are seen when the wait
ends; the bridge keeps its waits short (``BridgeConfig.lease_wait_seconds``) for that.

The signal has a generation number: a waiter reads it before looking for work, and waits
only if nothing was raised since, so a unit queued between the look and the wait is not
missed.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any

from sqlalchemy import Engine, event
from sqlalchemy.orm import Session, sessionmaker

from mailshot.crm.sync.tables import units


class QueueSignal:
    """A generation counter that threads raise and event-loop tasks wait on."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._generation = 0
        self._waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = []

    @property
    def generation(self) -> int:
        return self._generation

    def raise_(self) -> None:
        """Wake every waiter (callable from any thread)."""
        with self._lock:
            self._generation += 1
            waiters, self._waiters = self._waiters, []
        for loop, future in waiters:
            loop.call_soon_threadsafe(_settle, future)

    async def wait(self, generation: int, timeout: float) -> bool:
        """Wait until the signal is raised after ``generation`` or ``timeout`` seconds pass;
        True when it was raised."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        with self._lock:
            if self._generation != generation:
                return True
            self._waiters.append((loop, future))
        try:
            await asyncio.wait_for(future, timeout)
            return True
        except TimeoutError:
            return False
        finally:
            with self._lock:
                if (loop, future) in self._waiters:
                    self._waiters.remove((loop, future))


def _settle(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


def install(
    engine: Engine,
    sessions: sessionmaker[Session],
    signal: QueueSignal,
    *also: Callable[[], None],
) -> None:
    """Raise ``signal`` (and call ``also``) after each commit of a ``sessions`` session
    that wrote sync units.

    A statement's thread marks the write; the session's ``after_commit`` (same thread: a
    session is not shared between threads) raises the signal once the data is visible."""
    marked = threading.local()

    def after_execute(
        _conn: Any, _cursor: Any, _sql: str, _params: Any, context: Any, _many: bool
    ) -> None:
        # Every write of sync units is a compiled INSERT or UPDATE of the table (Core or
        # ORM): its flags and target's name are read, not the SQL text (this runs after
        # every CRM statement).
        if (context.isinsert or context.isupdate) and getattr(
            getattr(context.compiled.statement, "table", None), "name", None
        ) == units.name:
            marked.units = True

    def after_commit(_session: Session) -> None:
        if getattr(marked, "units", False):
            marked.units = False
            signal.raise_()
            for call in also:
                call()

    def after_rollback(_session: Session) -> None:
        marked.units = False

    event.listen(engine, "after_cursor_execute", after_execute)
    event.listen(sessions, "after_commit", after_commit)
    event.listen(sessions, "after_rollback", after_rollback)
