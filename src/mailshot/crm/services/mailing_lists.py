"""Mailing lists (static) and their members.

Members are written in bulk with one set-based upsert per request (no ORM object per row).
Changes of the subscribed flag (unsubscribes and re-subscribes) are written to the audit
log with the people concerned. A dynamic list (kind 'dynamic') has a saved filter instead of
members (:mod:`mailshot.crm.services.dynamic_lists`): its members are computed, and edits of
them are refused (``MAILING_LIST_DYNAMIC_MEMBERS``).
"""

from __future__ import annotations

from sqlalchemy import delete as sql_delete
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from mailshot.core.clock import utcnow
from mailshot.core.db.sqlhelpers import get_or_404, upsert
from mailshot.core.errors import NOT_FOUND, AppError
from mailshot.core.web.paging import keyset_page
from mailshot.crm.errors import (
    MAILING_LIST_DYNAMIC_MEMBERS,
    MAILING_LIST_HAS_MEMBERS,
    field_error,
)
from mailshot.crm.models import MailingList, MailingListMember
from mailshot.crm.schemas.common import MembersWritten
from mailshot.crm.schemas.mailing_lists import (
    ListMembersAdd,
    ListMemberUpdate,
    MailingListCreate,
    MailingListUpdate,
)
from mailshot.crm.services import dynamic_lists
from mailshot.crm.services.common import audit, contains_pattern, require_people


def _check_kind(session: Session, ml: MailingList, sent: dict[str, object]) -> None:
    """A dynamic list has a filter, a static one none; a list with members of its own does
    not become dynamic (they would be silently ignored)."""
    if ml.kind == "dynamic":
        if not ml.filter:
            raise field_error("filter", "required_for_kind", "is required for a dynamic list")
        if ml.id is not None and "kind" in sent:
            m = MailingListMember.__table__
            n = session.scalar(select(func.count()).where(m.c.list_id == ml.id)) or 0
            if n:
                raise AppError(MAILING_LIST_HAS_MEMBERS, name=ml.name, count=n)
    elif ml.filter is not None:
        if sent.get("filter") is not None:
            raise field_error("filter", "only_for_kind", "is used only by a dynamic list")
        ml.filter = None


def _require_static(ml: MailingList) -> None:
    if ml.kind == "dynamic":
        raise AppError(MAILING_LIST_DYNAMIC_MEMBERS, name=ml.name, list_id=ml.id)


def create(session: Session, data: MailingListCreate) -> MailingList:
    values = data.model_dump(exclude={"filter"})
    ml = MailingList(**values, filter=data.filter.stored() if data.filter else None)
    _check_kind(session, ml, data.model_dump(exclude_unset=True))
    session.add(ml)
    session.commit()
    return ml


def get(session: Session, list_id: int) -> MailingList:
    return get_or_404(session, MailingList, list_id, "mailing list")


def update(session: Session, list_id: int, patch: MailingListUpdate) -> MailingList:
    ml = get(session, list_id)
    sent = patch.model_dump(exclude_unset=True)
    for name in patch.model_fields_set - {"filter"}:
        setattr(ml, name, getattr(patch, name))
    if "filter" in patch.model_fields_set:
        ml.filter = patch.filter.stored() if patch.filter is not None else None
    _check_kind(session, ml, sent)
    session.commit()
    return ml


def delete(session: Session, list_id: int) -> None:
    session.delete(get(session, list_id))
    session.commit()


def list_page(
    session: Session, *, cursor: str | None, limit: int, q: str | None = None
) -> tuple[list[MailingList], str | None]:
    query = select(MailingList)
    if q:
        query = query.where(MailingList.name.ilike(contains_pattern(q), escape="\\"))
    return keyset_page(session, query, MailingList.id, cursor=cursor, limit=limit)


# ---- members ------------------------------------------------------------------------------
def _audit_subscription(
    session: Session, actor: str, list_id: int, person_ids: list[int], subscribed: bool
) -> None:
    if person_ids:
        action = "mailing_list.resubscribe" if subscribed else "mailing_list.unsubscribe"
        detail = {"person_ids": person_ids, "subscribed": subscribed}
        audit(session, actor, action, "mailing_list", list_id, detail)


def add_members(
    session: Session, list_id: int, data: ListMembersAdd, *, actor: str
) -> MembersWritten:
    """Make every person of ``data`` a member with ``data.subscribed``: new members are added,
    existing ones get the flag; all or nothing."""
    _require_static(get(session, list_id))
    ids = require_people(session, data.person_ids)
    m = MailingListMember.__table__
    before: dict[int, object] = {
        pid: value
        for pid, value in session.execute(
            select(m.c.person_id, m.c.subscribed).where(
                m.c.list_id == list_id, m.c.person_id.in_(ids)
            )
        )
    }
    flipped = [i for i in ids if i in before and before[i] != data.subscribed]
    # An unsubscribe is recorded also for people who join the list unsubscribed.
    audited = flipped if data.subscribed else [i for i in ids if before.get(i) is not False]
    now = utcnow()
    stmt = upsert(session, MailingListMember)
    stmt = stmt.on_conflict_do_update(
        index_elements=[m.c.list_id, m.c.person_id],
        set_={"subscribed": stmt.excluded.subscribed, "updated_at": stmt.excluded.updated_at},
        where=m.c.subscribed != stmt.excluded.subscribed,
    )
    rows = [
        {
            "list_id": list_id,
            "person_id": pid,
            "subscribed": data.subscribed,
            "created_at": now,
            "updated_at": now,
        }
        for pid in ids
    ]
    session.execute(stmt, rows)
    _audit_subscription(session, actor, list_id, audited, data.subscribed)
    session.commit()
    changed = len(flipped) + sum(1 for i in ids if i not in before)
    return MembersWritten(written=len(ids), changed=changed)


def get_member(session: Session, list_id: int, person_id: int) -> MailingListMember:
    ml = get(session, list_id)
    if ml.kind == "dynamic":
        members, _ = dynamic_lists.members_page(
            session, ml, cursor=_cursor_before(person_id), limit=1
        )
        if members and members[0].person_id == person_id:
            return members[0]
        raise AppError(NOT_FOUND, what=f"member of mailing list {list_id}", id=person_id)
    member = session.get(MailingListMember, (list_id, person_id))
    if member is None:
        raise AppError(NOT_FOUND, what=f"member of mailing list {list_id}", id=person_id)
    return member


def update_member(
    session: Session, list_id: int, person_id: int, patch: ListMemberUpdate, *, actor: str
) -> MailingListMember:
    _require_static(get(session, list_id))
    member = get_member(session, list_id, person_id)
    if member.subscribed != patch.subscribed:
        member.subscribed = patch.subscribed
        _audit_subscription(session, actor, list_id, [person_id], patch.subscribed)
    session.commit()
    return member


def remove_member(session: Session, list_id: int, person_id: int, *, actor: str) -> None:
    _require_static(get(session, list_id))
    get_member(session, list_id, person_id)
    session.execute(
        sql_delete(MailingListMember).where(
            MailingListMember.list_id == list_id, MailingListMember.person_id == person_id
        )
    )
    audit(
        session,
        actor,
        "mailing_list.remove_member",
        "mailing_list",
        list_id,
        {"person_id": person_id},
    )
    session.commit()


def members_page(
    session: Session,
    list_id: int,
    *,
    cursor: str | None,
    limit: int,
    subscribed: bool | None = None,
) -> tuple[list[MailingListMember], str | None]:
    ml = get(session, list_id)
    if ml.kind == "dynamic":
        if subscribed is False:
            return [], None
        return dynamic_lists.members_page(session, ml, cursor=cursor, limit=limit)
    query = select(MailingListMember).where(MailingListMember.list_id == list_id)
    if subscribed is not None:
        query = query.where(MailingListMember.subscribed == subscribed)
    return keyset_page(session, query, MailingListMember.person_id, cursor=cursor, limit=limit)


def _cursor_before(person_id: int) -> str:
    from mailshot.core.web.paging import encode_cursor

    return encode_cursor(person_id - 1)
