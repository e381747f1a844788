"""Controlling a send over the ESP API: pause, resume and cancel with exact counts, a
scheduled send that waits for its time, the preflight's refusals (each with its code), and
a test send that touches no send and no count. SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from mailshot.core.settings import Settings
from mailshot.esp.sending.runner import SendRunner
from tests.conftest import Keys
from tests.support.sends import (
    campaign,
    drain,
    esp_client,
    people,
    send_settings,
    sessions_for,
)
from tests.support.smtpd import Script, SmtpServer, smtp_server


@contextmanager
def background_worker(settings: Settings) -> Iterator[None]:
    stop = threading.Event()
    sessions = sessions_for(settings)
    runner = SendRunner(sessions, settings, poll_seconds=0.05)
    thread = threading.Thread(target=lambda: asyncio.run(runner.run(stop)), daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(30)
        sessions.kw["bind"].dispose()


def _wait(check: object, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def _settled(esp: TestClient, send_id: int) -> dict[str, object]:
    """The send once no recipient is in flight."""
    _wait(lambda: esp.get(f"sends/{send_id}").json()["counts"]["sending"] == 0)
    return dict(esp.get(f"sends/{send_id}").json())


def _slow() -> Script:
    return Script(data_delay=0.01)


def _received(server: SmtpServer) -> Counter[str]:
    return Counter(server.recipients())


def test_pause_stops_at_the_next_window_and_resume_sends_the_rest(
    settings: Settings, keys: Keys
) -> None:
    with smtp_server(_slow()) as server:
        live = send_settings(settings, server.port, send_window=5)
        with esp_client(live, keys.esp_admin) as esp:
            campaign(esp, 1, people(120))
            send_id = esp.post("integrated-campaigns/1/send").json()["id"]
            with background_worker(live):
                _wait(lambda: len(server.received) >= 10)
                paused = esp.post(f"sends/{send_id}/pause")
                assert paused.status_code == 200 and paused.json()["state"] == "paused"
                send = _settled(esp, send_id)
                time.sleep(0.3)  # a paused send's units are not leased again
                assert esp.get(f"sends/{send_id}").json()["counts"] == send["counts"]
            counts = send["counts"]
            assert isinstance(counts, dict)
            assert counts["sent"] == len(server.received) < 120
            assert counts["pending"] == 120 - counts["sent"]
            again = esp.post(f"sends/{send_id}/pause")
            assert again.status_code == 409
            assert again.json()["error"]["code"] == "SEND_STATE_FORBIDS"
            resumed = esp.post(f"sends/{send_id}/resume")
            assert resumed.json()["state"] == "sending"
            done = drain(esp, live, send_id)
    assert done["counts"]["sent"] == 120
    assert _received(server) == Counter(f"p{i}@example.org" for i in range(120))


def test_cancel_ends_the_send_with_the_rest_cancelled(settings: Settings, keys: Keys) -> None:
    with smtp_server(_slow()) as server:
        live = send_settings(settings, server.port, send_window=5)
        with esp_client(live, keys.esp_admin) as esp:
            campaign(esp, 2, people(120))
            send_id = esp.post("integrated-campaigns/2/send").json()["id"]
            with background_worker(live):
                _wait(lambda: len(server.received) >= 10)
                cancelled = esp.post(f"sends/{send_id}/cancel")
                assert cancelled.status_code == 200, cancelled.text
                assert cancelled.json()["state"] == "cancelled"
                send = _settled(esp, send_id)
                received = len(server.received)
            refused = esp.post(f"sends/{send_id}/resume")
    counts = send["counts"]
    assert isinstance(counts, dict)
    assert counts["sent"] == received and 10 <= received < 120
    assert counts["cancelled"] == 120 - received
    assert counts["pending"] == counts["in_doubt"] == 0
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "SEND_STATE_FORBIDS"
    assert max(_received(server).values()) == 1


def test_a_scheduled_send_waits_for_its_time(settings: Settings, keys: Keys) -> None:
    with smtp_server() as server:
        live = send_settings(settings, server.port)
        with esp_client(live, keys.esp_admin) as esp:
            campaign(esp, 3, people(5))
            # Far enough ahead that a loaded machine's POST is answered before it is due.
            at = datetime.now(UTC) + timedelta(seconds=5)
            send = esp.post("integrated-campaigns/3/send", json={"at": at.isoformat()}).json()
            assert send["state"] == "scheduled"
            early = drain(esp, live, send["id"], until={"scheduled"})
            assert early["counts"]["pending"] == 5 and not server.received
            time.sleep(max(0.0, (at - datetime.now(UTC)).total_seconds()) + 0.1)
            done = drain(esp, live, send["id"])
            got = esp.get("integrated-campaigns/3/send").json()
    assert done["state"] == "sent" and done["counts"]["sent"] == 5
    assert got["id"] == send["id"] and got["started_at"] >= at.isoformat()[:19]


def _code(resp: object) -> str:
    body = resp.json()  # type: ignore[attr-defined]
    return str(body["error"]["code"])


def test_the_preflight_refuses_with_a_code_each(settings: Settings, keys: Keys) -> None:
    with smtp_server() as server:
        live = send_settings(settings, server.port)
        with esp_client(live, keys.esp_admin) as esp:
            campaign(esp, 1, people(3), finalize=False)
            assert _code(esp.post("integrated-campaigns/1/send")) == "SEND_AUDIENCE_NOT_FINAL"
            campaign(esp, 2, [("gone@example.org", "G")])
            esp.post("suppressions", json={"email": "gone@example.org", "reason": "unsubscribed"})
            campaign(esp, 2, [("gone@example.org", "G")])  # finalised again: 1 suppressed
            assert _code(esp.post("integrated-campaigns/2/send")) == "SEND_NOTHING_TO_SEND"
            ended = (date.today() - timedelta(days=2)).isoformat()
            campaign(esp, 3, people(2), start_date="2020-01-01", end_date=ended)
            assert _code(esp.post("integrated-campaigns/3/send")) == "SEND_CAMPAIGN_ENDED"
            campaign(esp, 4, people(2), html="<p>\n{{ first_name | nosuch }}</p>")
            bad = esp.post("integrated-campaigns/4/send")
            assert _code(bad) == "SEND_TEMPLATE_INVALID"
            assert "html, line 2" in bad.json()["error"]["message"]
            campaign(esp, 5, people(2))
            never = esp.post("integrated-campaigns/404/send")
            assert _code(never) == "CAMPAIGN_NOT_FOUND"
            first = esp.post("integrated-campaigns/5/send")
            assert first.status_code == 202
            assert _code(esp.post("integrated-campaigns/5/send")) == "SEND_ALREADY_EXISTS"
            naive = esp.post("integrated-campaigns/5/send", json={"at": "2030-01-01T09:00:00"})
            assert _code(naive) == "VALIDATION_FAILED"
        strict = live.model_copy(update={"dkim_required": True})
        with esp_client(strict, keys.esp_admin) as esp:
            campaign(esp, 6, people(2))
            assert _code(esp.post("integrated-campaigns/6/send")) == "SEND_DKIM_KEY_MISSING"
            assert esp.get("integrated-campaigns/6/send").status_code == 404


def test_a_test_send_delivers_and_touches_no_count(settings: Settings, keys: Keys) -> None:
    with smtp_server() as server:
        live = send_settings(settings, server.port)
        with esp_client(live, keys.esp_admin) as esp:
            campaign(esp, 1, people(4))
            answer = esp.post(
                "integrated-campaigns/1/test-send",
                json={"addresses": ["p1@example.org", "boss@example.net"]},
            )
            assert answer.status_code == 200, answer.text
            no_send = esp.get("integrated-campaigns/1/send")
            send = esp.post("integrated-campaigns/1/send").json()
            esp.post("integrated-campaigns/1/test-send", json={"addresses": ["qa@example.net"]})
            after = esp.get(f"sends/{send['id']}").json()
            too_many = esp.post(
                "integrated-campaigns/1/test-send",
                json={"addresses": [f"a{i}@example.net" for i in range(11)]},
            )
    items = answer.json()["items"]
    assert [(i["address"], i["outcome"], i["smtp_code"]) for i in items] == [
        ("p1@example.org", "sent", 250),
        ("boss@example.net", "sent", 250),
    ]
    assert no_send.status_code == 404 and _code(no_send) == "SEND_NOT_FOUND"
    assert after["counts"] == send["counts"] and after["counts"]["pending"] == 4
    assert sorted(server.recipients()) == ["boss@example.net", "p1@example.org", "qa@example.net"]
    personal = next(m for m in server.received if m.rcpt_tos == ("p1@example.org",))
    assert b"Subject: Hello Name1" in personal.data
    assert too_many.status_code == 422


@pytest.mark.parametrize("role_key", ["esp_integration"])
def test_the_integration_key_reads_sends_but_does_not_send(
    settings: Settings, keys: Keys, role_key: str
) -> None:
    with smtp_server() as server:
        live = send_settings(settings, server.port)
        with esp_client(live, keys.esp_admin) as esp:
            campaign(esp, 1, people(2))
            send_id = esp.post("integrated-campaigns/1/send").json()["id"]
        with esp_client(live, getattr(keys, role_key)) as bridge:
            assert bridge.get(f"sends/{send_id}").status_code == 200
            refused = bridge.post(f"sends/{send_id}/pause")
    assert refused.status_code == 403 and _code(refused) == "AUTH_SCOPE_MISSING"
