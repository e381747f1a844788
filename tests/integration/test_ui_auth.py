"""Signing in to the pages, sessions, roles, CSRF and the security headers, through the
real app (TestClient) on both database backends."""

from __future__ import annotations

import stat
from urllib.parse import parse_qs, urlsplit

import pytest
from fastapi.testclient import TestClient

from mailshot.core.db.engine import make_sessionmaker, make_unpooled_engine
from mailshot.core.settings import Settings
from mailshot.crm.services import access as crm_access
from tests.support.ui_support import PageUsers, csrf_of, make_page_users, sign_in


@pytest.fixture
def users(settings: Settings) -> PageUsers:
    return make_page_users(settings)


@pytest.mark.parametrize(
    ("path", "login"),
    [
        ("/crm/mailshots", "/crm/login"),
        ("/crm/people?q=smith", "/crm/login"),
        ("/crm/api-keys", "/crm/login"),
        ("/esp/campaigns", "/esp/login"),
        ("/esp/integration", "/esp/login"),
    ],
)
def test_pages_need_a_signed_in_user(client: TestClient, path: str, login: str) -> None:
    resp = client.get(path, follow_redirects=False)
    assert resp.status_code == 303
    location = resp.headers["location"]
    assert location.startswith(f"{login}?next=")
    # After signing in, the browser comes back to the page it asked for (query included).
    assert parse_qs(urlsplit(location).query)["next"] == [path]


def test_progress_json_without_a_session_is_401_json(client: TestClient) -> None:
    resp = client.get("/crm/mailshots/1/progress.json")
    assert resp.status_code == 401
    assert resp.json()["error"]["code"] == "LOGIN_REQUIRED"


def test_sign_in_goes_to_the_page_asked_for(client: TestClient, users: PageUsers) -> None:
    page = client.get("/crm/login?next=/crm/people")
    assert page.status_code == 200
    assert page.template.name == "webui/login.html"  # type: ignore[attr-defined]
    resp = client.post(
        "/crm/login",
        data={
            "email": users.crm_marketer.upper(),  # addresses are case-insensitive
            "password": users.password,
            "csrf_token": csrf_of(page.text),
            "next": "/crm/people",
        },
        follow_redirects=False,
    )
    assert resp.status_code == 303
    assert resp.headers["location"] == "/crm/people"
    people = client.get("/crm/people")
    assert people.status_code == 200
    assert people.context["user"].email == users.crm_marketer  # type: ignore[attr-defined]
    assert people.context["user"].role == "marketer"  # type: ignore[attr-defined]


@pytest.mark.parametrize("target", ["//evil.example/", "https://evil.example/", "/\\evil"])
def test_sign_in_never_redirects_off_site(
    client: TestClient, users: PageUsers, target: str
) -> None:
    page = client.get("/crm/login")
    resp = client.post(
        "/crm/login",
        data={
            "email": users.crm_admin,
            "password": users.password,
            "csrf_token": csrf_of(page.text),
            "next": target,
        },
        follow_redirects=False,
    )
    assert resp.status_code == 303
    assert resp.headers["location"] == "/crm/"


def test_wrong_password_and_unknown_user_get_the_same_answer(
    client: TestClient, users: PageUsers
) -> None:
    answers = []
    for email, password in [(users.crm_admin, "wrong password"), ("nobody@example.com", "x")]:
        page = client.get("/crm/login")
        resp = client.post(
            "/crm/login",
            data={"email": email, "password": password, "csrf_token": csrf_of(page.text)},
            follow_redirects=False,
        )
        answers.append((resp.status_code, resp.context["error"]))  # type: ignore[attr-defined]
    assert answers[0] == answers[1]
    assert answers[0][0] == 400
    assert client.get("/crm/mailshots", follow_redirects=False).status_code == 303


def test_integration_users_cannot_sign_in(client: TestClient, users: PageUsers) -> None:
    page = client.get("/crm/login")
    resp = client.post(
        "/crm/login",
        data={
            "email": users.crm_integration,
            "password": users.password,
            "csrf_token": csrf_of(page.text),
        },
        follow_redirects=False,
    )
    assert resp.status_code == 403
    assert "API keys" in resp.context["error"]  # type: ignore[attr-defined]
    assert client.get("/crm/mailshots", follow_redirects=False).status_code == 303


def test_a_disabled_user_is_signed_out_at_the_next_click(
    client: TestClient, users: PageUsers, settings: Settings
) -> None:
    sign_in(client, "crm", users.crm_marketer)
    assert client.get("/crm/mailshots").status_code == 200
    engine = make_unpooled_engine(settings.crm_db_url())
    with make_sessionmaker(engine)() as s:
        user = crm_access.find_user(s, users.crm_marketer)
        assert user is not None
        user.enabled = False
        s.commit()
    engine.dispose()
    assert client.get("/crm/mailshots", follow_redirects=False).status_code == 303


def test_sign_out_ends_the_session(client: TestClient, users: PageUsers) -> None:
    sign_in(client, "crm", users.crm_admin)
    page = client.get("/crm/mailshots")
    resp = client.post(
        "/crm/logout", data={"csrf_token": csrf_of(page.text)}, follow_redirects=False
    )
    assert resp.status_code == 303
    assert client.get("/crm/mailshots", follow_redirects=False).status_code == 303


def test_a_post_without_its_csrf_token_is_refused_with_a_reason(
    client: TestClient, users: PageUsers
) -> None:
    sign_in(client, "crm", users.crm_admin)
    missing = client.post("/crm/mailing-lists/new", data={"name": "Sneaky"})
    assert missing.status_code == 403
    assert missing.context["title"] == "Form refused"  # type: ignore[attr-defined]
    assert "security token" in missing.text
    wrong = client.post("/crm/mailing-lists/new", data={"name": "Sneaky", "csrf_token": "x" * 43})
    assert wrong.status_code == 403
    # Nothing was created by either.
    assert "Sneaky" not in client.get("/crm/mailing-lists").text
    # The same form with the session's token works.
    token = csrf_of(client.get("/crm/mailing-lists/new").text)
    ok = client.post(
        "/crm/mailing-lists/new",
        data={"name": "Welcome", "csrf_token": token},
        follow_redirects=False,
    )
    assert ok.status_code == 303


def test_login_form_needs_its_token_too(client: TestClient, users: PageUsers) -> None:
    resp = client.post("/crm/login", data={"email": users.crm_admin, "password": users.password})
    assert resp.status_code == 403
    assert client.get("/crm/mailshots", follow_redirects=False).status_code == 303


@pytest.mark.parametrize("path", ["/crm/api-keys", "/crm/users", "/crm/settings"])
def test_marketers_cannot_open_admin_pages(client: TestClient, users: PageUsers, path: str) -> None:
    sign_in(client, "crm", users.crm_marketer)
    resp = client.get(path)
    assert resp.status_code == 403
    assert resp.context["title"] == "Administrators only"  # type: ignore[attr-defined]
    assert "Only administrators can" in resp.text
    # Nor post to them.
    token = csrf_of(client.get("/crm/mailshots").text)
    posted = client.post("/crm/settings", data={"gdpr_mode": "1", "csrf_token": token})
    assert posted.status_code == 403


def test_admin_links_are_shown_to_admins_only(client: TestClient, users: PageUsers) -> None:
    sign_in(client, "crm", users.crm_marketer)
    labels = [n.label for n in client.get("/crm/mailshots").context["nav"]]  # type: ignore[attr-defined]
    assert "API keys" not in labels
    assert "Mailshots" in labels
    client.cookies.clear()
    sign_in(client, "crm", users.crm_admin)
    labels = [n.label for n in client.get("/crm/mailshots").context["nav"]]  # type: ignore[attr-defined]
    assert {"API keys", "Users", "Settings"} <= set(labels)


def test_crm_and_esp_sessions_are_separate(client: TestClient, users: PageUsers) -> None:
    sign_in(client, "crm", users.crm_admin)
    assert client.get("/esp/campaigns", follow_redirects=False).status_code == 303
    # A CRM session cookie presented as the ESP's is not accepted (each part's sessions are
    # rows of its own database).
    crm_cookie = client.cookies.get("mailshot_crm_session")
    assert crm_cookie
    client.cookies.set("mailshot_esp_session", crm_cookie)
    assert client.get("/esp/campaigns", follow_redirects=False).status_code == 303


def test_pages_carry_a_self_only_csp_and_a_safe_cookie(
    client: TestClient, users: PageUsers
) -> None:
    login = client.get("/crm/login")
    csp = login.headers["content-security-policy"]
    assert "default-src 'self'" in csp
    assert "script-src 'self';" in csp
    assert "unsafe" not in csp
    assert login.headers["x-frame-options"] == "DENY"
    cookie = login.headers["set-cookie"].lower()
    assert "httponly" in cookie
    assert "samesite=lax" in cookie
    sign_in(client, "crm", users.crm_admin)
    assert "default-src 'self'" in client.get("/crm/mailshots").headers["content-security-policy"]


def test_the_session_secret_is_private_to_the_installation(
    client: TestClient, settings: Settings
) -> None:
    path = settings.data_dir / "session-secret"
    assert path.is_file()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(path.read_text().strip()) >= 32


def test_every_navigation_link_leads_to_a_page_of_its_part(
    client: TestClient, users: PageUsers
) -> None:
    """Both parts share one URL namespace in the embedded server: a page's route name must
    not be taken by an API route or by the other part."""
    sign_in(client, "crm", users.crm_admin)
    sign_in(client, "esp", users.esp_admin)
    for part, home in (("crm", "/crm/mailshots"), ("esp", "/esp/campaigns")):
        page = client.get(home)
        nav = page.context["nav"]  # type: ignore[attr-defined]
        assert nav
        for item in nav:
            url = str(page.context["request"].url_for(item.route))  # type: ignore[attr-defined]
            assert url.startswith(f"http://testserver/{part}/")
            assert "/api/" not in url
            resp = client.get(url)
            assert resp.status_code == 200, url
            assert resp.headers["content-type"].startswith("text/html")
