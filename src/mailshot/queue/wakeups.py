"""Wake-ups for workers waiting on a queue: the long-polling claim.

A worker that finds no unit to claim may have its request held open for a while. The
request then waits on a :class:`QueueSignal`, which :func:`install` raises after every
committed transaction of this process that wrote the queue's unit table (a job queued,
units cut, a unit completed or failed), so the waiting claim looks again at once instead
of the worker polling on a timer (:func:`long_poll`). Units that become due with time
alone (a lease that lapses, a retry's back-off) or are written by another process are
seen when the wait ends, so waits are kept short.

The signal has a generation number: a waiter reads it before looking for work, and waits
only if nothing was raised since, so a unit queued between the look and the wait is not
missed.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

import anyio.to_thread
from sqlalchemy import Engine, Table, event
from sqlalchemy.orm import Session, sessionmaker

T = TypeVar("T")


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


async def long_poll(
    signal: QueueSignal, attempt: Callable[[], T | None], seconds: float
) -> T | None:
    """Call ``attempt`` (blocking: in a worker thread) until it answers something, waiting
    for ``signal`` between calls, for at most ``seconds``; None when time is up."""
    deadline = time.monotonic() + seconds
    while True:
        generation = signal.generation
        found = await anyio.to_thread.run_sync(attempt)
        if found is not None:
            return found
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not await signal.wait(generation, remaining):
            return None


def install(
    engine: Engine,
    sessions: sessionmaker[Session],
    units: Table,
    signal: QueueSignal,
    *also: Callable[[], None],
) -> None:
    """Raise ``signal`` (and call ``also``) after each commit of a ``sessions`` session
    that wrote the table ``units``.

    A statement's thread marks the write; the session's ``after_commit`` (same thread: a
    session is not shared between threads) raises the signal once the data is visible."""
    marked = threading.local()
    name = units.name

    def after_execute(
        _conn: Any, _cursor: Any, _sql: str, _params: Any, context: Any, _many: bool
    ) -> None:
        # Every write of units is a compiled INSERT or UPDATE of the table (Core or ORM):
        # its flags and target's name are read, not the SQL text (this runs after every
        # statement of the engine).
        if (context.isinsert or context.isupdate) and getattr(
            getattr(context.compiled.statement, "table", None), "name", None
        ) == name:
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
