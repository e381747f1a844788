"""The API-key lifecycle on both sides (the CRM's and the ESP's, same shape): every refusal
with its own code, recorded and listed by ``/key-refusals``; rotation with an overlap;
changing a key; disabling its user; and a secret that never shows again after creation,
neither in an answer nor in the logs, and is never stored in clear."""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from mailshot.core.clock import utcnow
from mailshot.core.db.engine import make_sessionmaker, make_unpooled_engine
from mailshot.core.settings import Settings
from mailshot.crm.models import ApiKey
from mailshot.esp.models import EspApiKey
from tests.conftest import Keys


@dataclass
class Side:
    name: str
    api: str
    admin: str
    #: An endpoint any active key of a marketer may call.
    probe: str
    #: The scope a marketer's key lacks.
    admin_only: str
    read_scope: str

    def url(self, path: str) -> str:
        return f"{self.api}/{path}"


@pytest.fixture(params=["crm", "esp"])
def side(request: pytest.FixtureRequest, keys: Keys) -> Side:
    if request.param == "crm":
        return Side("crm", "/crm/api/v1", keys.crm_admin, "mailshots", "api-keys", "marketing:read")
    return Side("esp", "/esp/api/v1", keys.esp_admin, "campaigns", "api-keys", "campaigns:read")


def _h(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _secret(token: str) -> str:
    return token.rsplit("_", 1)[1] if token.count("_") == 2 else token.split("_", 2)[2]


class Admin:
    def __init__(self, client: TestClient, side: Side) -> None:
        self.c = client
        self.side = side

    def call(self, method: str, path: str, **kw: Any) -> Any:
        kw.setdefault("headers", _h(self.side.admin))
        return self.c.request(method, self.side.url(path), **kw)

    def user(self, email: str) -> int:
        r = self.call("POST", "users", json={"email": email, "name": email, "role": "marketer"})
        assert r.status_code == 201, r.text
        return int(r.json()["id"])

    def key(self, user_id: int, **fields: Any) -> dict[str, Any]:
        body = {"name": "k", "user_id": user_id, "scopes": [self.side.read_scope], **fields}
        r = self.call("POST", "api-keys", json=body)
        assert r.status_code == 201, r.text
        out: dict[str, Any] = r.json()
        return out


def _iso(t: datetime) -> str:
    return t.isoformat()


def test_every_refusal_has_its_own_code_and_is_recorded(client: TestClient, side: Side) -> None:
    admin = Admin(client, side)
    kim = admin.user("kim@example.com")
    lee = admin.user("lee@example.com")
    now = utcnow()
    keys = {
        "disabled": admin.key(kim, name="off", enabled=False),
        "early": admin.key(kim, name="early", valid_from=_iso(now + timedelta(hours=1))),
        "late": admin.key(kim, name="late", until=_iso(now - timedelta(minutes=1))),
        "ip": admin.key(kim, name="ip", permitted_ips=["10.0.0.0/8"]),
        "lee": admin.key(lee, name="lee's"),
        "reader": admin.key(kim, name="reader"),
    }
    assert admin.call("PATCH", f"users/{lee}", json={"enabled": False}).status_code == 200
    probe = side.url(side.probe)
    cases: list[tuple[dict[str, str], int, str, str | None]] = [
        ({}, 401, "AUTH_MISSING", None),
        ({"Authorization": "Basic abc"}, 401, "AUTH_MALFORMED", None),
        (_h(f"ms{side.name}_000000000000_nope"), 401, "AUTH_UNKNOWN_KEY", None),
        (_h(keys["disabled"]["token"]), 401, "AUTH_KEY_DISABLED", "off"),
        (_h(keys["early"]["token"]), 401, "AUTH_KEY_NOT_YET_VALID", "early"),
        (_h(keys["late"]["token"]), 401, "AUTH_KEY_EXPIRED", "late"),
        (_h(keys["lee"]["token"]), 401, "AUTH_USER_DISABLED", "lee's"),
        (_h(keys["ip"]["token"]), 403, "AUTH_IP_NOT_PERMITTED", "ip"),
    ]
    for headers, status, code, _ in cases:
        r = client.get(probe, headers=headers)
        assert r.status_code == status, (code, r.text)
        assert r.json()["error"]["code"] == code
        assert r.json()["error"]["fix"]
    scope = client.get(side.url(side.admin_only), headers=_h(keys["reader"]["token"]))
    assert scope.status_code == 403 and scope.json()["error"]["code"] == "AUTH_SCOPE_MISSING"
    assert client.get(probe, headers=_h(keys["reader"]["token"])).status_code == 200

    listed = admin.call("GET", "key-refusals").json()["items"]
    assert [r["reason"] for r in listed] == [
        "AUTH_SCOPE_MISSING",
        *[code for _, _, code, _ in reversed(cases)],
    ]  # newest first
    by_reason = {r["reason"]: r for r in listed}
    for _, _, code, name in cases:
        row = by_reason[code]
        assert row["client_ip"] == "testclient" and row["path"] == probe and row["at"]
        assert row["key_name"] == name
    assert by_reason["AUTH_KEY_EXPIRED"]["key_prefix"] == keys["late"]["prefix"]
    assert by_reason["AUTH_SCOPE_MISSING"]["key_prefix"] == keys["reader"]["prefix"]
    assert by_reason["AUTH_SCOPE_MISSING"]["path"] == side.url(side.admin_only)
    # Paged and filtered.
    first = admin.call("GET", "key-refusals", params={"limit": 2}).json()
    assert [r["id"] for r in first["items"]] == [r["id"] for r in listed[:2]]
    rest = admin.call("GET", "key-refusals", params={"cursor": first["next_cursor"]}).json()
    assert [r["id"] for r in rest["items"]] == [r["id"] for r in listed[2:]]
    only = admin.call("GET", "key-refusals", params={"reason": "AUTH_KEY_EXPIRED"}).json()
    assert [r["reason"] for r in only["items"]] == ["AUTH_KEY_EXPIRED"]

    # The states the list shows match the refusals.
    states = {k["name"]: k["state"] for k in admin.call("GET", "api-keys").json()["items"]}
    assert states["off"] == "disabled" and states["early"] == "not_yet_valid"
    assert states["late"] == "expired" and states["lee's"] == "user_disabled"
    assert states["ip"] == "active" and states["reader"] == "active"
    # Enabling the user gives its keys back.
    assert admin.call("PATCH", f"users/{lee}", json={"enabled": True}).status_code == 200
    assert client.get(probe, headers=_h(keys["lee"]["token"])).status_code == 200


def test_a_permitted_network_lets_the_key_in(client: TestClient, side: Side) -> None:
    admin = Admin(client, side)
    key = admin.key(admin.user("ip@example.com"), permitted_ips=["10.0.0.0/8", "192.0.2.7"])
    assert key["permitted_ips"] == ["10.0.0.0/8", "192.0.2.7/32"]
    inside = TestClient(client.app, client=("10.1.2.3", 40000))
    r = inside.get(side.url(side.probe), headers=_h(key["token"]))
    assert r.status_code == 200, r.text
    got = admin.call("GET", f"api-keys/{key['id']}").json()
    assert got["last_used_ip"] == "10.1.2.3" and got["last_used_at"]


def test_rotation_keeps_both_keys_working_until_the_old_one_is_disabled(
    client: TestClient, side: Side
) -> None:
    admin = Admin(client, side)
    old = admin.key(
        admin.user("rot@example.com"), name="integration", description="d", permitted_ips=[]
    )
    r = admin.call("POST", f"api-keys/{old['id']}/rotate", json={"overlap_hours": 2})
    assert r.status_code == 201, r.text
    new = r.json()
    assert new["token"].startswith(new["prefix"]) and new["prefix"] != old["prefix"]
    assert new["rotated_from_id"] == old["id"]
    assert (new["name"], new["description"], new["scopes"], new["user_id"]) == (
        old["name"],
        old["description"],
        old["scopes"],
        old["user_id"],
    )
    ends = datetime.fromisoformat(new["old_key"]["until"])
    assert timedelta(hours=1.9) < ends - utcnow() <= timedelta(hours=2)
    probe = side.url(side.probe)
    for token in (old["token"], new["token"]):
        assert client.get(probe, headers=_h(token)).status_code == 200
    admin.call("POST", f"api-keys/{old['id']}/disable")
    refused = client.get(probe, headers=_h(old["token"]))
    assert refused.json()["error"]["code"] == "AUTH_KEY_DISABLED"
    assert client.get(probe, headers=_h(new["token"])).status_code == 200
    # Without an overlap the old key keeps its own Until.
    again = admin.call("POST", f"api-keys/{new['id']}/rotate").json()
    assert again["old_key"]["until"] is None and again["old_key"]["state"] == "active"


def test_a_key_can_be_changed_and_bad_settings_are_refused(client: TestClient, side: Side) -> None:
    admin = Admin(client, side)
    key = admin.key(admin.user("chg@example.com"))
    later = utcnow() + timedelta(days=30)
    r = admin.call(
        "PATCH",
        f"api-keys/{key['id']}",
        json={"name": "renamed", "permitted_ips": ["203.0.113.0/24"], "until": _iso(later)},
    )
    assert r.status_code == 200, r.text
    assert r.json()["name"] == "renamed" and r.json()["permitted_ips"] == ["203.0.113.0/24"]
    assert (
        admin.call("PATCH", f"api-keys/{key['id']}", json={"until": None}).json()["until"] is None
    )
    assert admin.call("PATCH", f"api-keys/{key['id']}", json={"name": None}).status_code == 422

    bad_scope = admin.call("PATCH", f"api-keys/{key['id']}", json={"scopes": ["root"]})
    assert bad_scope.status_code == 422
    bad_ip = admin.call("PATCH", f"api-keys/{key['id']}", json={"permitted_ips": ["nowhere"]})
    assert bad_ip.status_code == 422
    assert bad_ip.json()["error"]["details"][0]["field"] == "permitted_ips.0"
    backwards = admin.call(
        "PATCH", f"api-keys/{key['id']}", json={"valid_from": _iso(later + timedelta(days=1))}
    )
    assert backwards.status_code == 200  # until was cleared above
    backwards = admin.call("PATCH", f"api-keys/{key['id']}", json={"until": _iso(later)})
    assert backwards.status_code == 422
    if side.name == "crm":
        assert bad_scope.json()["error"]["details"][0]["field"] == "scopes"
        assert backwards.json()["error"]["details"][0]["field"] == "until"
    else:
        assert bad_scope.json()["error"]["code"] == "ESP_UNKNOWN_SCOPES"
        assert backwards.json()["error"]["code"] == "ESP_KEY_DATES_INVALID"
    assert admin.call("GET", "api-keys/999999").status_code == 404


def _stored(settings: Settings, side: Side, key_id: int) -> str:
    model: Any = ApiKey if side.name == "crm" else EspApiKey
    url = settings.crm_db_url() if side.name == "crm" else settings.esp_db_url()
    engine = make_unpooled_engine(url)
    with make_sessionmaker(engine)() as s:
        digest = s.scalar(select(model.secret_hash).where(model.id == key_id))
    engine.dispose()
    assert isinstance(digest, str)
    return digest


def test_a_secret_is_shown_once_never_logged_and_never_stored_in_clear(
    client: TestClient, side: Side, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    admin = Admin(client, side)
    caplog.set_level(logging.DEBUG)
    made = admin.key(admin.user("sec@example.com"))
    token, secret = made["token"], _secret(made["token"])
    assert made["warning"] and len(secret) >= 40

    digest = _stored(settings, side, made["id"])
    assert secret not in digest and digest == hashlib.sha256(secret.encode()).hexdigest()

    caplog.clear()
    probe = side.url(side.probe)
    assert client.get(probe, headers=_h(token)).status_code == 200
    bodies = [
        admin.call("GET", "api-keys").text,
        admin.call("GET", f"api-keys/{made['id']}").text,
        admin.call("PATCH", f"api-keys/{made['id']}", json={"description": "x"}).text,
        admin.call("POST", f"api-keys/{made['id']}/disable").text,
    ]
    refused = client.get(probe, headers=_h(token))
    assert refused.json()["error"]["code"] == "AUTH_KEY_DISABLED"
    bodies.append(refused.text)
    rotated = admin.call("POST", f"api-keys/{made['id']}/rotate", json={"overlap_hours": 0})
    new_secret = _secret(rotated.json()["token"])
    bodies.append(rotated.text.replace(rotated.json()["token"], ""))
    bodies.append(admin.call("GET", "key-refusals").text)
    for body in bodies:
        assert secret not in body and digest not in body and "secret_hash" not in body
        assert new_secret not in body
    logged = caplog.text + "".join(str(vars(r)) for r in caplog.records)
    assert secret not in logged and new_secret not in logged
    # The refusal was logged, by the key's prefix only.
    assert any(getattr(r, "key_prefix", None) == made["prefix"] for r in caplog.records)


def test_nobody_can_disable_their_own_user(client: TestClient, side: Side) -> None:
    admin = Admin(client, side)
    me = next(
        u["id"]
        for u in admin.call("GET", "users").json()["items"]
        if u["email"] == "admin@example.com"
    )
    r = admin.call("PATCH", f"users/{me}", json={"enabled": False})
    assert r.status_code == 409
    assert r.json()["error"]["code"].endswith("USER_SELF_LOCKOUT")
