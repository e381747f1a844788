"""The queue's services with a controlled clock: expiry and takeover, backoff, retries
exhausted, a unit that keeps killing workers, and least-served-first fairness."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from mailshot.contracts.heartbeats import WorkerHeartbeat
from mailshot.contracts.units import UnitPublic
from mailshot.core.db.engine import make_engine, make_sessionmaker
from mailshot.core.errors import AppError
from mailshot.core.settings import Settings
from mailshot.crm.models import Mailshot, SyncJob
from mailshot.crm.models.sync import SyncLeaseLog
from mailshot.crm.sync import integration, prepare, progress, queue, work
from mailshot.queue import RetryPolicy
from tests.support.e2e_data import add_list, add_mailshot, crm_engine

T0 = datetime(2030, 1, 1, tzinfo=UTC)
LEASE = 10.0


@pytest.fixture
def session(settings: Settings) -> Iterator[Session]:
    engine = make_engine(settings.crm_db_url())
    with make_sessionmaker(engine)() as s:
        yield s
    engine.dispose()


def _mailshot(settings: Settings, n: int, tag: str) -> int:
    engine = crm_engine(settings)
    list_id, _ = add_list(engine, tag, n)
    mailshot_id = add_mailshot(engine, list_id, f"Mailshot {tag}")
    engine.dispose()
    return mailshot_id


def _lease(s: Session, at: datetime, worker: str = "w", takeovers: int = 5) -> UnitPublic:
    unit = work.lease(s, worker_id=worker, lease_seconds=LEASE, max_takeovers=takeovers, now=at)
    assert unit is not None
    return unit


def _prepared(s: Session, settings: Settings, n: int, tag: str, size: int) -> int:
    mailshot_id = _mailshot(settings, n, tag)
    queue.request_sync(s, mailshot_id, chunk_size=size, now=T0)
    unit = _lease(s, T0)
    prepare.prepare(s, unit.unit_id, unit.lease_token, now=T0)
    work.complete(s, unit.unit_id, unit.lease_token, esp_campaign_id="1", now=T0)
    return mailshot_id


def test_an_expired_lease_is_taken_over_and_the_old_holder_is_refused(
    session: Session, settings: Settings
) -> None:
    _prepared(session, settings, 5, "a", 5)
    first = _lease(session, T0, "w1")
    assert work.lease(session, worker_id="w2", lease_seconds=LEASE, max_takeovers=5, now=T0) is None
    # A heartbeat keeps it; once it lapses, the next lease takes it over.
    work.heartbeat(session, first.unit_id, first.lease_token, lease_seconds=LEASE, now=T0)
    later = T0 + timedelta(seconds=LEASE + 1)
    second = _lease(session, later, "w2")
    assert (second.unit_id, second.takeover) == (first.unit_id, True)
    with pytest.raises(AppError) as lost:
        work.complete(session, first.unit_id, first.lease_token, recipients_written=5, now=later)
    assert lost.value.code == "SYNC_LEASE_LOST"
    work.complete(session, second.unit_id, second.lease_token, recipients_written=5, now=later)
    job = session.scalars(select(SyncJob)).one()
    assert (job.chunks_done, job.takeovers, job.state) == (1, 1, "finalizing")
    log = session.scalars(select(SyncLeaseLog).where(SyncLeaseLog.unit_id == first.unit_id))
    spans = sorted((r.leased_at, r.ended_at, r.outcome) for r in log)
    assert [o for _, _, o in spans] == ["expired", "completed"]
    assert spans[0][1] is not None and spans[0][1] <= spans[1][0]


def test_transient_failures_back_off_then_exhaust(session: Session, settings: Settings) -> None:
    mailshot_id = _prepared(session, settings, 3, "b", 5)
    policy = RetryPolicy(base_seconds=4, cap_seconds=60)
    unit = _lease(session, T0)
    out = work.fail(
        session,
        unit.unit_id,
        unit.lease_token,
        permanent=False,
        code="HTTP_503",
        message="busy",
        retry_after_seconds=30,
        max_attempts=2,
        policy=policy,
        now=T0,
    )
    assert out.job_state == "running"
    job = session.scalars(select(SyncJob)).one()
    assert job.next_retry_at == T0 + timedelta(seconds=30)  # Retry-After wins
    assert job.last_error_code == "HTTP_503"
    assert work.lease(session, worker_id="w", lease_seconds=LEASE, max_takeovers=5, now=T0) is None
    again = _lease(session, T0 + timedelta(seconds=31))
    assert again.attempt == 2
    work.fail(
        session,
        again.unit_id,
        again.lease_token,
        permanent=False,
        code="HTTP_503",
        message="still busy",
        max_attempts=2,
        policy=policy,
        now=T0 + timedelta(seconds=31),
    )
    session.expire_all()
    mailshot = session.get(Mailshot, mailshot_id)
    assert mailshot is not None and mailshot.sync_state == "failed"
    assert mailshot.sync_error_code == "SYNC_RETRIES_EXHAUSTED"
    assert "HTTP_503: still busy" in (mailshot.sync_error_message or "")


def test_a_unit_that_keeps_killing_workers_fails_its_job_only(
    session: Session, settings: Settings
) -> None:
    bad = _prepared(session, settings, 2, "c", 5)
    at = T0
    unit = _lease(session, at, takeovers=2)
    for _ in range(2):
        at += timedelta(seconds=LEASE + 1)
        unit = _lease(session, at, takeovers=2)
        assert unit.takeover
    good = _mailshot(settings, 1, "d")
    queue.request_sync(session, good, chunk_size=5, now=at)
    at += timedelta(seconds=LEASE + 1)
    nxt = _lease(session, at, takeovers=2)  # the good job is served first (least served)
    assert nxt.mailshot_id == good and nxt.kind == "prepare"
    # The bad unit's third expiry fails its job instead of handing it out again.
    assert work.lease(session, worker_id="w", lease_seconds=LEASE, max_takeovers=2, now=at) is None
    session.expire_all()
    failed = session.get(Mailshot, bad)
    assert failed is not None and failed.sync_error_code == "SYNC_UNIT_KILLS_WORKERS"


def test_the_least_served_job_goes_first(session: Session, settings: Settings) -> None:
    big = _prepared(session, settings, 20, "e", 2)
    for _ in range(3):
        _lease(session, T0)
    small = _mailshot(settings, 1, "f")
    queue.request_sync(session, small, chunk_size=2, now=T0)
    assert _lease(session, T0).mailshot_id == small
    assert _lease(session, T0).mailshot_id == big


def test_the_express_lane_takes_only_small_syncs_chunks_and_finalize(
    session: Session, settings: Settings
) -> None:
    def express() -> UnitPublic | None:
        return work.lease(
            session, worker_id="x", lease_seconds=LEASE, max_takeovers=5, small_only=True, now=T0
        )

    big = _prepared(session, settings, 20, "g", 5)  # four chunks: not for the express lane
    small = _mailshot(settings, 3, "h")
    queue.request_sync(session, small, chunk_size=5, now=T0)
    assert express() is None  # the small sync's prepare is not the express lane's either
    prep = _lease(session, T0)
    assert (prep.mailshot_id, prep.kind) == (small, "prepare")
    prepare.prepare(session, prep.unit_id, prep.lease_token, now=T0)
    work.complete(session, prep.unit_id, prep.lease_token, esp_campaign_id="2", now=T0)

    chunk = express()
    assert chunk is not None and (chunk.mailshot_id, chunk.kind) == (small, "chunk")
    work.complete(session, chunk.unit_id, chunk.lease_token, recipients_written=3, now=T0)
    final = express()
    assert final is not None and (final.mailshot_id, final.kind) == (small, "finalize")
    assert express() is None  # the large sync's chunks wait for the other lanes
    assert _lease(session, T0).mailshot_id == big


def test_a_status_read_after_a_commit_does_not_wait_for_writers(
    session: Session, settings: Settings
) -> None:
    """A status read on a session whose work has just committed (Cancel answers so;
    Synchronise reads its status before its commit) must not queue behind a writer (a
    snapshot slice, a large chunk) holding the lock.
    Another connection holds the write lock (SQLite) or an exclusive lock on the sync
    tables (PostgreSQL: reads pass, writes wait) while the status is read."""
    mailshot_id = _mailshot(settings, 5, "reads")
    job_id = queue.request_sync(session, mailshot_id, chunk_size=5, now=T0)
    holder = make_engine(settings.crm_db_url())
    answered: list[Any] = []
    with holder.connect() as conn:
        conn.execute(select(Mailshot.id).limit(1))  # SQLite: BEGIN IMMEDIATE, the write lock
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql("LOCK TABLE sync_jobs, sync_units, mailshots IN EXCLUSIVE MODE")
        reader = threading.Thread(
            target=lambda: answered.append(progress.mailshot_status(session, mailshot_id, T0))
        )
        reader.start()
        reader.join(timeout=5)
        still_waiting = reader.is_alive()
        conn.rollback()
    reader.join()
    holder.dispose()
    assert not still_waiting, "the status read waited for the writer"
    assert answered[0].job_id == job_id and answered[0].state == "queued"


def test_units_waiting_out_a_pause_or_a_refused_key_are_due_once_the_integration_runs(
    session: Session, settings: Settings
) -> None:
    """A chunk the ESP refused because its integration was paused, or refused for the
    bridge's key, waits out its delay unless a worker's heartbeat says the ESP answers
    and its integration runs: then it is due at once. A chunk refused for another reason
    keeps its back-off."""
    _prepared(session, settings, 15, "p", 5)

    def refused(code: str) -> UnitPublic:
        unit = _lease(session, T0)
        work.fail(
            session,
            unit.unit_id,
            unit.lease_token,
            permanent=False,
            code=code,
            message="refused",
            retry_after_seconds=30,
            counts_as_attempt=code == "HTTP_503",
            max_attempts=5,
            now=T0,
        )
        return unit

    def beat(at: datetime, *, paused: bool) -> None:
        heartbeat = WorkerHeartbeat(worker_id="w", esp_reachable=True, esp_paused=paused)
        integration.record_heartbeat(session, heartbeat, now=at)

    def lease_at(at: datetime) -> UnitPublic | None:
        return work.lease(session, worker_id="w", lease_seconds=LEASE, max_takeovers=5, now=at)

    waiting = {refused("INTEGRATION_PAUSED").unit_id, refused("AUTH_KEY_EXPIRED").unit_id}
    busy = refused("HTTP_503").unit_id
    beat(T0 + timedelta(seconds=2), paused=True)  # still paused: nothing moves
    assert lease_at(T0 + timedelta(seconds=3)) is None
    beat(T0 + timedelta(seconds=4), paused=False)  # resumed, and the key is accepted
    at = T0 + timedelta(seconds=5)
    for _ in waiting:
        again = lease_at(at)
        assert again is not None and again.unit_id in waiting
        assert again.attempt == 1  # neither refusal counted as an attempt
        work.complete(session, again.unit_id, again.lease_token, recipients_written=5, now=at)
    assert lease_at(T0 + timedelta(seconds=6)) is None  # the other still backs off
    later = lease_at(T0 + timedelta(seconds=31))
    assert later is not None and later.unit_id == busy
