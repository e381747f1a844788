"""A sync job's audience snapshot, by the rules of :mod:`mailshot.crm.services.audience`:
``sync_exclusions``, then ``sync_recipients`` numbered ``seq`` 0..N-1 in person-id order,
slice by slice of person ids (a plan of slice bounds and shared addresses first; nothing
sorts or numbers the whole source). With a ``checkpoint`` it commits between slices, so no
write holds SQLite's lock for long. A takeover redoes it or resumes after its slices."""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Callable
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

import orjson
from sqlalchemy import (
    ARRAY,
    BigInteger,
    ColumnElement,
    Select,
    exists,
    func,
    insert,
    literal,
    select,
    true,
)
from sqlalchemy import delete as sql_delete
from sqlalchemy.orm import Session
from sqlalchemy.sql.expression import Subquery

from mailshot.core.db import engine as db
from mailshot.core.db.engine import is_sqlite
from mailshot.core.db.sqlhelpers import upsert
from mailshot.crm.models import (
    Mailshot,
    Organisation,
    Person,
    SyncExclusion,
    SyncRecipient,
)
from mailshot.crm.services.audience import (
    AudienceCounts,
    _counts,
    _rules,
    _source,
)

#: Members written per slice (one short write transaction each when given a checkpoint).
#: Shorter slices let other writers in sooner but cost the snapshot a little time (see
#: docs/PERFORMANCE.md).
SLICE_MEMBERS = 15_000

#: The shared addresses are looked for in one ordered pass over every person's address
#: (``ix_people_email_normalised``) when there are at most this many people per member of
#: the source; for a source much smaller than ``people``, each of its members' address is
#: probed for a holder with a lower id instead (a pass costs about a third of a probe).
PEOPLE_PER_MEMBER_FOR_ONE_PASS = 3

#: Shared addresses, or their holders' ids, read per statement.
BATCH = 500

#: Recipients of a job's earlier (partial) snapshot deleted per write transaction.
REDO_DELETE_BATCH = 50_000

#: Called by :func:`snapshot` between its steps: commit, then begin a read-only (False)
#: or a writing (True) transaction; raises to stop the snapshot (e.g. a lost lease).
Checkpoint = Callable[[bool], None]


@dataclass
class _Plan:
    """What a snapshot reads before writing: the slices of person ids ``(after, upto]``
    (None: open-ended) and the duplicates (person id, email) in person-id order."""

    slices: list[tuple[int | None, int | None]]
    duplicates: list[tuple[int, str | None]]


def _in_range(column: Any, after: int | None, upto: int | None) -> list[ColumnElement[bool]]:
    conds: list[ColumnElement[bool]] = []
    if after is not None:
        conds.append(column > after)
    if upto is not None:
        conds.append(column <= upto)
    return conds


def is_small_write(session: Session, mailshot: Mailshot, members: int | None = None) -> bool:
    """Whether the mailshot's source has at most ``members`` (default
    :data:`mailshot.core.db.engine.SMALL_WRITE_ROWS`) members, so that its snapshot is a small write
    (ordinary work, not bulk work: it goes before the slices of large snapshots waiting for
    the write lock); one step of that many entries along the source's key (``LIMIT 1
    OFFSET members``), whatever its size."""
    members = db.SMALL_WRITE_ROWS if members is None else members
    src, _ = _source(session, mailshot)
    beyond = select(src.c.person_id).order_by(src.c.person_id).limit(1).offset(members)
    return session.scalar(beyond) is None


def _slice_uppers(
    session: Session, src: Subquery, slice_members: int, after: int | None
) -> list[int]:
    """The id of every ``slice_members``-th member of ``src`` after ``after`` in person-id
    order: per slice, one step of ``slice_members`` entries along the source's key after
    the last bound (``ORDER BY person_id LIMIT 1 OFFSET n - 1``), so nothing numbers or
    sorts the whole source."""
    nth = select(src.c.person_id).order_by(src.c.person_id).limit(1).offset(slice_members - 1)
    uppers: list[int] = []
    while True:
        last = uppers[-1] if uppers else after
        query = nth if last is None else nth.where(src.c.person_id > last)
        upto = session.scalar(query)
        if upto is None:
            return uppers
        uppers.append(int(upto))


def _duplicates(
    session: Session,
    src: Subquery,
    reason: ColumnElement[Any],
    members_at_most: int,
    after: int | None,
) -> list[tuple[int, str | None]]:
    """Among the members no rule leaves out, everyone but the lowest id of each shared
    normalised address, as (person id, email) in person-id order, those after ``after``
    only. The shared addresses are found first (usually none), then only their holders
    are read, by address (index)."""
    p = Person.__table__
    normalised = p.c.email_normalised
    base = src.join(p, p.c.id == src.c.person_id)
    candidate = reason.is_(None)
    people = int(session.scalar(select(func.max(p.c.id))) or 0)
    shared: Select[Any]
    if people <= PEOPLE_PER_MEMBER_FOR_ONE_PASS * members_at_most:
        # Every address held twice in the CRM: the index is read in order, so the GROUP BY
        # needs no sort (no temp b-tree); addresses held outside the source drop out below.
        shared = (
            select(normalised)
            .where(normalised.is_not(None))
            .group_by(normalised)
            .having(func.count() > 1)
        )
    else:
        # A later holder of a shared address always finds a lower one: one index probe
        # per candidate of the source.
        other = p.alias("other")
        lower_holder = exists().where(other.c.email_normalised == normalised, other.c.id < p.c.id)
        shared = (
            select(normalised)
            .select_from(base)
            .where(candidate, lower_holder, *_in_range(p.c.id, after, None))
        )
    addresses = sorted({str(a) for a in session.scalars(shared)})
    duplicates: list[tuple[int, str | None]] = []
    for start in range(0, len(addresses), BATCH):
        # The holders of these addresses (the index), then which of them are candidates
        # of the source (their ids: a planner given the addresses scans the source).
        ids = list(
            session.scalars(select(p.c.id).where(normalised.in_(addresses[start : start + BATCH])))
        )
        holders: list[tuple[str, int, str | None]] = []
        for first in range(0, len(ids), BATCH):
            some = ids[first : first + BATCH]
            holders += [
                (str(row[0]), int(row[1]), row[2])
                for row in session.execute(
                    select(normalised, p.c.id, p.c.email)
                    .select_from(base)
                    .where(candidate, src.c.person_id.in_(some), p.c.id.in_(some))
                )
            ]
        holders.sort(key=lambda h: (h[0], h[1]))
        for previous, holder in pairwise(holders):
            if holder[0] == previous[0] and (after is None or holder[1] > after):
                duplicates.append((holder[1], holder[2]))
    duplicates.sort()
    return duplicates


def _plan(
    session: Session,
    src: Subquery,
    reason: ColumnElement[Any],
    slice_members: int,
    after: int | None,
) -> _Plan:
    """Read the slice bounds and the duplicates of the source's members after ``after``
    (writes nothing)."""
    uppers = _slice_uppers(session, src, slice_members, after)
    bounds: list[int | None] = [after, *uppers, None]
    members_at_most = (len(uppers) + 1) * slice_members
    duplicates = _duplicates(session, src, reason, members_at_most, after)
    return _Plan(slices=list(pairwise(bounds)), duplicates=duplicates)


def _without(ids: list[int], left_out: list[int]) -> list[int]:
    """``ids`` (sorted) less ``left_out`` (sorted, few): copied run by run."""
    kept: list[int] = []
    start = 0
    for pid in left_out:
        at = bisect_left(ids, pid, start)
        if at < len(ids) and ids[at] == pid:
            kept += ids[start:at]
            start = at + 1
    kept += ids[start:]
    return kept


_EXCLUSION_COLUMNS = ["job_id", "person_id", "reason", "email"]
_RECIPIENT_COLUMNS = [
    "job_id",
    "seq",
    "person_id",
    "email",
    "first_name",
    "last_name",
    "organisation_id",
    "organisation",
]


def _classify(session: Session, job_id: int, members: Subquery) -> list[int]:
    """One read of the slice's ``members`` (``pid``, ``reason``, ``email``): writes the
    ones a rule leaves out into ``sync_exclusions`` and answers the others' ids, sorted.

    SQLite: the read answers both as JSON text (``json_group_array``), and the excluded
    rows go back to SQLite as they came (``json_each``), never a row in Python.
    PostgreSQL: arrays, and the excluded rows are written with an executemany."""
    kept = members.c.reason.is_(None)
    left = members.c.reason.is_not(None)
    if not is_sqlite(session):
        ids, out_ids, out_reasons, out_emails = session.execute(
            select(
                func.array_agg(members.c.pid).filter(kept),
                func.array_agg(members.c.pid).filter(left),
                func.array_agg(members.c.reason).filter(left),
                func.array_agg(members.c.email).filter(left),
            )
        ).one()
        if out_ids:
            rows = zip(out_ids, out_reasons, out_emails, strict=True)
            session.execute(
                upsert(session, SyncExclusion).on_conflict_do_nothing(),
                [
                    {"job_id": job_id, "person_id": pid, "reason": why, "email": email}
                    for pid, why, email in rows
                ],
            )
        included = list(ids or [])
    else:
        ids_json, out_json = session.execute(
            select(
                func.json_group_array(members.c.pid).filter(kept),
                func.json_group_array(
                    func.json_array(members.c.pid, members.c.reason, members.c.email)
                ).filter(left),
            )
        ).one()
        if out_json != "[]":
            out = func.json_each(literal(out_json)).table_valued("value")
            fields = [func.json_extract(out.c.value, f"$[{i}]") for i in range(3)]
            session.execute(
                upsert(session, SyncExclusion)
                .on_conflict_do_nothing()
                .from_select(
                    _EXCLUSION_COLUMNS,
                    # WHERE: SQLite's INSERT ... SELECT ... ON CONFLICT needs one.
                    select(literal(job_id), *fields).where(true()),
                )
            )
        included = list(orjson.loads(ids_json))
    included.sort()  # read in order already: one pass
    return included


def _write_slice(
    session: Session,
    job_id: int,
    src: Subquery,
    reason: ColumnElement[Any],
    after: int | None,
    upto: int | None,
    duplicates: list[tuple[int, str | None]],
    first_seq: int,
) -> int:
    """Write the members of ``src`` with ids in ``(after, upto]``: their exclusions, then
    the included people numbered from ``first_seq``. Answers how many were included.

    One read classifies the slice (the rules computed once per member); the included are
    then written from the list of their ids, numbered by their place in it (no window
    over the rows on SQLite, no probe of the exclusions just written), each with its
    organisation's name joined in the same statement."""
    pg = not is_sqlite(session)
    p, org = Person.__table__, Organisation.__table__
    base = src.join(p, p.c.id == src.c.person_id)
    members = (
        select(src.c.person_id.label("pid"), reason.label("reason"), p.c.email.label("email"))
        .select_from(base)
        .where(*_in_range(src.c.person_id, after, upto), *_in_range(p.c.id, after, upto))
        # In the source's key order (no sort); the ORDER BY also keeps this subquery from
        # being merged into the aggregates, so the rules run once per member.
        .order_by(src.c.person_id)
        .subquery("members")
    )
    included = _classify(session, job_id, members)
    lo = 0 if after is None else bisect_right(duplicates, after, key=lambda d: d[0])
    hi = len(duplicates) if upto is None else bisect_right(duplicates, upto, key=lambda d: d[0])
    if lo < hi:
        # After the rules' rows: a duplicate whose data changed since the plan keeps the
        # reason a rule gives now (ON CONFLICT DO NOTHING).
        session.execute(
            upsert(session, SyncExclusion).on_conflict_do_nothing(),
            [
                {"job_id": job_id, "person_id": pid, "reason": "duplicate_email", "email": email}
                for pid, email in duplicates[lo:hi]
            ],
        )
        included = _without(included, [pid for pid, _ in duplicates[lo:hi]])
    if not included:
        return 0

    listed: Any
    seq: ColumnElement[Any]
    if pg:
        listed = (
            func.unnest(literal(included, ARRAY(BigInteger)))
            .table_valued("value", with_ordinality="ord")
            .render_derived()
        )
        # Read committed: a person deleted since the read above is skipped without a gap.
        seq = func.row_number().over(order_by=listed.c.ord) + (first_seq - 1)
    else:
        # The write lock is held since the read above, so every listed person is there.
        listed = func.json_each(literal(orjson.dumps(included).decode())).table_valued(
            "key", "value"
        )
        seq = listed.c.key + first_seq
    rows = (
        select(
            literal(job_id),
            seq,
            p.c.id,
            p.c.email,
            p.c.first_name,
            p.c.last_name,
            p.c.organisation_id,
            org.c.name,
        )
        .select_from(
            listed.join(p, p.c.id == listed.c.value).outerjoin(org, org.c.id == p.c.organisation_id)
        )
        .where(*_in_range(p.c.id, after, upto))
    )
    # preserve_rowcount: psycopg forgets an INSERT's rowcount once its cursor is closed.
    statement = insert(SyncRecipient).from_select(_RECIPIENT_COLUMNS, rows)
    result = session.execute(statement, execution_options={"preserve_rowcount": True})
    written = int(result.rowcount)  # type: ignore[attr-defined]
    if not pg and written != len(included):
        raise RuntimeError(f"snapshot slice ({after}, {upto}]: {written} of {len(included)}")
    return written


def _delete_earlier(session: Session, job_id: int, checkpoint: Checkpoint | None) -> None:
    """Delete an earlier (partial) snapshot of the job, in a writing transaction: given a
    ``checkpoint``, its recipients in ranges of :data:`REDO_DELETE_BATCH` seqs, committed
    between them (a redo of 1M recipients is not one long write transaction)."""
    recipients = SyncRecipient
    session.execute(sql_delete(SyncExclusion).where(SyncExclusion.job_id == job_id))
    if checkpoint is None:
        session.execute(sql_delete(recipients).where(recipients.job_id == job_id))
        return
    last = session.scalar(select(func.max(recipients.seq)).where(recipients.job_id == job_id))
    if last is None:
        return
    for start in range(0, int(last) + 1, REDO_DELETE_BATCH):
        if start:
            checkpoint(True)
        session.execute(
            sql_delete(recipients).where(
                recipients.job_id == job_id,
                recipients.seq >= start,
                recipients.seq < start + REDO_DELETE_BATCH,
            )
        )
    checkpoint(True)


def _committed(session: Session, job_id: int) -> tuple[int | None, int]:
    """Where the job's committed slices end: the highest person id they hold (None when
    there is none) and the next seq. Slices are committed whole, so every member up to
    that id is written."""
    r = SyncRecipient.__table__
    e = SyncExclusion.__table__
    last = session.execute(
        select(r.c.seq, r.c.person_id).where(r.c.job_id == job_id).order_by(r.c.seq.desc()).limit(1)
    ).first()
    excluded = session.scalar(select(func.max(e.c.person_id)).where(e.c.job_id == job_id))
    ids = [int(v) for v in (last[1] if last else None, excluded) if v is not None]
    return (max(ids) if ids else None), (int(last[0]) + 1 if last else 0)


def snapshot(
    session: Session,
    job_id: int,
    mailshot: Mailshot,
    *,
    checkpoint: Checkpoint | None = None,
    slice_members: int = SLICE_MEMBERS,
    resume: bool = False,
) -> AudienceCounts:
    """Write the audience of ``mailshot`` for sync job ``job_id``: one ``sync_exclusions``
    row per person left out (with the reason), then the included people into
    ``sync_recipients`` numbered ``seq`` 0..N-1 in person-id order. Replaces an earlier
    snapshot of the same job (so a redo after a takeover starts clean), unless
    ``resume``: then the slices an earlier attempt committed are kept (their recipients
    may be in use already) and the snapshot goes on after the last person they hold,
    numbered after them.

    Without ``checkpoint`` everything runs in the caller's transaction, uncommitted. With
    one, the reads run in a read-only transaction and each slice of ``slice_members``
    members in its own writing one (``checkpoint`` commits between them); the last slice
    is left uncommitted for the caller."""
    src, is_list = _source(session, mailshot)
    reason = _rules(session, src, is_list)
    if checkpoint is not None:
        checkpoint(False)
    after, n_included = _committed(session, job_id) if resume else (None, 0)
    plan = _plan(session, src, reason, slice_members, after)
    if checkpoint is not None:
        checkpoint(True)
    if not resume:
        _delete_earlier(session, job_id, checkpoint)
    for n, (low, upto) in enumerate(plan.slices):
        if n and checkpoint is not None:
            checkpoint(True)
        n_included += _write_slice(
            session, job_id, src, reason, low, upto, plan.duplicates, n_included
        )

    e = SyncExclusion.__table__
    per_reason = session.execute(
        select(e.c.reason, func.count()).where(e.c.job_id == job_id).group_by(e.c.reason)
    )
    return _counts(n_included, list(per_reason))
