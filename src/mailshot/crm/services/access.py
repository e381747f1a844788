"""CRM users and API keys: create users, issue keys (the secret is returned once), and
provision the integration's user and key on first run."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from mailshot import keyadmin
from mailshot.crm.api.deps import PRODUCT_PREFIX
from mailshot.crm.models import ApiKey, User
from mailshot.crm.scopes import ROLE_SCOPES

INTEGRATION_EMAIL = "integration@mailshot.local"


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
