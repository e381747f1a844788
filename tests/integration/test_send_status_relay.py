"""The CRM sees the ESP's sends: a synced mailshot is sent to a real SMTP server, the real
bridge code (in-process HTTP clients of the real app) relays the ESP's feed of changed
sends, and the CRM's API and pages show the send's final counts exactly. An older report
after a newer one changes nothing; the relay resumes from the cursor the CRM stored; the
feed is bounded per call. SQLite and PostgreSQL."""

from __future__ import annotations

import re
import time
from typing import Any

import pytest
from fastapi.testclient import TestClient

from mailshot.app.server import create_app
from mailshot.bridge.sends import SendRelay
from mailshot.contracts.sends import SendFeedPage, SendState, SendStatusBatch
from mailshot.core.settings import Settings
from mailshot.esp.sending.runner import run_until_idle
from mailshot.esp.services import sends_feed
from tests.conftest import Keys
from tests.support.inprocess_bridge import in_process_pool, work_all
from tests.support.sends import campaign, people, send_settings, sessions_for
from tests.support.smtpd import smtp_server
from tests.support.ui_support import make_page_users, sign_in

CRM = "/crm/api/v1"
ESP = "/esp/api/v1"


@pytest.fixture(autouse=True)
def no_settle(monkeypatch: pytest.MonkeyPatch) -> None:
    """Serve changes at once (the e2e test runs with the real settle time)."""
    monkeypatch.setattr(sends_feed, "SETTLE_SECONDS", 0.0)


class Api:
    def __init__(self, client: TestClient, keys: Keys) -> None:
        self.client = client
        self.keys = keys

    def call(self, part: str, key: str, method: str, path: str, **kw: Any) -> Any:
        base = CRM if part == "crm" else ESP
        headers = {"Authorization": f"Bearer {key}"}
        r = self.client.request(method, f"{base}/{path}", headers=headers, **kw)
        assert r.status_code < 300, r.text
        return r.json()

    def crm(self, method: str, path: str, **kw: Any) -> Any:
        return self.call("crm", self.keys.crm_admin, method, path, **kw)

    def esp(self, method: str, path: str, **kw: Any) -> Any:
        return self.call("esp", self.keys.esp_admin, method, path, **kw)


def _mailshot(api: Api, n: int) -> int:
    ids = [
        api.crm("POST", "people", json={"first_name": f"P{i}", "email": f"p{i}@example.org"})["id"]
        for i in range(n)
    ]
    lst = api.crm("POST", "mailing-lists", json={"name": "Send status"})["id"]
    api.crm("POST", f"mailing-lists/{lst}/members", json={"person_ids": ids})
    body = {
        "name": "Send status",
        "subject": "Hello {{ first_name }}",
        "from_name": "Marketing",
        "from_address": "news@example.com",
        "html": "<p>Hi {{ first_name }}</p>",
        "audience_source": "mailing_list",
        "mailing_list_id": lst,
    }
    return int(api.crm("POST", "mailshots", json=body)["id"])


def _send_to_the_end(api: Api, live: Settings, send_id: int) -> dict[str, Any]:
    sessions = sessions_for(live)
    deadline = time.monotonic() + 30
    try:
        while True:
            run_until_idle(sessions, live)
            send: dict[str, Any] = api.esp("GET", f"sends/{send_id}")
            if send["state"] == "sent":
                return send
            assert time.monotonic() < deadline, send
            time.sleep(0.05)
    finally:
        sessions.kw["bind"].dispose()


def test_the_crm_shows_the_sends_final_counts_and_keeps_the_newest_report(
    settings: Settings, keys: Keys
) -> None:
    users = make_page_users(settings)
    with smtp_server() as smtp:
        live = send_settings(settings, smtp.port)
        with TestClient(create_app(live)) as client:
            api = Api(client, keys)
            mailshot = _mailshot(api, 30)
            pool = in_process_pool(client.app, keys)
            api.crm("POST", f"mailshots/{mailshot}/synchronise")
            work_all(pool)
            assert api.crm("GET", f"mailshots/{mailshot}")["send"] is None
            send_id = api.esp("POST", f"integrated-campaigns/{mailshot}/send")["id"]
            esp_send = _send_to_the_end(api, live, send_id)
            assert len(smtp.received) == 30

            relayed, more = pool.send_relay.once()
            assert (relayed, more) == (1, False)
            shown = api.crm("GET", f"mailshots/{mailshot}")["send"]
            assert shown == api.crm("GET", f"mailshots/{mailshot}/send")
            assert shown["counts"] == esp_send["counts"]
            assert (shown["state"], shown["total"], shown["done"]) == ("sent", 30, 30)
            assert shown["counts"]["sent"] == 30 and shown["percent"] == 100
            esp_campaign = shown["esp_campaign_id"]
            assert esp_campaign == esp_send["campaign_id"]

            # an older report of the same send, after the newer one: nothing changes
            feed = SendFeedPage.model_validate(api.esp("GET", "sends"))
            newest = feed.items[0]
            assert newest.version >= 2
            older = newest.model_copy(
                update={
                    "version": newest.version - 1,
                    "state": SendState.SENDING,
                    "counts": newest.counts.model_copy(update={"sent": 3, "pending": 27}),
                }
            )
            for report in (older, newest):
                body = SendStatusBatch(items=[report], cursor=feed.next_cursor)
                answer = api.call(
                    "crm",
                    keys.crm_integration,
                    "PUT",
                    "integration/send-status",
                    json=body.model_dump(mode="json"),
                )
                assert (answer["applied"], answer["unchanged"]) == (0, 1), answer
            assert api.crm("GET", f"mailshots/{mailshot}/send") == shown

            # a relay that starts again resumes from the CRM's cursor: nothing to relay
            again = SendRelay(pool.crm, pool.esp, every=1.0)
            assert again.once() == (0, False)
            assert again.cursor == feed.next_cursor

            sign_in(client, "crm", users.crm_admin)
            page = client.get(f"/crm/mailshots/{mailshot}").text
            # under the ESP's public address (send_settings sets one; else /esp here)
            assert f'href="https://esp.example.test/esp/campaigns/{esp_campaign}"' in page
            assert re.search(r'<progress id="send-progress" max="30" value="30"', page)
            sent_row = re.search(r'<tr data-state="sent"><td>Sent</td><td class="num">(\d+)<', page)
            assert sent_row is not None and sent_row.group(1) == "30"
            assert "badge-sent" in page
            listing = client.get("/crm/mailshots").text
            assert '<span class="badge badge-sent">sent</span>' in listing
            pool.crm.http.close()
            pool.esp.http.close()


def test_the_feed_is_bounded_and_sends_of_unknown_mailshots_are_named(
    settings: Settings, keys: Keys
) -> None:
    with smtp_server() as smtp:
        live = send_settings(settings, smtp.port)
        with TestClient(create_app(live)) as client:
            esp = TestClient(client.app, base_url="http://testserver/esp/api/v1/")
            esp.headers["Authorization"] = f"Bearer {keys.esp_admin}"
            for m in (901, 902):
                campaign(esp, m, people(3))
                r = esp.post(f"integrated-campaigns/{m}/send", json={"at": "2999-01-01T00:00:00Z"})
                assert r.status_code == 202, r.text
            first = esp.get("sends", params={"limit": 1}).json()
            assert [i["crm_mailshot_id"] for i in first["items"]] == [901]
            assert first["more"] is True
            second = esp.get(
                "sends", params={"limit": 1, "changed_after": first["next_cursor"]}
            ).json()
            assert [i["crm_mailshot_id"] for i in second["items"]] == [902]
            paused = esp.post(f"sends/{first['items'][0]['send_id']}/pause").json()
            third = esp.get("sends", params={"changed_after": second["next_cursor"]}).json()
            assert [(i["send_id"], i["state"]) for i in third["items"]] == [
                (paused["id"], "paused")
            ]
            assert third["items"][0]["version"] > first["items"][0]["version"]
            last = esp.get("sends", params={"changed_after": third["next_cursor"]}).json()
            assert (last["items"], last["next_cursor"]) == ([], third["next_cursor"])
            bad = esp.get("sends", params={"changed_after": "yesterday"})
            assert bad.status_code == 422
            assert bad.json()["error"]["code"] == "SEND_FEED_CURSOR_INVALID"

            pool = in_process_pool(client.app, keys, send_status_batch=1)
            # one send a call, the next asked at once while pages come full
            assert [pool.send_relay.once() for _ in range(3)] == [(1, True), (1, True), (0, False)]
            crm = TestClient(client.app, base_url="http://testserver/crm/api/v1/")
            crm.headers["Authorization"] = f"Bearer {keys.crm_integration}"
            stored = crm.get("integration/send-status").json()
            assert stored == {"cursor": third["next_cursor"]}
            body = SendStatusBatch.model_validate({"items": third["items"], "cursor": None})
            answer = crm.put("integration/send-status", json=body.model_dump(mode="json")).json()
            assert answer["unknown_mailshots"] == [901]
            assert answer["cursor"] == third["next_cursor"]
            refused = TestClient(client.app, base_url="http://testserver/crm/api/v1/")
            refused.headers["Authorization"] = f"Bearer {keys.crm_marketer}"
            r = refused.put("integration/send-status", json=body.model_dump(mode="json"))
            assert r.status_code == 403
            pool.crm.http.close()
            pool.esp.http.close()
