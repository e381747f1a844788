"""CRM users and API keys: create users, issue keys (the secret is returned once), and
provision the integration's user and key on first run."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from mailshot.crm.api.deps import PRODUCT_PREFIX
from mailshot.crm.models import ApiKey, User
from mailshot.crm.scopes import ROLE_SCOPES
from mailshot.keyauth import issue_key
from mailshot.keys import hash_password

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
