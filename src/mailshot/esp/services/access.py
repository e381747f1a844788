"""ESP users and API keys: create, list and change users (a disabled user's keys are
refused), and the whole key lifecycle (create with the token shown once, list, read,
change, disable, enable, rotate, refused requests), shared with the CRM through
:mod:`mailshot.keyadmin`; and the provisioning helpers (``create_user``, ``create_key``)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from mailshot import keyadmin
from mailshot.errors import AppError
from mailshot.esp.api.deps import PRODUCT_PREFIX
from mailshot.esp.errors import (
    KEY_DATES_INVALID,
    UNKNOWN_SCOPES,
    USER_EMAIL_TAKEN,
    USER_SELF_LOCKOUT,
)
from mailshot.esp.models import EspApiKey as ApiKey
from mailshot.esp.models import EspKeyRefusal
from mailshot.esp.models import EspUser as User
from mailshot.esp.schemas.access import (
    ApiKeyCreate,
    ApiKeyCreated,
    ApiKeyPublic,
    ApiKeyRotate,
    ApiKeyRotated,
    ApiKeyUpdate,
    KeyRefusalPublic,
    UserCreate,
    UserUpdate,
)
from mailshot.esp.scopes import ALL_SCOPES, ROLE_SCOPES
from mailshot.esp.services.common import get_or_404, require_address
from mailshot.paging import keyset_page

INTEGRATION_EMAIL = "integration@mailshot.local"

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
    return user


def create_key(
    session: Session,
    *,
    user: User,
    name: str,
    scopes: list[str] | None = None,
    description: str | None = None,
    permitted_ips: list[str] | None = None,
    valid_from: datetime | None = None,
    until: datetime | None = None,
) -> tuple[ApiKey, str]:
    """Issue a key without committing (provisioning and tests); the token is shown once."""
    key, token = keyadmin.issue_role_key(
        session,
        ApiKey,
        product_prefix=PRODUCT_PREFIX,
        role_scopes=ROLE_SCOPES,
        user=user,
        name=name,
        scopes=scopes,
        description=description,
        permitted_ips=permitted_ips,
        valid_from=valid_from,
        until=until,
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
    session.commit()
    return user


def users_page(
    session: Session, *, cursor: str | None, limit: int
) -> tuple[list[User], str | None]:
    return keyset_page(session, select(User), User.id, cursor=cursor, limit=limit)


# ---- the API keys resource (admin) -------------------------------------------------------


def key_public(key: ApiKey, user: User | None = None) -> ApiKeyPublic:
    """A key as the API shows it: its prefix, never its secret or the secret's hash."""
    if user is None:
        session = Session.object_session(key)
        user = session.get(User, key.user_id) if session is not None else None
    return keyadmin.public(STORE, key, user)


def add_key(session: Session, data: ApiKeyCreate) -> tuple[ApiKey, str]:
    """Issue a key acting as an existing user; return it with its token (shown once)."""
    key, _, token = keyadmin.create(STORE, session, data)
    return key, token


def create(session: Session, data: ApiKeyCreate) -> ApiKeyCreated:
    key, user, token = keyadmin.create(STORE, session, data)
    return ApiKeyCreated(**key_public(key, user).model_dump(), token=token)


def get(session: Session, key_id: int) -> ApiKeyPublic:
    return key_public(*keyadmin.get_key(STORE, session, key_id))


def update(session: Session, key_id: int, patch: ApiKeyUpdate) -> ApiKeyPublic:
    return key_public(*keyadmin.update(STORE, session, key_id, patch))


def set_key_enabled(session: Session, key_id: int, *, enabled: bool) -> ApiKey:
    key, _ = keyadmin.set_enabled(STORE, session, key_id, enabled=enabled)
    assert isinstance(key, ApiKey)
    return key


def rotate(session: Session, key_id: int, body: ApiKeyRotate) -> ApiKeyRotated:
    new, user, token, old = keyadmin.rotate(STORE, session, key_id, body)
    return ApiKeyRotated(
        **key_public(new, user).model_dump(), token=token, old_key=key_public(old, user)
    )


def keys_page(
    session: Session, *, cursor: str | None, limit: int
) -> tuple[list[ApiKey], str | None]:
    return keyset_page(session, select(ApiKey), ApiKey.id, cursor=cursor, limit=limit)


def keys_with_users_page(
    session: Session, *, cursor: str | None, limit: int, user_id: int | None = None
) -> tuple[list[ApiKeyPublic], str | None]:
    rows, next_cursor = keyadmin.page(STORE, session, cursor=cursor, limit=limit, user_id=user_id)
    return [key_public(k, u) for k, u in rows], next_cursor


def refusals(
    session: Session,
    *,
    cursor: str | None,
    limit: int,
    key_id: int | None = None,
    reason: str | None = None,
) -> tuple[list[KeyRefusalPublic], str | None]:
    return keyadmin.refusals_page(
        STORE, session, cursor=cursor, limit=limit, key_id=key_id, reason=reason
    )
