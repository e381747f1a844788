"""ESP users and API keys over the API, and every way a key is refused."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient

from mailshot.core.clock import utcnow


def new_key(esp: TestClient, **fields: Any) -> dict[str, Any]:
    user = esp.get("users").json()["items"][0]
    resp = esp.post("api-keys", json={"name": "k", "user_id": user["id"], **fields})
    assert resp.status_code == 201, resp.text
    return dict(resp.json())


def as_key(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_users_create_and_list(esp: TestClient) -> None:
    made = esp.post(
        "users", json={"email": "Kim@Example.com", "name": "Kim", "password": "long enough pw"}
    )
    assert made.status_code == 201
    assert made.json()["email"] == "kim@example.com" and made.json()["role"] == "marketer"
    assert "password" not in made.text and "hash" not in made.text
    again = esp.post("users", json={"email": "kim@example.com", "name": "Kim"})
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "ESP_USER_EMAIL_TAKEN"
    emails = [u["email"] for u in esp.get("users").json()["items"]]
    assert "kim@example.com" in emails and "admin@example.com" in emails


def test_key_token_is_shown_once_and_never_listed(esp: TestClient) -> None:
    key = new_key(esp, scopes=["campaigns:read"])
    token = key["token"]
    assert token.startswith(key["prefix"]) and key["prefix"].startswith("msesp_")
    listed = esp.get("api-keys")
    assert token not in listed.text
    assert "secret" not in listed.text
    mine = next(k for k in listed.json()["items"] if k["id"] == key["id"])
    assert mine["scopes"] == ["campaigns:read"]
    assert esp.get("limits", headers=as_key(token)).status_code == 200
    assert [
        k["last_used_at"] for k in esp.get("api-keys").json()["items"] if k["id"] == key["id"]
    ] != [None]


def test_disabled_key_is_refused_until_enabled(esp: TestClient) -> None:
    key = new_key(esp)
    assert esp.post(f"api-keys/{key['id']}/disable").json()["enabled"] is False
    resp = esp.get("campaigns", headers=as_key(key["token"]))
    assert resp.status_code == 401
    assert resp.json()["error"]["code"] == "AUTH_KEY_DISABLED"
    assert resp.json()["error"]["fix"]
    assert esp.post(f"api-keys/{key['id']}/enable").json()["enabled"] is True
    assert esp.get("campaigns", headers=as_key(key["token"])).status_code == 200


def test_not_yet_valid_and_expired_keys_are_refused(esp: TestClient) -> None:
    now = utcnow()
    early = new_key(esp, valid_from=(now + timedelta(hours=1)).isoformat())
    resp = esp.get("integration", headers=as_key(early["token"]))
    assert resp.status_code == 401
    assert resp.json()["error"]["code"] == "AUTH_KEY_NOT_YET_VALID"
    late = new_key(esp, until=(now - timedelta(minutes=1)).isoformat())
    resp = esp.put("integrated-campaigns/1", json={"snapshot": 1}, headers=as_key(late["token"]))
    assert resp.status_code == 401
    assert resp.json()["error"]["code"] == "AUTH_KEY_EXPIRED"
    unknown = esp.get("limits", headers=as_key("msesp_000000000000_nope"))
    assert unknown.json()["error"]["code"] == "AUTH_UNKNOWN_KEY"
    crm_key = esp.get("limits", headers=as_key("mscrm_abc_def"))
    assert crm_key.json()["error"]["code"] == "AUTH_UNKNOWN_KEY"


def test_key_requests_are_checked(esp: TestClient) -> None:
    user = esp.get("users").json()["items"][0]
    bad_scope = esp.post("api-keys", json={"name": "k", "user_id": user["id"], "scopes": ["root"]})
    assert bad_scope.json()["error"]["code"] == "ESP_UNKNOWN_SCOPES"
    now = utcnow()
    backwards = esp.post(
        "api-keys",
        json={
            "name": "k",
            "user_id": user["id"],
            "valid_from": now.isoformat(),
            "until": (now - timedelta(days=1)).isoformat(),
        },
    )
    assert backwards.json()["error"]["code"] == "ESP_KEY_DATES_INVALID"
    naive = esp.post(
        "api-keys", json={"name": "k", "user_id": user["id"], "until": "2030-01-01T00:00:00"}
    )
    assert naive.json()["error"]["code"] == "VALIDATION_FAILED"
    assert esp.post("api-keys", json={"name": "k", "user_id": 999}).status_code == 404


def test_users_and_keys_need_admin(esp: TestClient) -> None:
    key = new_key(esp, scopes=["campaigns:read", "campaigns:write", "integration"])
    for path in ("users", "api-keys"):
        resp = esp.get(path, headers=as_key(key["token"]))
        assert resp.status_code == 403
        assert resp.json()["error"]["code"] == "AUTH_SCOPE_MISSING"
