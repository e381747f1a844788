"""A marketer's afternoon in a real browser: sign in, build a list and a mailshot, see the
name counter warn past the ESP's limit, see the ESP refuse the long name, fix it, watch
the sync reach 100 %, find the campaign on the ESP's pages; and the refusals a user meets
(a marketer on the keys page, a form without its CSRF token). Screenshots of the main
pages land in ``artifacts/screenshots/``."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from sqlalchemy import insert

from mailshot.core.db.engine import make_sessionmaker, make_unpooled_engine
from mailshot.core.settings import Settings
from mailshot.crm.models import Person
from mailshot.crm.services.people import email_fields
from tests.browser.conftest import Site
from tests.conftest import Keys

pytestmark = pytest.mark.browser

AUDIENCE = 240
LONG_NAME = "Spring launch " + "x" * 106  # 120 characters
GOOD_NAME = "Spring launch"


def add_people(settings: Settings, n: int) -> list[int]:
    """People with addresses, written straight into the CRM database (bulk insert)."""
    rows = [
        {"first_name": f"Person{i}", "last_name": "Test", **email_fields(f"p{i}@example.com")}
        for i in range(n)
    ]
    engine = make_unpooled_engine(settings.crm_db_url())
    with make_sessionmaker(engine)() as s:
        ids = list(s.scalars(insert(Person).returning(Person.id), rows))
        s.commit()
    engine.dispose()
    return ids


UNLABELLED = """
() => Array.from(document.querySelectorAll('input, select, textarea'))
  .filter(el => el.type !== 'hidden' && el.labels.length === 0 && !el.getAttribute('aria-label'))
  .map(el => el.outerHTML)
"""


def assert_every_input_labelled(page: Any) -> None:
    assert page.evaluate(UNLABELLED) == [], page.url


def sign_in(page: Any, base: str, part: str, email: str, password: str) -> None:
    page.goto(f"{base}/{part}/login")
    page.get_by_label("Email address").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(re.compile(rf".*/{part}/(?!login).*"))


def report_esp_limits(base: str, keys: Keys) -> None:
    """What the bridge does when it starts: read the ESP's limits and give them to the CRM
    (done here too, so the scenario does not depend on when a worker gets to it)."""
    limits = httpx.get(
        f"{base}/esp/api/v1/limits", headers={"Authorization": f"Bearer {keys.esp_integration}"}
    )
    stored = httpx.put(
        f"{base}/crm/api/v1/integration/esp-limits",
        json={"limits": limits.json()},
        headers={"Authorization": f"Bearer {keys.crm_integration}"},
    )
    assert stored.status_code == 200, stored.text


def test_marketer_journey(
    site: Site,
    keys: Keys,
    settings: Settings,
    new_page: Callable[[], Any],
    shot: Callable[[Any, str], None],
) -> None:
    from playwright.sync_api import expect

    person_ids = add_people(settings, AUDIENCE)
    base, users = site.url, site.users
    page = new_page()
    page.goto(f"{base}/crm/mailshots")
    expect(page).to_have_url(re.compile(r".*/crm/login\?next=.*"))
    shot(page, "01-crm-login")
    sign_in(page, base, "crm", users.crm_admin, users.password)
    # No worker yet: every page says the integration is not running.
    expect(page.locator(".banner")).to_contain_text("The integration is not running.")

    # A mailing list with the audience.
    page.get_by_role("link", name="Mailing lists").click()
    page.get_by_role("link", name="New mailing list").click()
    page.get_by_label("Name").fill("Spring list")
    page.get_by_role("button", name="Save").click()
    page.get_by_label("People to add").fill(" ".join(str(i) for i in person_ids))
    page.get_by_role("button", name="Add to list").click()
    expect(page.locator(".flash")).to_contain_text(f"{AUDIENCE} people are now members")
    shot(page, "02-crm-mailing-list")
    assert_every_input_labelled(page)

    # A mailshot whose name is too long for the ESP: the counter warns as one types,
    # against the limit the ESP reported (GET /esp/api/v1/limits, relayed by the bridge).
    report_esp_limits(base, keys)
    page.get_by_role("link", name="Mailshots").click()
    page.get_by_role("link", name="New mailshot").click()
    name = page.get_by_label("Name", exact=False).first
    name.fill(GOOD_NAME)
    counter = page.locator("#name-counter")
    expect(counter).to_have_text(f"{len(GOOD_NAME)} / 100 characters")
    expect(counter).not_to_have_class(re.compile("over"))
    name.fill(LONG_NAME)
    expect(counter).to_have_class(re.compile("over"))
    expect(counter).to_contain_text("120 / 100 characters: 20 over the ESP's limit")
    page.get_by_label("Subject").fill("Our spring launch")
    page.get_by_label("From name").fill("Marketing")
    page.get_by_label("From address").fill("marketing@example.com")
    page.get_by_label("HTML content").fill(
        "<h1 style='color:#2457c5'>Spring is here</h1><p>New things.</p>"
        "<script>document.title='pwned'</script>"
    )
    page.get_by_label("Mailing list (with a mailing list as source)").select_option(
        label="Spring list"
    )
    shot(page, "03-crm-mailshot-form-name-too-long")
    assert_every_input_labelled(page)
    page.get_by_role("button", name="Save mailshot").click()
    expect(page.locator("h1")).to_have_text(LONG_NAME)
    expect(page.locator(".preflight")).to_contain_text("Synchronise would be refused now")
    expect(page.locator(".preflight")).to_contain_text(
        "The name has 120 characters; the ESP accepts at most 100."
    )
    # The marketer's HTML is previewed in a sandbox: its script never ran in our page.
    assert page.title() != "pwned"
    sandbox = page.locator("iframe.preview").get_attribute("sandbox")
    assert sandbox == ""
    preview = page.frame_locator("iframe.preview")
    expect(preview.locator("h1")).to_have_text("Spring is here")
    mailshot_url = page.url

    # Synchronise. A worker starts; the ESP refuses the name and the page says why.
    site.start_worker()
    page.get_by_role("button", name="Synchronise").click()
    refused_up_front = page.locator(".flash-bad").count() > 0
    if refused_up_front:  # the preflight refuses it before anything is queued
        expect(page.locator(".flash-bad")).to_contain_text("SYNC_PREFLIGHT_FAILED")
        expect(page.locator(".flash-bad")).to_contain_text("120 characters")
        expect(page.locator("#sync-state")).to_have_text("not synchronised")
    else:
        failure = page.locator("#h-sync ~ .failure, section .failure").filter(
            has_text="CAMPAIGN_NAME_TOO_LONG"
        )
        expect(failure).to_be_visible(timeout=30_000)
        expect(failure).to_contain_text(
            "The campaign name has 120 characters; the ESP accepts at most 100."
        )
        expect(page.locator("#sync-state")).to_have_text("failed")
    shot(page, "04-crm-mailshot-sync-refused")

    # Fix the name, then synchronise again and watch it reach 100 %.
    page.get_by_role("link", name="Edit", exact=True).click()
    page.locator("#f-name").fill(GOOD_NAME)
    expect(counter).to_have_text(f"{len(GOOD_NAME)} / 100 characters")
    page.get_by_role("button", name="Save mailshot").click()
    expect(page.locator("h1")).to_have_text(GOOD_NAME)
    again = "Synchronise" if refused_up_front else "Retry sync"
    page.get_by_role("button", name=again).click()
    expect(page.locator("#sync-state")).to_have_text("synchronised", timeout=60_000)
    expect(page.locator(".progress-text")).to_contain_text("100 %")
    expect(page.locator(".progress .bar")).to_have_attribute("aria-valuenow", "100")
    expect(page.locator(".banner")).to_have_count(0)
    shot(page, "05-crm-mailshot-synchronised")
    page.get_by_role("link", name="Mailshots").click()
    expect(page.locator("tbody")).to_contain_text("synchronised")
    shot(page, "06-crm-mailshots")
    page.get_by_role("link", name="People").click()
    page.get_by_label("Search by name or email").fill("p7@example.com")
    page.keyboard.press("Enter")
    expect(page.locator("tbody tr")).to_have_count(1)
    assert_every_input_labelled(page)
    shot(page, "07-crm-people")
    page.get_by_role("link", name="Person7 Test").click()
    page.get_by_role("button", name="Opt out of all marketing email").click()
    expect(page.locator(".flash")).to_contain_text("Opted out")
    page.get_by_role("link", name="Edit", exact=True).click()
    assert_every_input_labelled(page)
    page.get_by_role("link", name="API keys").click()
    shot(page, "08-crm-api-keys")
    assert_every_input_labelled(page)
    page.get_by_role("link", name="Sync queue").click()
    shot(page, "09-crm-sync-queue")

    # The campaign is in the ESP, with the whole audience.
    esp = new_page()
    sign_in(esp, base, "esp", users.esp_admin, users.password)
    row = esp.locator("tbody tr").filter(has_text=GOOD_NAME)
    expect(row).to_contain_text(str(AUDIENCE))
    expect(row).to_contain_text("ready")
    shot(esp, "10-esp-campaigns")
    row.get_by_role("link", name=GOOD_NAME).click()
    expect(esp.locator("#audience-total")).to_have_text(str(AUDIENCE))
    shot(esp, "11-esp-campaign")
    esp.get_by_role("link", name="Integration").click()
    expect(esp.locator("#integration-state")).to_contain_text("Running")
    shot(esp, "12-esp-integration")
    esp.get_by_role("link", name="API keys").click()
    assert_every_input_labelled(esp)
    shot(esp, "13-esp-api-keys")

    # A form sent without its CSRF token is refused with a page that says why.
    page.goto(f"{base}/crm/mailing-lists/new")
    page.evaluate("document.querySelector('main form input[name=csrf_token]').remove()")
    page.get_by_label("Name").fill("Forged")
    page.get_by_role("button", name="Save").click()
    expect(page.locator("h1")).to_have_text("Form refused")
    expect(page.locator("main")).to_contain_text("security token")
    shot(page, "14-crm-csrf-refused")
    page.goto(f"{base}/crm/mailing-lists")
    expect(page.locator("tbody")).not_to_contain_text("Forged")

    # A marketer cannot open the API keys page.
    marketer = new_page()
    sign_in(marketer, base, "crm", users.crm_marketer, users.password)
    expect(marketer.get_by_role("link", name="API keys")).to_have_count(0)
    response = marketer.goto(f"{base}/crm/api-keys")
    assert response is not None and response.status == 403
    expect(marketer.locator("h1")).to_have_text("Administrators only")
    shot(marketer, "15-crm-marketer-refused")

    page.goto(mailshot_url)
    shot(page, "16-crm-mailshot-detail")
