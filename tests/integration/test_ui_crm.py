"""The CRM's pages through the real app: forms write through the services, pages show what
a user relies on (template context and HTML), on both database backends."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from mailshot.contracts.heartbeats import WorkerHeartbeat
from mailshot.core.db.engine import make_sessionmaker, make_unpooled_engine
from mailshot.core.settings import Settings
from mailshot.crm.models import AuditEntry, Mailshot, Person
from mailshot.crm.sync import integration
from mailshot.crm.ui import people as people_pages
from tests.conftest import Keys
from tests.support.ui_support import PageUsers, csrf_of, make_page_users, sign_in


@pytest.fixture
def users(settings: Settings) -> PageUsers:
    return make_page_users(settings)


@pytest.fixture
def admin(client: TestClient, users: PageUsers) -> TestClient:
    sign_in(client, "crm", users.crm_admin)
    return client


def post_form(c: TestClient, form_page: str, action: str, data: dict[str, Any]) -> Any:
    token = csrf_of(c.get(form_page).text)
    return c.post(action, data={**data, "csrf_token": token}, follow_redirects=False)


def crm_rows(settings: Settings, stmt: Any) -> list[Any]:
    engine = make_unpooled_engine(settings.crm_db_url())
    with make_sessionmaker(engine)() as s:
        rows = list(s.scalars(stmt))
    engine.dispose()
    return rows


def make_person(c: TestClient, first: str, email: str) -> int:
    resp = post_form(c, "/crm/people/new", "/crm/people/new", {"first_name": first, "email": email})
    assert resp.status_code == 303, resp.text
    return int(resp.headers["location"].rsplit("/", 1)[1])


def make_list(c: TestClient, name: str, members: str) -> int:
    resp = post_form(c, "/crm/mailing-lists/new", "/crm/mailing-lists/new", {"name": name})
    list_id = int(resp.headers["location"].rsplit("/", 1)[1])
    added = post_form(
        c,
        f"/crm/mailing-lists/{list_id}",
        f"/crm/mailing-lists/{list_id}/members",
        {"people": members},
    )
    assert added.status_code == 303
    return list_id


def mailshot_form(name: str, list_id: int | str, **extra: str) -> dict[str, Any]:
    return {
        "name": name,
        "subject": "Hello",
        "from_name": "Team",
        "from_address": "team@example.com",
        "html": "<p>Hi</p>",
        "audience_source": "mailing_list",
        "mailing_list_id": str(list_id),
        "mailshot_type": "static",
        "status": "draft",
        "sync_with": "esp",
        **extra,
    }


def test_people_create_search_edit_and_opt_out(admin: TestClient, settings: Settings) -> None:
    pid = make_person(admin, "Grace", "Grace@Example.com")
    make_person(admin, "Alan", "alan@example.com")
    found = admin.get("/crm/people", params={"q": "grace"})
    assert [p.id for p in found.context["people"]] == [pid]  # type: ignore[attr-defined]

    detail = admin.get(f"/crm/people/{pid}")
    assert detail.context["person"].email_status == "ok"  # type: ignore[attr-defined]

    opted = post_form(admin, f"/crm/people/{pid}", f"/crm/people/{pid}/opt-out", {"no_email": "1"})
    assert opted.status_code == 303
    assert admin.get(f"/crm/people/{pid}").context["person"].no_email is True  # type: ignore[attr-defined]
    audit = crm_rows(settings, select(AuditEntry).where(AuditEntry.entity == "person"))
    assert [(a.action, a.actor) for a in audit] == [
        ("person.opt_out", "ui-admin@example.com (web)")
    ]

    edited = post_form(
        admin,
        f"/crm/people/{pid}/edit",
        f"/crm/people/{pid}/edit",
        {"first_name": "Grace", "last_name": "Hopper", "email": "not an address"},
    )
    assert edited.status_code == 303
    person = crm_rows(settings, select(Person).where(Person.id == pid))[0]
    assert (person.last_name, person.email_status) == ("Hopper", "invalid")
    # Editing without ticking "No email" opts the person in again, as the form shows it.
    assert person.no_email is False


def test_people_pages_follow_the_keyset_cursor(
    admin: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = {make_person(admin, f"P{i}", f"p{i}@example.com") for i in range(3)}
    monkeypatch.setattr(people_pages, "PAGE_SIZE", 2)
    first = admin.get("/crm/people")
    seen = [p.id for p in first.context["people"]]  # type: ignore[attr-defined]
    nxt = first.context["next_url"]  # type: ignore[attr-defined]
    assert nxt and "cursor=" in nxt
    second = admin.get(nxt)
    seen += [p.id for p in second.context["people"]]  # type: ignore[attr-defined]
    assert second.context["next_url"] is None  # type: ignore[attr-defined]
    assert second.context["first_url"] == "/crm/people"  # type: ignore[attr-defined]
    assert seen == sorted(ids)


def test_person_form_shows_the_schema_errors(admin: TestClient) -> None:
    resp = post_form(
        admin, "/crm/people/new", "/crm/people/new", {"first_name": "x" * 300, "email": ""}
    )
    assert resp.status_code == 422
    assert "first_name" in resp.context["errors"]  # type: ignore[attr-defined]
    assert resp.context["values"]["first_name"] == "x" * 300  # type: ignore[attr-defined]


def test_list_members_unsubscribe_and_remove(admin: TestClient, settings: Settings) -> None:
    a = make_person(admin, "Ann", "ann@example.com")
    b = make_person(admin, "Bob", "bob@example.com")
    list_id = make_list(admin, "Newsletter", f"ann@example.com {b}")
    page = admin.get(f"/crm/mailing-lists/{list_id}")
    assert sorted(m.person_id for m in page.context["members"]) == [a, b]  # type: ignore[attr-defined]

    post_form(
        admin, f"/crm/mailing-lists/{list_id}", f"/crm/mailing-lists/{list_id}/members/{a}", {}
    )
    unsub = admin.get(f"/crm/mailing-lists/{list_id}", params={"subscribed": "no"})
    assert [m.person_id for m in unsub.context["members"]] == [a]  # type: ignore[attr-defined]

    post_form(
        admin,
        f"/crm/mailing-lists/{list_id}",
        f"/crm/mailing-lists/{list_id}/members/{b}",
        {"action": "remove"},
    )
    left = admin.get(f"/crm/mailing-lists/{list_id}")
    assert [m.person_id for m in left.context["members"]] == [a]  # type: ignore[attr-defined]

    unknown = post_form(
        admin,
        f"/crm/mailing-lists/{list_id}",
        f"/crm/mailing-lists/{list_id}/members",
        {"people": "ghost@example.com"},
    )
    assert unknown.status_code == 303
    assert "ghost@example.com" in admin.get(f"/crm/mailing-lists/{list_id}").text


def report_esp_limits(c: TestClient, keys: Keys) -> None:
    """What the bridge does: read the ESP's limits and hand them to the CRM."""
    limits = c.get(
        "/esp/api/v1/limits", headers={"Authorization": f"Bearer {keys.esp_integration}"}
    ).json()
    resp = c.put(
        "/crm/api/v1/integration/esp-limits",
        json={"limits": limits},
        headers={"Authorization": f"Bearer {keys.crm_integration}"},
    )
    assert resp.status_code == 200, resp.text


def test_without_the_esp_limits_the_counter_only_counts(admin: TestClient) -> None:
    form = admin.get("/crm/mailshots/new")
    assert form.context["name_max"] is None  # type: ignore[attr-defined]
    assert 'data-counter="0"' in form.text
    assert "the ESP's limit is not known yet" in form.text


def test_mailshot_with_a_long_name_warns_against_the_esp_limit(
    admin: TestClient, keys: Keys
) -> None:
    report_esp_limits(admin, keys)
    make_person(admin, "Ann", "ann@example.com")
    list_id = make_list(admin, "L", "ann@example.com")
    long_name = "N" * 101
    made = post_form(
        admin, "/crm/mailshots/new", "/crm/mailshots/new", mailshot_form(long_name, list_id)
    )
    assert made.status_code == 303, made.text
    detail = admin.get(made.headers["location"])
    assert detail.context["name_max"] == 100  # type: ignore[attr-defined]
    assert detail.context["name_length"] == 101  # type: ignore[attr-defined]
    assert "The name has 101 characters; the ESP accepts at most 100." in detail.text
    form = admin.get(made.headers["location"] + "/edit")
    assert 'data-counter="100"' in form.text
    assert "101 / 100 characters: 1 over the ESP's limit" in form.text
    listing = admin.get("/crm/mailshots")
    assert "name too long for the ESP (101/100)" in listing.text
    # Synchronise is refused up front, with both lengths, and nothing is queued.
    mid = int(made.headers["location"].rsplit("/", 1)[1])
    post_form(admin, made.headers["location"], f"/crm/mailshots/{mid}/synchronise", {})
    refused = admin.get(made.headers["location"])
    assert "SYNC_PREFLIGHT_FAILED" in refused.text
    assert "101" in refused.text
    assert refused.context["ms"].sync_state == "not_synchronised"  # type: ignore[attr-defined]
    assert [p.rule for p in refused.context["preflight"].problems] == ["name_too_long"]  # type: ignore[attr-defined]


def test_mailshot_detail_shows_every_field_and_a_sandboxed_preview(admin: TestClient) -> None:
    list_id = make_list(admin, "L", "")
    html = '<p onclick="x()">Hi</p><script>alert("x")</script>'
    made = post_form(
        admin,
        "/crm/mailshots/new",
        "/crm/mailshots/new",
        mailshot_form("Spring", list_id, html=html, reply_to="reply@example.com"),
    )
    detail = admin.get(made.headers["location"])
    ms = detail.context["ms"]  # type: ignore[attr-defined]
    for value in (ms.name, ms.subject, ms.from_name, ms.from_address, ms.reply_to):
        assert value in detail.text
    assert (
        'sandbox srcdoc="&lt;p onclick=&#34;x()&#34;&gt;Hi&lt;/p&gt;&lt;script&gt;' in detail.text
    )
    assert "<script>alert" not in detail.text  # escaped into the srcdoc attribute
    assert "allow-scripts" not in detail.text
    csp = detail.headers["content-security-policy"]
    assert "script-src 'self';" in csp


def test_mailshot_form_refuses_a_bad_sender_with_the_field_named(admin: TestClient) -> None:
    list_id = make_list(admin, "L", "")
    resp = post_form(
        admin,
        "/crm/mailshots/new",
        "/crm/mailshots/new",
        mailshot_form("Bad sender", list_id, from_address="not-an-address"),
    )
    assert resp.status_code == 422
    assert "from_address" in resp.context["errors"]  # type: ignore[attr-defined]


def test_detail_says_what_would_stop_a_sync(admin: TestClient) -> None:
    list_id = make_list(admin, "Empty", "")
    made = post_form(
        admin,
        "/crm/mailshots/new",
        "/crm/mailshots/new",
        mailshot_form("No subject", list_id, subject=""),
    )
    page = admin.get(made.headers["location"])
    rules = {p.rule for p in page.context["preflight"].problems}  # type: ignore[attr-defined]
    assert {"subject_missing", "audience_empty"} <= rules
    assert "Before you synchronise" in page.text


def test_recount_shows_included_and_excluded_by_reason(admin: TestClient) -> None:
    first = make_person(admin, "Ann", "ann@example.com")
    dup = make_person(admin, "Ann2", "ANN@example.com")
    nobody = make_person(admin, "Nobody", "")
    list_id = make_list(admin, "L", f"{first} {dup} {nobody}")
    made = post_form(admin, "/crm/mailshots/new", "/crm/mailshots/new", mailshot_form("R", list_id))
    counts = admin.get(made.headers["location"], params={"recount": 1}).context["counts"]  # type: ignore[attr-defined]
    assert counts.included == 1
    assert counts.excluded["duplicate_email"] == 1
    assert counts.excluded["no_email_address"] == 1


def test_synchronise_cancel_retry_and_progress(admin: TestClient, settings: Settings) -> None:
    make_person(admin, "Ann", "ann@example.com")
    list_id = make_list(admin, "L", "ann@example.com")
    made = post_form(
        admin, "/crm/mailshots/new", "/crm/mailshots/new", mailshot_form("Sync me", list_id)
    )
    url = made.headers["location"]
    mid = int(url.rsplit("/", 1)[1])

    post_form(admin, url, f"/crm/mailshots/{mid}/synchronise", {})
    progress = admin.get(f"/crm/mailshots/{mid}/progress.json").json()
    assert progress["state"] == "queued"
    assert progress["queue_position"] == 1
    queue = admin.get("/crm/sync/queue")
    assert [e.mailshot_id for e in queue.context["entries"]] == [mid]  # type: ignore[attr-defined]
    detail = admin.get(url)
    assert f'data-progress-url="/crm/mailshots/{mid}/progress.json"' in detail.text
    assert "Cancel sync" in detail.text

    post_form(admin, url, f"/crm/mailshots/{mid}/cancel", {})
    assert admin.get(f"/crm/mailshots/{mid}/progress.json").json()["state"] == "cancelled"
    assert admin.get("/crm/sync/queue").context["entries"] == []  # type: ignore[attr-defined]

    post_form(admin, url, f"/crm/mailshots/{mid}/retry", {})
    assert admin.get(f"/crm/mailshots/{mid}/progress.json").json()["state"] == "queued"


def test_synchronise_refused_shows_the_reason(admin: TestClient, settings: Settings) -> None:
    list_id = make_list(admin, "L", "")
    made = post_form(admin, "/crm/mailshots/new", "/crm/mailshots/new", mailshot_form("N", list_id))
    url = made.headers["location"]
    mid = int(url.rsplit("/", 1)[1])
    edited = post_form(
        admin, f"{url}/edit", f"{url}/edit", mailshot_form("Nowhere", list_id, sync_with="")
    )
    assert edited.status_code == 303
    resp = post_form(admin, url, f"/crm/mailshots/{mid}/synchronise", {})
    assert resp.status_code == 303
    page = admin.get(url)
    assert "SYNC_TARGET_MISSING" in page.text
    ms = crm_rows(settings, select(Mailshot).where(Mailshot.id == mid))[0]
    assert ms.sync_state == "not_synchronised"


def test_banner_shows_while_no_worker_reports(admin: TestClient, settings: Settings) -> None:
    page = admin.get("/crm/mailshots")
    assert page.context["banner"]["title"] == "The integration is not running."  # type: ignore[attr-defined]
    engine = make_unpooled_engine(settings.crm_db_url())
    with make_sessionmaker(engine)() as s:
        integration.record_heartbeat(s, WorkerHeartbeat(worker_id="w1"))
    engine.dispose()
    assert admin.get("/crm/mailshots").context["banner"] is None  # type: ignore[attr-defined]


def test_api_key_is_shown_once_and_can_be_disabled(
    admin: TestClient, users: PageUsers, settings: Settings
) -> None:
    keys_page = admin.get("/crm/api-keys")
    owner = next(
        u[0]
        for u in keys_page.context["key_users"]  # type: ignore[attr-defined]
        if u[1] == users.crm_marketer
    )
    token = csrf_of(keys_page.text)
    created = admin.post(
        "/crm/api-keys",
        data={
            "name": "reporting",
            "user_id": str(owner),
            "scopes": ["marketing:read"],
            "csrf_token": token,
        },
    )
    assert created.status_code == 200
    secret = created.context["new_token"]  # type: ignore[attr-defined]
    assert secret.startswith("mscrm_")
    api = {"Authorization": f"Bearer {secret}"}
    assert admin.get("/crm/api/v1/mailshots", headers=api).status_code == 200

    listed = admin.get("/crm/api-keys")
    assert secret not in listed.text  # shown once, never again
    key = next(k for k in listed.context["keys"] if k.name == "reporting")  # type: ignore[attr-defined]
    assert key.scopes == ["marketing:read"]
    post_form(admin, "/crm/api-keys", f"/crm/api-keys/{key.id}/enabled", {})
    refused = admin.get("/crm/api/v1/mailshots", headers=api)
    assert refused.status_code == 401
    assert refused.json()["error"]["code"] == "AUTH_KEY_DISABLED"


def test_settings_toggle_gdpr_mode(admin: TestClient) -> None:
    post_form(admin, "/crm/settings", "/crm/settings", {"gdpr_mode": "1"})
    assert admin.get("/crm/settings").context["s"].gdpr_mode is True  # type: ignore[attr-defined]
    post_form(admin, "/crm/settings", "/crm/settings", {})
    assert admin.get("/crm/settings").context["s"].gdpr_mode is False  # type: ignore[attr-defined]


def test_admin_adds_a_marketer_who_can_then_sign_in(admin: TestClient, client: TestClient) -> None:
    resp = post_form(
        admin,
        "/crm/users",
        "/crm/users",
        {
            "email": "new@example.com",
            "name": "New",
            "role": "marketer",
            "password": "long enough pw",
        },
    )
    assert resp.status_code == 303
    client.cookies.clear()
    sign_in(client, "crm", "new@example.com", "long enough pw")
    assert client.get("/crm/mailshots").status_code == 200


def test_unknown_mailshot_is_a_404_page(admin: TestClient) -> None:
    resp = admin.get("/crm/mailshots/999999")
    assert resp.status_code == 404
    assert resp.context["title"] == "Not found"  # type: ignore[attr-defined]
    assert "There is no mailshot with id 999999." in resp.text


def test_rotating_a_key_shows_the_new_secret_once_and_keeps_the_old_one(
    admin: TestClient, keys: Keys
) -> None:
    listed = admin.get("/crm/api-keys")
    old = next(k for k in listed.context["keys"] if k.name == "marketer key")  # type: ignore[attr-defined]
    rotated = admin.post(
        f"/crm/api-keys/{old.id}/rotate", data={"csrf_token": csrf_of(listed.text)}
    )
    assert rotated.status_code == 200
    new_token = rotated.context["new_token"]  # type: ignore[attr-defined]
    assert new_token.startswith("mscrm_") and new_token != keys.crm_marketer
    for token in (new_token, keys.crm_marketer):  # both work during the overlap
        resp = admin.get("/crm/api/v1/mailshots", headers={"Authorization": f"Bearer {token}"})
        assert resp.status_code == 200
    again = admin.get("/crm/api-keys")
    assert new_token not in again.text
    assert any(k.rotated_from_id == old.id for k in again.context["keys"])  # type: ignore[attr-defined]


def test_keys_page_lists_refused_requests(admin: TestClient) -> None:
    admin.get("/crm/api/v1/mailshots", headers={"Authorization": "Bearer mscrm_nope_nope"})
    page = admin.get("/crm/api-keys")
    reasons = [r.reason for r in page.context["refusals"]]  # type: ignore[attr-defined]
    assert "AUTH_UNKNOWN_KEY" in reasons
