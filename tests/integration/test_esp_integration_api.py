"""The integration page over the ESP API: heartbeats, running, pause and resume."""

from __future__ import annotations

from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import update

from mailshot.core.clock import utcnow
from mailshot.core.db.engine import make_unpooled_engine
from mailshot.core.settings import Settings
from mailshot.esp.models import IntegrationWorker
from tests.conftest import Keys

CAMPAIGN = {
    "snapshot": 1,
    "crm_mailshot_uid": "00000000-0000-4000-8000-000000000001",
    "name": "N",
    "subject": "S",
    "from_name": "F",
    "from_address": "f@example.com",
    "text": "t",
}


def test_heartbeat_makes_the_integration_running(esp: TestClient, keys: Keys) -> None:
    page = esp.get("integration").json()
    assert page["running"] is False and page["paused"] is False and page["workers"] == []
    bridge = {"Authorization": f"Bearer {keys.esp_integration}"}
    beat = esp.post(
        "integration/heartbeat",
        json={"worker_id": "w1", "host": "box", "version": "0.1.0"},
        headers=bridge,
    )
    assert beat.status_code == 200
    assert beat.json() == {"paused": False}
    esp.post(
        "integration/heartbeat",
        json={"worker_id": "w1", "last_error": "ESP timed out"},
        headers=bridge,
    )
    page = esp.get("integration").json()
    assert page["running"] is True
    assert page["last_seen_at"] is not None
    assert page["last_error"] == "ESP timed out" and page["last_error_at"] is not None
    assert [(w["worker_id"], w["host"], w["version"]) for w in page["workers"]] == [
        ("w1", "box", "0.1.0")
    ]


def test_not_running_when_no_worker_was_heard_from_for_a_minute(
    esp: TestClient, keys: Keys, settings: Settings
) -> None:
    esp.post(
        "integration/heartbeat",
        json={"worker_id": "old"},
        headers={"Authorization": f"Bearer {keys.esp_integration}"},
    )
    engine = make_unpooled_engine(settings.esp_db_url())
    with engine.begin() as conn:
        conn.execute(
            update(IntegrationWorker).values(last_heartbeat_at=utcnow() - timedelta(seconds=61))
        )
    engine.dispose()
    assert esp.get("integration").json()["running"] is False


def test_pause_answers_503_with_retry_after_then_resume_works(esp: TestClient, keys: Keys) -> None:
    bridge = {"Authorization": f"Bearer {keys.esp_integration}"}
    assert esp.put("integrated-campaigns/1", json=CAMPAIGN, headers=bridge).is_success
    paused = esp.post("integration/pause")
    assert paused.status_code == 200 and paused.json()["paused"] is True
    assert paused.json()["running"] is False

    for method, path, body in (
        ("PUT", "integrated-campaigns/1", CAMPAIGN),
        (
            "POST",
            "integrated-campaigns/1/recipients",
            {"snapshot": 1, "columns": ["person_id", "email"], "rows": [[1, "a@example.com"]]},
        ),
        ("POST", "integrated-campaigns/1/finalize", {"snapshot": 1, "expected": 1}),
    ):
        resp = esp.request(method, path, json=body, headers=bridge)
        assert resp.status_code == 503, path
        assert resp.json()["error"]["code"] == "INTEGRATION_PAUSED"
        assert int(resp.headers["Retry-After"]) > 0
    beat = esp.post("integration/heartbeat", json={"worker_id": "w"}, headers=bridge)
    assert beat.json() == {"paused": True}
    assert esp.get("contacts").status_code == 200  # reads carry on

    assert esp.post("integration/resume").json()["paused"] is False
    rows = {"snapshot": 1, "columns": ["person_id", "email"], "rows": [[1, "a@example.com"]]}
    assert esp.post("integrated-campaigns/1/recipients", json=rows, headers=bridge).json() == {
        "written": 1,
        "duplicates": 0,
    }
    assert esp.post("integration/heartbeat", json={"worker_id": "w"}, headers=bridge).json() == {
        "paused": False
    }


def test_only_admins_pause_and_only_the_integration_heartbeats(esp: TestClient, keys: Keys) -> None:
    bridge = {"Authorization": f"Bearer {keys.esp_integration}"}
    refused = esp.post("integration/pause", headers=bridge)
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "AUTH_SCOPE_MISSING"
    user = esp.post("users", json={"email": "m@example.com", "name": "M", "role": "marketer"})
    token = esp.post("api-keys", json={"name": "m", "user_id": user.json()["id"]}).json()["token"]
    marketer = {"Authorization": f"Bearer {token}"}
    assert esp.get("integration", headers=marketer).status_code == 200
    beat = esp.post("integration/heartbeat", json={"worker_id": "w"}, headers=marketer)
    assert beat.json()["error"]["code"] == "AUTH_SCOPE_MISSING"
