"""The lease queue (:mod:`mailshot.queue`) on tables of its own, declared here from the
mixins, on SQLite and PostgreSQL: the claim is exclusive under concurrency (checked
through the lease log), lapsed leases are taken over up to ``max_takeovers``, transient
failures back off and run out, the least-served job goes first, a lost lease can change
nothing, a repeated completion is a no-op, a waiting unit waits for its job's state, job
moves are checked, and a commit wakes a waiting long poll."""

from __future__ import annotations

import itertools
import threading
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

import pytest
from sqlalchemy import Engine, Integer, Row, String, and_, case, create_engine, func, select, text
from sqlalchemy import insert as sql_insert
from sqlalchemy import update as sql_update
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker

from mailshot import queue
from mailshot.core.db.engine import make_engine, make_sessionmaker
from mailshot.core.db.model import TYPE_ANNOTATION_MAP, IdMixin, new_metadata
from mailshot.core.errors import AppError, ErrorSpec
from mailshot.queue.columns import JobColumns, LeaseLogColumns, UnitColumns
from tests.conftest import PG_ADMIN_URL, _pg_url
from tests.support import aio

T0 = datetime(2030, 1, 1, tzinfo=UTC)
LEASE = 10.0


class Base(DeclarativeBase):
    metadata = new_metadata()
    type_annotation_map = TYPE_ANNOTATION_MAP


class Job(IdMixin, JobColumns, Base):
    __tablename__ = "q_jobs"

    name: Mapped[str] = mapped_column(String(20))
    work_total: Mapped[int] = mapped_column(Integer)
    work_done: Mapped[int] = mapped_column(Integer, default=0)


class Unit(IdMixin, UnitColumns, Base):
    __tablename__ = "q_units"
    __job_table__ = "q_jobs"

    item: Mapped[int | None] = mapped_column(Integer)


class LeaseLog(IdMixin, LeaseLogColumns, Base):
    __tablename__ = "q_lease_log"
    __job_table__ = "q_jobs"


class State(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    CLOSING = "closing"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"


class Kind(StrEnum):
    WORK = "work"
    CLOSE = "close"


_ENDS = frozenset({State.FAILED, State.CANCELLED})
MOVES = queue.JobMoves[State](
    table={
        State.QUEUED: frozenset({State.RUNNING}) | _ENDS,
        State.RUNNING: frozenset({State.CLOSING}) | _ENDS,
        State.CLOSING: frozenset({State.DONE}) | _ENDS,
        State.DONE: frozenset(),
        State.FAILED: frozenset(),
        State.CANCELLED: frozenset(),
    },
    failed=State.FAILED,
)
TABLES = queue.QueueTables.of(Job, Unit, LeaseLog)
jobs, units, log = TABLES.jobs, TABLES.units, TABLES.lease_log


def _spec(code: str, message: str) -> ErrorSpec:
    """The test queue's errors (not in the catalogue)."""
    return ErrorSpec(code=code, status=409, message=message)


def _work_done(session: Session, done: Row[Any], _report: Any, _now: datetime) -> str:
    state = session.execute(
        sql_update(jobs)
        .where(jobs.c.id == done.job_id)
        .values(
            work_done=jobs.c.work_done + 1,
            state=case(
                (
                    and_(jobs.c.state == State.RUNNING, jobs.c.work_done + 1 >= jobs.c.work_total),
                    MOVES.move(State.RUNNING, State.CLOSING),
                ),
                else_=jobs.c.state,
            ),
        )
        .returning(jobs.c.state)
    ).scalar_one()
    return str(state)


def _close_done(session: Session, done: Row[Any], _report: Any, now: datetime) -> str:
    queue.end_job(SPEC, session, done.job_id, State.DONE, now=now, close_open=False)
    return State.DONE


SPEC = queue.QueueSpec(
    tables=TABLES,
    moves=MOVES,
    errors=queue.QueueErrors(
        lease_lost=_spec("T_LEASE_LOST", "unit {unit_id} is not yours"),
        job_ended=_spec("T_JOB_ENDED", "job {job_id} is {state}"),
        wrong_kind=_spec("T_WRONG_KIND", "unit {unit_id} is {kind}, not {expected}"),
        unit_kills_workers=_spec("T_KILLS", "{step} lapsed {takeovers} times"),
        retries_exhausted=_spec("T_EXHAUSTED", "{step}: {attempts} tries, {last_code}"),
    ),
    kinds={
        Kind.WORK: queue.KindHooks(
            on_complete=_work_done,
            job_values_on_claim={
                "state": case(
                    (jobs.c.state == State.QUEUED, MOVES.move(State.QUEUED, State.RUNNING)),
                    else_=jobs.c.state,
                )
            },
        ),
        Kind.CLOSE: queue.KindHooks(on_complete=_close_done),
    },
    waits_for={Kind.CLOSE: State.CLOSING},
    unit_columns=("item",),
    job_columns=("name",),
    describe=lambda row: f"{row.kind} {row.item}",
)


# ---- fixtures ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def pg_url(run_id: str) -> Iterator[str]:
    name = f"ms_{run_id}_queue".lower()
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    yield _pg_url(name)
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture
def engine(backend: str, tmp_path: Any, request: pytest.FixtureRequest) -> Iterator[Engine]:
    url = (
        f"sqlite:///{tmp_path / 'queue.db'}"
        if backend == "sqlite"
        else str(request.getfixturevalue("pg_url"))
    )
    engine = make_engine(url)
    Base.metadata.drop_all(engine)
    Base.metadata.create_all(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def sessions(engine: Engine) -> sessionmaker[Session]:
    return make_sessionmaker(engine)


@pytest.fixture
def s(sessions: sessionmaker[Session]) -> Iterator[Session]:
    with sessions() as session:
        yield session


def add_job(s: Session, name: str, works: int, *, close: bool = True) -> int:
    job_id = s.execute(
        sql_insert(jobs)
        .values(
            name=name,
            state=State.QUEUED,
            work_total=works,
            work_done=0,
            units_leased=0,
            attempts=0,
            takeovers=0,
        )
        .returning(jobs.c.id)
    ).scalar_one()
    rows = [
        {"job_id": job_id, "kind": Kind.WORK, "state": "pending", "item": i} for i in range(works)
    ]
    if close:
        rows.append({"job_id": job_id, "kind": Kind.CLOSE, "state": "waiting", "item": None})
    s.execute(sql_insert(units), [{"attempts": 0, "takeovers": 0, **r} for r in rows])
    s.commit()
    return int(job_id)


def claim(s: Session, at: datetime | None = T0, worker: str = "w", takeovers: int = 5) -> Any:
    return queue.claim(
        SPEC, s, worker_id=worker, lease_seconds=LEASE, max_takeovers=takeovers, now=at
    )


def must_claim(s: Session, at: datetime | None = T0, **kw: Any) -> queue.Lease:
    lease = claim(s, at, **kw)
    assert lease is not None
    return lease


def code_of(call: Any) -> str:
    with pytest.raises(AppError) as err:
        call()
    return err.value.code


def job_row(s: Session, job_id: int) -> Any:
    row = s.execute(select(jobs).where(jobs.c.id == job_id)).one()
    s.rollback()
    return row


# ---- the tests --------------------------------------------------------------------------
def test_concurrent_claims_never_hold_one_unit_twice(sessions: sessionmaker[Session]) -> None:
    """Workers race for the units of several jobs (database clock): every unit is leased
    once and completed once, and no two leases of a unit overlap in the lease log."""
    with sessions() as s:
        for j in range(4):
            add_job(s, f"j{j}", 15, close=False)
    errors: list[BaseException] = []
    completed: Counter[int] = Counter()
    start = threading.Barrier(6)

    def worker(n: int) -> None:
        try:
            start.wait()
            with sessions() as s:
                while (lease := claim(s, None, worker=f"w{n}")) is not None:
                    out = queue.complete(SPEC, s, lease.unit_id, lease.token)
                    assert not out.repeated
                    completed[lease.unit_id] += 1
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert errors == []
    assert len(completed) == 60 and set(completed.values()) == {1}
    with sessions() as s:
        spans = s.execute(
            select(log.c.unit_id, log.c.leased_at, log.c.ended_at, log.c.outcome).order_by(
                log.c.unit_id, log.c.leased_at
            )
        ).all()
        assert Counter(u for u, *_ in spans) == Counter({u: 1 for u in completed})
        assert {o for *_, o in spans} == {"completed"}
        by_unit: dict[int, list[Any]] = {}
        for unit_id, start_at, end_at, _ in spans:
            by_unit.setdefault(unit_id, []).append((start_at, end_at))
        for held in by_unit.values():
            for (_, end_a), (start_b, _) in itertools.pairwise(held):
                assert end_a <= start_b
        served = s.execute(select(jobs.c.units_leased, jobs.c.state)).all()
    assert {(n, st) for n, st in served} == {(15, State.CLOSING)}


def test_a_lapsed_lease_is_taken_over_and_the_old_holder_can_change_nothing(s: Session) -> None:
    add_job(s, "a", 1)
    first = must_claim(s, T0, worker="w1")
    assert claim(s, T0, worker="w2") is None
    later = T0 + timedelta(seconds=LEASE + 1)
    second = must_claim(s, later, worker="w2")
    assert (second.unit_id, second.takeover, second.attempt) == (first.unit_id, True, 1)
    lost = "T_LEASE_LOST"
    assert code_of(lambda: queue.complete(SPEC, s, first.unit_id, first.token, now=later)) == lost
    renew = lambda: queue.heartbeat(  # noqa: E731
        SPEC, s, first.unit_id, first.token, lease_seconds=LEASE, now=later
    )
    assert code_of(renew) == lost
    queue.complete(SPEC, s, second.unit_id, second.token, now=later)
    spans = s.execute(
        select(log.c.lease_token, log.c.leased_at, log.c.ended_at, log.c.outcome)
        .where(log.c.unit_id == first.unit_id)
        .order_by(log.c.leased_at)
    ).all()
    assert [(tok, outcome) for tok, _, _, outcome in spans] == [
        (first.token, "expired"),
        (second.token, "completed"),
    ]
    assert spans[0].ended_at == first.expires_at <= spans[1].leased_at
    job = job_row(s, first.job_id)
    assert (job.takeovers, job.work_done, job.state) == (1, 1, State.CLOSING)


def test_a_heartbeat_keeps_a_lease_and_a_lost_one_is_refused(s: Session) -> None:
    add_job(s, "h", 1)
    lease = must_claim(s, T0)
    at = T0 + timedelta(seconds=LEASE - 1)
    expires = queue.heartbeat(SPEC, s, lease.unit_id, lease.token, lease_seconds=LEASE, now=at)
    assert expires == at + timedelta(seconds=LEASE)
    assert claim(s, T0 + timedelta(seconds=LEASE + 1)) is None  # renewed: not lapsed
    taker = must_claim(s, expires + timedelta(seconds=1))
    assert taker.takeover
    beat = lambda: queue.heartbeat(SPEC, s, lease.unit_id, lease.token, lease_seconds=LEASE)  # noqa: E731
    assert code_of(beat) == "T_LEASE_LOST"
    queue.end_job(SPEC, s, lease.job_id, State.CANCELLED, now=T0)
    s.commit()
    renew = lambda: queue.heartbeat(SPEC, s, taker.unit_id, taker.token, lease_seconds=LEASE)  # noqa: E731
    assert code_of(renew) == "T_JOB_ENDED"


def test_a_unit_that_lapses_too_often_fails_its_job_only(s: Session) -> None:
    bad = add_job(s, "bad", 1)
    at = T0
    must_claim(s, at, takeovers=2)
    for _ in range(2):
        at += timedelta(seconds=LEASE + 1)
        assert must_claim(s, at, takeovers=2).takeover
    good = add_job(s, "good", 1)
    at += timedelta(seconds=LEASE + 1)
    lease = must_claim(s, at, takeovers=2)  # the least-served job first
    assert lease.job_id == good and lease.job.name == "good"
    # The bad unit's third lapse fails its job instead of handing it out again.
    assert claim(s, at, takeovers=2) is None
    failed = job_row(s, bad)
    assert (failed.state, failed.last_error_code) == (State.FAILED, "T_KILLS")
    assert failed.last_error_message == "work 0 lapsed 3 times"
    states = dict(s.execute(select(units.c.kind, units.c.state).where(units.c.job_id == bad)).all())
    assert states == {Kind.WORK: "failed", Kind.CLOSE: "cancelled"}
    assert s.scalar(select(func.count()).where(log.c.job_id == bad, log.c.ended_at.is_(None))) == 0


def test_transient_failures_back_off_then_run_out(s: Session) -> None:
    job_id = add_job(s, "r", 1)
    policy = queue.RetryPolicy(max_attempts=3, base_seconds=4, cap_seconds=60)
    first = must_claim(s, T0)

    def fail(lease: queue.Lease, at: datetime, **kw: Any) -> queue.Outcome:
        return queue.fail(
            SPEC,
            s,
            lease.unit_id,
            lease.token,
            fault=queue.Fault("HTTP_503", "busy"),
            permanent=False,
            policy=policy,
            now=at,
            **kw,
        )

    assert fail(first, T0, retry_after_seconds=30).job_state == State.RUNNING
    assert job_row(s, job_id).next_retry_at == T0 + timedelta(seconds=30)  # Retry-After wins
    assert claim(s, T0 + timedelta(seconds=29)) is None
    second = must_claim(s, T0 + timedelta(seconds=31))
    assert (second.unit_id, second.attempt) == (first.unit_id, 2)
    # A fault of the other side as a whole does not use up an attempt.
    at = T0 + timedelta(seconds=31)
    fail(second, at, counts_as_attempt=False)
    due = s.scalar(select(units.c.available_at).where(units.c.id == first.unit_id))
    assert at <= due <= at + timedelta(seconds=policy.ceiling(1))  # full jitter, attempt 1
    third = must_claim(s, at + timedelta(seconds=61))
    assert third.attempt == 2
    at += timedelta(seconds=61)
    fail(third, at)
    fourth = must_claim(s, at + timedelta(seconds=61))
    assert fourth.attempt == 3
    assert fail(fourth, at + timedelta(seconds=61)).job_state == State.FAILED
    job = job_row(s, job_id)
    assert (job.state, job.last_error_code) == (State.FAILED, "T_EXHAUSTED")
    # Counted: the unit's three tries; the job counts the two it retried.
    assert s.scalar(select(units.c.attempts).where(units.c.id == first.unit_id)) == 3
    assert job.attempts == 2
    assert job.last_error_message == "work 0: 3 tries, HTTP_503"
    outcomes = s.scalars(select(log.c.outcome).order_by(log.c.leased_at)).all()
    assert outcomes == ["retry", "retry", "retry", "failed"]


def test_a_permanent_failure_ends_the_job_with_its_fault(s: Session) -> None:
    job_id = add_job(s, "p", 2)
    lease = must_claim(s, T0)
    out = queue.fail(
        SPEC,
        s,
        lease.unit_id,
        lease.token,
        fault=queue.Fault("REFUSED", "no", "fix it"),
        permanent=True,
        policy=queue.DEFAULT_POLICY,
        now=T0,
    )
    assert out.job_state == State.FAILED
    job = job_row(s, job_id)
    assert (job.last_error_code, job.last_error_message, job.last_error_fix) == (
        "REFUSED",
        "no",
        "fix it",
    )
    assert claim(s, T0) is None  # its other units were cancelled


def test_the_least_served_job_goes_first(s: Session) -> None:
    big = add_job(s, "big", 6)
    assert [must_claim(s).job_id for _ in range(3)] == [big] * 3
    small = add_job(s, "small", 1)
    assert must_claim(s).job_id == small
    assert must_claim(s).job_id == big  # small was served once, big three times


def test_completing_twice_with_the_same_token_changes_nothing(s: Session) -> None:
    job_id = add_job(s, "twice", 2)
    lease = must_claim(s)
    first = queue.complete(SPEC, s, lease.unit_id, lease.token, now=T0)
    again = queue.complete(SPEC, s, lease.unit_id, lease.token, now=T0)
    assert (first.repeated, again.repeated) == (False, True)
    assert again.job_state == State.RUNNING
    assert job_row(s, job_id).work_done == 1
    forged = lambda: queue.complete(SPEC, s, lease.unit_id, "0" * 32, now=T0)  # noqa: E731
    assert code_of(forged) == "T_LEASE_LOST"


def test_a_waiting_unit_waits_for_its_job_and_ends_it(s: Session) -> None:
    job_id = add_job(s, "gate", 2)
    works = [must_claim(s), must_claim(s)]
    assert {w.kind for w in works} == {Kind.WORK}
    assert claim(s) is None  # the close unit waits for the job to be closing
    lane = units.c.kind == Kind.CLOSE
    for w in works:
        assert not queue.is_due(SPEC, s, lane=lane)
        s.rollback()
        queue.complete(SPEC, s, w.unit_id, w.token, now=T0)
    assert queue.is_due(SPEC, s, lane=lane)
    s.rollback()
    close = must_claim(s)
    assert close.kind == Kind.CLOSE
    assert queue.complete(SPEC, s, close.unit_id, close.token, now=T0).job_state == State.DONE
    job = job_row(s, job_id)
    assert (job.state, job.finished_at) == (State.DONE, T0)


def test_hold_checks_the_lease_the_kind_and_the_job(s: Session) -> None:
    job_id = add_job(s, "hold", 1)
    lease = must_claim(s)
    held = queue.hold(SPEC, s, lease.unit_id, lease.token, kind=Kind.WORK, columns=(jobs.c.name,))
    assert (held.job_id, held.job_state, held.name) == (job_id, State.RUNNING, "hold")
    s.rollback()
    assert code_of(lambda: queue.hold(SPEC, s, lease.unit_id, lease.token, kind=Kind.CLOSE)) == (
        "T_WRONG_KIND"
    )
    assert code_of(lambda: queue.hold(SPEC, s, lease.unit_id, "x")) == "T_LEASE_LOST"
    assert code_of(lambda: queue.hold(SPEC, s, 10_000, "x")) == "NOT_FOUND"
    queue.end_job(SPEC, s, job_id, State.CANCELLED, now=T0)
    s.commit()
    assert code_of(lambda: queue.hold(SPEC, s, lease.unit_id, lease.token)) == "T_JOB_ENDED"


def test_a_job_moves_only_as_its_table_allows(s: Session) -> None:
    job_id = add_job(s, "moves", 1)
    with pytest.raises(queue.IllegalMoveError):
        queue.end_job(SPEC, s, job_id, State.RUNNING, now=T0)  # not an end state
    with pytest.raises(queue.IllegalMoveError):
        queue.end_job(SPEC, s, job_id, State.DONE, now=T0)  # queued may not be done
    s.rollback()
    assert job_row(s, job_id).state == State.QUEUED
    assert queue.end_job(SPEC, s, job_id, State.CANCELLED, now=T0) is not None
    s.commit()
    assert queue.end_job(SPEC, s, job_id, State.FAILED, now=T0) is None  # ended already
    s.rollback()
    assert job_row(s, job_id).state == State.CANCELLED


def test_a_commit_that_queues_a_unit_wakes_a_waiting_long_poll(
    engine: Engine, sessions: sessionmaker[Session]
) -> None:
    signal = queue.QueueSignal()
    queue.install(engine, sessions, units, signal)

    def attempt() -> queue.Lease | None:
        with sessions() as s:
            return claim(s, None)

    def queue_later() -> None:
        time.sleep(0.5)
        with sessions() as s:
            add_job(s, "late", 1, close=False)

    async def scenario() -> tuple[queue.Lease | None, float]:
        threading.Thread(target=queue_later).start()
        started = time.monotonic()
        found = await queue.long_poll(signal, attempt, 20)
        return found, time.monotonic() - started

    generation = signal.generation
    found, took = aio.run(scenario())
    assert found is not None and found.job.name == "late"
    assert 0.4 < took < 10, took  # woken by the commit, not by the end of the wait
    assert signal.generation > generation
    # A commit that writes no unit raises nothing.
    before = signal.generation
    with sessions() as s:
        s.execute(sql_update(jobs).values(name="renamed"))
        s.commit()
    assert signal.generation == before
    # Nothing due: the poll ends at its time.
    started = time.monotonic()
    assert aio.run(queue.long_poll(signal, attempt, 0.3)) is None
    assert time.monotonic() - started >= 0.3
