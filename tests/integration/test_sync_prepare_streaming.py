"""A prepare (whose ESP campaign the worker has created first) cuts its chunk units
while the snapshot is written: they can be leased and written before the snapshot ends,
the job waits for its prepare unit before it finalizes, and a prepare taken over half-way
resumes after what was committed (the chunks already cut stay valid: none missing, none
twice)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import event, func, select
from sqlalchemy.orm import Session

from mailshot.contracts.units import UnitPublic
from mailshot.core.db import engine as db
from mailshot.core.db.engine import make_engine, make_sessionmaker
from mailshot.core.errors import AppError
from mailshot.core.settings import Settings
from mailshot.crm.models import SyncJob, SyncRecipient
from mailshot.crm.models.sync import SyncUnit
from mailshot.crm.services import snapshot as audience_snapshot
from mailshot.crm.sync import prepare, queue, recipients, work
from tests.support.e2e_data import add_list, add_mailshot, crm_engine

T0 = datetime(2030, 1, 1, tzinfo=UTC)
LEASE = 10.0
PEOPLE, CHUNK, SLICE = 31, 5, 7


@pytest.fixture
def sessions(settings: Settings) -> Iterator[Callable[[], Session]]:
    engine = make_engine(settings.crm_db_url())
    yield make_sessionmaker(engine)
    engine.dispose()


def _queued(s: Session, settings: Settings, tag: str) -> int:
    engine = crm_engine(settings)
    list_id, _ = add_list(engine, tag, PEOPLE, excluded=3)
    mailshot_id = add_mailshot(engine, list_id, f"Mailshot {tag}")
    engine.dispose()
    queue.request_sync(s, mailshot_id, chunk_size=CHUNK, now=T0)
    return mailshot_id


def _lease(s: Session, at: datetime) -> UnitPublic:
    unit = work.lease(s, worker_id="w", lease_seconds=LEASE, max_takeovers=5, now=at)
    assert unit is not None
    return unit


def _small_slices(
    monkeypatch: pytest.MonkeyPatch, on_checkpoint: Callable[[bool], None] | None = None
) -> None:
    """Snapshot in slices of SLICE members, calling ``on_checkpoint`` after each one."""

    def snapshot(s: Session, job_id: int, mailshot: Any, checkpoint: Any, resume: bool) -> Any:
        def observed(write: bool) -> None:
            checkpoint(write)
            if on_checkpoint is not None:
                on_checkpoint(write)

        return audience_snapshot.snapshot(
            s, job_id, mailshot, checkpoint=observed, slice_members=SLICE, resume=resume
        )

    monkeypatch.setattr(prepare, "_snapshot_audience", snapshot)


def _chunk_units(s: Session) -> list[tuple[int, int, int, str]]:
    rows = s.execute(
        select(SyncUnit.chunk_no, SyncUnit.first_seq, SyncUnit.last_seq, SyncUnit.state)
        .where(SyncUnit.kind == "chunk")
        .order_by(SyncUnit.chunk_no)
    )
    return [(int(n), int(f), int(la), str(st)) for n, f, la, st in rows]


def _assert_cut_exactly(units: list[tuple[int, int, int, str]], total: int) -> None:
    """Chunk numbers 0..k-1 covering seq 0..total-1 in CHUNK-sized pieces, no gap, no
    overlap."""
    expected = [(n, f, min(f + CHUNK, total) - 1) for n, f in enumerate(range(0, total, CHUNK))]
    assert [(n, f, la) for n, f, la, _ in units] == expected


def test_chunks_are_leasable_while_the_snapshot_is_written(
    sessions: Callable[[], Session], settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[list[tuple[int, int, int, str]]] = []

    def look(write: bool) -> None:
        if write:
            with sessions() as other:  # another connection: only what is committed
                other.connection(execution_options={"sqlite_begin": "DEFERRED"})
                seen.append(_chunk_units(other))

    _small_slices(monkeypatch, look)
    with sessions() as s:
        _queued(s, settings, "stream")
        unit = _lease(s, T0)
        fields = prepare.campaign_fields(s, unit.unit_id, unit.lease_token)
        assert (fields.snapshot, fields.name) == (unit.job_id, "Mailshot stream")
        done = prepare.prepare(s, unit.unit_id, unit.lease_token, now=T0)
        assert (done.recipients_total, done.excluded_total) == (PEOPLE - 3, 3)

        # Units appeared, pending, before the snapshot ended, each over committed rows.
        during = [units for units in seen if units]
        assert during, "no chunk unit was cut before the snapshot ended"
        assert all(state == "pending" for units in during for *_, state in units)
        assert len(during[0]) < done.chunks_total
        units = _chunk_units(s)
        _assert_cut_exactly(units, done.recipients_total)
        assert done.chunks_total == len(units)

        # A cut chunk can be read while the job is still preparing; beyond it, not yet.
        job = s.get(SyncJob, unit.job_id)
        assert job is not None and job.state == "preparing"
        body = recipients.read_recipients_json(s, unit.job_id, 0, CHUNK - 1)
        assert body.count(b"@example.com") == CHUNK

        # Workers write every chunk before the prepare unit completes: the job waits.
        for _ in range(done.chunks_total):
            chunk = _lease(s, T0)
            assert chunk.kind == "chunk"
            work.complete(s, chunk.unit_id, chunk.lease_token, recipients_written=1, now=T0)
        s.expire_all()
        job = s.get(SyncJob, unit.job_id)
        assert job is not None and (job.state, job.chunks_done) == ("preparing", done.chunks_total)
        assert work.lease(s, worker_id="w", lease_seconds=LEASE, max_takeovers=5, now=T0) is None

        # Completing the prepare unit moves it straight on to its finalize unit.
        out = work.complete(s, unit.unit_id, unit.lease_token, esp_campaign_id="7", now=T0)
        assert out.job_state == "finalizing"
        assert _lease(s, T0).kind == "finalize"


def test_a_read_beyond_the_chunks_cut_so_far_is_refused(
    sessions: Callable[[], Session], settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    _small_slices(monkeypatch)
    with sessions() as s:
        _queued(s, settings, "early")
        unit = _lease(s, T0)
        with pytest.raises(AppError) as early:
            recipients.read_recipients_json(s, unit.job_id, 0, CHUNK - 1)
        assert early.value.code == "SYNC_NO_SNAPSHOT"


class _WorkerDiedError(Exception):
    """The worker holding the prepare unit stops here (as if killed)."""


def test_a_prepare_taken_over_half_way_resumes_after_what_was_committed(
    sessions: Callable[[], Session], settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    writes = 0

    def die_on_third_slice(write: bool) -> None:
        nonlocal writes
        writes += write
        if writes == 3:
            raise _WorkerDiedError

    _small_slices(monkeypatch, die_on_third_slice)
    with sessions() as s:
        _queued(s, settings, "resume")
        first = _lease(s, T0)
        with pytest.raises(_WorkerDiedError):
            prepare.prepare(s, first.unit_id, first.lease_token, now=T0)
        s.rollback()
        cut_before = _chunk_units(s)
        assert cut_before, "the first worker cut no chunk before it died"
        # Another worker writes one of those chunks meanwhile.
        chunk = _lease(s, T0)
        assert chunk.kind == "chunk"
        work.complete(s, chunk.unit_id, chunk.lease_token, recipients_written=CHUNK, now=T0)

        _small_slices(monkeypatch)
        later = T0 + timedelta(seconds=LEASE + 1)
        taker = _lease(s, later)
        assert (taker.unit_id, taker.takeover) == (first.unit_id, True)
        done = prepare.prepare(s, taker.unit_id, taker.lease_token, now=later)

        units = _chunk_units(s)
        _assert_cut_exactly(units, done.recipients_total)
        assert units[: len(cut_before)][0][3] == "done"  # kept, not cut again
        assert [u[:3] for u in units[: len(cut_before)]] == [u[:3] for u in cut_before]
        people = s.execute(
            select(SyncRecipient.seq, SyncRecipient.person_id)
            .where(SyncRecipient.job_id == taker.job_id)
            .order_by(SyncRecipient.seq)
        ).all()
        assert [seq for seq, _ in people] == list(range(PEOPLE - 3))
        ids = [pid for _, pid in people]
        assert ids == sorted(set(ids)), "a recipient is missing order or appears twice"
        assert done.recipients_total == PEOPLE - 3


def test_a_prepare_drops_earlier_snapshots_and_skips_jobs_that_hold_none(
    sessions: Callable[[], Session], settings: Settings
) -> None:
    """The snapshot of the mailshot's earlier job is deleted by the next prepare, and the
    prepare visits only jobs that still hold rows: a mailshot pressed many times does not
    cost each prepare two deletes per job it ever had."""
    deletes: list[str] = []

    def count_deletes(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.lstrip().upper().startswith("DELETE FROM SYNC_"):
            deletes.append(statement)

    with sessions() as s:
        mailshot_id = _queued(s, settings, "again")
        first = _lease(s, T0)
        prepare.prepare(s, first.unit_id, first.lease_token, now=T0)
        held = s.scalar(select(func.count()).where(SyncRecipient.job_id == first.job_id))
        assert held == PEOPLE - 3
        for _ in range(30):  # pressed again and again: jobs superseded before any snapshot
            queue.request_sync(s, mailshot_id, chunk_size=CHUNK, now=T0)
        last = _lease(s, T0)
        assert last.kind == "prepare" and last.job_id > first.job_id + 29
        engine = s.get_bind()
        event.listen(engine, "before_cursor_execute", count_deletes)
        try:
            prepare.prepare(s, last.unit_id, last.lease_token, now=T0)
        finally:
            event.remove(engine, "before_cursor_execute", count_deletes)
        per_job = dict(
            s.execute(
                select(SyncRecipient.job_id, func.count()).group_by(SyncRecipient.job_id)
            ).all()
        )
    assert per_job == {last.job_id: PEOPLE - 3}  # the first job's snapshot is gone
    # The first job's two tables (its recipients, its exclusions), not 31 jobs' worth.
    assert 2 <= len(deletes) <= 4, deletes


@pytest.mark.parametrize(("limit", "bulk"), [(PEOPLE, False), (PEOPLE - 1, True)])
def test_only_a_large_audience_is_snapshotted_as_bulk_work(
    sessions: Callable[[], Session],
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    limit: int,
    bulk: bool,
) -> None:
    """A snapshot's writes are bulk work (they let other writers go first) unless its
    source is small: then they go before large snapshots' slices."""
    seen: list[bool] = []
    _small_slices(monkeypatch, lambda write: seen.append(db._BULK_WRITES.get()))
    monkeypatch.setattr(db, "SMALL_WRITE_ROWS", limit)
    with sessions() as s:
        _queued(s, settings, "bulk")
        unit = _lease(s, T0)
        prepare.prepare(s, unit.unit_id, unit.lease_token, now=T0)
    assert seen and set(seen) == {bulk}
