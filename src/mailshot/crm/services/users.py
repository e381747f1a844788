"""CRM users, as the administration API sees them: create (with an optional password,
stored as an argon2 hash), read, update (name, role, enabled), delete, list. An
administrator cannot disable, demote or delete their own user. Changes are audited.
Disabling or deleting a user ends their page sessions."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from mailshot.core.access.auth import Principal
from mailshot.core.db.sqlhelpers import apply_update, get_or_404
from mailshot.core.errors import AppError
from mailshot.core.web.paging import keyset_page
from mailshot.crm.errors import USER_EMAIL_TAKEN, USER_SELF_LOCKOUT
from mailshot.crm.models import User
from mailshot.crm.schemas.users import UserCreate, UserUpdate
from mailshot.crm.services import access
from mailshot.crm.services.common import audit, contains_pattern


def create(session: Session, data: UserCreate, *, by: Principal) -> User:
    assert data.email is not None  # the schema refuses null
    if access.find_user(session, data.email) is not None:
        raise AppError(USER_EMAIL_TAKEN, email=data.email.lower())
    password = data.password.get_secret_value() if data.password else None
    user = access.create_user(
        session, email=data.email, name=data.name, role=data.role, password=password
    )
    audit(
        session, by.actor, "user.create", "user", user.id, {"email": user.email, "role": user.role}
    )
    try:
        session.commit()
    except IntegrityError as exc:  # a concurrent create with the same address
        session.rollback()
        raise AppError(USER_EMAIL_TAKEN, email=data.email.lower()) from exc
    return user


def get(session: Session, user_id: int) -> User:
    return get_or_404(session, User, user_id, "user")


def update(session: Session, user_id: int, patch: UserUpdate, *, by: Principal) -> User:
    user = get(session, user_id)
    if user.id == by.user_id:
        if patch.enabled is False:
            raise AppError(USER_SELF_LOCKOUT, action="disable")
        if patch.role is not None and patch.role != "admin" and user.role == "admin":
            raise AppError(USER_SELF_LOCKOUT, action="demote")
    changed = apply_update(user, patch)
    if changed:
        audit(session, by.actor, "user.update", "user", user.id, changed)
    if not user.enabled:
        access.end_sessions(session, user.id)
    session.commit()
    return user


def delete(session: Session, user_id: int, *, by: Principal) -> None:
    user = get(session, user_id)
    if user.id == by.user_id:
        raise AppError(USER_SELF_LOCKOUT, action="delete")
    access.end_sessions(session, user.id)  # the foreign key cascades too; say it here
    session.delete(user)
    audit(session, by.actor, "user.delete", "user", user_id, {"email": user.email})
    session.commit()


def list_page(
    session: Session, *, cursor: str | None, limit: int, q: str | None = None
) -> tuple[list[User], str | None]:
    query = select(User)
    if q:
        pattern = contains_pattern(q)
        query = query.where(
            User.email.ilike(pattern, escape="\\") | User.name.ilike(pattern, escape="\\")
        )
    return keyset_page(session, query, User.id, cursor=cursor, limit=limit)
