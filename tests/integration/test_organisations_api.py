"""The Organisations resource: the pattern every CRM resource follows."""

from __future__ import annotations

from fastapi.testclient import TestClient


def test_create_read_update_delete(crm: TestClient) -> None:
    made = crm.post("organisations", json={"name": "Acme", "country": "UK"})
    assert made.status_code == 201, made.text
    org = made.json()
    assert org["name"] == "Acme"
    assert crm.get(f"organisations/{org['id']}").json()["country"] == "UK"

    patched = crm.patch(f"organisations/{org['id']}", json={"website": "https://acme.example"})
    assert patched.json()["website"] == "https://acme.example"
    assert patched.json()["name"] == "Acme"

    assert crm.delete(f"organisations/{org['id']}").status_code == 204
    gone = crm.get(f"organisations/{org['id']}")
    assert gone.status_code == 404
    assert gone.json()["error"]["code"] == "NOT_FOUND"


def test_keyset_paging_visits_every_row_once(crm: TestClient) -> None:
    ids = {crm.post("organisations", json={"name": f"Org {i}"}).json()["id"] for i in range(7)}
    seen: list[int] = []
    cursor = None
    while True:
        params = {"limit": 3, **({"cursor": cursor} if cursor else {})}
        page = crm.get("organisations", params=params).json()
        seen += [o["id"] for o in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == sorted(ids)


def test_validation_error_names_field_and_rule(crm: TestClient) -> None:
    resp = crm.post("organisations", json={"name": "x" * 256})
    assert resp.status_code == 422
    err = resp.json()["error"]
    assert err["code"] == "VALIDATION_FAILED"
    assert err["details"][0]["field"] == "name"
    assert err["details"][0]["rule"] == "string_too_long"
    assert err["fix"]


def test_bad_cursor_is_refused(crm: TestClient) -> None:
    resp = crm.get("organisations", params={"cursor": "not-a-cursor"})
    assert resp.status_code == 422
    assert resp.json()["error"]["code"] == "INVALID_CURSOR"
