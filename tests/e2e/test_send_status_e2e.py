"""End to end: the real server and a real ``python -m mailshot.bridge`` worker process. A
mailshot is synchronised, its campaign sent to a real SMTP server (aiosmtpd) by send
workers, and the CRM's API and mailshot page then show the send's final counts exactly,
relayed by the worker from the ESP's feed of changed sends (with its real settle time)."""

from __future__ import annotations

import re
import time
from typing import Any

import httpx
import pytest

from mailshot.core.settings import Settings
from mailshot.esp.sending.runner import run_until_idle
from tests.conftest import Keys
from tests.e2e.conftest import Crm, ServerFactory, WorkerFactory
from tests.support.sends import send_settings, sessions_for
from tests.support.smtpd import smtp_server
from tests.support.ui_support import make_page_users, sign_in

pytestmark = pytest.mark.e2e


def _mailshot(crm: Crm, n: int) -> int:
    people = [
        crm.http.post("/people", json={"first_name": f"R{i}", "email": f"r{i}@example.org"}).json()[
            "id"
        ]
        for i in range(n)
    ]
    lst = crm.http.post("/mailing-lists", json={"name": "E2E send"}).json()["id"]
    r = crm.http.post(f"/mailing-lists/{lst}/members", json={"person_ids": people})
    assert r.status_code < 300, r.text
    made = crm.http.post(
        "/mailshots",
        json={
            "name": "Send e2e",
            "subject": "Hello {{ first_name }}",
            "from_name": "Marketing",
            "from_address": "news@example.com",
            "html": "<p>Hi {{ first_name }}</p>",
            "audience_source": "mailing_list",
            "mailing_list_id": lst,
        },
    )
    assert made.status_code == 201, made.text
    return int(made.json()["id"])


def _until(check: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        assert time.monotonic() < deadline, what
        time.sleep(0.2)


def test_the_crm_shows_a_finished_send_with_its_exact_counts(
    settings: Settings, keys: Keys, start_server: ServerFactory, start_worker: WorkerFactory
) -> None:
    users = make_page_users(settings)
    server = start_server()
    crm = Crm(server, keys)
    esp = httpx.Client(
        base_url=f"{server.esp}/api/v1",
        headers={"Authorization": f"Bearer {keys.esp_admin}"},
        timeout=30,
    )
    mailshot = _mailshot(crm, 25)
    start_worker(server)
    crm.synchronise(mailshot)
    assert crm.wait([mailshot])[mailshot]["state"] == "synchronised"

    with smtp_server() as smtp:
        started = esp.post(f"/integrated-campaigns/{mailshot}/send")
        assert started.status_code == 202, started.text
        send_id = started.json()["id"]
        workers = send_settings(settings, smtp.port)
        sessions = sessions_for(workers)
        try:
            done = _until(
                lambda: (
                    run_until_idle(sessions, workers) is None
                    and esp.get(f"/sends/{send_id}").json()["state"] == "sent"
                ),
                30,
                "the send did not finish",
            )
        finally:
            sessions.kw["bind"].dispose()
        assert done and sorted(smtp.recipients()) == sorted(f"r{i}@example.org" for i in range(25))
    esp_send = esp.get(f"/sends/{send_id}").json()

    shown = _until(
        lambda: (
            (s := crm.http.get(f"/mailshots/{mailshot}").json()["send"])
            and s["state"] == "sent"
            and s
        ),
        20,
        "the CRM never showed the send as sent",
    )
    assert shown["counts"] == esp_send["counts"]
    assert (shown["total"], shown["done"], shown["counts"]["sent"]) == (25, 25, 25)
    assert crm.http.get(f"/mailshots/{mailshot}/send").json()["version"] == shown["version"]

    with httpx.Client(base_url=server.url, timeout=30) as browser:
        sign_in(browser, "crm", users.crm_admin)  # type: ignore[arg-type]
        page = browser.get(f"/crm/mailshots/{mailshot}").text
    assert f'href="/esp/campaigns/{esp_send["campaign_id"]}"' in page
    assert re.search(r'<progress id="send-progress" max="25" value="25"', page)
    sent = re.search(r'<tr data-state="sent"><td>Sent</td><td class="num">(\d+)<', page)
    assert sent is not None and sent.group(1) == "25"
    crm.http.close()
    esp.close()
