"""Mailshots' sends as the ESP reports them: the bridge relays the ESP's feed of changed
sends (``PUT /integration/send-status``); each report is stored on its mailshot
(``mailshot_sends``) only if it is newer than the one there (a later send, or a higher
version of the same send), so a late or repeated report never undoes a newer one. The
feed's cursor is kept in the same transaction (``crm_settings``), and read back by the
bridge when it starts, so a restart resumes where the last stored batch ended."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from mailshot.contracts.sends import SendStatusAnswer, SendStatusBatch, SendSummary
from mailshot.core.clock import utcnow
from mailshot.core.db.sqlhelpers import upsert
from mailshot.crm.models import CrmSetting, Mailshot, MailshotSend

#: The ``crm_settings`` key of the ESP send feed's cursor.
CURSOR_KEY = "esp_send_feed_cursor"


def _newer(item: SendSummary, than: SendSummary | None) -> bool:
    return than is None or (item.send_id, item.version) > (than.send_id, than.version)


def _values(item: SendSummary, now: datetime, reported_by: str | None) -> dict[str, Any]:
    error = item.last_error
    counts = {f"{state}_count": n for state, n in item.counts.model_dump().items()}
    return {
        "mailshot_id": item.crm_mailshot_id,
        "send_id": item.send_id,
        "version": item.version,
        "esp_changed_at": item.changed_at,
        "esp_campaign_id": item.esp_campaign_id,
        "state": item.state.value,
        "total": item.total,
        **counts,
        "scheduled_at": item.scheduled_at,
        "started_at": item.started_at,
        "finished_at": item.finished_at,
        "paused_at": item.paused_at,
        "rate_per_second": item.rate_per_second,
        "eta_seconds": item.eta_seconds,
        "last_error_code": error.code if error else None,
        "last_error_message": error.message if error else None,
        "last_error_fix": error.fix if error else None,
        "received_at": now,
        "reported_by": reported_by,
    }


def _store_one(session: Session, values: dict[str, Any]) -> bool:
    """Upsert one report unless the stored one is as new; answer whether it was stored."""
    table = MailshotSend.__table__
    stmt = upsert(session, MailshotSend).values(**values)
    new = stmt.excluded
    result = session.execute(
        stmt.on_conflict_do_update(
            index_elements=[table.c.mailshot_id],
            set_={k: new[k] for k in values if k != "mailshot_id"},
            where=or_(
                new.send_id > table.c.send_id,
                and_(new.send_id == table.c.send_id, new.version > table.c.version),
            ),
        ),
        execution_options={"preserve_rowcount": True},
    )
    return int(result.rowcount) > 0  # type: ignore[attr-defined]


def _store_cursor(session: Session, cursor: str) -> str:
    """Keep ``cursor`` unless the stored one is later (cursors order as strings)."""
    stored = session.scalar(
        select(CrmSetting.value).where(CrmSetting.key == CURSOR_KEY).with_for_update()
    )
    if stored is not None and stored >= cursor:
        return stored
    table = CrmSetting.__table__
    stmt = upsert(session, CrmSetting).values(key=CURSOR_KEY, value=cursor)
    session.execute(
        stmt.on_conflict_do_update(
            index_elements=[table.c.key], set_={"value": stmt.excluded.value}
        )
    )
    return cursor


def apply(session: Session, batch: SendStatusBatch, *, reported_by: str | None) -> SendStatusAnswer:
    """Store the batch's reports that are newer than what each mailshot has, and the feed
    cursor after them, in one transaction; commit."""
    latest: dict[int, SendSummary] = {}
    for item in batch.items:
        if _newer(item, latest.get(item.crm_mailshot_id)):
            latest[item.crm_mailshot_id] = item
    found = select(Mailshot.id, Mailshot.uid).where(Mailshot.id.in_(list(latest)))
    known = {int(i): uid for i, uid in session.execute(found)}
    answer = SendStatusAnswer(unchanged=len(batch.items) - len(latest))
    now = utcnow()
    for mailshot_id, item in sorted(latest.items()):
        uid = known.get(mailshot_id)
        if uid is None or (item.crm_mailshot_uid and item.crm_mailshot_uid != str(uid)):
            answer.unknown_mailshots.append(mailshot_id)
        elif _store_one(session, _values(item, now, reported_by)):
            answer.applied += 1
        else:
            answer.unchanged += 1
    answer.cursor = _store_cursor(session, batch.cursor) if batch.cursor else cursor(session)
    session.commit()
    return answer


def cursor(session: Session) -> str | None:
    """The feed cursor the last stored batch ended at (None: none stored yet)."""
    return session.scalar(select(CrmSetting.value).where(CrmSetting.key == CURSOR_KEY))


def of_mailshot(session: Session, mailshot_id: int) -> MailshotSend | None:
    return session.get(MailshotSend, mailshot_id)
