"""Contacts, suppressions and bounces over the ESP API."""

from __future__ import annotations

from fastapi.testclient import TestClient


def test_contacts_upsert_by_normalised_email(esp: TestClient) -> None:
    made = esp.post("contacts", json={"email": " Eve@Example.com ", "first_name": "Eve"})
    assert made.status_code == 201, made.text
    contact = made.json()
    assert contact["email_normalised"] == "eve@example.com"
    again = esp.post(
        "contacts", json={"email": "EVE@example.com", "first_name": "Evelyn", "crm_person_id": 4}
    )
    assert again.status_code == 200
    assert again.json()["id"] == contact["id"]
    assert again.json()["first_name"] == "Evelyn"
    found = esp.get("contacts", params={"email": "eve@EXAMPLE.com"}).json()["items"]
    assert [c["id"] for c in found] == [contact["id"]]
    assert esp.get(f"contacts/{contact['id']}").json()["crm_person_id"] == 4


def test_contact_delete_and_invalid_address(esp: TestClient) -> None:
    contact = esp.post("contacts", json={"email": "gone@example.com"}).json()
    assert esp.delete(f"contacts/{contact['id']}").status_code == 204
    assert esp.get(f"contacts/{contact['id']}").json()["error"]["code"] == "NOT_FOUND"
    bad = esp.post("contacts", json={"email": "not an address"})
    assert bad.status_code == 422
    assert bad.json()["error"]["code"] == "ESP_EMAIL_INVALID"


def test_deleting_a_contact_removes_it_from_audiences(esp: TestClient) -> None:
    esp.put(
        "integrated-campaigns/1",
        json={
            "snapshot": 1,
            "crm_mailshot_uid": "00000000-0000-4000-8000-000000000001",
            "name": "N",
            "subject": "S",
            "from_name": "F",
            "from_address": "f@example.com",
            "text": "t",
        },
    )
    esp.post(
        "integrated-campaigns/1/recipients",
        json={"snapshot": 1, "columns": ["person_id", "email"], "rows": [[1, "a@example.com"]]},
    )
    contact = esp.get("contacts", params={"email": "a@example.com"}).json()["items"][0]
    esp.delete(f"contacts/{contact['id']}")
    campaign_id = esp.get("integrated-campaigns/1").json()["id"]
    assert esp.get(f"campaigns/{campaign_id}/recipients").json()["items"] == []


def test_bounces_suppress_at_one_hard_or_three_soft(esp: TestClient) -> None:
    for n in range(1, 4):
        soft = esp.post("bounces", json={"email": "Soft@Example.com", "kind": "soft"}).json()
        assert soft["soft_bounces"] == n
        assert soft["suppressed"] is (n == 3)
    hard = esp.post("bounces", json={"email": "hard@example.com", "kind": "hard"}).json()
    assert hard["suppressed"] is True and hard["reason"] == "bounced"
    listed = esp.get("suppressions", params={"reason": "bounced"}).json()["items"]
    assert {s["email"] for s in listed} == {"soft@example.com", "hard@example.com"}


def test_suppressions_create_list_delete(esp: TestClient) -> None:
    made = esp.post("suppressions", json={"email": "U@example.com", "reason": "unsubscribed"})
    assert made.status_code == 201
    assert made.json()["suppressed"] is True
    counted = esp.post(
        "suppressions", json={"email": "b@example.com", "reason": "bounced", "soft_bounces": 2}
    ).json()
    assert counted["suppressed"] is False
    bounced = esp.post("bounces", json={"email": "u@example.com", "kind": "soft"}).json()
    assert bounced["reason"] == "unsubscribed" and bounced["suppressed"] is True
    emails = [s["email"] for s in esp.get("suppressions").json()["items"]]
    assert emails == ["u@example.com", "b@example.com"]
    assert esp.delete("suppressions/U@example.com").status_code == 204
    missing = esp.delete("suppressions/u@example.com")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "SUPPRESSION_NOT_FOUND"
    assert esp.post("suppressions", json={"email": "x@example.com", "reason": "spam"}).json()[
        "error"
    ]["code"] == ("VALIDATION_FAILED")
