"""The Outbox in a real browser: a campaign message sent over SMTP to the capture server
(on the site's own ESP database) is listed, opens with its HTML rendered in the sandboxed
frame, its script never runs (in the frame or the page), and its remote image is not
fetched until "Load images". Screenshots: ``artifacts/screenshots/outbox-*.png``."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from typing import Any

import pytest

from mailshot.core.settings import Settings
from mailshot.esp.outbox.server import OutboxServer
from tests.browser.conftest import Site
from tests.browser.test_browser_scenario import sign_in
from tests.integration.test_outbox import SUBJECT, campaign_message, plain_message, send

pytestmark = pytest.mark.browser


def test_a_received_message_opens_in_the_outbox(
    site: Site,
    settings: Settings,
    new_page: Callable[[], Any],
    shot: Callable[[Any, str], None],
) -> None:
    capture = OutboxServer(settings.model_copy(update={"outbox_smtp_port": 0}))
    capture.start()
    try:  # on a thread of its own: Playwright's loop runs on this one
        sender = threading.Thread(
            target=send, args=(capture.port, plain_message("Your receipt"), campaign_message())
        )
        sender.start()
        sender.join(30)
    finally:
        capture.stop()

    page = new_page()
    remote: list[str] = []
    page.on("request", lambda r: remote.append(r.url) if "tracker.example.net" in r.url else None)
    failures: list[str] = []
    page.on("requestfailed", lambda r: failures.append(f"{r.url} {r.failure}"))
    sign_in(page, site.url, "esp", site.users.esp_marketer, site.users.password)
    page.get_by_role("link", name="Outbox").click()
    page.wait_for_url(re.compile(r".*/esp/outbox$"))
    assert page.locator("#outbox-found").inner_text() == "2"
    shot(page, "outbox-list")

    page.get_by_role("link", name=SUBJECT).click()
    page.wait_for_url(re.compile(r".*/esp/outbox/\d+$"))
    frame = page.frame_locator("iframe.preview")
    assert frame.locator("#hello").inner_text() == "Hello Ada"  # the HTML is rendered
    assert page.title().startswith(SUBJECT)  # the message's script did not run
    assert frame.locator("body").evaluate("b => b.ownerDocument.title") != "pwned"
    # The browser asked for the remote image only to have its frame's policy refuse it.
    assert remote and failures == [f"{url} csp" for url in remote]
    assert page.locator("#glance-one-click").inner_text().endswith("One-Click")
    shot(page, "outbox-message")

    remote.clear()
    failures.clear()
    page.locator("#load-images").click()
    page.wait_for_url(re.compile(r".*\?images=1$"))
    assert page.locator("iframe.preview").get_attribute("src", timeout=5000).endswith("?images=1")
    frame.locator("#hello").wait_for()
    for _ in range(50):  # the request goes out (and fails here, offline: not for CSP)
        if remote:
            break
        page.wait_for_timeout(100)
    assert remote and not any(f.endswith(" csp") for f in failures)
