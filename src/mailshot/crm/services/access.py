"""CRM users and API keys: create users, issue keys (the secret is returned once), end a
user's page sessions, and provision the integration's user and key on first run."""

from __future__ import annotations

from sqlalchemy import delete
from sqlalchemy.orm import Session

from mailshot.core.access import service as keyadmin
from mailshot.crm.models import ApiKey, User, WebSession
from mailshot.crm.services.api_keys import STORE

INTEGRATION_EMAIL = "integration@mailshot.local"


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
    session.execute(delete(WebSession).where(WebSession.user_id == user_id))


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
