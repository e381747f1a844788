"""The Outbox's storage: messages written in batches (one transaction for many messages)
with retention applied in the same transaction (oldest deleted past the kept number of
messages or bytes, and counted), and the reads of its pages and commands."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, bindparam, delete, func, insert, or_, select, update
from sqlalchemy.orm import Session

from mailshot.core.db.sqlhelpers import upsert
from mailshot.core.errors import NOT_FOUND, AppError
from mailshot.core.web.paging import decode_cursor, encode_cursor
from mailshot.esp.models import OutboxMessage, OutboxSource, OutboxTotals
from mailshot.esp.models.outbox import HEADER_MAX
from mailshot.esp.outbox.headers import clip, summary

#: Oldest messages looked at per statement while choosing what retention deletes.
PRUNE_SCAN = 1000

# The batch's statements, built once (Core, executemany: no ORM bookkeeping per row).
_MESSAGES = cast(Table, OutboxMessage.__table__)
_INSERT_MESSAGES = insert(_MESSAGES).returning(_MESSAGES.c.id, sort_by_parameter_order=True)
_INSERT_SOURCES = insert(cast(Table, OutboxSource.__table__))
_ADD_TOTALS: dict[str, Any] = {}


def _add_totals(session: Session) -> Any:
    """``INSERT ... ON CONFLICT DO UPDATE`` of the totals row for the session's dialect."""
    name = session.get_bind().dialect.name
    if name not in _ADD_TOTALS:
        t = OutboxTotals.__table__.c
        add = upsert(session, OutboxTotals.__table__).values(
            id=1, messages=bindparam("n"), bytes=bindparam("b"), deleted=0
        )
        add = add.on_conflict_do_update(
            index_elements=[t.id],
            set_={
                "messages": t.messages + add.excluded.messages,
                "bytes": t.bytes + add.excluded.bytes,
            },
        )
        _ADD_TOTALS[name] = add.returning(t.messages, t.bytes)
    return _ADD_TOTALS[name]


@dataclass(frozen=True)
class Incoming:
    """A message as the SMTP server received it."""

    received_at: datetime
    mail_from: str
    recipients: tuple[str, ...]
    raw: bytes


@dataclass(frozen=True)
class Retention:
    """At most this many messages and bytes of messages are kept."""

    messages: int
    bytes: int


@dataclass(frozen=True)
class Totals:
    messages: int
    bytes: int
    deleted: int


def store(session: Session, batch: Sequence[Incoming], keep: Retention) -> list[int]:
    """Keep ``batch`` (one transaction, committed) and apply retention; return the new
    messages' ids in the batch's order."""
    if not batch:
        return []
    rows = []
    for m in batch:
        s = summary(m.raw)
        rows.append(
            {
                "received_at": m.received_at,
                "mail_from": clip(m.mail_from),
                "recipients": "\n".join(clip(r, HEADER_MAX) for r in m.recipients),
                "recipient_count": len(m.recipients),
                "subject": s.subject,
                "message_id": s.message_id,
                "from_header": s.from_header,
                "to_header": s.to_header,
                "size": len(m.raw),
            }
        )
    conn = session.connection()
    ids = list(conn.execute(_INSERT_MESSAGES, rows).scalars())
    conn.execute(
        _INSERT_SOURCES, [{"message_id": i, "raw": m.raw} for i, m in zip(ids, batch, strict=True)]
    )
    added = sum(len(m.raw) for m in batch)
    kept = conn.execute(_add_totals(session), {"n": len(batch), "b": added}).one()
    if kept.messages > keep.messages or kept.bytes > keep.bytes:
        _prune(session, kept.messages - keep.messages, kept.bytes - keep.bytes)
    session.commit()
    return ids


def _prune(session: Session, excess_messages: int, excess_bytes: int) -> None:
    """Delete the oldest messages until ``excess_messages`` messages and ``excess_bytes``
    bytes are gone (the totals row is locked by the caller's update)."""
    count = size = 0
    cutoff: int | None = None
    while count < excess_messages or size < excess_bytes:
        query = select(OutboxMessage.id, OutboxMessage.size).order_by(OutboxMessage.id)
        if cutoff is not None:
            query = query.where(OutboxMessage.id > cutoff)
        rows = session.execute(query.limit(PRUNE_SCAN)).all()
        if not rows:
            break
        for ident, n in rows:
            if count >= excess_messages and size >= excess_bytes:
                break
            cutoff, count, size = ident, count + 1, size + n
    if cutoff is None:
        return
    session.execute(delete(OutboxSource).where(OutboxSource.message_id <= cutoff))
    session.execute(delete(OutboxMessage).where(OutboxMessage.id <= cutoff))
    session.execute(
        update(OutboxTotals)
        .where(OutboxTotals.id == 1)
        .values(
            messages=OutboxTotals.messages - count,
            bytes=OutboxTotals.bytes - size,
            deleted=OutboxTotals.deleted + count,
        )
    )


def totals(session: Session) -> Totals:
    row = session.get(OutboxTotals, 1)
    if row is None:
        return Totals(0, 0, 0)
    return Totals(row.messages, row.bytes, row.deleted)


def _search(q: str | None) -> list[object]:
    if not q or not q.strip():
        return []
    escaped = q.strip().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    pattern = f"%{escaped}%"
    return [
        or_(
            OutboxMessage.recipients.ilike(pattern, escape="\\"),
            OutboxMessage.subject.ilike(pattern, escape="\\"),
        )
    ]


def list_page(
    session: Session, *, cursor: str | None, limit: int, q: str | None = None
) -> tuple[list[OutboxMessage], str | None]:
    """One page of messages, newest first, whose recipients or subject contain ``q``."""
    query = select(OutboxMessage).where(*_search(q))  # type: ignore[arg-type]
    before = decode_cursor(cursor)
    if before is not None:
        query = query.where(OutboxMessage.id < before)
    rows = list(session.scalars(query.order_by(OutboxMessage.id.desc()).limit(limit + 1)))
    if len(rows) > limit:
        rows = rows[:limit]
        return rows, encode_cursor(rows[-1].id)
    return rows, None


def count(session: Session, q: str | None = None) -> int:
    query = select(func.count()).select_from(OutboxMessage).where(*_search(q))  # type: ignore[arg-type]
    return int(session.scalar(query) or 0)


def get(session: Session, message_id: int) -> OutboxMessage:
    row = session.get(OutboxMessage, message_id)
    if row is None:
        raise AppError(NOT_FOUND, what="Outbox message", id=message_id)
    return row


def source(session: Session, message_id: int) -> bytes:
    """The raw message as received."""
    raw = session.scalar(select(OutboxSource.raw).where(OutboxSource.message_id == message_id))
    if raw is None:
        raise AppError(NOT_FOUND, what="Outbox message", id=message_id)
    return bytes(raw)
