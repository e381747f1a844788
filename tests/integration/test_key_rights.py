"""A key never does more than its access-as user's current role allows, on both parts: a
demoted administrator's key loses its admin rights at the next request (and gets them back
when the user is promoted again), and a key cannot be created, changed or rotated with
scopes beyond its user's role, through the API, the pages or the command line."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from mailshot.app.cli.keys import app as keys_cli
from mailshot.core.settings import Settings
from tests.conftest import Keys
from tests.support.ui_support import PageUsers, csrf_of, make_page_users, sign_in


@dataclass
class Side:
    name: str
    admin: str
    #: What a marketer's key may do (and an admin's keeps after a demotion).
    probe: str
    read_scope: str
    #: A scope a marketer's role does not allow, besides admin.
    foreign_scope: str

    def url(self, path: str) -> str:
        return f"/{self.name}/api/v1/{path}"


@pytest.fixture(params=["crm", "esp"])
def side(request: pytest.FixtureRequest, keys: Keys) -> Side:
    if request.param == "crm":
        return Side("crm", keys.crm_admin, "mailshots", "marketing:read", "sync:work")
    return Side("esp", keys.esp_admin, "campaigns", "campaigns:read", "campaigns:write")


def _h(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


class Api:
    def __init__(self, client: TestClient, side: Side) -> None:
        self.c = client
        self.side = side

    def call(self, method: str, path: str, token: str | None = None, **kw: Any) -> Any:
        return self.c.request(
            method, self.side.url(path), headers=_h(token or self.side.admin), **kw
        )

    def user(self, email: str, role: str) -> int:
        r = self.call("POST", "users", json={"email": email, "name": email, "role": role})
        assert r.status_code == 201, r.text
        return int(r.json()["id"])

    def key(self, user_id: int, scopes: list[str] | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"name": "k", "user_id": user_id}
        if scopes is not None:
            body["scopes"] = scopes
        r = self.call("POST", "api-keys", json=body)
        assert r.status_code == 201, r.text
        out: dict[str, Any] = r.json()
        return out


def test_a_demoted_admin_keeps_no_admin_right(client: TestClient, side: Side) -> None:
    api = Api(client, side)
    sam = api.user("sam@example.com", "admin")
    key = api.key(sam)  # the admin role's scopes, admin among them
    token = key["token"]
    assert "admin" in key["scopes"]
    assert api.call("GET", "users", token).status_code == 200

    assert api.call("PATCH", f"users/{sam}", json={"role": "marketer"}).status_code == 200
    # The same key, the next request: nothing of what only an admin may do.
    attempts = [
        ("GET", "users", {}),
        ("POST", "users", {"json": {"email": "x@example.com", "name": "x", "role": "admin"}}),
        ("PATCH", f"users/{sam}", {"json": {"role": "admin"}}),
        ("GET", "api-keys", {}),
        ("POST", "api-keys", {"json": {"name": "mine", "user_id": sam, "scopes": ["admin"]}}),
        ("GET", "key-refusals", {}),
    ]
    for method, path, kw in attempts:
        r = api.call(method, path, token, **kw)
        assert r.status_code == 403, (method, path, r.text)
        error = r.json()["error"]
        assert error["code"] == "AUTH_ROLE_FORBIDS"
        assert "'admin'" in error["message"] and "marketer" in error["message"]
        assert error["fix"]
    listed = api.call("GET", "users").json()["items"]
    assert {u["email"]: u["role"] for u in listed}["sam@example.com"] == "marketer"
    assert "x@example.com" not in {u["email"] for u in listed}
    # What a marketer may do, the key still does.
    assert api.call("GET", side.probe, token).status_code == 200
    shown = api.call("GET", f"api-keys/{key['id']}").json()
    assert "admin" in shown["scopes"] and "admin" not in shown["effective_scopes"]
    assert side.read_scope in shown["effective_scopes"]
    # Each refusal is recorded, with its reason.
    refusals = api.call("GET", "key-refusals", params={"reason": "AUTH_ROLE_FORBIDS"}).json()
    assert sum(r["count"] for r in refusals["items"]) == len(attempts)
    assert {r["key_prefix"] for r in refusals["items"]} == {key["prefix"]}

    # Promoted again, the same key is an admin's again.
    assert api.call("PATCH", f"users/{sam}", json={"role": "admin"}).status_code == 200
    assert api.call("GET", "users", token).status_code == 200
    assert "admin" in api.call("GET", f"api-keys/{key['id']}").json()["effective_scopes"]


def test_a_key_holding_only_admin_keeps_only_what_the_new_role_has_in_it(
    client: TestClient, side: Side
) -> None:
    """``admin`` implies every scope only while the role allows admin."""
    api = Api(client, side)
    ann = api.user("ann@example.com", "admin")
    token = api.key(ann, ["admin"])["token"]
    assert api.call("GET", side.probe, token).status_code == 200
    api.call("PATCH", f"users/{ann}", json={"role": "marketer"})
    r = api.call("GET", side.probe, token)
    assert r.status_code == 403
    assert r.json()["error"]["code"] == "AUTH_ROLE_FORBIDS"
    assert "'admin'" in r.json()["error"]["message"]


def test_no_key_gets_scopes_beyond_its_users_role(client: TestClient, side: Side) -> None:
    api = Api(client, side)
    mia = api.user("mia@example.com", "marketer")
    for scopes in (["admin"], [side.read_scope, "admin", side.foreign_scope]):
        r = api.call("POST", "api-keys", json={"name": "k", "user_id": mia, "scopes": scopes})
        assert r.status_code == 422, r.text
        error = r.json()["error"]
        assert error["code"] == "KEY_SCOPES_BEYOND_ROLE"
        assert "'admin'" in error["message"] and "marketer" in error["message"]
        assert f"'{side.read_scope}'" not in error["message"].split("may not hold")[1].split(":")[0]
        assert error["fix"] and error["details"][0]["field"] == "scopes"
    assert [k for k in api.call("GET", "api-keys").json()["items"] if k["user_id"] == mia] == []

    key = api.key(mia, [side.read_scope])
    patched = api.call("PATCH", f"api-keys/{key['id']}", json={"scopes": ["admin"]})
    assert patched.status_code == 422
    assert patched.json()["error"]["code"] == "KEY_SCOPES_BEYOND_ROLE"
    assert api.call("GET", f"api-keys/{key['id']}").json()["scopes"] == [side.read_scope]
    # Nor can a key be moved to another user (an admin's, whose role would allow more).
    boss = api.user("boss@example.com", "admin")
    moved = api.call("PATCH", f"api-keys/{key['id']}", json={"user_id": boss})
    assert moved.status_code == 422
    assert api.call("GET", f"api-keys/{key['id']}").json()["user_id"] == mia
    # An admin's key may hold any scope.
    assert api.key(boss, [side.foreign_scope, "metrics"])["scopes"] == sorted(
        [side.foreign_scope, "metrics"]
    )


def test_a_key_beyond_its_demoted_users_role_is_not_rotated(client: TestClient, side: Side) -> None:
    api = Api(client, side)
    ola = api.user("ola@example.com", "admin")
    key = api.key(ola, ["admin", side.read_scope])
    api.call("PATCH", f"users/{ola}", json={"role": "marketer"})
    r = api.call("POST", f"api-keys/{key['id']}/rotate")
    assert r.status_code == 422 and r.json()["error"]["code"] == "KEY_SCOPES_BEYOND_ROLE"
    ours = [k for k in api.call("GET", "api-keys").json()["items"] if k["user_id"] == ola]
    assert len(ours) == 1  # no new key
    assert api.call("PATCH", f"api-keys/{key['id']}", json={"scopes": [side.read_scope]}).is_success
    assert api.call("POST", f"api-keys/{key['id']}/rotate").status_code == 201


@pytest.fixture
def users(settings: Settings) -> PageUsers:
    return make_page_users(settings)


def test_the_pages_refuse_the_same(client: TestClient, users: PageUsers) -> None:
    sign_in(client, "crm", users.crm_admin)
    page = client.get("/crm/api-keys")
    marketer = next(u[0] for u in page.context["key_users"] if u[1] == users.crm_marketer)  # type: ignore[attr-defined]
    r = client.post(
        "/crm/api-keys",
        data={
            "name": "sneaky",
            "user_id": str(marketer),
            "scopes": ["admin", "marketing:read"],
            "csrf_token": csrf_of(page.text),
        },
    )
    assert r.status_code == 422
    assert "may not hold" in r.context["errors"]["scopes"]  # type: ignore[attr-defined]
    assert "sneaky" not in [k.name for k in r.context["keys"]]  # type: ignore[attr-defined]


def test_the_command_line_refuses_the_same(
    client: TestClient, settings: Settings, keys: Keys, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MAILSHOT_CONFIG", str(settings.data_dir / "none.toml"))
    monkeypatch.setenv("MAILSHOT_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("MAILSHOT_CRM_DATABASE_URL", settings.crm_db_url())
    monkeypatch.setenv("MAILSHOT_ESP_DATABASE_URL", settings.esp_db_url())
    args = ["create", "--name", "x", "--user", "marketer@example.com", "--scope", "admin"]
    result = CliRunner().invoke(keys_cli, args)
    assert result.exit_code != 0
    assert "KEY_SCOPES_BEYOND_ROLE" in result.stdout + result.stderr
