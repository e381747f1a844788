"""ESP users and API keys: create, list and change users (a disabled user's keys are
refused and their page sessions end), and the whole key lifecycle (create with the token
shown once, list, read, change, disable, enable, rotate, refused requests), shared with the
CRM through :mod:`mailshot.core.access.service`; and the provisioning helpers (``create_user``,
``create_key``)."""

from __future__ import annotations

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from mailshot.core.access import service as keyadmin
from mailshot.core.db.sqlhelpers import get_or_404
from mailshot.core.errors import AppError
from mailshot.core.web.paging import keyset_page
from mailshot.esp.errors import (
    KEY_DATES_INVALID,
    UNKNOWN_SCOPES,
    USER_EMAIL_TAKEN,
    USER_SELF_LOCKOUT,
)
from mailshot.esp.models import EspApiKey as ApiKey
from mailshot.esp.models import EspKeyRefusal, EspWebSession
from mailshot.esp.models import EspUser as User
from mailshot.esp.schemas.access import UserCreate, UserUpdate
from mailshot.esp.scopes import ALL_SCOPES, ROLE_SCOPES
from mailshot.esp.services.common import require_address

INTEGRATION_EMAIL = "integration@mailshot.local"

#: The first part of every ESP key: ``msesp_<id>_<secret>``.
PRODUCT_PREFIX = "msesp"

STORE = keyadmin.KeyStore(
    key_model=ApiKey,
    user_model=User,
    refusal_model=EspKeyRefusal,
    product_prefix=PRODUCT_PREFIX,
    all_scopes=ALL_SCOPES,
    role_scopes=ROLE_SCOPES,
    unknown_scopes=lambda unknown: AppError(
        UNKNOWN_SCOPES, unknown=", ".join(unknown), known=", ".join(ALL_SCOPES)
    ),
    dates_invalid=lambda valid_from, until: AppError(
        KEY_DATES_INVALID, valid_from=valid_from.isoformat(), until=until.isoformat()
    ),
)


def create_user(
    session: Session, *, email: str, name: str, role: str, password: str | None = None
) -> User:
    user: User = keyadmin.add_user(
        session, User, email=email, name=name, role=role, password=password
    )
    if password:
        end_sessions(session, user.id)  # a password is set: no session may predate it
    return user


def end_sessions(session: Session, user_id: int) -> None:
    """End every page session of ``user_id`` (not committed): when the user is disabled or
    deleted, or their password is set."""
    session.execute(delete(EspWebSession).where(EspWebSession.user_id == user_id))


def create_key(
    session: Session, *, user: User, name: str, description: str | None = None
) -> tuple[ApiKey, str]:
    """Issue a key with its user's role's scopes, without committing (provisioning and
    tests); the token is shown once."""
    key, token = keyadmin.issue_role_key(
        STORE, session, user=user, name=name, description=description
    )
    return key, token


def find_user(session: Session, email: str) -> User | None:
    found: User | None = keyadmin.find_user(session, User, email)
    return found


# ---- the users resource (admin) ----------------------------------------------------------


def user_email_taken(session: Session, email: str) -> bool:
    return find_user(session, email) is not None


def add_user(session: Session, data: UserCreate) -> User:
    """Create an ESP user; the address must be new."""
    email = require_address(data.email).lower()
    if user_email_taken(session, email):
        raise AppError(USER_EMAIL_TAKEN, email=email)
    try:
        user = create_user(
            session, email=email, name=data.name, role=data.role, password=data.password
        )
        session.commit()
    except IntegrityError as exc:
        session.rollback()
        raise AppError(USER_EMAIL_TAKEN, email=email) from exc
    return user


def update_user(session: Session, user_id: int, patch: UserUpdate, *, by_user_id: int) -> User:
    """Change a user. Disabling one makes every key acting as them refused
    (``AUTH_USER_DISABLED``); nobody may disable or demote their own user."""
    user = get_or_404(session, User, user_id, "user")
    if user.id == by_user_id:
        if patch.enabled is False:
            raise AppError(USER_SELF_LOCKOUT, action="disable")
        if patch.role is not None and patch.role != "admin" and user.role == "admin":
            raise AppError(USER_SELF_LOCKOUT, action="demote")
    for name, value in patch.model_dump(exclude_unset=True, exclude_none=True).items():
        setattr(user, name, value)
    if not user.enabled:
        end_sessions(session, user.id)
    session.commit()
    return user


def users_page(
    session: Session, *, cursor: str | None, limit: int
) -> tuple[list[User], str | None]:
    return keyset_page(session, select(User), User.id, cursor=cursor, limit=limit)


# ---- the API keys resource (admin) -------------------------------------------------------
KEYS = keyadmin.KeyService(STORE)
