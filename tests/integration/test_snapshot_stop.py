"""SQLite: a snapshot whose job ends while one of its statements runs is stopped in that
statement (a progress handler), not at its next checkpoint; and the handler never stays on
a pooled connection that another session gets next."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from mailshot.crm.sync import queue, wakeups
from mailshot.crm.sync.running import RunningSnapshots
from mailshot.db import make_engine, make_sessionmaker
from mailshot.migrate import upgrade
from tests.e2e.data import add_list, add_mailshot

#: A statement of far more than PROGRESS_STEPS steps (minutes if nothing stops it).
ENDLESS = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) SELECT max(i) FROM n"
#: A few million steps: a second or less.
LONG = (
    "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 300000)"
    " SELECT max(i) FROM n"
)


def test_an_ended_job_stops_its_snapshot_mid_statement(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'crm.db'}"
    upgrade("crm", url)
    engine = make_engine(url)
    sessions = make_sessionmaker(engine)
    running = RunningSnapshots(engine, sessions)
    wakeups.install(engine, sessions, wakeups.QueueSignal(), running.poke)
    list_id, _ = add_list(engine, "l", 3)
    mailshot_id = add_mailshot(engine, list_id, "Stopped")
    with sessions() as session:
        job_id = queue.request_sync(session, mailshot_id, chunk_size=10, preflight=False)

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
    engine.dispose()


def test_a_running_job_is_not_stopped(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'crm.db'}"
    upgrade("crm", url)
    engine = make_engine(url)
    sessions = make_sessionmaker(engine)
    running = RunningSnapshots(engine, sessions)
    list_id, _ = add_list(engine, "l", 3)
    mailshot_id = add_mailshot(engine, list_id, "Going on")
    with sessions() as session:
        job_id = queue.request_sync(session, mailshot_id, chunk_size=10, preflight=False)
    with sessions() as session, running.track(job_id, session) as stop:
        assert running.stop_ended() == []
        assert session.execute(text(LONG)).scalar_one() == 300000
        assert not stop.is_set()
    engine.dispose()


pytestmark = pytest.mark.timeout(60)
