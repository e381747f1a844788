"""A lease queue over a part's own database, in the style of procrastinate and Oban.

A part declares its job, unit and lease-log tables from :mod:`mailshot.queue.columns`,
describes them in a :class:`QueueSpec` (its job states as :class:`JobMoves`, its errors,
one :class:`KindHooks` per unit kind) and calls: :func:`claim` (one short transaction,
least-served job first, takeover of lapsed leases), :func:`heartbeat`, :func:`complete`,
:func:`fail` (retry policy as data), :func:`fail_job`, :func:`end_job`; :func:`hold` and
:func:`held_by` for its own calls under a lease; :func:`is_due`, :class:`QueueSignal` and
:func:`long_poll` for waiting workers. It knows nothing of what the units do.
"""

from mailshot.queue.claim import claim, is_due
from mailshot.queue.finish import complete, end_job, fail, fail_job
from mailshot.queue.held import heartbeat, held_by, hold, raise_why
from mailshot.queue.retry import DEFAULT_POLICY, RetryPolicy
from mailshot.queue.spec import (
    Fault,
    KindHooks,
    Lease,
    Outcome,
    QueueErrors,
    QueueSpec,
    QueueTables,
    current_time,
)
from mailshot.queue.states import UNIT_OPEN, IllegalMoveError, JobMoves, LeaseOutcome, UnitState
from mailshot.queue.wakeups import QueueSignal, install, long_poll

__all__ = [
    "DEFAULT_POLICY",
    "UNIT_OPEN",
    "Fault",
    "IllegalMoveError",
    "JobMoves",
    "KindHooks",
    "Lease",
    "LeaseOutcome",
    "Outcome",
    "QueueErrors",
    "QueueSignal",
    "QueueSpec",
    "QueueTables",
    "RetryPolicy",
    "UnitState",
    "claim",
    "complete",
    "current_time",
    "end_job",
    "fail",
    "fail_job",
    "heartbeat",
    "held_by",
    "hold",
    "install",
    "is_due",
    "long_poll",
    "raise_why",
]
