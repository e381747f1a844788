"""The diagnosis API on real databases: each cause a mailshot can be stuck on is named by
the right check, with its code and fix, and the summary names the main one."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import update

from mailshot.core.clock import utcnow
from mailshot.core.db.engine import make_sessionmaker, make_unpooled_engine
from mailshot.core.settings import Settings
from mailshot.crm.models import ApiKey, User
from tests.conftest import Keys
from tests.support.e2e_data import add_list, add_mailshot, crm_engine

API = "/crm/api/v1"


def _h(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def _mailshot(settings: Settings, n: int = 3, **fields: Any) -> int:
    engine = crm_engine(settings)
    list_id, _ = add_list(engine, f"d{n}", n, excluded=1)
    mailshot_id = add_mailshot(engine, list_id, fields.pop("name", f"Diag {n}"), **fields)
    engine.dispose()
    return mailshot_id


def _crm_update(settings: Settings, stmt: Any) -> None:
    engine = make_unpooled_engine(settings.crm_db_url())
    with make_sessionmaker(engine)() as s:
        s.execute(stmt)
        s.commit()
    engine.dispose()


def _beat(client: TestClient, keys: Keys, **fields: Any) -> None:
    body = {"worker_id": "w1", "esp_reachable": True, "esp_paused": False, **fields}
    r = client.post(f"{API}/integration/heartbeat", json=body, headers=_h(keys.crm_integration))
    assert r.status_code == 204, r.text


def _diagnose(client: TestClient, keys: Keys, mailshot_id: int | None) -> dict[str, Any]:
    path = f"{API}/mailshots/{mailshot_id}/diagnosis" if mailshot_id else f"{API}/diagnosis"
    r = client.get(path, headers=_h(keys.crm_marketer))
    assert r.status_code == 200, r.text
    out: dict[str, Any] = r.json()
    return out


def _check(diag: dict[str, Any], name: str) -> dict[str, Any]:
    found = [c for c in diag["checks"] if c["check"] == name]
    assert len(found) == 1, diag
    return found[0]


def test_a_healthy_queued_mailshot_passes_and_counts_its_audience(
    client: TestClient, keys: Keys, settings: Settings
) -> None:
    mailshot_id = _mailshot(settings, 4)
    _beat(client, keys)
    r = client.post(f"{API}/mailshots/{mailshot_id}/synchronise", headers=_h(keys.crm_admin))
    assert r.status_code == 202, r.text
    assert r.json()["integration"]["running"] is True
    diag = _diagnose(client, keys, mailshot_id)
    assert diag["mailshot_id"] == mailshot_id
    statuses = {c["check"]: c["status"] for c in diag["checks"]}
    assert statuses["integration_key"] == "pass"
    assert statuses["integration_running"] == "pass"
    assert statuses["integration_paused"] == "pass"
    assert statuses["esp_reachable"] == "pass"
    assert statuses["last_error"] == "pass"
    state = _check(diag, "sync_state")
    assert state["status"] == "pass" and "Queued, 1st in line" in state["message"]
    audience = _check(diag, "audience")
    assert audience["details"]["included"] == 3
    assert audience["details"]["excluded"] == {"opted_out": 1}
    assert "1 opted out" in audience["message"]
    assert diag["verdict"] in ("pass", "warn")  # warn only for limits not received yet


def test_a_disabled_key_is_named_with_its_code_and_fix(
    client: TestClient, keys: Keys, settings: Settings
) -> None:
    mailshot_id = _mailshot(settings)
    _beat(client, keys)
    _crm_update(
        settings, update(ApiKey).where(ApiKey.name == "integration key").values(enabled=False)
    )
    r = client.post(f"{API}/sync/lease", json={"worker_id": "w1"}, headers=_h(keys.crm_integration))
    assert r.status_code == 401
    diag = _diagnose(client, keys, mailshot_id)
    key = _check(diag, "integration_key")
    assert key["status"] == "fail" and key["code"] == "AUTH_KEY_DISABLED"
    assert "disabled" in key["message"] and "last refused" in key["message"]
    assert "enable" in key["fix"]
    assert diag["verdict"] == "fail"
    assert diag["summary"] == key["message"]


def test_key_dates_and_user_are_each_named(
    client: TestClient, keys: Keys, settings: Settings
) -> None:
    now = utcnow()
    cases = [
        ({"valid_from": now + timedelta(days=1)}, "AUTH_KEY_NOT_YET_VALID", "fail"),
        ({"until": now - timedelta(minutes=1)}, "AUTH_KEY_EXPIRED", "fail"),
        ({"until": now + timedelta(days=5)}, "INTEGRATION_KEY_EXPIRING", "warn"),
    ]
    for values, code, status in cases:
        reset = {"valid_from": None, "until": None}
        _crm_update(
            settings,
            update(ApiKey).where(ApiKey.name == "integration key").values(**{**reset, **values}),
        )
        key = _check(_diagnose(client, keys, None), "integration_key")
        assert (key["status"], key["code"]) == (status, code), key
    _crm_update(settings, update(ApiKey).where(ApiKey.name == "integration key").values(until=None))
    _crm_update(settings, update(User).where(User.role == "integration").values(enabled=False))
    key = _check(_diagnose(client, keys, None), "integration_key")
    assert (key["status"], key["code"]) == ("fail", "AUTH_USER_DISABLED")
    assert "bridge@example.com" in key["message"]


def test_no_worker_a_stopped_worker_a_pause_and_an_unreachable_esp(
    client: TestClient, keys: Keys, settings: Settings
) -> None:
    mailshot_id = _mailshot(settings)
    client.post(f"{API}/mailshots/{mailshot_id}/synchronise", headers=_h(keys.crm_admin))
    diag = _diagnose(client, keys, mailshot_id)
    running = _check(diag, "integration_running")
    assert running["status"] == "fail" and running["code"] == "INTEGRATION_NOT_RUNNING"
    assert "ever reported" in running["message"]
    assert diag["summary"] == running["message"]
    status = client.get(f"{API}/mailshots/{mailshot_id}/sync", headers=_h(keys.crm_admin)).json()
    assert "No bridge worker is running" in status["summary"]

    _beat(client, keys, esp_paused=True, esp_paused_at="2030-01-02T03:04:05Z")
    diag = _diagnose(client, keys, mailshot_id)
    paused = _check(diag, "integration_paused")
    assert paused["status"] == "fail" and paused["code"] == "INTEGRATION_PAUSED_AT_ESP"
    assert "2030-01-02 03:04:05" in paused["message"] and "resume" in paused["fix"]
    assert diag["summary"] == paused["message"]
    status = client.get(f"{API}/mailshots/{mailshot_id}/sync", headers=_h(keys.crm_admin)).json()
    assert status["integration"]["paused"] is True
    assert "paused" in status["summary"]

    _beat(client, keys, esp_reachable=False, esp_error="BRIDGE_UNREACHABLE: connection refused")
    esp = _check(_diagnose(client, keys, mailshot_id), "esp_reachable")
    assert esp["status"] == "fail" and esp["code"] == "ESP_UNREACHABLE"
    assert "connection refused" in esp["message"]

    _beat(client, keys, esp_reachable=False, esp_error="AUTH_KEY_EXPIRED: expired")
    esp = _check(_diagnose(client, keys, mailshot_id), "esp_reachable")
    assert esp["code"] == "ESP_REFUSES_BRIDGE_KEY"

    _beat(client, keys, stopping=True)
    running = _check(_diagnose(client, keys, mailshot_id), "integration_running")
    assert running["status"] == "fail" and "stopped" in running["message"]
    _beat(client, keys)
    assert _check(_diagnose(client, keys, mailshot_id), "integration_running")["status"] == "pass"


def test_a_long_name_fails_against_the_esp_limits(
    client: TestClient, keys: Keys, settings: Settings
) -> None:
    limits = client.get("/esp/api/v1/limits", headers=_h(keys.esp_integration)).json()
    r = client.put(
        f"{API}/integration/esp-limits", json={"limits": limits}, headers=_h(keys.crm_integration)
    )
    assert r.status_code == 200, r.text
    mailshot_id = _mailshot(settings, name="N" * 150)
    diag = _diagnose(client, keys, mailshot_id)
    name = _check(diag, "name_and_fields")
    assert name["status"] == "fail" and name["code"] == "SYNC_PREFLIGHT_FAILED"
    assert "150" in name["message"] and "100" in name["message"]
    assert "rename" in name["fix"]
    assert diag["summary"] == name["message"]


def test_a_failed_sync_shows_its_error_and_an_unknown_mailshot_is_404(
    client: TestClient, keys: Keys, settings: Settings
) -> None:
    mailshot_id = _mailshot(settings)
    client.post(f"{API}/mailshots/{mailshot_id}/synchronise", headers=_h(keys.crm_admin))
    bridge = _h(keys.crm_integration)
    unit = client.post(f"{API}/sync/lease", json={"worker_id": "w"}, headers=bridge).json()["unit"]
    r = client.post(
        f"{API}/sync/units/{unit['unit_id']}/fail",
        json={
            "lease_token": unit["lease_token"],
            "permanent": True,
            "code": "CAMPAIGN_SENDER_MISSING",
            "message": "The campaign has no sender.",
            "fix": "Give it a sender.",
        },
        headers=bridge,
    )
    assert r.status_code == 200, r.text
    diag = _diagnose(client, keys, mailshot_id)
    err = _check(diag, "last_error")
    assert (err["status"], err["code"], err["fix"]) == (
        "fail",
        "CAMPAIGN_SENDER_MISSING",
        "Give it a sender.",
    )
    assert _check(diag, "sync_state")["status"] == "fail"
    r = client.get(f"{API}/mailshots/999999/diagnosis", headers=_h(keys.crm_marketer))
    assert r.status_code == 404 and r.json()["error"]["code"] == "NOT_FOUND"
