"""SQLite: a snapshot whose job ends while one of its statements runs is stopped in that
statement (a progress handler), not at its next checkpoint; and the handler never stays on
a pooled connection that another session gets next."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from mailshot.core.db.engine import make_engine, make_sessionmaker
from mailshot.core.db.migrate import upgrade
from mailshot.crm.sync import queue
from mailshot.crm.sync.running import RunningSnapshots
from mailshot.crm.sync.tables import units
from mailshot.queue import QueueSignal, install
from tests.support.e2e_data import add_list, add_mailshot

#: A statement of far more than PROGRESS_STEPS steps (minutes if nothing stops it).
ENDLESS = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) SELECT max(i) FROM n"
#: A few million steps: a second or less.
LONG = (
    "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 300000)"
    " SELECT max(i) FROM n"
)


@dataclass
class Crm:
    sessions: sessionmaker[Session]
    running: RunningSnapshots
    mailshot_id: int
    job_id: int


@pytest.fixture
def crm(tmp_path: Path) -> Iterator[Crm]:
    """A CRM database with a queued sync job, its registry of running snapshots, and the
    wake-ups that poke the registry after commits, as the CRM app wires them."""
    url = f"sqlite:///{tmp_path / 'crm.db'}"
    upgrade("crm", url)
    engine = make_engine(url)
    sessions = make_sessionmaker(engine)
    running = RunningSnapshots(engine, sessions)
    install(engine, sessions, units, QueueSignal(), running.poke)
    list_id, _ = add_list(engine, "l", 3)
    mailshot_id = add_mailshot(engine, list_id, "Snapshot")
    with sessions() as session:
        job_id = queue.request_sync(session, mailshot_id, chunk_size=10, preflight=False)
    yield Crm(sessions, running, mailshot_id, job_id)
    engine.dispose()


def test_an_ended_job_stops_its_snapshot_mid_statement(crm: Crm) -> None:
    sessions, running, mailshot_id, job_id = crm.sessions, crm.running, crm.mailshot_id, crm.job_id

    outcome: list[object] = []

    def snapshot_step() -> None:  # a plan's long read, in a read-only transaction
        with sessions() as session, running.track(job_id, session) as stop:
            session.connection(execution_options={"sqlite_begin": "DEFERRED"})
            try:
                session.execute(text(ENDLESS))
                outcome.append("finished")
            except OperationalError as exc:
                outcome.append((stop.is_set(), "interrupted" in str(exc)))

    worker = threading.Thread(target=snapshot_step)
    worker.start()
    time.sleep(0.3)
    assert worker.is_alive() and not outcome  # running, not stopped by anything else
    started = time.monotonic()
    with sessions() as session:
        queue.cancel(session, mailshot_id)  # commits: the job has ended
    worker.join(10)
    assert outcome == [(True, True)]
    assert time.monotonic() - started < 5

    # Every pooled connection runs a long statement to its end: none kept the handler,
    # though the stop flag it would look at is still set.
    held = [sessions() for _ in range(4)]
    for s in held:
        s.connection(execution_options={"sqlite_begin": "DEFERRED"})  # reads: no write turn
    try:
        assert [s.execute(text(LONG)).scalar_one() for s in held] == [300000] * 4
    finally:
        for s in held:
            s.close()


def test_a_running_job_is_not_stopped(crm: Crm) -> None:
    with crm.sessions() as session, crm.running.track(crm.job_id, session) as stop:
        assert crm.running.stop_ended() == []
        assert session.execute(text(LONG)).scalar_one() == 300000
        assert not stop.is_set()


pytestmark = pytest.mark.timeout(60)
