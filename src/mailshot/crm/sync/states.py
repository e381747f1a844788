"""Which sync state may follow which, as data, and the pure rules built on it.

A job moves ``queued -> preparing -> running -> finalizing -> completed``; while active it
may instead end ``failed``, ``cancelled`` or ``superseded`` (a newer Synchronise of the
same mailshot). Units move ``waiting -> pending -> leased -> done`` (or back to ``pending``
for a retry, or ``leased`` again on a takeover) and end ``failed`` or ``cancelled`` with
their job. The mailshot's ``sync_state`` is the user's summary of its latest job.
"""

from __future__ import annotations

from typing import Final

from mailshot.crm.models.sync import ACTIVE_JOB_STATES

JOB_TERMINAL: Final = frozenset({"completed", "failed", "cancelled", "superseded"})
JOB_ACTIVE: Final = frozenset(ACTIVE_JOB_STATES)
_ENDINGS: Final = frozenset({"failed", "cancelled", "superseded"})

JOB_TRANSITIONS: Final[dict[str, frozenset[str]]] = {
    "queued": frozenset({"preparing"}) | _ENDINGS,
    "preparing": frozenset({"running"}) | _ENDINGS,
    "running": frozenset({"finalizing"}) | _ENDINGS,
    "finalizing": frozenset({"completed"}) | _ENDINGS,
    "completed": frozenset(),
    "failed": frozenset(),
    "cancelled": frozenset(),
    "superseded": frozenset(),
}

UNIT_TRANSITIONS: Final[dict[str, frozenset[str]]] = {
    "waiting": frozenset({"pending", "leased", "cancelled"}),
    "pending": frozenset({"leased", "cancelled"}),
    "leased": frozenset({"leased", "pending", "done", "failed", "cancelled"}),
    "done": frozenset(),
    "failed": frozenset(),
    "cancelled": frozenset(),
}

#: Units that may still be worked on (and so are cancelled when their job ends).
UNIT_OPEN: Final = ("waiting", "pending", "leased")

#: The mailshot's sync_state while its latest job is in each job state.
MAILSHOT_STATE_FOR_JOB: Final[dict[str, str]] = {
    "queued": "queued",
    "preparing": "synchronising",
    "running": "synchronising",
    "finalizing": "synchronising",
    "completed": "synchronised",
    "failed": "failed",
    "cancelled": "cancelled",
}

MAILSHOT_STATES: Final = (
    "not_synchronised",
    "queued",
    "synchronising",
    "synchronised",
    "failed",
    "cancelled",
)
#: Mailshot sync states from which Retry may start a new job.
RETRYABLE: Final = frozenset({"failed", "cancelled"})


def is_active(job_state: str) -> bool:
    return job_state in JOB_ACTIVE


def can_move(current: str, target: str) -> bool:
    """Whether a job may move from ``current`` to ``target``."""
    return target in JOB_TRANSITIONS.get(current, frozenset())


def can_move_unit(current: str, target: str) -> bool:
    """Whether a unit may move from ``current`` to ``target``."""
    return target in UNIT_TRANSITIONS.get(current, frozenset())


def chunk_bounds(total: int, chunk_size: int) -> list[tuple[int, int]]:
    """The inclusive ``(first_seq, last_seq)`` of each chunk of ``total`` recipients."""
    if chunk_size < 1:
        raise ValueError("chunk_size must be at least 1")
    return [(first, min(first + chunk_size, total) - 1) for first in range(0, total, chunk_size)]
