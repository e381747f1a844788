"""The lease queue's states as data: a unit's (the queue's own), how a lease ended (the
lease log), and :class:`JobMoves`, the table of the moves a part's job states may make,
which every statement that moves a job checks (:meth:`JobMoves.move`,
:func:`mailshot.queue.end_job`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Final, Generic, TypeVar


class UnitState(StrEnum):
    #: Not leasable until its job reaches the state its kind waits for (``waits_for``).
    WAITING = "waiting"
    #: Leasable once due (``available_at`` passed or unset).
    PENDING = "pending"
    #: Held by the lease whose token it carries, until ``lease_expires_at``.
    LEASED = "leased"
    DONE = "done"
    #: The unit whose error failed its job.
    FAILED = "failed"
    #: Its job ended before it was done.
    CANCELLED = "cancelled"


#: Units that may still be worked on (and so are cancelled when their job ends).
UNIT_OPEN: Final = (UnitState.WAITING, UnitState.PENDING, UnitState.LEASED)


class LeaseOutcome(StrEnum):
    """How a lease ended (``outcome`` of the lease log; otherwise the state its job ended
    in, when the job ended while the lease held)."""

    COMPLETED = "completed"
    FAILED = "failed"
    #: A transient failure: the unit is pending again, after a back-off.
    RETRY = "retry"
    #: It lapsed and was taken over (or its unit failed the job for too many takeovers).
    EXPIRED = "expired"


class IllegalMoveError(RuntimeError):
    """A job was asked to make a move its part's :class:`JobMoves` does not allow."""


S = TypeVar("S", bound=StrEnum)


@dataclass(frozen=True)
class JobMoves(Generic[S]):
    """Which job state may follow which: ``table[a]`` holds every state a job in ``a``
    may move to. States with no move out are ended; ``failed`` is the end state the queue
    itself moves a job to (a permanent failure, retries exhausted, too many takeovers)."""

    table: Mapping[S, frozenset[S]]
    failed: S
    active: frozenset[S] = field(init=False)
    ended: frozenset[S] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "active", frozenset(s for s, out in self.table.items() if out))
        object.__setattr__(self, "ended", frozenset(s for s, out in self.table.items() if not out))
        if self.failed not in self.ended or not self.sources(self.failed):
            raise ValueError(f"{self.failed!r} must be an end state reachable from another")

    def allowed(self, current: S, target: S) -> bool:
        return target in self.table.get(current, frozenset())

    def move(self, current: S, target: S) -> str:
        """``target``'s value, once the table allows ``current -> target``: what a statement
        that moves a job from ``current`` writes (raises :class:`IllegalMoveError`
        otherwise). A plain ``str``, so that it binds as one in a ``CASE``."""
        if not self.allowed(current, target):
            raise IllegalMoveError(f"a job may not move from {current} to {target}")
        return str(target)

    def sources(self, target: S) -> frozenset[S]:
        """The states a job may move to ``target`` from."""
        return frozenset(s for s, out in self.table.items() if target in out)
