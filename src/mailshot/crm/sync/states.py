"""The sync's states as data: the moves between a job's states (enforced by
:mod:`mailshot.queue`) and the mailshot's ``sync_state`` for each. The states and unit
kinds themselves are the API's (:mod:`mailshot.contracts.states`).

A job moves ``queued -> preparing -> running -> finalizing -> completed`` (``preparing ->
finalizing`` when every chunk was written while the snapshot was taken); while active it
may instead end ``failed``, ``cancelled`` or ``superseded`` (a newer Synchronise of the
same mailshot). Unit states are the queue's (:class:`mailshot.queue.UnitState`).
"""

from __future__ import annotations

from typing import Final

from mailshot.contracts.states import JobState, SyncState, UnitKind
from mailshot.queue import JobMoves

__all__ = [
    "JOB_ACTIVE",
    "JOB_MOVES",
    "MAILSHOT_STATE_FOR_JOB",
    "RETRYABLE",
    "JobState",
    "SyncState",
    "UnitKind",
    "chunk_bounds",
]

_ENDINGS: Final = frozenset({JobState.FAILED, JobState.CANCELLED, JobState.SUPERSEDED})
JOB_MOVES: Final = JobMoves[JobState](
    table={
        JobState.QUEUED: frozenset({JobState.PREPARING}) | _ENDINGS,
        JobState.PREPARING: frozenset({JobState.RUNNING, JobState.FINALIZING}) | _ENDINGS,
        JobState.RUNNING: frozenset({JobState.FINALIZING}) | _ENDINGS,
        JobState.FINALIZING: frozenset({JobState.COMPLETED}) | _ENDINGS,
        JobState.COMPLETED: frozenset(),
        JobState.FAILED: frozenset(),
        JobState.CANCELLED: frozenset(),
        JobState.SUPERSEDED: frozenset(),
    },
    failed=JobState.FAILED,
)
JOB_ACTIVE: Final = JOB_MOVES.active

#: The mailshot's sync_state while its latest job is in each job state.
MAILSHOT_STATE_FOR_JOB: Final[dict[JobState, SyncState]] = {
    JobState.QUEUED: SyncState.QUEUED,
    JobState.PREPARING: SyncState.SYNCHRONISING,
    JobState.RUNNING: SyncState.SYNCHRONISING,
    JobState.FINALIZING: SyncState.SYNCHRONISING,
    JobState.COMPLETED: SyncState.SYNCHRONISED,
    JobState.FAILED: SyncState.FAILED,
    JobState.CANCELLED: SyncState.CANCELLED,
}
#: Mailshot sync states from which Retry may start a new job.
RETRYABLE: Final = frozenset({SyncState.FAILED, SyncState.CANCELLED})


def chunk_bounds(total: int, chunk_size: int) -> list[tuple[int, int]]:
    """The inclusive ``(first_seq, last_seq)`` of each chunk of ``total`` recipients."""
    if chunk_size < 1:
        raise ValueError("chunk_size must be at least 1")
    return [(first, min(first + chunk_size, total) - 1) for first in range(0, total, chunk_size)]
