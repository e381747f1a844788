"""Integrated Campaigns over the ESP API: limits, upsert by CRM mailshot id, refusals."""

from __future__ import annotations

import threading

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from mailshot.contracts.campaign import IntegratedCampaignPut
from mailshot.core.db.engine import make_sessionmaker, make_unpooled_engine
from mailshot.core.settings import Settings
from mailshot.esp.models import Campaign
from mailshot.esp.services import campaigns as service
from tests.conftest import Keys

CAMPAIGN = {
    "snapshot": 1,
    "crm_mailshot_uid": "00000000-0000-4000-8000-000000000001",
    "name": "Spring newsletter",
    "subject": "Hello",
    "from_name": "Acme",
    "from_address": "news@example.com",
    "html": "<p>Hi</p>",
    "text": "Hi",
}


def test_limits_for_any_valid_key(esp: TestClient, keys: Keys) -> None:
    resp = esp.get("limits", headers={"Authorization": f"Bearer {keys.esp_integration}"})
    assert resp.status_code == 200
    assert resp.json() == {
        "campaign": {
            "name_max_length": 100,
            "subject_max_length": 255,
            "from_name_max_length": 255,
            "from_address_max_length": 320,
            "required": ["name", "subject", "from_name", "from_address", "content"],
        },
        "recipients": {"max_rows_per_request": 50000},
    }
    assert esp.get("limits", headers={"Authorization": ""}).json()["error"]["code"] == (
        "AUTH_MISSING"
    )


def test_a_campaign_is_never_given_to_another_mailshot_with_the_same_id(esp: TestClient) -> None:
    mine = esp.put("integrated-campaigns/12", json=CAMPAIGN)
    assert mine.status_code == 200, mine.text
    assert mine.json()["crm_mailshot_uid"] == CAMPAIGN["crm_mailshot_uid"]
    other = "00000000-0000-4000-8000-0000000000ff"
    taken = esp.put(
        "integrated-campaigns/12",
        json={**CAMPAIGN, "crm_mailshot_uid": other, "snapshot": 2, "name": "Takeover"},
    )
    assert taken.status_code == 409, taken.text
    error = taken.json()["error"]
    assert error["code"] == "CAMPAIGN_OF_ANOTHER_MAILSHOT"
    assert other in error["message"] and CAMPAIGN["crm_mailshot_uid"] in error["message"]
    assert f"ESP campaign {mine.json()['id']}" in error["fix"]
    kept = esp.get("integrated-campaigns/12").json()
    assert (kept["name"], kept["current_snapshot"]) == ("Spring newsletter", 1)
    assert kept["crm_mailshot_uid"] == CAMPAIGN["crm_mailshot_uid"]
    again = esp.put("integrated-campaigns/12", json={**CAMPAIGN, "snapshot": 2})
    assert again.status_code == 200 and again.json()["current_snapshot"] == 2
    nameless = {k: v for k, v in CAMPAIGN.items() if k != "crm_mailshot_uid"}
    missing = esp.put("integrated-campaigns/13", json=nameless).json()["error"]
    assert missing["details"][0]["field"] == "crm_mailshot_uid"


def test_put_creates_then_updates_the_same_campaign(esp: TestClient) -> None:
    made = esp.put("integrated-campaigns/41", json=CAMPAIGN)
    assert made.status_code == 200, made.text
    body = made.json()
    assert body["crm_mailshot_id"] == 41
    assert body["status"] == "receiving"
    assert body["current_snapshot"] == 1
    assert body["audience_count"] == body["suppressed_count"] == body["duplicate_count"] == 0

    again = esp.put("integrated-campaigns/41", json={**CAMPAIGN, "snapshot": 2, "subject": "New"})
    assert again.status_code == 200
    assert again.json()["id"] == body["id"]
    assert again.json()["subject"] == "New"
    assert again.json()["current_snapshot"] == 2

    listed = esp.get("campaigns").json()["items"]
    assert [c["id"] for c in listed] == [body["id"]]
    assert esp.get("integrated-campaigns/41").json()["subject"] == "New"
    assert esp.get(f"campaigns/{body['id']}").json()["html"] == "<p>Hi</p>"


def test_name_of_101_characters_is_refused_with_both_lengths(esp: TestClient) -> None:
    resp = esp.put("integrated-campaigns/7", json={**CAMPAIGN, "name": "x" * 101})
    assert resp.status_code == 422
    err = resp.json()["error"]
    assert err["code"] == "CAMPAIGN_NAME_TOO_LONG"
    assert err["message"] == "The campaign name has 101 characters; the ESP accepts at most 100."
    assert "Shorten" in err["fix"] and "synchronise again" in err["fix"]
    assert esp.get("integrated-campaigns/7").status_code == 404
    assert esp.put("integrated-campaigns/7", json={**CAMPAIGN, "name": "x" * 100}).is_success


def test_missing_and_invalid_fields_have_their_codes(esp: TestClient) -> None:
    cases = {
        "CAMPAIGN_SUBJECT_MISSING": {"subject": ""},
        "CAMPAIGN_SENDER_MISSING": {"from_name": None},
        "CAMPAIGN_CONTENT_MISSING": {"html": None, "text": "  "},
        "CAMPAIGN_FROM_ADDRESS_INVALID": {"from_address": "news at example"},
    }
    for code, change in cases.items():
        resp = esp.put("integrated-campaigns/8", json={**CAMPAIGN, **change})
        assert resp.status_code == 422, code
        assert resp.json()["error"]["code"] == code
        assert resp.json()["error"]["fix"]


def test_older_snapshot_is_refused_as_stale(esp: TestClient) -> None:
    assert esp.put("integrated-campaigns/9", json={**CAMPAIGN, "snapshot": 5}).is_success
    resp = esp.put("integrated-campaigns/9", json={**CAMPAIGN, "snapshot": 4, "name": "Old"})
    assert resp.status_code == 409
    assert resp.json()["error"]["code"] == "STALE_SNAPSHOT"
    assert esp.get("integrated-campaigns/9").json()["name"] == CAMPAIGN["name"]
    assert esp.put("integrated-campaigns/9", json={**CAMPAIGN, "snapshot": 5}).is_success


def test_list_filters_by_status_and_pages(esp: TestClient) -> None:
    for n in range(5):
        esp.put(f"integrated-campaigns/{100 + n}", json=CAMPAIGN)
    esp.post("integrated-campaigns/100/finalize", json={"snapshot": 1, "expected": 0})
    ready = esp.get("campaigns", params={"status": "ready"}).json()["items"]
    assert [c["crm_mailshot_id"] for c in ready] == [100]
    seen, cursor = [], None
    while True:
        page = esp.get("campaigns", params={"limit": 2, **({"cursor": cursor} if cursor else {})})
        seen += [c["crm_mailshot_id"] for c in page.json()["items"]]
        cursor = page.json()["next_cursor"]
        if cursor is None:
            break
    assert seen == [100, 101, 102, 103, 104]


def test_reading_needs_a_key_and_writing_needs_its_scope(esp: TestClient) -> None:
    user = esp.post("users", json={"email": "m@example.com", "name": "M", "role": "marketer"})
    key = esp.post("api-keys", json={"name": "ro", "user_id": user.json()["id"]}).json()
    ro = {"Authorization": f"Bearer {key['token']}"}
    assert esp.get("campaigns", headers=ro).status_code == 200
    resp = esp.put("integrated-campaigns/1", json=CAMPAIGN, headers=ro)
    assert resp.status_code == 403
    assert resp.json()["error"]["code"] == "AUTH_SCOPE_MISSING"
    assert esp.get("campaigns/999").json()["error"]["code"] == "NOT_FOUND"
    assert esp.get("integrated-campaigns/999").json()["error"]["code"] == "CAMPAIGN_NOT_FOUND"


def test_concurrent_puts_of_one_mailshot_make_one_campaign(settings: Settings) -> None:
    from mailshot.core.db.engine import make_engine

    engine = make_engine(settings.esp_db_url())
    sessions = make_sessionmaker(engine)
    barrier = threading.Barrier(6)
    failures: list[BaseException] = []

    def put(snapshot: int) -> None:
        barrier.wait()
        try:
            with sessions() as s:
                service.upsert_integrated(
                    s, 77, IntegratedCampaignPut.model_validate({**CAMPAIGN, "snapshot": snapshot})
                )
        except Exception as exc:  # a stale snapshot may lose the race; nothing else may fail
            if getattr(exc, "code", None) != "STALE_SNAPSHOT":
                failures.append(exc)

    threads = [threading.Thread(target=put, args=(n % 3 + 1,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    engine.dispose()
    assert failures == []
    check = make_unpooled_engine(settings.esp_db_url())
    with check.connect() as conn:
        count = conn.execute(select(func.count()).select_from(Campaign)).scalar_one()
        snapshot = conn.execute(select(Campaign.current_snapshot)).scalar_one()
    check.dispose()
    assert count == 1
    assert snapshot == 3
