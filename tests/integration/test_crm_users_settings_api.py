"""Users (admin scope) and the CRM-wide settings over the CRM API."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import select

from mailshot.core.access.tokens import verify_password
from mailshot.core.db.engine import make_sessionmaker, make_unpooled_engine
from mailshot.core.settings import Settings
from mailshot.crm.models import User
from tests.conftest import Keys


def test_user_crud_never_returns_hashes(crm: TestClient, settings: Settings) -> None:
    made = crm.post(
        "users",
        json={
            "email": "New@Example.com",
            "name": "New",
            "role": "marketer",
            "password": "s3cret-pass",
        },
    )
    assert made.status_code == 201, made.text
    user = made.json()
    assert user["email"] == "new@example.com"
    assert user["has_password"] is True
    assert "password_hash" not in user
    assert "s3cret-pass" not in made.text and "$argon2" not in made.text
    with make_sessionmaker(make_unpooled_engine(settings.crm_db_url()))() as s:
        stored = s.scalar(select(User.password_hash).where(User.id == user["id"]))
    assert stored is not None and stored.startswith("$argon2")
    assert verify_password("s3cret-pass", stored)

    patched = crm.patch(f"users/{user['id']}", json={"enabled": False, "role": "admin"}).json()
    assert (patched["enabled"], patched["role"]) == (False, "admin")
    listed = crm.get("users", params={"q": "new@"}).json()["items"]
    assert [u["id"] for u in listed] == [user["id"]]
    assert crm.delete(f"users/{user['id']}").status_code == 204
    assert crm.get(f"users/{user['id']}").status_code == 404


def test_user_validation_and_conflicts(crm: TestClient) -> None:
    bad = crm.post("users", json={"email": "nope", "name": "X"})
    assert bad.json()["error"]["details"][0]["field"] == "email"
    role = crm.post("users", json={"email": "r@example.com", "name": "X", "role": "owner"})
    assert role.json()["error"]["details"][0]["field"] == "role"
    short = crm.post("users", json={"email": "s@example.com", "name": "X", "password": "short"})
    assert short.json()["error"]["details"][0]["field"] == "password"
    taken = crm.post("users", json={"email": "ADMIN@example.com", "name": "Again"})
    assert (taken.status_code, taken.json()["error"]["code"]) == (409, "USER_EMAIL_TAKEN")

    me = crm.get("users", params={"q": "admin@example.com"}).json()["items"][0]
    locked = crm.patch(f"users/{me['id']}", json={"enabled": False})
    assert (locked.status_code, locked.json()["error"]["code"]) == (409, "USER_SELF_LOCKOUT")
    assert crm.delete(f"users/{me['id']}").status_code == 409


def test_marketer_may_not_manage_users_or_settings(crm: TestClient, keys: Keys) -> None:
    as_marketer = {"Authorization": f"Bearer {keys.crm_marketer}"}
    for method, url, body in (
        ("GET", "users", None),
        ("POST", "users", {"email": "m@example.com", "name": "M"}),
        ("PUT", "settings", {"gdpr_mode": True}),
    ):
        resp = crm.request(method, url, json=body, headers=as_marketer)
        assert resp.status_code == 403, (url, resp.text)
        assert resp.json()["error"]["code"] == "AUTH_SCOPE_MISSING"
    assert crm.get("settings", headers=as_marketer).json() == {"gdpr_mode": False}


def test_gdpr_mode_setting(crm: TestClient) -> None:
    assert crm.get("settings").json() == {"gdpr_mode": False}
    assert crm.put("settings", json={"gdpr_mode": True}).json() == {"gdpr_mode": True}
    assert crm.get("settings").json() == {"gdpr_mode": True}
    assert crm.put("settings", json={"gdpr_mode": False}).json() == {"gdpr_mode": False}
    assert crm.get("settings").json() == {"gdpr_mode": False}
    assert crm.put("settings", json={}).status_code == 422
