"""The lease queue's pure rules: a part's job moves as data (derived active and ended
states, moves checked) and the retry policy (full jitter under an exponential ceiling,
Retry-After within the cap, attempts counted)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from enum import StrEnum

import pytest

from mailshot.queue import IllegalMoveError, JobMoves, RetryPolicy

T0 = datetime(2026, 1, 1, tzinfo=UTC)


class Send(StrEnum):
    QUEUED = "queued"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"


MOVES = JobMoves[Send](
    table={
        Send.QUEUED: frozenset({Send.SENDING, Send.FAILED}),
        Send.SENDING: frozenset({Send.SENT, Send.FAILED}),
        Send.SENT: frozenset(),
        Send.FAILED: frozenset(),
    },
    failed=Send.FAILED,
)


def test_active_and_ended_states_come_from_the_table() -> None:
    assert MOVES.active == {Send.QUEUED, Send.SENDING}
    assert MOVES.ended == {Send.SENT, Send.FAILED}
    assert MOVES.sources(Send.FAILED) == {Send.QUEUED, Send.SENDING}
    assert MOVES.sources(Send.SENT) == {Send.SENDING}
    assert MOVES.sources(Send.QUEUED) == frozenset()


def test_a_move_the_table_does_not_allow_raises() -> None:
    assert MOVES.move(Send.QUEUED, Send.SENDING) == "sending"
    with pytest.raises(IllegalMoveError):
        MOVES.move(Send.QUEUED, Send.SENT)
    with pytest.raises(IllegalMoveError):
        MOVES.move(Send.SENT, Send.SENDING)


def test_the_failed_state_must_be_an_end_reachable_from_another() -> None:
    with pytest.raises(ValueError, match="end state"):
        JobMoves[Send](table=MOVES.table, failed=Send.SENDING)
    with pytest.raises(ValueError, match="end state"):
        JobMoves[Send](
            table={**MOVES.table, Send.QUEUED: frozenset({Send.SENDING})}, failed=Send.QUEUED
        )


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


def test_the_policy_is_exhausted_at_its_attempts() -> None:
    policy = RetryPolicy(max_attempts=3)
    assert [policy.exhausted(n) for n in (0, 1, 2, 3, 4)] == [False, False, False, True, True]
