"""The sync queue's pure rules: transitions, chunking, backoff, rate and ETA, summaries."""

from __future__ import annotations

import itertools
import random
from datetime import UTC, datetime, timedelta

import pytest

from mailshot.crm.sync import states
from mailshot.crm.sync.backoff import RetryPolicy
from mailshot.crm.sync.progress import rate_and_eta, summary
from mailshot.crm.sync.schemas import LastError, SyncStatus

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def test_job_transitions_follow_the_documented_path() -> None:
    path = ["queued", "preparing", "running", "finalizing", "completed"]
    for a, b in itertools.pairwise(path):
        assert states.can_move(a, b)
    assert not states.can_move("queued", "completed")
    assert not states.can_move("running", "preparing")
    for ended in states.JOB_TERMINAL:
        assert not any(states.can_move(ended, s) for s in states.JOB_TRANSITIONS)
    for active in states.JOB_ACTIVE:
        assert {"failed", "cancelled", "superseded"} <= states.JOB_TRANSITIONS[active]
    assert not states.can_move_unit("done", "leased")
    assert states.can_move_unit("leased", "leased")  # a takeover


@pytest.mark.parametrize(("total", "size"), [(1, 5), (5, 5), (6, 5), (10_001, 1000), (0, 3)])
def test_chunks_cover_every_seq_exactly_once(total: int, size: int) -> None:
    bounds = states.chunk_bounds(total, size)
    covered = [seq for first, last in bounds for seq in range(first, last + 1)]
    assert covered == list(range(total))
    assert all(last - first + 1 <= size for first, last in bounds)


def test_backoff_is_full_jitter_under_an_exponential_ceiling() -> None:
    policy = RetryPolicy(base_seconds=1, multiplier=2, cap_seconds=60)
    assert [policy.ceiling(a) for a in (1, 2, 3, 4, 10)] == [1, 2, 4, 8, 60]
    rng = random.Random(7)
    delays = [policy.delay(4, rng=rng) for _ in range(500)]
    assert 0 <= min(delays) < 1 and 7 < max(delays) <= 8
    assert policy.delay(1000, rng=rng) <= 60  # no overflow for large attempt counts


def test_backoff_honours_retry_after_within_the_cap() -> None:
    policy = RetryPolicy(cap_seconds=30)
    assert policy.delay(5, retry_after=2) == 2
    assert policy.delay(1, retry_after=3600) == 30
    assert policy.next_time(T0, 1, retry_after=1) == T0 + timedelta(seconds=1)


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
