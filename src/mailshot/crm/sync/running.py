"""The audience snapshots this CRM process is taking, so that one whose job ends meanwhile
(superseded by a new Synchronise, cancelled) stops at once.

A snapshot otherwise notices only at its next checkpoint, and planning a large audience
is one long statement: a user pressing Synchronise again and again would keep several
such plans running for jobs that are already over, and every request of the process
would wait for the CPU. Here each snapshot registers its job while it runs;
after a commit that wrote sync units (see :mod:`mailshot.queue.wakeups`) a checker
thread reads the states of the registered jobs, and for one that has ended it sets the
snapshot's stop flag. On SQLite the snapshot's connection carries a progress handler that
aborts the running statement once the flag is set (so the statement fails with
"interrupted"); the handler is removed when the connection goes back to the pool, before
any other session can use it. On PostgreSQL the flag is seen at the next checkpoint.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, event, select
from sqlalchemy.orm import Session, sessionmaker

from mailshot.core.db.engine import read_only
from mailshot.crm.sync.states import JOB_ACTIVE
from mailshot.crm.sync.tables import jobs

log = logging.getLogger(__name__)

#: SQLite virtual-machine steps between two looks at a snapshot's stop flag (a look takes
#: the GIL, so not too often: about every few milliseconds of a long statement).
PROGRESS_STEPS = 1_000_000
#: The checker thread ends after this long without a snapshot to watch.
CHECKER_IDLE_SECONDS = 5.0


class RunningSnapshots:
    """Registry of running snapshots by job id, with their stop flags."""

    def __init__(self, engine: Engine, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions
        self._lock = threading.Lock()
        self._stops: dict[int, threading.Event] = {}
        self._poked = threading.Event()
        self._checker: threading.Thread | None = None
        self._sqlite = engine.dialect.name == "sqlite"
        if self._sqlite:
            event.listen(engine, "checkin", _clear_handler)

    @contextmanager
    def track(self, job_id: int, session: Session) -> Iterator[threading.Event]:
        """Register ``job_id``'s snapshot, taken in ``session``, while the block runs;
        yields its stop flag."""
        stop = threading.Event()

        def on_begin(_session: Session, _trans: Any, connection: Any) -> None:
            raw = connection.connection.driver_connection
            raw.set_progress_handler(lambda: 1 if stop.is_set() else 0, PROGRESS_STEPS)

        with self._lock:
            self._stops[job_id] = stop
            self._start_checker()
        if self._sqlite:
            event.listen(session, "after_begin", on_begin)
            if session.in_transaction():
                on_begin(session, None, session.connection())
        try:
            yield stop
        finally:
            if self._sqlite:
                event.remove(session, "after_begin", on_begin)
            with self._lock:
                self._stops.pop(job_id, None)

    def poke(self) -> None:
        """Sync units were written: have the checker look at the registered jobs."""
        if self._stops:
            self._poked.set()

    def stop_ended(self) -> list[int]:
        """Set the stop flag of every registered snapshot whose job has ended; answer
        their job ids."""
        with self._lock:
            ids = list(self._stops)
        if not ids:
            return []
        with read_only(self._sessions) as session:
            ended = list(
                session.scalars(
                    select(jobs.c.id).where(jobs.c.id.in_(ids), jobs.c.state.not_in(JOB_ACTIVE))
                )
            )
        with self._lock:
            for job_id in ended:
                if job_id in self._stops:
                    self._stops[job_id].set()
        return [int(j) for j in ended]

    def _start_checker(self) -> None:
        if self._checker is None or not self._checker.is_alive():
            self._checker = threading.Thread(
                target=self._check_loop, name="snapshot-stopper", daemon=True
            )
            self._checker.start()

    def _check_loop(self) -> None:
        """Look whenever poked; end once no snapshot has been registered for a while."""
        while True:
            if self._poked.wait(CHECKER_IDLE_SECONDS):
                self._poked.clear()
                try:
                    self.stop_ended()
                except Exception:  # a failed look only delays the stop to a checkpoint
                    log.warning("could not check the running snapshots' jobs", exc_info=True)
                continue
            with self._lock:
                if not self._stops:
                    self._checker = None
                    return


def _clear_handler(dbapi_connection: Any, _record: Any) -> None:
    # A pooled connection never keeps a snapshot's handler into another session (None:
    # the connection was invalidated and is not coming back).
    if dbapi_connection is not None:
        dbapi_connection.set_progress_handler(None, 0)
