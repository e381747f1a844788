"""``mailshot doctor CAMPAIGN`` on a send that is not moving: the relay unreachable (a port
nothing listens on) or refusing our login (an aiosmtpd relay that wants other
credentials), paused, scheduled for later, every remaining recipient deferred (next attempt
and last reply), no send worker running, the rate limit and how long the rest takes; each
with its code, fix and the page that shows it. Real relays on 127.0.0.1; SQLite and
PostgreSQL for the ESP's side."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import update

from mailshot.app.cli.doctor_send import relay_checks, send_checks
from mailshot.app.cli.esp_api import EspApi
from mailshot.core.settings import Settings
from mailshot.esp.models import Send
from mailshot.esp.sending.runner import run_until_idle
from tests.conftest import Keys
from tests.support.aio import in_thread
from tests.support.sending import relay
from tests.support.sends import campaign, esp_client, people, send_settings, sessions_for
from tests.support.smtpd import Script, free_port, smtp_server

BASE = "http://esp.test/esp"


def checks(live: Settings, api: TestClient, ref: str = "1") -> dict[str, dict[str, Any]]:
    found = send_checks(live, EspApi(api), ref, BASE, relays=False)
    return {c["check"]: c for c in found}


def test_the_relay_unreachable_or_refusing_the_login_is_named(settings: Settings) -> None:
    with smtp_server(credentials=("mailer", "right")) as server:
        relays = [
            relay(free_port(), name="nowhere"),
            relay(server.port, name="wrongpass", username="mailer", password="wrong"),
            relay(server.port, name="good", username="mailer", password="right"),
        ]
        live = settings.model_copy(update={"smtp_relays": relays})
        found = {c["check"]: c for c in relay_checks(live, "/esp/campaigns/1")}
    nowhere, refused, good = found["relay_nowhere"], found["relay_wrongpass"], found["relay_good"]
    assert nowhere["status"] == "fail" and nowhere["code"] == "SEND_RELAY_UNREACHABLE"
    assert f"127.0.0.1:{relays[0].port}" in nowhere["message"] and nowhere["fix"]
    assert refused["code"] == "SEND_RELAY_AUTH_REFUSED"
    assert "as mailer" in refused["message"] and "535" in refused["message"]
    assert "password" in refused["fix"] and refused["page"] == "/esp/campaigns/1"
    assert good["status"] == "pass"
    assert server.received == []  # a probe sends nothing


def test_paused_scheduled_and_the_rate_limit(settings: Settings, keys: Keys) -> None:
    slow = [relay(9, messages_per_second=0.01)]
    live = send_settings(settings, 9, smtp_relays=slow)
    with esp_client(live, keys.esp_admin) as api:
        cid = campaign(api, 1, people(30))
        assert checks(live, api)["send"]["message"].endswith("has not been sent yet.")
        at = (datetime.now(UTC) + timedelta(hours=3)).isoformat()
        send = api.post("integrated-campaigns/1/send", json={"at": at}).json()
        found = checks(live, api)
        assert found["send_scheduled"]["code"] == "SEND_SCHEDULED"
        assert re.search(r"\(in (3 h 0|2 h 59) min\)", found["send_scheduled"]["message"])
        assert found["send_scheduled"]["page"] == f"{BASE}/campaigns/{cid}"
        rate = found["send_rate_limit"]
        assert rate["code"] == "SEND_RATE_LIMITED" and rate["status"] == "warn"
        assert "0.01 messages per second" in rate["message"] and "50 min" in rate["message"]
        assert "send_workers" not in found  # nothing is due yet: no worker is missed

        api.post(f"sends/{send['id']}/pause")
        paused = checks(live, api)["send_paused"]
        assert paused["status"] == "fail" and paused["code"] == "SEND_PAUSED"
        assert "30 recipients wait" in paused["message"] and "Resume" in paused["fix"]


def test_no_send_worker_running(settings: Settings, keys: Keys) -> None:
    live = send_settings(settings, 9)
    with esp_client(live, keys.esp_admin) as api:
        cid = campaign(api, 1, people(5))
        send = api.post("integrated-campaigns/1/send").json()
        assert "send_workers" not in checks(live, api)  # just asked: workers get a moment
        sessions = sessions_for(live)
        with sessions() as s:  # asked a minute ago, and no worker ever leased anything
            s.execute(
                update(Send)
                .where(Send.id == send["id"])
                .values(requested_at=datetime.now(UTC) - timedelta(minutes=1))
            )
            s.commit()
        sessions.kw["bind"].dispose()
        worker = checks(live, api)["send_workers"]
    assert worker["status"] == "fail" and worker["code"] == "SEND_NO_WORKER"
    assert "no send was ever leased" in worker["message"]
    assert "mailshot send-worker" in worker["fix"]
    assert worker["page"] == f"{BASE}/campaigns/{cid}"


def test_every_remaining_recipient_deferred(settings: Settings, keys: Keys) -> None:
    script = Script(rcpt=lambda _c, _n, _a: "451 4.7.1 Greylisted, try again later")
    with smtp_server(script) as server:
        live = send_settings(settings, server.port, send_retry_initial_seconds=600)
        with esp_client(live, keys.esp_admin) as api:
            cid = campaign(api, 1, people(4))
            send = api.post("integrated-campaigns/1/send").json()
            sessions = sessions_for(live)
            in_thread(run_until_idle, sessions, live)
            sessions.kw["bind"].dispose()
            assert api.get(f"sends/{send['id']}").json()["counts"]["deferred"] == 4
            found = checks(live, api)
    deferred = found["send_deferred"]
    assert deferred["code"] == "SEND_ALL_DEFERRED"
    assert "All 4 remaining recipients are deferred" in deferred["message"]
    assert "451 4.7.1 Greylisted, try again later" in deferred["message"]
    assert "next attempt is at 20" in deferred["message"]  # a date, not "unknown"
    assert deferred["page"] == f"{BASE}/campaigns/{cid}/send/recipients?state=deferred"
    assert "send_workers" not in found  # the unit waits for its time: no worker is missed
