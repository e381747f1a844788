"""Helpers the page tests share (the TestClient ones and the browser ones): users who can
sign in with a password, signing in, and reading a page's CSRF token."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache

from fastapi.testclient import TestClient

from mailshot.core.access.tokens import hash_password
from mailshot.core.db.engine import make_sessionmaker, make_unpooled_engine
from mailshot.core.settings import Settings
from mailshot.crm.services import access as crm_access
from mailshot.esp.services import access as esp_access

PASSWORD = "correct horse battery staple"


@dataclass
class PageUsers:
    crm_admin: str = "ui-admin@example.com"
    crm_marketer: str = "ui-marketer@example.com"
    crm_integration: str = "ui-integration@example.com"
    esp_admin: str = "ui-esp-admin@example.com"
    esp_marketer: str = "ui-esp-marketer@example.com"
    password: str = PASSWORD


@cache
def _password_hash() -> str:
    # argon2 is deliberately slow (most of a second here): hash the shared password once.
    hashed: str = hash_password(PASSWORD)
    return hashed


def make_page_users(settings: Settings) -> PageUsers:
    """Create users with passwords on both sides (admins, marketers, an integration user)."""
    users = PageUsers()
    crm = [
        (users.crm_admin, "Ada Admin", "admin"),
        (users.crm_marketer, "Mark Eter", "marketer"),
        (users.crm_integration, "Bridge", "integration"),
    ]
    esp = [
        (users.esp_admin, "Esme Admin", "admin"),
        (users.esp_marketer, "Max Marketer", "marketer"),
    ]
    for url, create, people in (
        (settings.crm_db_url(), crm_access.create_user, crm),
        (settings.esp_db_url(), esp_access.create_user, esp),
    ):
        engine = make_unpooled_engine(url)
        with make_sessionmaker(engine)() as s:
            for email, name, role in people:
                user = create(s, email=email, name=name, role=role)
                user.password_hash = _password_hash()
            s.commit()
        engine.dispose()
    return users


_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_of(html: str) -> str:
    found = _CSRF.search(html)
    assert found, "the page has no CSRF token"
    return found.group(1)


def sign_in(client: TestClient, part: str, email: str, password: str = PASSWORD) -> None:
    """Sign ``client`` in to ``part`` ('crm' or 'esp') through the login form."""
    page = client.get(f"/{part}/login")
    resp = client.post(
        f"/{part}/login",
        data={"email": email, "password": password, "csrf_token": csrf_of(page.text)},
        follow_redirects=False,
    )
    assert resp.status_code == 303, resp.text
