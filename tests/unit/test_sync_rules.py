"""The sync queue's pure rules: its job moves, chunking, rate and ETA, summaries."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest

from mailshot.crm.models.sync import _ACTIVE_SQL, ACTIVE_JOB_STATES
from mailshot.crm.sync import states
from mailshot.crm.sync.progress import rate_and_eta, summary
from mailshot.crm.sync.schemas import LastError, SyncStatus
from mailshot.crm.sync.states import JobState
from mailshot.queue import IllegalMoveError

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def test_job_moves_follow_the_documented_path() -> None:
    moves = states.JOB_MOVES
    path = [
        JobState.QUEUED,
        JobState.PREPARING,
        JobState.RUNNING,
        JobState.FINALIZING,
        JobState.COMPLETED,
    ]
    for a, b in itertools.pairwise(path):
        assert moves.allowed(a, b)
    # Every chunk written while the snapshot was taken: straight to finalizing.
    assert moves.allowed(JobState.PREPARING, JobState.FINALIZING)
    assert not moves.allowed(JobState.QUEUED, JobState.COMPLETED)
    assert not moves.allowed(JobState.RUNNING, JobState.PREPARING)
    assert moves.sources(JobState.COMPLETED) == {JobState.FINALIZING}
    assert moves.ended == {
        JobState.COMPLETED,
        JobState.FAILED,
        JobState.CANCELLED,
        JobState.SUPERSEDED,
    }
    for active in moves.active:
        assert {JobState.FAILED, JobState.CANCELLED, JobState.SUPERSEDED} <= moves.table[active]
    with pytest.raises(IllegalMoveError):
        moves.move(JobState.COMPLETED, JobState.RUNNING)


def test_the_one_active_sync_index_covers_the_active_job_states() -> None:
    assert frozenset(ACTIVE_JOB_STATES) == states.JOB_ACTIVE
    assert f"state IN ({', '.join(repr(str(s)) for s in ACTIVE_JOB_STATES)})" == _ACTIVE_SQL


@pytest.mark.parametrize(("total", "size"), [(1, 5), (5, 5), (6, 5), (10_001, 1000), (0, 3)])
def test_chunks_cover_every_seq_exactly_once(total: int, size: int) -> None:
    bounds = states.chunk_bounds(total, size)
    covered = [seq for first, last in bounds for seq in range(first, last + 1)]
    assert covered == list(range(total))
    assert all(last - first + 1 <= size for first, last in bounds)


def test_rate_and_eta() -> None:
    assert rate_and_eta(0, 100, T0, T0 + timedelta(seconds=5)) == (None, None)
    assert rate_and_eta(10, 100, None, T0) == (None, None)
    rate, eta = rate_and_eta(500, 2000, T0, T0 + timedelta(seconds=5))
    assert rate == 100 and eta == 15


def _status(**kw: object) -> SyncStatus:
    base: dict[str, object] = {
        "mailshot_id": 1,
        "job_id": 2,
        "state": "synchronising",
        "job_state": "running",
        "chunks_done": 1,
        "chunks_total": 4,
        "recipients_total": 4000,
        "recipients_written": 1000,
        "excluded_total": 3,
        "rate_per_second": 500.0,
        "eta_seconds": 6.0,
        "attempts": 0,
        "takeovers": 0,
        "last_error": None,
        "next_retry_at": None,
        "esp_campaign_id": "9",
        "queue_position": 1,
        "requested_at": T0,
        "started_at": T0,
        "finished_at": None,
        "summary": "",
    }
    base.update(kw)
    return SyncStatus.model_validate(base)


def test_summaries_say_where_the_sync_is() -> None:
    assert summary(_status(), T0) == (
        "Synchronising: 1,000 of 4,000 recipients (25%), about 6 s left."
    )
    assert summary(_status(state="queued", job_state="queued", queue_position=3), T0) == (
        "Queued, 3rd in line."
    )
    err = LastError(code="HTTP_503", message="ESP down")
    waiting = _status(last_error=err, next_retry_at=T0 + timedelta(seconds=4))
    assert summary(waiting, T0).startswith("Waiting to retry in 4 s")
    failed = _status(state="failed", job_state="failed", last_error=err)
    assert summary(failed, T0) == "Failed: ESP down"
