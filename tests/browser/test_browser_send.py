"""Sending a small campaign from the ESP's pages in a real browser: the marketer opens the
campaign, sees it ready with its Send panel, presses Send now (and confirms), and watches
the panel refresh itself until every recipient is sent, as a real send worker process
delivers to a real SMTP relay; then the recipients list of the send. Screenshots of the
panel and the list land in ``artifacts/screenshots/``."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from mailshot.core.settings import Settings
from tests.browser.conftest import Site
from tests.browser.test_browser_scenario import sign_in
from tests.conftest import Keys
from tests.support.live_server import spawn, stop, subprocess_env
from tests.support.smtpd import Script, smtp_server

pytestmark = pytest.mark.browser

AUDIENCE = 40
COLUMNS = ["seq", "person_id", "email", "first_name", "last_name", "organisation_id"]


def make_campaign(base: str, key: str, mailshot: int, n: int) -> int:
    """What the bridge does for one sync of a mailshot of ``n`` people."""
    auth = {"Authorization": f"Bearer {key}"}
    url = f"{base}/esp/api/v1/integrated-campaigns/{mailshot}"
    body = {
        "snapshot": 1,
        "crm_mailshot_uid": f"00000000-0000-4000-8000-{mailshot:012d}",
        "name": "Spring launch",
        "subject": "Hello {{ first_name | default('there') }}",
        "from_name": "Acme",
        "from_address": "news@example.com",
        "html": '<p>Hi {{ first_name }}, <a href="https://example.com/offer">our offer</a></p>',
    }
    assert httpx.put(url, json=body, headers=auth).status_code in (200, 201)
    rows = [[i, 1000 + i, f"p{i}@example.org", f"Name{i}", "Test", None] for i in range(n)]
    chunk = {"snapshot": 1, "columns": COLUMNS, "rows": rows}
    assert httpx.post(f"{url}/recipients", json=chunk, headers=auth).status_code == 200
    done = httpx.post(f"{url}/finalize", json={"snapshot": 1, "expected": n}, headers=auth)
    assert done.status_code == 200, done.text
    return int(done.json()["id"])


def test_marketer_sends_a_campaign_and_watches_it_finish(
    site: Site,
    keys: Keys,
    settings: Settings,
    new_page: Callable[[], Any],
    shot: Callable[[Any, str], None],
    tmp_path: Path,
) -> None:
    cid = make_campaign(site.url, keys.esp_integration, 31, AUDIENCE)
    with smtp_server(Script(data_delay=0.1)) as server:
        relays = [
            {
                "name": "relay",
                "host": "127.0.0.1",
                "port": server.port,
                "security": "none",
                "connections": 1,
                "local_hostname": "client.esp.test",
            }
        ]
        env = subprocess_env(
            settings,
            smtp_relays=json.dumps(relays),
            public_esp_url=f"{site.url}/esp",
            send_window=5,
            lease_seconds=5,
            heartbeat_seconds=1,
        )
        worker = spawn("mailshot.app.cli.main", env, tmp_path / "send-worker.log", "send-worker")
        try:
            page = new_page()
            page.on("dialog", lambda dialog: dialog.accept())
            sign_in(page, site.url, "esp", site.users.esp_marketer, site.users.password)
            page.goto(f"{site.url}/esp/campaigns/{cid}")
            panel = page.locator("section#send")
            assert "Ready to send" in panel.inner_text()
            panel.screenshot(path=str(_shots() / "esp-send-panel-ready.png"))
            page.get_by_role("button", name="Send now").click()
            page.wait_for_url(re.compile(rf".*/esp/campaigns/{cid}$"))
            assert "Sending to 40 recipients." in page.inner_text("main")
            if "Sending:" in page.locator("#send-words").inner_text():
                page.locator("section#send").screenshot(
                    path=str(_shots() / "esp-send-panel-sending.png")
                )
            # the page refreshes itself (no script needed) until the send is over
            page.wait_for_function(
                "() => document.querySelector('#send-words')?.textContent.startsWith('Sent:')",
                timeout=60_000,
                polling=500,
            )
            assert page.locator("#count-sent .v").inner_text() == "40"
            assert page.locator("#send-progress").get_attribute("value") == "100"
            page.locator("section#send").screenshot(path=str(_shots() / "esp-send-panel-sent.png"))
            assert sorted(server.recipients()) == sorted(f"p{i}@example.org" for i in range(40))

            page.get_by_role("link", name="Recipients of the send").click()
            assert page.locator("table.recipients tbody tr").count() == 40
            assert "queued as" in page.locator("table.recipients").inner_text()
            shot(page, "esp-send-recipients")
            page.goto(f"{site.url}/esp/campaigns")
            assert "sent" in page.locator("table tbody tr").first.inner_text()
        finally:
            stop(worker)


def _shots() -> Path:
    from tests.browser.conftest import SHOTS

    SHOTS.mkdir(parents=True, exist_ok=True)
    return SHOTS
