"""The ESP's pages through the real app: campaigns with their audience counts, the
integration page with pause and resume, and API keys, on both database backends."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from mailshot.core.settings import Settings
from tests.conftest import Keys
from tests.support.ui_support import PageUsers, csrf_of, make_page_users, sign_in


@pytest.fixture
def users(settings: Settings) -> PageUsers:
    return make_page_users(settings)


def put_campaign(client: TestClient, key: str, mailshot_id: int, emails: list[str]) -> None:
    """What the bridge does for one sync: campaign, one chunk, finalize (snapshot 1)."""
    auth = {"Authorization": f"Bearer {key}"}
    base = f"/esp/api/v1/integrated-campaigns/{mailshot_id}"
    body = {
        "snapshot": 1,
        "crm_mailshot_uid": f"00000000-0000-4000-8000-{mailshot_id:012d}",
        "name": f"Campaign {mailshot_id}",
        "subject": "Hello",
        "from_name": "Team",
        "from_address": "team@example.com",
        "html": "<p>Hi</p><script>alert(1)</script>",
    }
    assert client.put(base, json=body, headers=auth).status_code in (200, 201)
    rows = [[i, 1000 + i, e, "F", "L", None] for i, e in enumerate(emails)]
    chunk = {
        "snapshot": 1,
        "columns": ["seq", "person_id", "email", "first_name", "last_name", "organisation_id"],
        "rows": rows,
    }
    assert client.post(f"{base}/recipients", json=chunk, headers=auth).status_code == 200
    done = client.post(
        f"{base}/finalize", json={"snapshot": 1, "expected": len(emails)}, headers=auth
    )
    assert done.status_code == 200, done.text


def test_campaigns_list_and_detail_show_the_audience_counts(
    client: TestClient, keys: Keys, users: PageUsers
) -> None:
    put_campaign(client, keys.esp_integration, 7, ["a@example.com", "b@example.com"])
    auth = {"Authorization": f"Bearer {keys.esp_admin}"}
    client.post(
        "/esp/api/v1/suppressions",
        json={"email": "b@example.com", "reason": "unsubscribed"},
        headers=auth,
    )
    put_campaign(client, keys.esp_integration, 7, ["a@example.com", "b@example.com"])
    sign_in(client, "esp", users.esp_marketer)
    listing = client.get("/esp/campaigns")
    [campaign] = listing.context["campaigns"]  # type: ignore[attr-defined]
    assert campaign.crm_mailshot_id == 7
    detail = client.get(f"/esp/campaigns/{campaign.id}")
    c = detail.context["c"]  # type: ignore[attr-defined]
    assert (c.audience_count, c.suppressed_count) == (2, 1)
    assert '<div class="v" id="audience-total">2</div>' in detail.text
    assert '<div class="v" id="audience-suppressed">1</div>' in detail.text
    emails = {r.email: r.suppressed for r in detail.context["recipients"]}  # type: ignore[attr-defined]
    assert emails == {"a@example.com": False, "b@example.com": True}
    assert "sandbox srcdoc=" in detail.text
    assert "<script>alert" not in detail.text


def test_integration_page_pause_and_resume(
    client: TestClient, keys: Keys, users: PageUsers
) -> None:
    sign_in(client, "esp", users.esp_admin)
    page = client.get("/esp/integration")
    assert page.context["state"].running is False  # type: ignore[attr-defined]
    assert page.context["banner"]["title"] == "The integration is not running."  # type: ignore[attr-defined]

    token = csrf_of(page.text)
    client.post("/esp/integration/pause", data={"csrf_token": token})
    state = client.get(
        "/esp/api/v1/integration", headers={"Authorization": f"Bearer {keys.esp_admin}"}
    )
    assert state.json()["paused"] is True
    paused_page = client.get("/esp/integration")
    assert "Resume integration" in paused_page.text
    assert paused_page.context["banner"]["title"] == "The integration is paused."  # type: ignore[attr-defined]

    client.post("/esp/integration/resume", data={"csrf_token": token})
    state = client.get(
        "/esp/api/v1/integration", headers={"Authorization": f"Bearer {keys.esp_admin}"}
    )
    assert state.json()["paused"] is False


def test_integration_page_shows_a_reporting_worker(
    client: TestClient, keys: Keys, users: PageUsers
) -> None:
    beat = client.post(
        "/esp/api/v1/integration/heartbeat",
        json={"worker_id": "worker-a", "host": "box", "version": "0.1.0"},
        headers={"Authorization": f"Bearer {keys.esp_integration}"},
    )
    assert beat.status_code == 200
    sign_in(client, "esp", users.esp_marketer)
    page = client.get("/esp/integration")
    assert page.context["state"].running is True  # type: ignore[attr-defined]
    assert [w.worker_id for w in page.context["state"].workers] == ["worker-a"]  # type: ignore[attr-defined]
    assert page.context["banner"] is None  # type: ignore[attr-defined]


def test_marketers_cannot_pause_or_manage_keys(client: TestClient, users: PageUsers) -> None:
    sign_in(client, "esp", users.esp_marketer)
    page = client.get("/esp/integration")
    assert "Pause integration" not in page.text
    refused = client.post("/esp/integration/pause", data={"csrf_token": csrf_of(page.text)})
    assert refused.status_code == 403
    assert client.get("/esp/api-keys").status_code == 403


def test_esp_api_key_created_once_then_disabled(client: TestClient, users: PageUsers) -> None:
    sign_in(client, "esp", users.esp_admin)
    page = client.get("/esp/api-keys")
    owner = page.context["key_users"][0][0]  # type: ignore[attr-defined]
    made = client.post(
        "/esp/api-keys",
        data={"name": "reader", "user_id": str(owner), "csrf_token": csrf_of(page.text)},
    )
    token = made.context["new_token"]  # type: ignore[attr-defined]
    assert token.startswith("msesp_")
    auth = {"Authorization": f"Bearer {token}"}
    assert client.get("/esp/api/v1/campaigns", headers=auth).status_code == 200
    listed = client.get("/esp/api-keys")
    assert token not in listed.text
    key = next(k for k in listed.context["keys"] if k.name == "reader")  # type: ignore[attr-defined]
    client.post(f"/esp/api-keys/{key.id}/enabled", data={"csrf_token": csrf_of(listed.text)})
    refused = client.get("/esp/api/v1/campaigns", headers=auth)
    assert refused.json()["error"]["code"] == "AUTH_KEY_DISABLED"
