"""What a part tells the lease queue about its queue (:class:`QueueSpec`): its three
tables, its job states, its error codes, and the hooks per unit kind that say what a job
does when one of its units is claimed or completed; and what the queue answers
(:class:`Lease`, :class:`Outcome`)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

from sqlalchemy import ColumnElement, Row, Table
from sqlalchemy.orm import Session

from mailshot.core.db.engine import db_now
from mailshot.core.errors import AppError, ErrorSpec
from mailshot.queue.states import JobMoves


@dataclass(frozen=True)
class QueueTables:
    """The job table (:class:`~mailshot.queue.columns.JobColumns`), the unit table
    (``UnitColumns``) and the lease log (``LeaseLogColumns``) of one queue."""

    jobs: Table
    units: Table
    lease_log: Table

    @classmethod
    def of(cls, jobs: type, units: type, lease_log: type) -> QueueTables:
        """The tables of three mapped classes."""
        return cls(*(cast(Table, getattr(m, "__table__")) for m in (jobs, units, lease_log)))  # noqa: B009


@dataclass(frozen=True)
class QueueErrors:
    """The part's catalogued errors for what the queue refuses or decides, with these
    parameters: ``lease_lost`` {unit_id}; ``job_ended`` {job_id} {state}; ``wrong_kind``
    {unit_id} {kind} {expected}; ``unit_kills_workers`` {step} {takeovers};
    ``retries_exhausted`` {attempts} {step} {last_code} {last_message}."""

    lease_lost: ErrorSpec
    job_ended: ErrorSpec
    wrong_kind: ErrorSpec
    unit_kills_workers: ErrorSpec
    retries_exhausted: ErrorSpec
    #: What a unit is called in ``NOT_FOUND``.
    unit_noun: str = "unit"


@dataclass(frozen=True)
class Fault:
    """Why a unit's attempt or its job failed: a code, a sentence and what to do."""

    code: str
    message: str
    fix: str | None = None

    @classmethod
    def of(cls, err: AppError) -> Fault:
        return cls(err.code, err.message, err.fix)

    @classmethod
    def rendered(cls, spec: ErrorSpec, **params: Any) -> Fault:
        return cls.of(AppError(spec, **params))


@dataclass(frozen=True)
class Lease:
    """A unit claimed by a worker: what it must send back (``token``) and by when."""

    unit_id: int
    job_id: int
    kind: str
    token: str
    expires_at: datetime
    lease_seconds: float
    #: 1 for the first try of this unit.
    attempt: int
    #: Whether the lease was taken over from a worker whose lease lapsed.
    takeover: bool
    #: The unit as claimed, with the part's ``unit_columns``.
    unit: Row[Any]
    #: The part's ``job_columns`` of its job, as the claim left them.
    job: Row[Any]


@dataclass(frozen=True)
class Outcome:
    """What completing or failing a unit did; ``repeated``: a completion sent again with
    the same token, which changed nothing."""

    unit_id: int
    job_id: int
    kind: str
    job_state: str
    repeated: bool = False


#: After a unit of the kind is completed, in the same transaction: (session, the unit as
#: completed (job_id, kind and the part's unit columns), the part's report, now) -> the
#: job's state. It may raise (the whole completion is then rolled back).
CompleteHook = Callable[[Session, Row[Any], Any, datetime], str]
#: After a unit of the kind is claimed and its job updated, in the same transaction.
ClaimHook = Callable[[Session, Lease], None]
#: After a job ended (session, its job columns, its end state, the fault if any, now).
EndHook = Callable[[Session, Row[Any], str, Fault | None, datetime], None]


@dataclass(frozen=True)
class KindHooks:
    """What a job does when a unit of one kind is claimed and completed."""

    on_complete: CompleteHook
    #: Values set on the job by the claim's own UPDATE (e.g. a state move, as a CASE).
    job_values_on_claim: Mapping[str, Any] = field(default_factory=dict)
    on_claim: ClaimHook | None = None


@dataclass(frozen=True)
class QueueSpec:
    """One queue: its tables, its job states, its errors, and its unit kinds' hooks."""

    tables: QueueTables
    moves: JobMoves[Any]
    errors: QueueErrors
    #: One entry per unit kind (a ``StrEnum`` of the part).
    kinds: Mapping[str, KindHooks]
    #: A ``waiting`` unit of the kind becomes leasable once its job is in that state.
    waits_for: Mapping[str, str] = field(default_factory=dict)
    #: The part's unit columns a claim reads and a completion or failure returns.
    unit_columns: tuple[str, ...] = ()
    #: The part's job columns a claim and the end of a job return.
    job_columns: tuple[str, ...] = ()
    #: The unit's step, in errors' sentences (given a row with ``kind`` and unit_columns).
    describe: Callable[[Row[Any]], str] = lambda row: str(row.kind)
    on_job_end: EndHook | None = None

    def unit_cols(self) -> list[ColumnElement[Any]]:
        return [self.tables.units.c[name] for name in self.unit_columns]

    def job_cols(self) -> list[ColumnElement[Any]]:
        return [self.tables.jobs.c[name] for name in self.job_columns]


def current_time(session: Session, now: datetime | None = None) -> datetime:
    """``now`` when a caller (a test) gives one, else the database's clock."""
    return now if now is not None else db_now(session)
