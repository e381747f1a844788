"""A NUL character (U+0000) anywhere a request carries text is refused with 422
``TEXT_HAS_NUL`` before any handler runs, the same on both engines (PostgreSQL cannot store
it in text; before the fix it answered 500), and nothing is written."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.conftest import Keys


def _crm(keys: Keys) -> dict[str, str]:
    return {"Authorization": f"Bearer {keys.crm_admin}"}


def _count_organisations(client: TestClient, keys: Keys) -> int:
    resp = client.get("/crm/api/v1/organisations", headers=_crm(keys))
    assert resp.status_code == 200, resp.text
    return len(resp.json()["items"])


def test_a_nul_in_a_json_body_is_422_and_nothing_is_written(client: TestClient, keys: Keys) -> None:
    before = _count_organisations(client, keys)
    resp = client.post("/crm/api/v1/organisations", json={"name": "Acme\x00"}, headers=_crm(keys))
    assert resp.status_code == 422, resp.text
    error = resp.json()["error"]
    assert error["code"] == "TEXT_HAS_NUL"
    assert "the body" in error["message"] and "\\u0000" in error["fix"]
    assert _count_organisations(client, keys) == before


def test_a_nul_in_an_esp_body_is_422(client: TestClient, keys: Keys) -> None:
    resp = client.post(
        "/esp/api/v1/contacts",
        json={"email": "a@example.com", "first_name": "A\x00"},
        headers={"Authorization": f"Bearer {keys.esp_admin}"},
    )
    assert resp.status_code == 422, resp.text
    assert resp.json()["error"]["code"] == "TEXT_HAS_NUL"


def test_a_nul_in_the_query_or_the_path_is_422(client: TestClient, keys: Keys) -> None:
    query = client.get("/crm/api/v1/people?q=a%00b", headers=_crm(keys))
    assert query.status_code == 422 and query.json()["error"]["code"] == "TEXT_HAS_NUL"
    assert "the query" in query.json()["error"]["message"]
    path = client.get("/crm/api/v1/people/a%00b", headers=_crm(keys))
    assert path.status_code == 422 and path.json()["error"]["code"] == "TEXT_HAS_NUL"


def test_a_nul_in_a_sign_in_form_is_422(client: TestClient) -> None:
    resp = client.post(
        "/crm/login",
        content=b"email=a%00%40example.com&password=x",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert resp.status_code == 422
    assert resp.json()["error"]["code"] == "TEXT_HAS_NUL"


def test_an_escaped_backslash_before_u0000_is_text_and_goes_through(
    client: TestClient, keys: Keys
) -> None:
    resp = client.post(
        "/crm/api/v1/organisations", json={"name": "C:\\u0000 folder"}, headers=_crm(keys)
    )
    assert resp.status_code == 201, resp.text
    assert resp.json()["name"] == "C:\\u0000 folder"
