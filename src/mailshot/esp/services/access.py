"""ESP users and API keys: create and list users, issue keys (the secret is returned once),
list, enable and disable them, and provision the integration's user and key on first run."""

from __future__ import annotations

import ipaddress
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from mailshot.errors import AppError, FieldProblem, validation_error
from mailshot.esp.api.deps import PRODUCT_PREFIX
from mailshot.esp.errors import KEY_DATES_INVALID, UNKNOWN_SCOPES, USER_EMAIL_TAKEN
from mailshot.esp.models import EspApiKey as ApiKey
from mailshot.esp.models import EspUser as User
from mailshot.esp.schemas.access import ApiKeyCreate, ApiKeyPublic, UserCreate
from mailshot.esp.scopes import ALL_SCOPES, ROLE_SCOPES
from mailshot.esp.services.common import get_or_404, require_address
from mailshot.keyauth import issue_key
from mailshot.keys import hash_password
from mailshot.paging import keyset_page

INTEGRATION_EMAIL = "integration@mailshot.local"


def create_user(
    session: Session, *, email: str, name: str, role: str, password: str | None = None
) -> User:
    user = User(
        email=email.strip().lower(),
        name=name,
        role=role,
        password_hash=hash_password(password) if password else None,
        enabled=True,
    )
    session.add(user)
    session.flush()
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
    key, token = issue_key(
        session,
        ApiKey,
        product_prefix=PRODUCT_PREFIX,
        name=name,
        user_id=user.id,
        scopes=scopes if scopes is not None else ROLE_SCOPES[user.role],
        description=description,
        permitted_ips=permitted_ips,
        valid_from=valid_from,
        until=until,
    )
    return key, token


def find_user(session: Session, email: str) -> User | None:
    return session.scalar(select(User).where(User.email == email.strip().lower()))


# ---- the users and API keys resources (admin) -------------------------------------------


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


def users_page(
    session: Session, *, cursor: str | None, limit: int
) -> tuple[list[User], str | None]:
    return keyset_page(session, select(User), User.id, cursor=cursor, limit=limit)


def key_public(key: ApiKey) -> ApiKeyPublic:
    """A key as the API shows it: its prefix, never its secret or the secret's hash."""
    return ApiKeyPublic(
        id=key.id,
        prefix=f"{PRODUCT_PREFIX}_{key.public_id}_",
        name=key.name,
        description=key.description,
        user_id=key.user_id,
        scopes=list(key.scopes or []),
        permitted_ips=list(key.permitted_ips or []),
        enabled=key.enabled,
        valid_from=key.valid_from,
        until=key.until,
        last_used_at=key.last_used_at,
        last_used_ip=key.last_used_ip,
        created_at=key.created_at,
    )


def _check_key_request(data: ApiKeyCreate) -> None:
    if data.scopes is not None:
        unknown = sorted(set(data.scopes) - set(ALL_SCOPES))
        if unknown:
            raise AppError(UNKNOWN_SCOPES, unknown=", ".join(unknown), known=", ".join(ALL_SCOPES))
    problems = []
    for n, net in enumerate(data.permitted_ips):
        try:
            ipaddress.ip_network(net, strict=False)
        except ValueError:
            problems.append(
                FieldProblem(
                    f"permitted_ips.{n}", "ip_network", f"{net!r} is not an address or network"
                )
            )
    if problems:
        raise validation_error(problems)
    if data.valid_from and data.until and data.until <= data.valid_from:
        raise AppError(
            KEY_DATES_INVALID, valid_from=data.valid_from.isoformat(), until=data.until.isoformat()
        )


def add_key(session: Session, data: ApiKeyCreate) -> tuple[ApiKey, str]:
    """Issue a key acting as an existing user; return it with its token (shown once)."""
    _check_key_request(data)
    user = get_or_404(session, User, data.user_id, "user")
    key, token = create_key(
        session,
        user=user,
        name=data.name,
        scopes=data.scopes,
        description=data.description,
        permitted_ips=data.permitted_ips,
        valid_from=data.valid_from,
        until=data.until,
    )
    session.commit()
    return key, token


def keys_page(
    session: Session, *, cursor: str | None, limit: int
) -> tuple[list[ApiKey], str | None]:
    return keyset_page(session, select(ApiKey), ApiKey.id, cursor=cursor, limit=limit)


def set_key_enabled(session: Session, key_id: int, *, enabled: bool) -> ApiKey:
    key = get_or_404(session, ApiKey, key_id, "API key")
    key.enabled = enabled
    session.commit()
    return key
